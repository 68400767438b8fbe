package files

import (
	"context"
	"strings"

	"github.com/filehub/filehub"
	"github.com/gabriel-vasile/mimetype"
)

// SniffLen is how many leading bytes CheckContent looks at.
const SniffLen = sniffLen

// CheckDeclaredType returns EUNSUPPORTED if a type a client declares for
// content it has not sent yet (tus's filetype metadata) is refused by the
// type policy, so that such an upload is refused before any byte is
// received. A type mimetype knows is checked with its ancestors, like a
// sniffed one; an unknown or empty one passes here, because the content is
// sniffed anyway (CheckContent).
func (s *Service) CheckDeclaredType(declared string) error {
	declared = strings.TrimSpace(declared)
	if i := strings.IndexByte(declared, ';'); i >= 0 {
		declared = strings.TrimSpace(declared[:i])
	}
	if declared == "" {
		return nil
	}
	declared = strings.ToLower(declared)
	if canon, ok := executableAliases[declared]; ok {
		declared = canon
	}
	m := mimetype.Lookup(declared)
	if m == nil {
		// Unknown to the detector: only an exact deny pattern refuses it.
		for _, pat := range s.policy.deny {
			if matchMIME(pat, declared) {
				return filehub.Errorf(filehub.EUNSUPPORTED, "content type %s is not allowed", declared)
			}
		}
		return nil
	}
	ct := contentType{name: m.String()}
	for t := m; t != nil && t.Parent() != nil; t = t.Parent() {
		ct.lineage = append(ct.lineage, t.String())
	}
	if len(ct.lineage) == 0 {
		ct.lineage = []string{m.String()}
	}
	if len(s.policy.allow) > 0 {
		// An allow list judges the sniffed content, not a declaration:
		// a client cannot know what the detector will call its file.
		return s.policy.check(ct.denyOnly())
	}
	return s.policy.check(ct)
}

// executableAliases maps names clients and browsers give executables
// (File.type in browsers, Content-Type guesses) that the detector does not
// know to the detector's names, so that declaring one is refused like
// sniffing one.
var executableAliases = map[string]string{
	"application/x-msdownload":        "application/vnd.microsoft.portable-executable",
	"application/x-dosexec":           "application/vnd.microsoft.portable-executable",
	"application/x-msdos-program":     "application/vnd.microsoft.portable-executable",
	"application/x-ms-dos-executable": "application/vnd.microsoft.portable-executable",
	"application/x-exe":               "application/vnd.microsoft.portable-executable",
	"application/exe":                 "application/vnd.microsoft.portable-executable",
	"application/x-winexe":            "application/vnd.microsoft.portable-executable",
	"application/x-executable":        "application/x-elf",
	"application/x-pie-executable":    "application/x-elf",
	"application/x-msi":               "application/x-ms-installer",
	"application/x-ms-installer":      "application/x-ms-installer",
	"application/x-mach-o-executable": "application/x-mach-binary",
	"application/x-apple-binary":      "application/x-mach-binary",
}

// denyOnly marks ct to be checked against the deny list alone.
func (ct contentType) denyOnly() contentType {
	ct.skipAllow = true
	return ct
}

// CheckContent sniffs the content type of an upload from its first bytes
// (up to SniffLen) and returns it, or EUNSUPPORTED if the type policy
// refuses it, exactly as for uploads through Upload.
func (s *Service) CheckContent(head []byte) (string, error) {
	ct := sniff(head[:min(len(head), sniffLen)])
	if err := s.policy.check(ct); err != nil {
		return "", err
	}
	return ct.name, nil
}

// CommitStaged records content that was received and hashed elsewhere (a
// resumable upload) as the file f, through the same commit path as Upload:
// the staged blob is committed unless its content is already stored, f is
// recorded with one file.created event, deduplicated against existing
// content. f must have ID, Name (sanitized here), Size, SHA256 and
// ContentType set; CreatedAt is set here. The caller closes staged.
//
// Errors: ETOOLARGE past MaxUploadSize, ECONFLICT if a file f.ID exists,
// ESTORAGE, EUNAVAILABLE, as for Upload.
func (s *Service) CommitStaged(ctx context.Context, staged filehub.StagedBlob, f *filehub.File) (*Upload, error) {
	if f.Size > s.cfg.MaxUploadSize {
		return nil, s.tooLarge()
	}
	f.Name = SanitizeName(f.Name)
	up, err := s.commit(ctx, staged, f)
	s.metrics.uploads.WithLabelValues(uploadResult(up, err)).Inc()
	if err != nil {
		return nil, err
	}
	s.changed(nil)
	if up.Deduplicated {
		s.metrics.dedupHits.Inc()
		s.metrics.dedupSaved.Add(float64(up.Size))
	}
	return up, nil
}

// Find returns the file id whether live or soft-deleted. Returns ENOTFOUND
// if there is none.
func (s *Service) Find(ctx context.Context, id string) (*filehub.File, error) {
	return s.meta.FindFile(ctx, id)
}

package files

import (
	"strings"

	"github.com/filehub/filehub"
	"github.com/gabriel-vasile/mimetype"
)

// DefaultDenyTypes are refused unless Config.DenyTypes says otherwise: native
// executables and installers, detected by content whatever the file's name.
// Children in mimetype's hierarchy are covered too (application/x-elf covers
// shared libraries, core dumps and object files).
var DefaultDenyTypes = []string{
	"application/x-elf",
	"application/vnd.microsoft.portable-executable",
	"application/x-mach-binary",
	"application/x-ms-installer",
}

// sniffLen is how many leading bytes type detection looks at; it matches
// mimetype's default read limit.
const sniffLen = 3072

// typePolicy decides which detected content types may be stored.
type typePolicy struct {
	allow []string // empty: everything not denied
	deny  []string
}

// contentType is the result of sniffing: the type to store and the names it
// is known under (itself, its aliases' canonical forms and its ancestors).
type contentType struct {
	name    string   // stored as File.ContentType, e.g. "text/plain; charset=utf-8"
	lineage []string // name without parameters, then its ancestors up to (not including) the root
	// skipAllow checks the deny patterns only (a declared type, see
	// CheckDeclaredType).
	skipAllow bool
}

// sniff detects the content type of an upload from its first bytes.
func sniff(head []byte) contentType {
	// mimetype classifies anything starting with the DOS "MZ" signature as
	// a Windows executable, PE header or not, which is what the policy needs.
	m := mimetype.Detect(head)
	ct := contentType{name: m.String()}
	for t := m; t != nil && t.Parent() != nil; t = t.Parent() {
		ct.lineage = append(ct.lineage, t.String())
	}
	if len(ct.lineage) == 0 { // the root itself: application/octet-stream
		ct.lineage = []string{m.String()}
	}
	return ct
}

// check returns EUNSUPPORTED if ct may not be stored. Deny patterns match the
// type and its ancestors, so denying application/x-elf also denies shared
// libraries and core dumps; allow patterns match the type itself only, so
// allowing text/plain does not let HTML in.
func (p *typePolicy) check(ct contentType) error {
	for _, name := range ct.lineage {
		for _, pat := range p.deny {
			if matchMIME(pat, name) {
				return filehub.Errorf(filehub.EUNSUPPORTED, "content type %s is not allowed", ct.lineage[0])
			}
		}
	}
	if len(p.allow) == 0 || ct.skipAllow {
		return nil
	}
	for _, pat := range p.allow {
		if matchMIME(pat, ct.lineage[0]) {
			return nil
		}
	}
	return filehub.Errorf(filehub.EUNSUPPORTED, "content type %s is not allowed", ct.lineage[0])
}

// matchMIME matches a MIME type (parameters ignored) against a pattern:
// "*/*", "image/*" or an exact "type/subtype", case-insensitively.
func matchMIME(pattern, typ string) bool {
	if i := strings.IndexByte(typ, ';'); i >= 0 {
		typ = typ[:i]
	}
	pattern = strings.ToLower(strings.TrimSpace(pattern))
	typ = strings.ToLower(strings.TrimSpace(typ))
	if pattern == "*/*" || pattern == "*" {
		return true
	}
	if prefix, ok := strings.CutSuffix(pattern, "/*"); ok {
		return strings.HasPrefix(typ, prefix+"/")
	}
	return pattern == typ
}

// validPattern reports whether s is a usable MIME pattern.
func validPattern(s string) bool {
	s = strings.TrimSpace(s)
	if s == "*" || s == "*/*" {
		return true
	}
	major, minor, ok := strings.Cut(s, "/")
	return ok && major != "" && minor != "" && !strings.ContainsAny(s, " ;,") && major != "*"
}

package tus

import (
	"crypto/md5"  //nolint:gosec // a tus checksum algorithm clients choose; not used for security
	"crypto/sha1" //nolint:gosec // idem
	"crypto/sha256"
	"encoding/base64"
	"hash"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/filehub/filehub"
)

// Limits on client-supplied headers.
const (
	// MaxMetadataBytes bounds Upload-Metadata; it is stored and echoed.
	MaxMetadataBytes = 4 << 10
	// MaxMetadataPairs bounds its number of keys.
	MaxMetadataPairs = 32
	// MaxParts bounds the partial uploads of one final upload.
	MaxParts = 256
)

// ParseMetadata parses an Upload-Metadata header: comma-separated pairs of
// a key and, after a space, its base64-encoded value (which may be
// absent). Keys are non-empty ASCII without spaces or commas, and unique.
// It returns EINVALID for anything else, and past MaxMetadataBytes or
// MaxMetadataPairs.
func ParseMetadata(s string) (map[string]string, error) {
	md := map[string]string{}
	if strings.TrimSpace(s) == "" {
		return md, nil
	}
	if len(s) > MaxMetadataBytes {
		return nil, filehub.Errorf(filehub.EINVALID, "Upload-Metadata is longer than %d bytes", MaxMetadataBytes)
	}
	for pair := range strings.SplitSeq(s, ",") {
		pair = strings.TrimSpace(pair)
		key, val, hasVal := strings.Cut(pair, " ")
		if key == "" || !validKey(key) {
			return nil, filehub.Errorf(filehub.EINVALID, "Upload-Metadata: invalid key %q", truncate(key, 32))
		}
		if _, dup := md[key]; dup {
			return nil, filehub.Errorf(filehub.EINVALID, "Upload-Metadata: duplicate key %q", key)
		}
		if len(md) == MaxMetadataPairs {
			return nil, filehub.Errorf(filehub.EINVALID, "Upload-Metadata has more than %d keys", MaxMetadataPairs)
		}
		var dec []byte
		if hasVal {
			var err error
			dec, err = base64.StdEncoding.DecodeString(strings.TrimSpace(val))
			if err != nil {
				return nil, filehub.Errorf(filehub.EINVALID, "Upload-Metadata: the value of %q is not base64", key)
			}
		}
		md[key] = string(dec)
	}
	return md, nil
}

func validKey(k string) bool {
	for i := range len(k) {
		if c := k[i]; c <= ' ' || c >= 0x7f || c == ',' {
			return false
		}
	}
	return true
}

// Checksum is a parsed Upload-Checksum header.
type Checksum struct {
	Algorithm string // "sha256", "sha1" or "md5"
	Sum       []byte
}

// New returns a hash of the checksum's algorithm.
func (c *Checksum) New() hash.Hash {
	switch c.Algorithm {
	case "sha1":
		return sha1.New() //nolint:gosec // see the import
	case "md5":
		return md5.New() //nolint:gosec // see the import
	}
	return sha256.New()
}

// ParseChecksum parses an Upload-Checksum header, "<algorithm> <base64
// digest>". It returns EINVALID for an algorithm other than sha256, sha1 or
// md5 (tus: 400), or a digest that is not base64 of the algorithm's size.
func ParseChecksum(s string) (*Checksum, error) {
	alg, enc, ok := strings.Cut(strings.TrimSpace(s), " ")
	if !ok {
		return nil, filehub.Errorf(filehub.EINVALID, "Upload-Checksum must be \"<algorithm> <base64 digest>\"")
	}
	c := &Checksum{Algorithm: strings.ToLower(alg)}
	var size int
	switch c.Algorithm {
	case "sha256":
		size = sha256.Size
	case "sha1":
		size = sha1.Size
	case "md5":
		size = md5.Size
	default:
		return nil, filehub.Errorf(filehub.EINVALID, "unsupported checksum algorithm %q (supported: %s)", truncate(alg, 16), ChecksumAlgorithms)
	}
	sum, err := base64.StdEncoding.DecodeString(strings.TrimSpace(enc))
	if err != nil || len(sum) != size {
		return nil, filehub.Errorf(filehub.EINVALID, "Upload-Checksum: the digest is not a base64 %s digest", c.Algorithm)
	}
	c.Sum = sum
	return c, nil
}

// parseInt parses a non-negative decimal header value.
func parseInt(hdr http.Header, name string) (v int64, present bool, err error) {
	s := hdr.Get(name)
	if s == "" {
		return 0, false, nil
	}
	v, err = strconv.ParseInt(s, 10, 64)
	if err != nil || v < 0 || (s[0] < '0' || s[0] > '9') {
		return 0, true, filehub.Errorf(filehub.EINVALID, "%s must be a non-negative integer", name)
	}
	return v, true, nil
}

// parseLength reads Upload-Length or Upload-Defer-Length: 1 (exactly one of
// them) and returns the length, -1 when deferred.
func parseLength(hdr http.Header) (int64, error) {
	n, has, err := parseInt(hdr, "Upload-Length")
	if err != nil {
		return 0, err
	}
	deferred := hdr.Get("Upload-Defer-Length")
	switch {
	case has && deferred != "":
		return 0, filehub.Errorf(filehub.EINVALID, "send Upload-Length or Upload-Defer-Length, not both")
	case has:
		return n, nil
	case deferred == "1":
		return -1, nil
	case deferred != "":
		return 0, filehub.Errorf(filehub.EINVALID, "Upload-Defer-Length must be 1")
	}
	return 0, filehub.Errorf(filehub.EINVALID, "missing Upload-Length (or Upload-Defer-Length: 1)")
}

// parseFinal parses the URLs of an "Upload-Concat: final;<url> <url>"
// header into upload IDs under basePath. URLs may be absolute or
// path-absolute; only their path counts.
func parseFinal(v, basePath string) ([]string, error) {
	list, ok := strings.CutPrefix(v, "final;")
	if !ok {
		return nil, filehub.Errorf(filehub.EINVALID, "Upload-Concat must be \"partial\" or \"final;<upload URLs>\"")
	}
	var ids []string
	for raw := range strings.FieldsSeq(list) {
		if len(ids) == MaxParts {
			return nil, filehub.Errorf(filehub.EINVALID, "a final upload may join at most %d partial uploads", MaxParts)
		}
		u, err := url.Parse(raw)
		if err != nil {
			return nil, filehub.Errorf(filehub.EINVALID, "Upload-Concat: %q is not a URL", truncate(raw, 64))
		}
		id, ok := strings.CutPrefix(u.Path, basePath)
		if !ok || !filehub.ValidUploadID(id) {
			return nil, filehub.Errorf(filehub.EINVALID, "Upload-Concat: %q is not an upload of this server", truncate(raw, 64))
		}
		ids = append(ids, id)
	}
	if len(ids) == 0 {
		return nil, filehub.Errorf(filehub.EINVALID, "Upload-Concat: final names no partial uploads")
	}
	return ids, nil
}

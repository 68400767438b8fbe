package tus_test

import (
	"encoding/base64"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/filehub/filehub"
	"github.com/filehub/filehub/tus"
)

func TestParseMetadata(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want map[string]string
		ok   bool
	}{
		{"", map[string]string{}, true},
		{"filename ZG9jLnBkZg==", map[string]string{"filename": "doc.pdf"}, true},
		{"filename ZG9jLnBkZg==,is_confidential", map[string]string{"filename": "doc.pdf", "is_confidential": ""}, true},
		{"a YQ==, b Yg==", map[string]string{"a": "a", "b": "b"}, true},
		{"filename !!!", nil, false},
		{"a YQ==,a Yg==", nil, false},
		{",", nil, false},
		{"ké YQ==", nil, false},
		{strings.Repeat("k", tus.MaxMetadataBytes+1), nil, false},
	} {
		got, err := tus.ParseMetadata(tc.in)
		if (err == nil) != tc.ok {
			t.Errorf("ParseMetadata(%q) error %v, want ok=%v", tc.in, err, tc.ok)
			continue
		}
		if err != nil {
			if filehub.ErrorCode(err) != filehub.EINVALID {
				t.Errorf("ParseMetadata(%q) = %v, want EINVALID", tc.in, err)
			}
			continue
		}
		if len(got) != len(tc.want) {
			t.Errorf("ParseMetadata(%q) = %v, want %v", tc.in, got, tc.want)
		}
		for k, v := range tc.want {
			if got[k] != v {
				t.Errorf("ParseMetadata(%q)[%q] = %q, want %q", tc.in, k, got[k], v)
			}
		}
	}
}

func TestParseChecksum(t *testing.T) {
	sum := base64.StdEncoding.EncodeToString(make([]byte, 32))
	for _, tc := range []struct {
		in  string
		alg string
	}{
		{"sha256 " + sum, "sha256"},
		{"SHA256 " + sum, "sha256"},
		{"sha1 " + base64.StdEncoding.EncodeToString(make([]byte, 20)), "sha1"},
		{"md5 " + base64.StdEncoding.EncodeToString(make([]byte, 16)), "md5"},
		{"sha512 " + sum, ""},
		{"sha256 " + base64.StdEncoding.EncodeToString(make([]byte, 20)), ""},
		{"sha256", ""},
		{"", ""},
	} {
		c, err := tus.ParseChecksum(tc.in)
		switch {
		case tc.alg == "" && filehub.ErrorCode(err) != filehub.EINVALID:
			t.Errorf("ParseChecksum(%q) = %v, %v; want EINVALID", tc.in, c, err)
		case tc.alg != "" && (err != nil || c.Algorithm != tc.alg):
			t.Errorf("ParseChecksum(%q) = %v, %v; want %s", tc.in, c, err, tc.alg)
		}
	}
}

// FuzzParseMetadata: any header either parses into keys that re-encode to
// an equivalent header, or is refused with EINVALID; never a panic, never a
// result past the limits.
func FuzzParseMetadata(f *testing.F) {
	for _, s := range []string{"", "filename ZG9jLnBkZg==", "a,b YQ==", "a  YQ==", "x", ",,", "a YQ==,a YQ==", "k \xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		md, err := tus.ParseMetadata(s)
		if err != nil {
			if filehub.ErrorCode(err) != filehub.EINVALID {
				t.Fatalf("ParseMetadata(%q) = %v, want EINVALID", s, err)
			}
			if !utf8.ValidString(filehub.ErrorMessage(err)) && utf8.ValidString(s) {
				t.Fatalf("error message is not valid UTF-8 for a valid input")
			}
			return
		}
		if len(md) > tus.MaxMetadataPairs || len(s) > tus.MaxMetadataBytes {
			t.Fatalf("ParseMetadata(%q) accepted %d keys / %d bytes", s, len(md), len(s))
		}
		var parts []string
		for k, v := range md {
			if k == "" || strings.ContainsAny(k, " ,") {
				t.Fatalf("ParseMetadata(%q) returned key %q", s, k)
			}
			parts = append(parts, k+" "+base64.StdEncoding.EncodeToString([]byte(v)))
		}
		again, err := tus.ParseMetadata(strings.Join(parts, ","))
		if err != nil && len(strings.Join(parts, ",")) <= tus.MaxMetadataBytes {
			t.Fatalf("re-encoded metadata of %q does not parse: %v", s, err)
		}
		for k, v := range md {
			if err == nil && again[k] != v {
				t.Fatalf("round trip of %q changed %q", s, k)
			}
		}
	})
}

// FuzzParseChecksum: a header is refused with EINVALID or gives a known
// algorithm with a digest of exactly its size.
func FuzzParseChecksum(f *testing.F) {
	for _, s := range []string{"sha256 " + base64.StdEncoding.EncodeToString(make([]byte, 32)), "md5 AAAA", "sha1", " ", "crc32 AAAAAA=="} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := tus.ParseChecksum(s)
		if err != nil {
			if filehub.ErrorCode(err) != filehub.EINVALID {
				t.Fatalf("ParseChecksum(%q) = %v, want EINVALID", s, err)
			}
			return
		}
		if c.New().Size() != len(c.Sum) {
			t.Fatalf("ParseChecksum(%q): %s digest of %d bytes", s, c.Algorithm, len(c.Sum))
		}
	})
}

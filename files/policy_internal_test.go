package files

import (
	"encoding/binary"
	"testing"

	"github.com/filehub/filehub"
)

// Minimal headers of the executable formats the default policy refuses.
func elfHeader() []byte {
	b := make([]byte, 64)
	copy(b, "\x7fELF\x02\x01\x01")
	binary.LittleEndian.PutUint16(b[16:], 2) // ET_EXEC
	binary.LittleEndian.PutUint16(b[18:], 62)
	return b
}

func peHeader() []byte {
	b := make([]byte, 512)
	copy(b, "MZ")
	binary.LittleEndian.PutUint32(b[0x3c:], 0x80)
	copy(b[0x80:], "PE\x00\x00")
	return b
}

func machoHeader() []byte {
	b := make([]byte, 64)
	binary.LittleEndian.PutUint32(b, 0xfeedfacf)
	return b
}

func TestTypePolicy(t *testing.T) {
	pdf := []byte("%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n")
	png := []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
	text := []byte("hello, world\n")
	tests := []struct {
		name       string
		allow      []string
		deny       []string
		content    []byte
		wantType   string
		wantRefuse bool
	}{
		{"text allowed by default", nil, DefaultDenyTypes, text, "text/plain; charset=utf-8", false},
		{"pdf allowed by default", nil, DefaultDenyTypes, pdf, "application/pdf", false},
		{"elf refused", nil, DefaultDenyTypes, elfHeader(), "application/x-executable", true},
		{"pe refused", nil, DefaultDenyTypes, peHeader(), "application/vnd.microsoft.portable-executable", true},
		{"bare MZ refused", nil, DefaultDenyTypes, []byte("MZ\x90\x00\x03"), "application/vnd.microsoft.portable-executable", true},
		{"mach-o refused", nil, DefaultDenyTypes, machoHeader(), "application/x-mach-binary", true},
		{"elf allowed when deny list empty", nil, []string{}, elfHeader(), "application/x-executable", false},
		{"allow list admits match", []string{"image/*"}, DefaultDenyTypes, png, "image/png", false},
		{"allow list refuses others", []string{"image/*"}, DefaultDenyTypes, pdf, "application/pdf", true},
		{"deny wins over allow", []string{"*/*"}, []string{"application/pdf"}, pdf, "application/pdf", true},
		{"deny wildcard", nil, []string{"image/*"}, png, "image/png", true},
		{"allow exact does not admit children", []string{"text/plain"}, nil, []byte("<html><body>x</body></html>"), "text/html; charset=utf-8", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ct := sniff(tt.content)
			if ct.name != tt.wantType {
				t.Errorf("sniffed %q, want %q", ct.name, tt.wantType)
			}
			p := typePolicy{allow: tt.allow, deny: tt.deny}
			err := p.check(ct)
			if refused := err != nil; refused != tt.wantRefuse {
				t.Fatalf("check(%s) = %v, want refused=%v", ct.name, err, tt.wantRefuse)
			}
			if err != nil && filehub.ErrorCode(err) != filehub.EUNSUPPORTED {
				t.Errorf("code %q, want %q", filehub.ErrorCode(err), filehub.EUNSUPPORTED)
			}
		})
	}
}

func TestValidPattern(t *testing.T) {
	for s, want := range map[string]bool{
		"image/*": true, "*/*": true, "*": true, "application/pdf": true,
		"": false, "image": false, "*/png": false, "a/b;c": false, "a/b, c/d": false, "/png": false,
	} {
		if got := validPattern(s); got != want {
			t.Errorf("validPattern(%q) = %v, want %v", s, got, want)
		}
	}
}

package files_test

import (
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/filehub/filehub/files"
)

func TestSanitizeName(t *testing.T) {
	long := strings.Repeat("a", 300) + ".pdf"
	tests := []struct {
		name, in, want string
	}{
		{"plain", "report.pdf", "report.pdf"},
		{"unicode kept", "Übersicht 数据.xlsx", "Übersicht 数据.xlsx"},
		{"unix traversal", "../../etc/passwd", "passwd"},
		{"windows traversal", `..\..\windows\system32\cmd.exe`, "cmd.exe"},
		{"dotdot alone", "..", "file"},
		{"dot alone", ".", "file"},
		{"empty", "", "file"},
		{"only slashes", "///", "file"},
		{"trailing slash", "dir/", "file"},
		{"nul byte", "a\x00b.txt", "a_b.txt"},
		{"control chars", "a\r\nb\tc.txt", "a__b_c.txt"},
		{"bidi override", "invoice\u202Efdp.exe", "invoice_fdp.exe"},
		{"bidi isolate", "x\u2066y\u2069.txt", "x_y_.txt"},
		{"zero width", "a\u200bb", "a_b"},
		{"invalid utf8", "a\xffb", "a_b"},
		{"windows reserved", "CON", "_CON"},
		{"windows reserved ext", "nul.txt", "_nul.txt"},
		{"windows reserved lower", "com1.log", "_com1.log"},
		{"not reserved", "console.txt", "console.txt"},
		{"windows forbidden chars", `a<b>c:d"e|f?g*h`, "a_b_c_d_e_f_g_h"},
		{"trailing dots and spaces", "name. . ", "name"},
		{"leading dots", "...hidden", "hidden"},
		{"long keeps extension", long, strings.Repeat("a", 251) + ".pdf"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := files.SanitizeName(tt.in); got != tt.want {
				t.Errorf("SanitizeName(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestSanitizeNameTruncatesOnRuneBoundary(t *testing.T) {
	in := strings.Repeat("é", 200) // 400 bytes
	got := files.SanitizeName(in)
	if len(got) > files.MaxNameBytes || !utf8.ValidString(got) {
		t.Fatalf("got %d bytes, valid UTF-8 %v", len(got), utf8.ValidString(got))
	}
}

// FuzzSanitizeName checks the sanitizer's guarantees on arbitrary input.
func FuzzSanitizeName(f *testing.F) {
	for _, s := range []string{"a.txt", "../x", `..\..\x`, "CON", "a\x00b", "\u202e", strings.Repeat("é", 200), " . ", "COM¹.txt"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out := files.SanitizeName(in)
		checkSafeName(t, out)
		if again := files.SanitizeName(out); again != out {
			t.Fatalf("not idempotent: %q -> %q -> %q", in, out, again)
		}
	})
}

func checkSafeName(t *testing.T, s string) {
	t.Helper()
	if s == "" || s == "." || s == ".." {
		t.Fatalf("unsafe name %q", s)
	}
	if len(s) > files.MaxNameBytes {
		t.Fatalf("name of %d bytes", len(s))
	}
	if !utf8.ValidString(s) {
		t.Fatalf("invalid UTF-8 %q", s)
	}
	if strings.ContainsAny(s, "/\\<>:\"|?*") {
		t.Fatalf("forbidden character in %q", s)
	}
	if s[0] == ' ' || s[0] == '.' || s[len(s)-1] == ' ' || s[len(s)-1] == '.' {
		t.Fatalf("leading/trailing dot or space in %q", s)
	}
	for _, r := range s {
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
			t.Fatalf("invisible or control rune %U in %q", r, s)
		}
	}
}

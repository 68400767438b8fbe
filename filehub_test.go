package filehub_test

import (
	"regexp"
	"strings"
	"testing"

	"github.com/filehub/filehub"
)

// sumPattern is ValidSHA256's contract, which its byte loop must keep.
var sumPattern = regexp.MustCompile(`^[0-9a-f]{64}$`)

func TestValidSHA256(t *testing.T) {
	valid := strings.Repeat("0123456789abcdef", 4)
	for _, tt := range []struct {
		name string
		s    string
		want bool
	}{
		{"valid", valid, true},
		{"empty", "", false},
		{"short", valid[:63], false},
		{"long", valid + "0", false},
		{"uppercase", strings.ToUpper(valid), false},
		{"non-hex", valid[:63] + "g", false},
		{"trailing newline", valid[:63] + "\n", false},
		{"after newline", "\n" + valid[1:], false},
		{"non-ASCII", valid[:62] + "é", false},
		{"NUL", valid[:63] + "\x00", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := filehub.ValidSHA256(tt.s); got != tt.want {
				t.Errorf("ValidSHA256(%q) = %v, want %v", tt.s, got, tt.want)
			}
		})
	}
}

// FuzzValidSHA256 checks the byte loop against the regular expression it
// replaced.
func FuzzValidSHA256(f *testing.F) {
	f.Add(strings.Repeat("0123456789abcdef", 4))
	f.Add(strings.Repeat("0123456789ABCDEF", 4))
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := filehub.ValidSHA256(s), sumPattern.MatchString(s); got != want {
			t.Errorf("ValidSHA256(%q) = %v, regexp says %v", s, got, want)
		}
	})
}

func BenchmarkValidSHA256(b *testing.B) {
	sum := strings.Repeat("0123456789abcdef", 4)
	for b.Loop() {
		if !filehub.ValidSHA256(sum) {
			b.Fatal("invalid")
		}
	}
}

package stores_test

import (
	"testing"

	"github.com/filehub/filehub/internal/stores"
)

func TestRedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"postgres://u:secret@h:5432/db?sslmode=disable": "postgres://u:xxxxx@h:5432/db?sslmode=disable",
		"postgres://u@h/db":                             "postgres://u@h/db",
		"postgres://h/db":                               "postgres://h/db",
		"postgres://u:p@ss@h/db":                        "postgres://u:xxxxx@h/db",
		"host=h password=secret":                        "host=h password=secret",
	} {
		if got := stores.RedactURL(in); got != want {
			t.Errorf("RedactURL(%q) = %q, want %q", in, got, want)
		}
	}
}

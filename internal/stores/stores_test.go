package stores_test

import (
	"testing"

	"github.com/filehub/filehub/internal/stores"
)

func TestRedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"postgres://u:secret@h:5432/db?sslmode=disable":                      "postgres://u:xxxxx@h:5432/db?sslmode=disable",
		"postgres://u@h/db":                                                  "postgres://u@h/db",
		"postgres://h/db":                                                    "postgres://h/db",
		"postgres://u:p@ss@h/db":                                             "postgres://u:xxxxx@h/db",
		"host=h password=secret":                                             "host=h password=xxxxx",
		"host=h password='se cret' user=u":                                   "host=h password=xxxxx user=u",
		"postgres://u@h/db?password=secret&sslmode=require":                  "postgres://u@h/db?password=xxxxx&sslmode=require",
		"postgres://u:pw@h/db?sslmode=verify-full&sslpassword=k3y#frag":      "postgres://u:xxxxx@h/db?sslmode=verify-full&sslpassword=xxxxx#frag",
		"postgresql://h/db?PassWord=secret":                                  "postgresql://h/db?PassWord=xxxxx",
		"s3://bucket?region=x&secret_key=abc&endpoint=http://127.0.0.1:9000": "s3://bucket?region=x&secret_key=xxxxx&endpoint=http://127.0.0.1:9000",
		"s3://bucket/prefix@2026?X-Amz-Signature=abc":                        "s3://bucket/prefix@2026?X-Amz-Signature=xxxxx",
		"s3://bucket?endpoint=http://u:p@127.0.0.1:9000":                     "s3://bucket?endpoint=http://u:xxxxx@127.0.0.1:9000",
		"http://u:p@h:1/x":                                                   "http://u:xxxxx@h:1/x",
	} {
		if got := stores.RedactURL(in); got != want {
			t.Errorf("RedactURL(%q) = %q, want %q", in, got, want)
		}
	}
}

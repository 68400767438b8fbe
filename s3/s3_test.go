package s3_test

import (
	"context"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/filehub/filehub"
	"github.com/filehub/filehub/s3"
	"github.com/filehub/filehub/storetest"
)

func TestConformance(t *testing.T) {
	for _, tc := range []struct{ name, extra string }{
		{"NoPrefix", ""},
		{"Prefix", "&prefix=some/prefix"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			storetest.RunBlobStore(t, func(t *testing.T) filehub.BlobStore {
				f := newFakeS3(t)
				s := mustOpen(t, f, tc.extra, testConfig())
				// Registered before the suite's own cleanups, so it runs
				// after them: every staged blob has been closed by then.
				t.Cleanup(func() { assertTempEmpty(t, s) })
				return s
			})
		})
	}
}

// assertTempEmpty checks that no temp object or unfinished multipart upload
// is left.
func assertTempEmpty(t *testing.T, s *s3.Store) {
	t.Helper()
	err := s.WalkTemp(context.Background(), func(name string, _ time.Time, size int64) error {
		t.Errorf("temp %s (%d bytes) left behind", name, size)
		return nil
	})
	if err != nil {
		t.Errorf("WalkTemp: %v", err)
	}
}

func TestOpenInvalidURL(t *testing.T) {
	f := newFakeS3(t)
	ep := "endpoint=" + f.srv.URL
	for _, tc := range []struct{ url, want string }{
		{"", "scheme"},
		{"http://bucket", "scheme"},
		{"s3://", "no bucket"},
		{"s3:bucket", "no bucket"},
		{"s3://UPPER?" + ep, "invalid bucket name"},
		{"s3://b?" + ep, "invalid bucket name"},
		{"s3://key:secret@bucket?" + ep, "credentials"},
		{"s3://bucket/path?" + ep, "use prefix="},
		{"s3://bucket?endpoint=ftp://x", "endpoint"},
		{"s3://bucket?endpoint=localhost:9000", "endpoint"},
		{"s3://bucket?" + ep + "&path_style=maybe", "path_style"},
		{"s3://bucket?" + ep + "&pathstyle=true", "unknown parameter \"pathstyle\""},
		{"s3://bucket?" + ep + "&region=a&region=b", "region given 2 times"},
		{"s3://bucket?" + ep + "&prefix=a/../b", "invalid prefix"},
		{"s3://bucket?%zz", "query"},
	} {
		_, err := s3.Open(t.Context(), tc.url, testConfig())
		if filehub.ErrorCode(err) != filehub.EINVALID || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Open(%q) = %v, want EINVALID mentioning %q", tc.url, err, tc.want)
		}
	}
}

func TestOpenInvalidConfig(t *testing.T) {
	f := newFakeS3(t)
	for _, cfg := range []s3.Config{
		{AccessKeyID: "a", SecretAccessKey: "b", PartSize: s3.MinPartSize - 1},
		{AccessKeyID: "a"},
		{AccessKeyID: "a", SecretAccessKey: "b", MaxAttempts: -1},
	} {
		if _, err := s3.Open(t.Context(), f.url(""), cfg); filehub.ErrorCode(err) != filehub.EINVALID {
			t.Errorf("Open with %+v = %v, want EINVALID", cfg, err)
		}
	}
}

func TestOpenMissingBucket(t *testing.T) {
	f := newFakeS3(t)
	u := strings.Replace(f.url(""), testBucket, "no-such-bucket", 1)
	_, err := s3.Open(t.Context(), u, testConfig())
	if filehub.ErrorCode(err) != filehub.EUNAVAILABLE || !strings.Contains(err.Error(), "no-such-bucket") {
		t.Fatalf("Open of a missing bucket = %v, want EUNAVAILABLE naming it", err)
	}
}

func TestOpenUnreachable(t *testing.T) {
	f := newFakeS3(t)
	u := f.url("")
	f.srv.Close()
	cfg := testConfig()
	cfg.MaxAttempts = 2
	_, err := s3.Open(t.Context(), u, cfg)
	if filehub.ErrorCode(err) != filehub.EUNAVAILABLE {
		t.Fatalf("Open of an unreachable endpoint = %v, want EUNAVAILABLE", err)
	}
}

// TestEnvCredentials checks that without static credentials those of the
// standard AWS environment variables sign the requests.
func TestEnvCredentials(t *testing.T) {
	f := newFakeS3(t)
	t.Setenv("AWS_ACCESS_KEY_ID", "FROMENV")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "secret")
	t.Setenv("AWS_CONFIG_FILE", "/nonexistent")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
	var auth atomic.Value
	f.setIntercept(func(w http.ResponseWriter, r *http.Request, _ http.Handler) bool {
		auth.Store(r.Header.Get("Authorization"))
		return false
	})
	cfg := testConfig()
	cfg.AccessKeyID, cfg.SecretAccessKey = "", ""
	mustOpen(t, f, "", cfg)
	if a, _ := auth.Load().(string); !strings.Contains(a, "Credential=FROMENV/") {
		t.Fatalf("Authorization = %q, want the access key of AWS_ACCESS_KEY_ID", a)
	}
}

package s3_test

import (
	"bytes"
	"net/http"
	"testing"

	"github.com/filehub/filehub"
	"github.com/filehub/filehub/s3"
)

// openFaulty opens a store on f whose requests go through a faultTransport.
func openFaulty(t *testing.T, f *fakeS3, cfg s3.Config) (*s3.Store, *faultTransport) {
	t.Helper()
	ft := newFaultTransport(t)
	cfg.HTTPClient = &http.Client{Transport: ft}
	return mustOpen(t, f, "", cfg), ft
}

// TestRetries injects transient failures into the first attempts of each
// request and checks that the operations succeed after retries.
func TestRetries(t *testing.T) {
	for _, tc := range []struct {
		name   string
		status int
		code   string
	}{
		{"SlowDown", http.StatusServiceUnavailable, "SlowDown"},
		{"InternalError", http.StatusInternalServerError, "InternalError"},
		{"TooManyRequests", http.StatusTooManyRequests, "TooManyRequests"},
		{"BadGateway", http.StatusBadGateway, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeS3(t)
			cfg := testConfig()
			cfg.PartSize = s3.MinPartSize
			s, ft := openFaulty(t, f, cfg)
			// Every request fails twice, then passes: Stage (parts,
			// complete), Commit (head, copy), Open, Stat, Walk, Delete.
			ft.setFail(func(r *http.Request, attempt int) (int, string) {
				if attempt <= 2 {
					return tc.status, tc.code
				}
				return 0, ""
			})
			data := blobBytes(40, 11<<20)
			sum := stageCommit(t, s, data)
			if got := readAll(t, s, sum); !bytes.Equal(got, data) {
				t.Fatal("content differs")
			}
			if n := ft.count("PUT", "partNumber="); n != 3*3 {
				t.Errorf("%d UploadPart attempts, want 9 (3 parts, 3 attempts each)", n)
			}
			var walked int
			if err := s.Walk(t.Context(), func(filehub.BlobInfo) error { walked++; return nil }); err != nil || walked != 1 {
				t.Fatalf("Walk = %v after %d objects", err, walked)
			}
			if err := s.Delete(t.Context(), sum); err != nil {
				t.Fatalf("Delete: %v", err)
			}
			if err := s.Ping(t.Context()); err != nil {
				t.Fatalf("Ping: %v", err)
			}
		})
	}
}

// TestNoRetryOn4xx checks that a 403 is tried once and is not reported as
// unavailability.
func TestNoRetryOn4xx(t *testing.T) {
	f := newFakeS3(t)
	s, ft := openFaulty(t, f, testConfig())
	ft.setFail(func(r *http.Request, _ int) (int, string) { return http.StatusForbidden, "AccessDenied" })
	_, err := s.Stat(t.Context(), sumOf([]byte("x")))
	if err == nil || filehub.ErrorCode(err) == filehub.EUNAVAILABLE || filehub.ErrorCode(err) == filehub.ENOTFOUND {
		t.Errorf("Stat with 403 = %v, want an internal error", err)
	}
	if n := ft.count("HEAD", ""); n != 1 {
		t.Errorf("%d HEAD attempts, want 1", n)
	}
	if err := s.Ping(t.Context()); filehub.ErrorCode(err) != filehub.EUNAVAILABLE {
		t.Errorf("Ping with 403 = %v, want EUNAVAILABLE", err)
	}
}

// TestUnavailableAfterRetries checks that persistent 5xx answers end as
// EUNAVAILABLE after Config.MaxAttempts attempts.
func TestUnavailableAfterRetries(t *testing.T) {
	f := newFakeS3(t)
	cfg := testConfig()
	cfg.MaxAttempts = 3
	s, ft := openFaulty(t, f, cfg)
	ft.setFail(func(r *http.Request, _ int) (int, string) { return http.StatusServiceUnavailable, "SlowDown" })
	if _, err := s.Stat(t.Context(), sumOf([]byte("x"))); filehub.ErrorCode(err) != filehub.EUNAVAILABLE {
		t.Errorf("Stat = %v, want EUNAVAILABLE", err)
	}
	if n := ft.count("HEAD", ""); n != 3 {
		t.Errorf("%d HEAD attempts, want 3", n)
	}
	b, err := s.Stage(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close(t.Context())
	b.Write([]byte("data"))
	if err := b.Commit(t.Context(), sumOf([]byte("data"))); filehub.ErrorCode(err) != filehub.EUNAVAILABLE {
		t.Errorf("Commit = %v, want EUNAVAILABLE", err)
	}
}

func TestStorageFull(t *testing.T) {
	for _, tc := range []struct {
		status int
		code   string
	}{
		{http.StatusBadRequest, "EntityTooLarge"},
		{http.StatusForbidden, "QuotaExceeded"},
		{http.StatusInsufficientStorage, "XMinioStorageFull"},
	} {
		f := newFakeS3(t)
		s, ft := openFaulty(t, f, testConfig())
		ft.setFail(func(r *http.Request, _ int) (int, string) {
			if r.Method == http.MethodPut {
				return tc.status, tc.code
			}
			return 0, ""
		})
		b, err := s.Stage(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		b.Write([]byte("data"))
		if err := b.Commit(t.Context(), sumOf([]byte("data"))); filehub.ErrorCode(err) != filehub.ESTORAGE {
			t.Errorf("%d %s: Commit = %v, want ESTORAGE", tc.status, tc.code, err)
		}
		ft.setFail(nil)
		b.Close(t.Context())
	}
}

func TestUnreachable(t *testing.T) {
	f := newFakeS3(t)
	cfg := testConfig()
	cfg.MaxAttempts = 2
	s := mustOpen(t, f, "", cfg)
	f.srv.Close()
	if err := s.Ping(t.Context()); filehub.ErrorCode(err) != filehub.EUNAVAILABLE {
		t.Errorf("Ping = %v, want EUNAVAILABLE", err)
	}
	if _, err := s.Stat(t.Context(), sumOf(nil)); filehub.ErrorCode(err) != filehub.EUNAVAILABLE {
		t.Errorf("Stat = %v, want EUNAVAILABLE", err)
	}
}

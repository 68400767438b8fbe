package s3_test

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/filehub/filehub"
	"github.com/filehub/filehub/internal/versitygw"
	"github.com/filehub/filehub/s3"
)

// The tests in this file check how many requests a commit takes, on
// gofakes3 and on the real server (versitygw): a body that stays in the
// first part buffer and is committed without Sync is one conditional
// PutObject straight to its key; everything else stages a temp object.

// recorder is an http.RoundTripper that records every request a store
// sends, as "METHOD path?query", with the headers a direct commit sets.
type recorder struct {
	base *http.Transport

	mu   sync.Mutex
	reqs []recorded
}

type recorded struct {
	line        string // "METHOD path?query"
	ifNoneMatch string
	checksum    string // x-amz-checksum-sha256
}

func newRecorder(t testing.TB) *recorder {
	r := &recorder{base: http.DefaultTransport.(*http.Transport).Clone()}
	t.Cleanup(r.base.CloseIdleConnections)
	return r
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	r.mu.Lock()
	r.reqs = append(r.reqs, recorded{
		line:        req.Method + " " + req.URL.Path + "?" + req.URL.RawQuery,
		ifNoneMatch: req.Header.Get("If-None-Match"),
		checksum:    req.Header.Get("X-Amz-Checksum-Sha256"),
	})
	r.mu.Unlock()
	return r.base.RoundTrip(req)
}

// take returns the requests recorded since the last call.
func (r *recorder) take() []recorded {
	r.mu.Lock()
	defer r.mu.Unlock()
	reqs := r.reqs
	r.reqs = nil
	return reqs
}

func lines(reqs []recorded) []string {
	var l []string
	for _, r := range reqs {
		l = append(l, r.line)
	}
	return l
}

// newCommitter is the optional method of a staged blob that the ingest
// pipeline (files) asserts.
type newCommitter interface {
	CommitNew(ctx context.Context, sum string) (existed bool, err error)
}

// directServer opens stores with a recorder on one kind of server.
type directServer struct {
	name string
	open func(t *testing.T, cfg s3.Config) *s3.Store
}

func directServers(t *testing.T) []directServer {
	return []directServer{
		{"gofakes3", func(t *testing.T, cfg s3.Config) *s3.Store {
			f := newFakeS3(t)
			base := testConfig()
			base.PartSize, base.HTTPClient = cfg.PartSize, cfg.HTTPClient
			return mustOpen(t, f, "", base)
		}},
		{"versitygw", func(t *testing.T, cfg s3.Config) *s3.Store {
			return mustOpenGW(t, versitygw.Start(t), "", cfg)
		}},
	}
}

// stageWrite stages data; the caller closes the staged blob.
func stageWrite(t *testing.T, s *s3.Store, data []byte) filehub.StagedBlob {
	t.Helper()
	b, err := s.Stage(t.Context())
	if err != nil {
		t.Fatalf("Stage: %v", err)
	}
	t.Cleanup(func() { b.Close(context.Background()) })
	writeOdd(t, b, data)
	return b
}

func TestCommitDirect(t *testing.T) {
	for _, srv := range directServers(t) {
		t.Run(srv.name, func(t *testing.T) {
			rec := newRecorder(t)
			s := srv.open(t, s3.Config{PartSize: s3.MinPartSize, HTTPClient: &http.Client{Transport: rec}})
			ctx := t.Context()

			t.Run("OneRequest", func(t *testing.T) {
				for _, size := range []int{0, 4 << 10, s3.MinPartSize} {
					data := blobBytes(byte(size>>10)+1, size)
					sum := sumOf(data)
					b := stageWrite(t, s, data)
					rec.take()
					if err := b.Commit(ctx, sum); err != nil {
						t.Fatalf("size %d: Commit: %v", size, err)
					}
					if err := b.Close(ctx); err != nil {
						t.Fatalf("size %d: Close: %v", size, err)
					}
					reqs := rec.take()
					if len(reqs) != 1 || !strings.HasPrefix(reqs[0].line, "PUT ") || !strings.Contains(reqs[0].line, "/blobs/"+sum[:2]+"/"+sum+"?") {
						t.Fatalf("size %d: Commit and Close sent %q, want one PutObject of the object", size, lines(reqs))
					}
					if reqs[0].ifNoneMatch != "*" || reqs[0].checksum == "" {
						t.Errorf("size %d: PutObject with If-None-Match %q, x-amz-checksum-sha256 %q; want * and the sum",
							size, reqs[0].ifNoneMatch, reqs[0].checksum)
					}
					if got := readAll(t, s, sum); !bytes.Equal(got, data) {
						t.Fatalf("size %d: read back different content", size)
					}
				}
				assertTempEmpty(t, s)
			})

			t.Run("OneByteOverPart", func(t *testing.T) {
				data := blobBytes(50, s3.MinPartSize+1)
				sum := sumOf(data)
				rec.take()
				b := stageWrite(t, s, data)
				if err := b.Commit(ctx, sum); err != nil {
					t.Fatalf("Commit: %v", err)
				}
				if err := b.Close(ctx); err != nil {
					t.Fatalf("Close: %v", err)
				}
				got := lines(rec.take())
				if n := countRequests(got, "PUT", "partNumber="); n != 2 {
					t.Errorf("%d parts uploaded, want 2: %q", n, got)
				}
				if n := countRequests(got, "PUT", "/blobs/"); n != 1 {
					t.Errorf("%d requests to the object key, want 1 (the copy): %q", n, got)
				}
				if n := countRequests(got, "DELETE", "/tmp/"); n != 1 {
					t.Errorf("Close sent %d deletes of the temp object, want 1: %q", n, got)
				}
				if got := readAll(t, s, sum); !bytes.Equal(got, data) {
					t.Fatal("read back different content")
				}
				assertTempEmpty(t, s)
			})

			t.Run("CommitAfterSync", func(t *testing.T) {
				data := blobBytes(51, 3000)
				sum := sumOf(data)
				b := stageWrite(t, s, data)
				rec.take()
				if err := b.Sync(); err != nil {
					t.Fatalf("Sync: %v", err)
				}
				if got := lines(rec.take()); len(got) != 1 || countRequests(got, "PUT", "/tmp/") != 1 {
					t.Fatalf("Sync sent %q, want one PutObject of the temp object", got)
				}
				if _, err := s.Stat(ctx, sum); filehub.ErrorCode(err) != filehub.ENOTFOUND {
					t.Fatalf("Stat after Sync = %v, want ENOTFOUND: synced is not committed", err)
				}
				if err := b.Commit(ctx, sum); err != nil {
					t.Fatalf("Commit: %v", err)
				}
				if err := b.Close(ctx); err != nil {
					t.Fatalf("Close: %v", err)
				}
				if got := readAll(t, s, sum); !bytes.Equal(got, data) {
					t.Fatal("read back different content")
				}
				assertTempEmpty(t, s)
			})

			t.Run("CommitTwice", func(t *testing.T) {
				data := blobBytes(52, 5000)
				sum := sumOf(data)
				b := stageWrite(t, s, data)
				for i := range 2 {
					if err := b.Commit(ctx, sum); err != nil {
						t.Fatalf("Commit #%d: %v", i+1, err)
					}
				}
				// The object vanishes: a third Commit re-creates it from
				// the buffer kept until Close.
				if err := s.Delete(ctx, sum); err != nil {
					t.Fatal(err)
				}
				rec.take()
				if err := b.Commit(ctx, sum); err != nil {
					t.Fatalf("Commit after Delete: %v", err)
				}
				if got := lines(rec.take()); len(got) != 1 {
					t.Errorf("Commit after Delete sent %q, want one PutObject", got)
				}
				if err := b.Close(ctx); err != nil {
					t.Fatalf("Close: %v", err)
				}
				if got := readAll(t, s, sum); !bytes.Equal(got, data) {
					t.Fatal("read back different content")
				}
				if err := b.Commit(ctx, sum); err == nil {
					t.Error("Commit after Close succeeded")
				}
				assertTempEmpty(t, s)
			})

			t.Run("CloseWithoutCommit", func(t *testing.T) {
				data := blobBytes(53, 7000)
				b := stageWrite(t, s, data)
				rec.take()
				if err := b.Close(ctx); err != nil {
					t.Fatalf("Close: %v", err)
				}
				if got := lines(rec.take()); len(got) != 0 {
					t.Errorf("Close of an unsent body sent %q, want nothing", got)
				}
				if _, err := s.Stat(ctx, sumOf(data)); filehub.ErrorCode(err) != filehub.ENOTFOUND {
					t.Fatalf("Stat = %v, want ENOTFOUND", err)
				}
				assertTempEmpty(t, s)
			})

			t.Run("ExistingKept", func(t *testing.T) {
				data := blobBytes(54, 2000)
				sum := stageCommit(t, s, data)
				// Other bytes under the same sum: only a caller's bug
				// could do this, and it is how to see which object wins.
				b := stageWrite(t, s, blobBytes(55, 2500))
				if err := b.Commit(ctx, sum); err != nil {
					t.Fatalf("Commit over an existing object: %v", err)
				}
				if err := b.Close(ctx); err != nil {
					t.Fatalf("Close: %v", err)
				}
				if got := readAll(t, s, sum); !bytes.Equal(got, data) {
					t.Fatal("the existing object was replaced")
				}
				assertTempEmpty(t, s)
			})

			t.Run("CommitNew", func(t *testing.T) {
				for _, size := range []int{3000, s3.MinPartSize + 1} {
					data := blobBytes(58, size)
					sum := sumOf(data)
					for i, want := range []bool{false, true} {
						b := stageWrite(t, s, data)
						nc, ok := b.(newCommitter)
						if !ok {
							t.Fatal("the staged blob has no CommitNew")
						}
						existed, err := nc.CommitNew(ctx, sum)
						if err != nil || existed != want {
							t.Fatalf("size %d, commit %d: CommitNew = %v, %v; want %v", size, i+1, existed, err, want)
						}
						if err := b.Close(ctx); err != nil {
							t.Fatalf("Close: %v", err)
						}
					}
					if got := readAll(t, s, sum); !bytes.Equal(got, data) {
						t.Fatalf("size %d: read back different content", size)
					}
				}
				assertTempEmpty(t, s)
			})

			t.Run("ConcurrentIdentical", func(t *testing.T) {
				data := blobBytes(56, 9000)
				sum := sumOf(data)
				var wg sync.WaitGroup
				errs := make([]error, 20)
				for i := range errs {
					wg.Go(func() {
						b, err := s.Stage(ctx)
						if err != nil {
							errs[i] = err
							return
						}
						defer b.Close(ctx)
						if _, err := b.Write(data); err != nil {
							errs[i] = err
							return
						}
						errs[i] = b.Commit(ctx, sum)
					})
				}
				wg.Wait()
				for i, err := range errs {
					if err != nil {
						t.Errorf("writer %d: %v", i, err)
					}
				}
				if got := readAll(t, s, sum); !bytes.Equal(got, data) {
					t.Fatal("read back different content")
				}
				assertTempEmpty(t, s)
			})
		})
	}
}

// TestCommitDirectWrongSumVersityGW: the real server checks the body
// against the checksum the direct commit sends, so a sum that is not the
// content's (a caller's bug) is refused and stores nothing.
func TestCommitDirectWrongSumVersityGW(t *testing.T) {
	s := mustOpenGW(t, versitygw.Start(t), "", s3.Config{})
	ctx := t.Context()
	data := blobBytes(57, 4000)
	wrong := sumOf([]byte("something else"))
	b := stageWrite(t, s, data)
	if err := b.Commit(ctx, wrong); err == nil {
		t.Fatal("Commit under a sum that is not the content's succeeded")
	}
	if err := b.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, err := s.Stat(ctx, wrong); filehub.ErrorCode(err) != filehub.ENOTFOUND {
		t.Fatalf("Stat = %v, want ENOTFOUND", err)
	}
	var keys []string
	if err := s.Walk(ctx, func(info filehub.BlobInfo) error { keys = append(keys, info.SHA256); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(keys) != 0 {
		t.Fatalf("objects %q left behind", keys)
	}
	assertTempEmpty(t, s)
}

// TestCommitDirectConflict: a 409 ConditionalRequestConflict (AWS S3's
// answer while another conditional write of the key is in progress) is
// tried again, and a 412 is an existing object, kept.
func TestCommitDirectConflict(t *testing.T) {
	f := newFakeS3(t)
	s, ft := openFaulty(t, f, testConfig())
	data := blobBytes(59, 1000)
	sum := sumOf(data)
	ft.setFail(func(r *http.Request, attempt int) (int, string) {
		if r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/blobs/") && attempt <= 2 {
			return http.StatusConflict, "ConditionalRequestConflict"
		}
		return 0, ""
	})
	b := stageWrite(t, s, data)
	if err := b.Commit(t.Context(), sum); err != nil {
		t.Fatalf("Commit: %v", err)
	}
	if n := ft.count(http.MethodPut, ""); n != 3 {
		t.Errorf("%d PutObject attempts, want 3 (two conflicts, then the write)", n)
	}
	if got := readAll(t, s, sum); !bytes.Equal(got, data) {
		t.Fatal("read back different content")
	}

	// Always in conflict: Commit fails after a few attempts, saying so.
	ft.setFail(func(r *http.Request, _ int) (int, string) {
		if r.Method == http.MethodPut {
			return http.StatusConflict, "ConditionalRequestConflict"
		}
		return 0, ""
	})
	other := stageWrite(t, s, blobBytes(60, 1000))
	if err := other.Commit(t.Context(), sumOf(blobBytes(60, 1000))); err == nil || !strings.Contains(err.Error(), "ConditionalRequestConflict") {
		t.Fatalf("Commit in a lasting conflict = %v, want the conflict", err)
	}
}

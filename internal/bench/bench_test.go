package bench_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/filehub/filehub"
	"github.com/filehub/filehub/files"
	"github.com/filehub/filehub/httpapi"
	"github.com/filehub/filehub/internal/loadgen"
	"github.com/filehub/filehub/internal/refserver"
	"github.com/filehub/filehub/localfs"
	"github.com/filehub/filehub/sqlite"
	"github.com/prometheus/client_golang/prometheus"
)

// target is a server under test: its upload URL and bearer key.
type target struct {
	url, key, dir string
}

func newFilehub(b *testing.B) target {
	b.Helper()
	dir := b.TempDir()
	ctx := context.Background()
	meta, err := sqlite.Open(ctx, filepath.Join(dir, "filehub.db"), sqlite.Config{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { meta.Close() })
	blobs, err := localfs.Open(dir, localfs.Config{})
	if err != nil {
		b.Fatal(err)
	}
	quiet := slog.New(slog.DiscardHandler)
	svc, err := files.New(meta, blobs, files.Config{MaxUploadSize: 2 << 30, MinFreeSpace: -1, Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	secret := filehub.NewAPIKeySecret()
	if err := meta.CreateAPIKey(ctx, &filehub.APIKey{
		ID: filehub.NewID("k_"), Name: "bench", Scopes: []filehub.Scope{filehub.ScopeAdmin},
		CreatedAt: time.Now().UTC(), Hash: filehub.HashAPIKey(secret),
	}); err != nil {
		b.Fatal(err)
	}
	h := httpapi.New(svc, meta, httpapi.Config{Logger: quiet, Registerer: prometheus.NewRegistry(), MaxConcurrentUploads: 1024})
	srv := httptest.NewServer(h)
	b.Cleanup(srv.Close)
	return target{url: srv.URL + "/v1/files", key: secret, dir: dir}
}

func newReference(b *testing.B) target {
	b.Helper()
	dir := b.TempDir()
	srv := httptest.NewServer(&refserver.Handler{Dir: dir})
	b.Cleanup(srv.Close)
	return target{url: srv.URL, dir: dir}
}

var seed atomic.Uint64

// upload posts size bytes of fresh content (or the content of fixedSeed
// when it is not 0) and fails the benchmark on any error.
func upload(b *testing.B, client *http.Client, t target, size int64, fixedSeed uint64) {
	s := fixedSeed
	if s == 0 {
		s = seed.Add(1) + 1000
	}
	req, err := http.NewRequest(http.MethodPost, t.url+"?name=b"+strconv.FormatUint(s, 10), io.LimitReader(loadgen.NewContent(s), size))
	if err != nil {
		b.Fatal(err)
	}
	req.ContentLength = size
	if t.key != "" {
		req.Header.Set("Authorization", "Bearer "+t.key)
	}
	resp, err := client.Do(req)
	if err != nil {
		b.Error(err)
		return
	}
	msg, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		b.Errorf("status %d: %s", resp.StatusCode, msg)
	}
}

func targets() []struct {
	name string
	new  func(*testing.B) target
} {
	return []struct {
		name string
		new  func(*testing.B) target
	}{{"reference", newReference}, {"filehub", newFilehub}}
}

// BenchmarkUploadLarge measures single-stream throughput with 64 MiB uploads.
func BenchmarkUploadLarge(b *testing.B) {
	const size = 64 << 20
	for _, tg := range targets() {
		b.Run(tg.name, func(b *testing.B) {
			t := tg.new(b)
			client := &http.Client{}
			b.SetBytes(size)
			b.ResetTimer()
			for range b.N {
				upload(b, client, t, size, 0)
			}
		})
	}
}

// BenchmarkUploadSmall measures 4 KiB uploads at concurrency 50.
func BenchmarkUploadSmall(b *testing.B) {
	const size = 4 << 10
	for _, tg := range targets() {
		b.Run(tg.name, func(b *testing.B) {
			t := tg.new(b)
			tr := &http.Transport{MaxIdleConnsPerHost: 64}
			defer tr.CloseIdleConnections()
			client := &http.Client{Transport: tr}
			b.SetParallelism(max(1, 50/runtime.GOMAXPROCS(0)))
			b.SetBytes(size)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					upload(b, client, t, size, 0)
				}
			})
		})
	}
}

// BenchmarkUploadDuplicate uploads the same 1 MiB content again and again
// and reports how many bytes reached the blob directory per upload: the
// dedup goal is zero.
func BenchmarkUploadDuplicate(b *testing.B) {
	const size = 1 << 20
	t := newFilehub(b)
	client := &http.Client{}
	upload(b, client, t, size, 42) // the first copy is stored
	before := dirBytes(b, filepath.Join(t.dir, "blobs"))
	b.SetBytes(size)
	b.ResetTimer()
	for range b.N {
		upload(b, client, t, size, 42)
	}
	b.StopTimer()
	grown := dirBytes(b, filepath.Join(t.dir, "blobs")) - before
	b.ReportMetric(float64(grown)/float64(b.N), "new-blob-B/op")
	if grown != 0 {
		b.Errorf("duplicate uploads wrote %d new blob bytes", grown)
	}
}

func dirBytes(b *testing.B, dir string) int64 {
	var n int64
	err := filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if err == nil {
			n += info.Size()
		}
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	return n
}

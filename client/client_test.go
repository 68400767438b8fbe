package client_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/filehub/filehub"
	"github.com/filehub/filehub/client"
	"github.com/filehub/filehub/files"
	"github.com/filehub/filehub/httpapi"
	"github.com/filehub/filehub/internal/apitest"
	"github.com/filehub/filehub/localfs"
	"github.com/filehub/filehub/sqlite"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// server starts the real API on 127.0.0.1 with real stores in a temp dir
// and returns its URL and a key secret per scope name.
func server(t *testing.T, fc files.Config) (string, map[filehub.Scope]string) {
	t.Helper()
	ctx := t.Context()
	dir := t.TempDir()
	meta, err := sqlite.Open(ctx, filepath.Join(dir, "filehub.db"), sqlite.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { meta.Close() })
	blobs, err := localfs.Open(dir, localfs.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if fc.MinFreeSpace == 0 {
		fc.MinFreeSpace = -1
	}
	svc, err := files.New(meta, blobs, fc)
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	h := httpapi.New(svc, meta, httpapi.Config{
		Logger:     slog.New(slog.NewTextHandler(io.Discard, nil)),
		Registerer: reg, Gatherer: reg,
	})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	url := apitest.Proxy(t, srv.URL) // checked against the OpenAPI document
	keys := map[filehub.Scope]string{}
	for _, sc := range []filehub.Scope{filehub.ScopeAdmin, filehub.ScopeRead, filehub.ScopeMetrics} {
		secret := filehub.NewAPIKeySecret()
		if err := meta.CreateAPIKey(ctx, &filehub.APIKey{ID: filehub.NewID("k_"), Name: string(sc), Scopes: []filehub.Scope{sc},
			CreatedAt: time.Now(), Hash: filehub.HashAPIKey(secret)}); err != nil {
			t.Fatal(err)
		}
		keys[sc] = secret
	}
	return url, keys
}

// newClient returns a client whose idle connections are closed with the test.
func newClient(t *testing.T, url, key string) *client.Client {
	t.Helper()
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return client.New(url, key, client.WithHTTPClient(&http.Client{Transport: tr}), client.WithUserAgent("client-test"))
}

func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	if got := filehub.ErrorCode(err); got != code {
		t.Fatalf("error %v has code %q, want %q", err, got, code)
	}
}

func TestRoundTrip(t *testing.T) {
	url, keys := server(t, files.Config{})
	c := newClient(t, url, keys[filehub.ScopeAdmin])
	ctx := t.Context()
	data := []byte("round trip through the real server\n")

	for _, tc := range []struct {
		name string
		r    io.Reader
		size int64
	}{
		{"known size", bytes.NewReader(data), int64(len(data))},
		{"chunked", iotest.OneByteReader(bytes.NewReader(data)), -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			up, err := c.Upload(ctx, "trip.txt", tc.r, tc.size)
			if err != nil {
				t.Fatal(err)
			}
			h := sha256.Sum256(data)
			if up.Size != int64(len(data)) || up.SHA256 != hex.EncodeToString(h[:]) || up.Name != "trip.txt" {
				t.Errorf("upload = %+v", up.File)
			}
		})
	}
	empty, err := c.Upload(ctx, "empty", strings.NewReader(""), 0)
	if err != nil || empty.Size != 0 {
		t.Fatalf("empty upload = %+v, %v", empty, err)
	}

	fs, next, err := c.List(ctx, 2, "")
	if err != nil || len(fs) != 2 || next == "" {
		t.Fatalf("List page 1 = %d files, next %q, %v", len(fs), next, err)
	}
	first := fs[0]
	if !first.CreatedAt.Before(time.Now().Add(time.Minute)) || first.Name != "trip.txt" {
		t.Errorf("first file = %+v", first)
	}
	if !strings.Contains(fs[1].Name, "trip") {
		t.Errorf("second file = %+v", fs[1])
	}
	fs, next, err = c.List(ctx, 2, next)
	if err != nil || len(fs) != 1 || next != "" {
		t.Fatalf("List page 2 = %d files, next %q, %v", len(fs), next, err)
	}
	if up2, _ := c.Upload(ctx, "again.txt", bytes.NewReader(data), int64(len(data))); up2 == nil || !up2.Deduplicated {
		t.Errorf("second identical upload not deduplicated: %+v", up2)
	}

	f, err := c.Stat(ctx, first.ID)
	if err != nil || f.ID != first.ID || f.SHA256 != first.SHA256 {
		t.Fatalf("Stat = %+v, %v", f, err)
	}

	d, err := c.Open(ctx, first.ID)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(d.Body)
	d.Close()
	if err != nil || !bytes.Equal(got, data) || d.Name != "trip.txt" || d.SHA256 != first.SHA256 ||
		d.Size != int64(len(data)) || !strings.HasPrefix(d.ContentType, "text/plain") {
		t.Errorf("Open = %+v %q, %v", d, got, err)
	}
	var buf bytes.Buffer
	if d, err := c.DownloadTo(ctx, first.ID, &buf); err != nil || !bytes.Equal(buf.Bytes(), data) || d.Name != "trip.txt" {
		t.Errorf("DownloadTo = %+v %q, %v", d, buf.Bytes(), err)
	}

	del, err := c.Delete(ctx, first.ID)
	if err != nil || !del.Deleted() || del.PurgeAfter == nil {
		t.Fatalf("Delete = %+v, %v", del, err)
	}
	_, err = c.Stat(ctx, first.ID)
	wantCode(t, err, filehub.ENOTFOUND)
	if !errors.Is(err, filehub.ErrNotFound) {
		t.Errorf("errors.Is(%v, ErrNotFound) = false", err)
	}
	_, err = c.Open(ctx, first.ID)
	wantCode(t, err, filehub.ENOTFOUND)
	res, err := c.Restore(ctx, first.ID)
	if err != nil || res.Deleted() {
		t.Fatalf("Restore = %+v, %v", res, err)
	}
	_, err = c.Restore(ctx, first.ID)
	wantCode(t, err, filehub.ENOTFOUND)

	if err := c.Ready(ctx); err != nil {
		t.Errorf("Ready = %v", err)
	}
}

func TestServerErrors(t *testing.T) {
	url, keys := server(t, files.Config{MaxUploadSize: 1000})
	ctx := t.Context()
	admin := newClient(t, url, keys[filehub.ScopeAdmin])

	_, err := newClient(t, url, "fhk_wrong").Stat(ctx, "f_x")
	wantCode(t, err, filehub.EUNAUTHORIZED)
	var re *client.RequestError
	if !errors.As(err, &re) || re.StatusCode != 401 || re.RequestID == "" {
		t.Errorf("cause = %#v, want a RequestError with status and request id", re)
	}
	_, err = newClient(t, url, keys[filehub.ScopeRead]).Delete(ctx, "f_x")
	wantCode(t, err, filehub.EFORBIDDEN)
	err = newClient(t, url, keys[filehub.ScopeRead]).Ready(ctx)
	wantCode(t, err, filehub.EFORBIDDEN)

	_, err = admin.Upload(ctx, "big", bytes.NewReader(make([]byte, 2000)), -1)
	wantCode(t, err, filehub.ETOOLARGE)
	_, err = admin.Upload(ctx, "run.txt", bytes.NewReader([]byte("\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x3e\x00")), -1)
	wantCode(t, err, filehub.EUNSUPPORTED)
	if !strings.Contains(filehub.ErrorMessage(err), "not allowed") {
		t.Errorf("message %q is not the server's detail", filehub.ErrorMessage(err))
	}
	_, _, err = admin.List(ctx, -5, "")
	wantCode(t, err, filehub.EINVALID)
	_, _, err = admin.List(ctx, 0, "not-a-cursor")
	wantCode(t, err, filehub.EINVALID)
}

func TestTransportErrors(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	_, err := newClient(t, url, "k").Stat(t.Context(), "f_x")
	wantCode(t, err, filehub.EUNAVAILABLE)

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err = newClient(t, "http://127.0.0.1:1", "k").Stat(ctx, "f_x")
	if !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled context: %v, want context.Canceled", err)
	}

	for _, bad := range []string{"", "127.0.0.1:8080", "ftp://x", "http://"} {
		_, err := client.New(bad, "k").Stat(t.Context(), "f_x")
		wantCode(t, err, filehub.EINVALID)
	}
}

// TestForeignResponses covers answers that are not filehub's: an
// intermediary's error page and a server that sends the wrong bytes.
func TestForeignResponses(t *testing.T) {
	data := []byte("the real content")
	h := sha256.Sum256(data)
	sum := hex.EncodeToString(h[:])
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v1/files/gateway":
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(http.StatusBadGateway)
			io.WriteString(w, "<html>bad gateway</html>")
		case "/v1/files/corrupt/content":
			w.Header().Set("ETag", `"`+sum+`"`)
			io.WriteString(w, "the fake content") // same length, other bytes
		case "/v1/files/short/content":
			w.Header().Set("ETag", `"`+sum+`"`)
			w.Header().Set("Content-Length", "16")
			io.WriteString(w, "the real")
		case "/v1/files/noetag/content":
			io.WriteString(w, "x")
		}
	}))
	defer srv.Close()
	c := newClient(t, srv.URL, "k")
	ctx := t.Context()

	_, err := c.Stat(ctx, "gateway")
	wantCode(t, err, filehub.EUNAVAILABLE)
	if !strings.Contains(filehub.ErrorMessage(err), "502") {
		t.Errorf("message %q does not name the status", filehub.ErrorMessage(err))
	}
	_, err = c.DownloadTo(ctx, "corrupt", io.Discard)
	wantCode(t, err, filehub.EINTERNAL)
	_, err = c.DownloadTo(ctx, "short", io.Discard)
	if err == nil {
		t.Error("a truncated download was accepted")
	}
	_, err = c.Open(ctx, "noetag")
	wantCode(t, err, filehub.EINTERNAL)
}

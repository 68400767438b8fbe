package main_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/filehub/filehub"
	main "github.com/filehub/filehub/cmd/filehub"
	"github.com/filehub/filehub/internal/chaosproxy"
)

// TestDatabaseOutage runs the server on PostgreSQL through a TCP proxy and,
// while uploads are running, cuts every connection and refuses new ones.
// Requests must then fail with 503 problem+json and /readyz say not ready;
// no upload may be acknowledged unless its record is durable, and none may
// leave a half-written record. When the proxy lets connections through
// again the server must heal by itself.
func TestDatabaseOutage(t *testing.T) {
	if testing.Short() {
		t.Skip("runs uploads against PostgreSQL through a fault proxy")
	}
	db := mustPostgresSchema(t)
	proxy, err := chaosproxy.New(postgresHost(t, db))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { proxy.Close() })
	s := MustRunMain(t, t.TempDir(), map[string]string{"FILEHUB_BOOTSTRAP_KEY": testKey}, func(c *main.ServeConfig) {
		c.DB = withHost(t, db, proxy.Addr())
		// /readyz without auth: with the database down, no key can be
		// checked, so the API listener's /readyz would only say that.
		c.MetricsListen = "127.0.0.1:0"
		c.CleanupInterval = 0
	})
	// Every request of this test is bounded: a request that hangs fails
	// the test instead of the test hanging.
	hc := &http.Client{Timeout: 2 * time.Minute, Transport: &http.Transport{}}
	t.Cleanup(hc.CloseIdleConnections)
	readyURL := "http://" + s.MetricsAddr() + "/readyz"

	var (
		mu       sync.Mutex
		contents = map[string][]byte{} // upload name → content
		acked    = map[string]string{} // file ID → upload name, for every 201
		statuses = map[int]int{}       // status → count, for every upload
		stop     atomic.Bool
		seq      atomic.Int64
		wg       sync.WaitGroup
	)
	// upload sends one new content and records what came of it.
	upload := func() (int, error) {
		n := seq.Add(1)
		name := fmt.Sprintf("up-%04d.bin", n)
		content := bytes.Repeat([]byte(name), 2000) // 22 KB, unique per upload
		mu.Lock()
		contents[name] = content
		mu.Unlock()
		status, body, err := doRequest(hc, http.MethodPost, s.URL+"/v1/files?name="+url.QueryEscape(name), bytes.NewReader(content))
		if err != nil {
			return 0, err
		}
		mu.Lock()
		defer mu.Unlock()
		statuses[status]++
		if status == http.StatusCreated {
			var f filehub.File
			if err := json.Unmarshal(body, &f); err != nil {
				return status, fmt.Errorf("201 body %q: %w", body, err)
			}
			acked[f.ID] = name
		}
		return status, nil
	}
	ackedCount := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(acked)
	}
	for range 4 {
		wg.Go(func() {
			for !stop.Load() {
				status, err := upload()
				if err != nil {
					t.Errorf("upload did not get an answer: %v", err)
					return
				}
				if status != http.StatusCreated && status != http.StatusServiceUnavailable {
					t.Errorf("upload answered %d, want 201 or 503", status)
					return
				}
			}
		})
	}
	t.Cleanup(func() { stop.Store(true); wg.Wait() })

	waitFor(t, "uploads to succeed before the outage", func() bool { return ackedCount() >= 20 || t.Failed() })
	before := ackedCount()

	// The outage: every open connection is cut and new ones are refused,
	// as if the database had gone away.
	proxy.Refuse(true)
	proxy.CutAll()

	waitFor(t, "uploads to fail with 503 during the outage", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return statuses[http.StatusServiceUnavailable] >= 8 || t.Failed()
	})
	// Requests that need the database answer 503 problem+json; so does
	// /readyz.
	status, body, err := doRequest(hc, http.MethodGet, s.URL+"/v1/files", nil)
	if err != nil {
		t.Fatal(err)
	}
	wantUnavailable(t, "GET /v1/files", status, body)
	status, body, err = doRequest(hc, http.MethodGet, readyURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	wantUnavailable(t, "GET /readyz", status, body)
	during := ackedCount()

	// The database returns: without a restart, uploads succeed again and
	// the server is ready.
	proxy.Refuse(false)
	waitFor(t, "uploads to succeed again after the outage", func() bool { return ackedCount() >= during+10 || t.Failed() })
	waitFor(t, "/readyz to say ready again", func() bool {
		status, _, err := doRequest(hc, http.MethodGet, readyURL, nil)
		return (err == nil && status == http.StatusOK) || t.Failed()
	})
	stop.Store(true)
	wg.Wait()
	if t.Failed() {
		return
	}
	t.Logf("uploads: %d acknowledged before the outage, %d by its end, %d in all; statuses %v", before, during, ackedCount(), statuses)

	// Every acknowledged upload is listed and downloads intact, and every
	// listed file does (a record without its content, or with the wrong
	// one, would fail here). A listed file that was not acknowledged is
	// allowed: its commit succeeded but the answer was lost with the
	// connection (an ambiguous commit), and it is complete.
	c := NewClient(t, s.URL, testKey)
	listedFiles := map[string]*filehub.File{}
	cursor := ""
	for {
		page, next, err := c.List(context.Background(), 1000, cursor)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range page {
			listedFiles[f.ID] = f
		}
		if next == "" {
			break
		}
		cursor = next
	}
	for id, name := range acked {
		if _, ok := listedFiles[id]; !ok {
			t.Errorf("upload %s was acknowledged (201, file %s) but is not listed", name, id)
		}
	}
	for id, f := range listedFiles {
		want, ok := contents[f.Name]
		if !ok {
			t.Errorf("listed file %s has a name no upload used: %q", id, f.Name)
			continue
		}
		var buf bytes.Buffer
		if _, err := c.DownloadTo(context.Background(), id, &buf); err != nil {
			t.Errorf("download %s (%s): %v", id, f.Name, err)
			continue
		}
		if !bytes.Equal(buf.Bytes(), want) {
			t.Errorf("file %s (%s): content differs from what was uploaded", id, f.Name)
		}
	}
}

// doRequest sends one request with the test key and returns the status and
// body.
func doRequest(hc *http.Client, method, url string, body io.Reader) (int, []byte, error) {
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+testKey)
	if body != nil {
		req.Header.Set("Content-Type", "application/octet-stream")
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, nil, err
	}
	if resp.StatusCode >= 400 && !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/problem+json") {
		return resp.StatusCode, b, errors.New("error answered without problem+json: Content-Type " + resp.Header.Get("Content-Type"))
	}
	return resp.StatusCode, b, nil
}

// wantUnavailable checks a 503 problem+json with the unavailable code.
func wantUnavailable(t *testing.T, what string, status int, body []byte) {
	t.Helper()
	var p struct {
		Status int    `json:"status"`
		Code   string `json:"code"`
	}
	if err := json.Unmarshal(body, &p); err != nil {
		t.Errorf("%s: body %q is not a problem: %v", what, body, err)
	}
	if status != http.StatusServiceUnavailable || p.Status != status || p.Code != filehub.EUNAVAILABLE {
		t.Errorf("%s during the outage: %d %s, want 503 with code %s", what, status, body, filehub.EUNAVAILABLE)
	}
}

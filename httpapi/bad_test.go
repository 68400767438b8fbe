package httpapi_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/filehub/filehub"
	"github.com/filehub/filehub/auth"
	"github.com/filehub/filehub/files"
	"github.com/filehub/filehub/httpapi"
)

// Executable headers: refused by content whatever the name.
var (
	elfHeader = append([]byte("\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x3e\x00\x01\x00\x00\x00"), bytes.Repeat([]byte{0}, 100)...)
	mzHeader  = append([]byte("MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff"), bytes.Repeat([]byte{0}, 100)...)
)

// peHeader is a minimal PE: an MZ stub whose e_lfanew points at "PE\0\0".
func peHeader() []byte {
	b := make([]byte, 512)
	copy(b, "MZ")
	b[0x3c] = 0x80
	copy(b[0x80:], "PE\x00\x00\x4c\x01")
	return b
}

// TestBadUploads sends every kind of refused upload through the real
// server and checks the status, the problem document and that nothing is
// left behind.
func TestBadUploads(t *testing.T) {
	big := bytes.Repeat([]byte("a"), testMaxUpload+1)
	tooMany, tooManyCT := multipartBody(t, [3]string{"file", "1", "one"}, [3]string{"file", "2", "two"}, [3]string{"file", "3", "three"})
	badName, badNameCT := multipartBody(t, [3]string{"file", "ok.txt", "fine"}, [3]string{"other", "x.txt", "not a file part"})
	laterExe, laterExeCT := multipartBody(t, [3]string{"file", "ok.txt", "stored first"}, [3]string{"file", "setup.txt", string(elfHeader)})
	truncated, truncCT := multipartBody(t, [3]string{"file", "cut.txt", strings.Repeat("x", 1000)})
	truncBytes, _ := io.ReadAll(truncated)
	truncBytes = truncBytes[:len(truncBytes)-30] // loses the closing boundary

	cases := []struct {
		name   string
		cfg    envConfig
		path   string
		body   io.Reader
		length int64 // -1: chunked
		ctype  string
		status int
		code   string
		// rolledBack: earlier parts were stored, then discarded. Their
		// objects stay, unreferenced, for the cleanup service
		// (MetaStore.PurgeFile never deletes blobs).
		rolledBack bool
	}{
		// Too large with a Content-Length: see TestRefusedBeforeReading.
		{"too large chunked", envConfig{}, "/v1/files?name=big", bytes.NewReader(big), -1, "", 413, filehub.ETOOLARGE, false},
		{"too large multipart chunked", envConfig{}, "/v1/files", mustMultipart(t, "big.txt", big), -1, "multipart/form-data; boundary=B", 413, filehub.ETOOLARGE, false},
		{"ELF named .txt", envConfig{}, "/v1/files?name=notes.txt", bytes.NewReader(elfHeader), -1, "", 415, filehub.EUNSUPPORTED, false},
		{"PE named .pdf", envConfig{}, "/v1/files?name=doc.pdf", bytes.NewReader(peHeader()), int64(len(peHeader())), "", 415, filehub.EUNSUPPORTED, false},
		{"bare MZ", envConfig{}, "/v1/files?name=a.jpg", bytes.NewReader(mzHeader), int64(len(mzHeader)), "", 415, filehub.EUNSUPPORTED, false},
		{"denied pattern", envConfig{files: files.Config{DenyTypes: []string{"text/*"}}}, "/v1/files?name=a.txt", strings.NewReader("plain text"), -1, "", 415, filehub.EUNSUPPORTED, false},
		{"not allowed", envConfig{files: files.Config{AllowTypes: []string{"image/png"}}}, "/v1/files?name=a.png", strings.NewReader("plain text"), -1, "", 415, filehub.EUNSUPPORTED, false},
		{"missing name", envConfig{}, "/v1/files", strings.NewReader("data"), 4, "", 400, filehub.EINVALID, false},
		{"multipart without boundary", envConfig{}, "/v1/files", strings.NewReader("data"), 4, "multipart/form-data", 400, filehub.EINVALID, false},
		{"multipart bad part name", envConfig{}, "/v1/files", badName, -1, badNameCT, 400, filehub.EINVALID, true},
		{"multipart too many parts", envConfig{http: httpapi.Config{MaxParts: 2}}, "/v1/files", tooMany, -1, tooManyCT, 400, filehub.EINVALID, true},
		{"multipart later part refused", envConfig{}, "/v1/files", laterExe, -1, laterExeCT, 415, filehub.EUNSUPPORTED, true},
		{"multipart truncated", envConfig{}, "/v1/files", bytes.NewReader(truncBytes), int64(len(truncBytes)), truncCT, 400, filehub.EINVALID, false},
		{"multipart garbage", envConfig{}, "/v1/files", strings.NewReader("not multipart at all"), -1, "multipart/form-data; boundary=zz", 400, filehub.EINVALID, false},
		{"multipart empty", envConfig{}, "/v1/files", strings.NewReader("--zz--\r\n"), -1, "multipart/form-data; boundary=zz", 400, filehub.EINVALID, false},
		{"disk full mid-upload", envConfig{failAfter: 100 << 10}, "/v1/files?name=f", bytes.NewReader(bytes.Repeat([]byte("d"), 300<<10)), 300 << 10, "", 507, filehub.ESTORAGE, false},
		{"disk full on a later part", envConfig{failAfter: 100 << 10}, "/v1/files", mustMultipart(t, "f", bytes.Repeat([]byte("d"), 300<<10)), -1, "multipart/form-data; boundary=B", 507, filehub.ESTORAGE, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, tc.cfg)
			before := e.state()
			req, err := http.NewRequestWithContext(t.Context(), "POST", e.srv.URL+tc.path, tc.body)
			if err != nil {
				t.Fatal(err)
			}
			req.ContentLength = tc.length
			req.Header.Set("Authorization", "Bearer "+e.keys[keyWrite])
			if tc.ctype != "" {
				req.Header.Set("Content-Type", tc.ctype)
			}
			resp, err := e.srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			wantProblem(t, resp, body, tc.status, tc.code)
			if tc.rolledBack {
				e.assertRolledBack(before)
			} else {
				e.assertNothingLeft(before)
			}
		})
	}
}

// assertRolledBack checks that a failed multipart upload left no record
// and no staged file, and that every object it created is unreferenced.
func (e *env) assertRolledBack(before state) {
	e.t.Helper()
	if left := e.tmpFiles(); len(left) > 0 {
		e.t.Errorf("tmp not empty: %v", left)
	}
	after := e.state()
	if after.records != before.records {
		e.t.Errorf("records: before %d, after %d", before.records, after.records)
	}
	if after.objects == before.objects {
		e.t.Errorf("no part was stored before the failure: the test does not test rollback")
	}
	for _, sum := range e.objectSums() {
		b, err := e.meta.FindBlob(e.t.Context(), sum)
		if err != nil {
			e.t.Errorf("FindBlob(%s): %v", sum, err)
			continue
		}
		if b.RefCount != 0 {
			e.t.Errorf("blob %s still has %d references after the rollback", sum, b.RefCount)
		}
	}
}

// mustMultipart is a one-part multipart body with boundary "B".
func mustMultipart(t *testing.T, name string, content []byte) io.Reader {
	t.Helper()
	var b bytes.Buffer
	fmt.Fprintf(&b, "--B\r\nContent-Disposition: form-data; name=\"file\"; filename=%q\r\n\r\n", name)
	b.Write(content)
	b.WriteString("\r\n--B--\r\n")
	return &b
}

// TestRefusedBeforeReading checks that uploads that cannot succeed are
// refused on their headers alone: the body is never sent, so if the server
// tried to read it the test would get no answer.
func TestRefusedBeforeReading(t *testing.T) {
	for _, tc := range []struct {
		name   string
		cfg    envConfig
		length int64
		status int
		code   string
	}{
		{"length over the limit", envConfig{}, testMaxUpload + 1, 413, filehub.ETOOLARGE},
		{"free space below the floor", envConfig{files: files.Config{MinFreeSpace: 1 << 30}, free: 1 << 29}, 10, 507, filehub.ESTORAGE},
		{"upload would cross the floor", envConfig{files: files.Config{MinFreeSpace: 1 << 20}, free: 1<<20 + 100}, 1000, 507, filehub.ESTORAGE},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, tc.cfg)
			before := e.state()
			c := e.dial()
			c.send(e.requestHead("POST", "/v1/files?name=x", keyWrite, "Content-Length: "+strconv.FormatInt(tc.length, 10)))
			resp, body := c.response()
			wantProblem(t, resp, body, tc.status, tc.code)
			if !resp.Close {
				t.Error("connection kept open after refusing an unread body")
			}
			if e.blobs.stagedCount() != 0 {
				t.Error("a staged blob was created for a refused upload")
			}
			e.assertNothingLeft(before)
		})
	}
}

// TestContentLengthLies covers bodies that do not match their
// Content-Length.
func TestContentLengthLies(t *testing.T) {
	t.Run("longer than announced", func(t *testing.T) {
		// The server takes exactly the announced bytes; the rest is the
		// next request on the connection, which is garbage and refused.
		e := newEnv(t, envConfig{})
		c := e.dial()
		c.send(e.requestHead("POST", "/v1/files?name=x.txt", keyWrite, "Content-Length: 5") + "hello, and then some trailing garbage\r\n\r\n")
		resp, body := c.response()
		if resp.StatusCode != 201 {
			t.Fatalf("status %d %s", resp.StatusCode, body)
		}
		var up files.Upload
		mustJSON(t, body, &up)
		if up.Size != 5 || up.SHA256 != sum([]byte("hello")) {
			t.Errorf("stored %d bytes %s, want the 5 announced", up.Size, up.SHA256)
		}
		resp, _ = c.response()
		if resp.StatusCode != 400 {
			t.Errorf("trailing garbage answered %d, want 400", resp.StatusCode)
		}
		if s := e.state(); s.records != 1 {
			t.Errorf("records = %d, want 1", s.records)
		}
	})
	t.Run("shorter than announced", func(t *testing.T) {
		e := newEnv(t, envConfig{})
		before := e.state()
		c := e.dial()
		c.send(e.requestHead("POST", "/v1/files?name=x.txt", keyWrite, "Content-Length: 100000") + strings.Repeat("z", 5000))
		// Half-close: the server sees the end of the body early.
		c.Conn.(*net.TCPConn).CloseWrite()
		resp, body := c.response()
		wantProblem(t, resp, body, 400, filehub.EINVALID)
		e.assertNothingLeft(before)
	})
	t.Run("chunked body broken off", func(t *testing.T) {
		e := newEnv(t, envConfig{})
		before := e.state()
		c := e.dial()
		c.send(e.requestHead("POST", "/v1/files?name=x.txt", keyWrite, "Transfer-Encoding: chunked") + "1000\r\n" + strings.Repeat("z", 100))
		c.Conn.(*net.TCPConn).CloseWrite()
		resp, body := c.response()
		wantProblem(t, resp, body, 400, filehub.EINVALID)
		e.assertNothingLeft(before)
	})
}

// TestClientDisconnect: a client that sends half its body and hangs up
// leaves nothing behind.
func TestClientDisconnect(t *testing.T) {
	for _, multi := range []bool{false, true} {
		t.Run(fmt.Sprintf("multipart=%v", multi), func(t *testing.T) {
			e := newEnv(t, envConfig{})
			before := e.state()
			c := e.dial()
			if multi {
				c.send(e.requestHead("POST", "/v1/files", keyWrite, "Content-Length: 900000", "Content-Type: multipart/form-data; boundary=B") +
					"--B\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a\"\r\n\r\n" + strings.Repeat("q", 300000))
			} else {
				c.send(e.requestHead("POST", "/v1/files?name=half", keyWrite, "Content-Length: 900000") + strings.Repeat("q", 300000))
			}
			// Wait until the server is receiving, so the disconnect
			// happens mid-upload rather than before the handler ran.
			e.waitStaged(1)
			c.Close()
			e.assertNothingLeft(before)
			e.waitCounter("filehub_uploads_total", map[string]string{"result": "aborted"}, 1)
		})
	}
}

// TestStalledBody: a body that stops arriving is cut after the stall
// timeout with 408, and nothing is left behind.
func TestStalledBody(t *testing.T) {
	e := newEnv(t, envConfig{http: httpapi.Config{UploadStallTimeout: 200 * time.Millisecond}})
	before := e.state()
	c := e.dial()
	c.send(e.requestHead("POST", "/v1/files?name=slow", keyWrite, "Content-Length: 100000") + strings.Repeat("s", 70000))
	resp, body := c.response()
	wantProblem(t, resp, body, http.StatusRequestTimeout, filehub.ETIMEOUT)
	e.assertNothingLeft(before)
	// The server closes the connection: nothing more can be read.
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.br.ReadByte(); !errors.Is(err, io.EOF) && !isReset(err) {
		t.Errorf("after a stalled upload the connection is still open (read: %v)", err)
	}
}

// TestSlowHeader: a client that never finishes its headers is disconnected
// after ReadHeaderTimeout.
func TestSlowHeader(t *testing.T) {
	e := newEnv(t, envConfig{http: httpapi.Config{ReadHeaderTimeout: 200 * time.Millisecond}})
	c := e.dial()
	c.send("GET /healthz HTTP/1.1\r\nHost: test\r\n")
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err := io.ReadAll(c.br)
	if err != nil && !isReset(err) {
		t.Errorf("connection not closed by the server: %v", err)
	}
}

func isReset(err error) bool {
	var ne net.Error
	return err != nil && !(errors.As(err, &ne) && ne.Timeout()) && !errors.Is(err, os.ErrDeadlineExceeded)
}

// TestConcurrencyCap: with every upload slot held by a stalled upload, the
// next upload gets 503 with Retry-After; once the slot frees, uploads work.
func TestConcurrencyCap(t *testing.T) {
	e := newEnv(t, envConfig{http: httpapi.Config{MaxConcurrentUploads: 2}})
	var holders []*rawConn
	for range 2 {
		c := e.dial()
		c.send(e.requestHead("POST", "/v1/files?name=hold", keyWrite, "Content-Length: 1000") + "x")
		holders = append(holders, c)
	}
	e.waitGauge("filehub_uploads_in_flight", 2)
	before := e.state()
	resp, body := e.do("POST", "/v1/files?name=x", keyWrite, strings.NewReader("refused"), nil)
	wantProblem(t, resp, body, http.StatusServiceUnavailable, filehub.EUNAVAILABLE)
	if resp.Header.Get("Retry-After") != "1" {
		t.Errorf("Retry-After = %q, want 1", resp.Header.Get("Retry-After"))
	}
	if got := e.counter("filehub_http_uploads_rejected_total", map[string]string{"reason": "busy"}); got != 1 {
		t.Errorf("uploads_rejected_total{busy} = %v, want 1", got)
	}
	e.assertNothingLeft(before)
	// Reads are not uploads: they still work.
	if resp, _ := e.do("GET", "/v1/files", keyRead, nil, nil); resp.StatusCode != 200 {
		t.Errorf("list while uploads are busy = %d", resp.StatusCode)
	}
	holders[0].Close()
	e.waitGauge("filehub_uploads_in_flight", 1)
	e.upload("after.txt", []byte("a slot is free again"))
}

// TestRateLimit: a key over its rate gets 429 with Retry-After; other keys
// are not affected.
func TestRateLimit(t *testing.T) {
	e := newEnv(t, envConfig{http: httpapi.Config{RateLimit: 0.01, RateBurst: 3}})
	for i := range 3 {
		if resp, body := e.do("GET", "/v1/files", keyRead, nil, nil); resp.StatusCode != 200 {
			t.Fatalf("request %d within the burst: %d %s", i, resp.StatusCode, body)
		}
	}
	resp, body := e.do("GET", "/v1/files", keyRead, nil, nil)
	wantProblem(t, resp, body, http.StatusTooManyRequests, filehub.ERATELIMIT)
	ra, err := strconv.Atoi(resp.Header.Get("Retry-After"))
	if err != nil || ra < 1 || ra > 100 {
		t.Errorf("Retry-After = %q, want whole seconds until a token is back (≈100)", resp.Header.Get("Retry-After"))
	}
	// The refused request did not consume a token: still refused, not
	// further in debt (Retry-After does not grow).
	resp, _ = e.do("GET", "/v1/files", keyRead, nil, nil)
	if ra2, _ := strconv.Atoi(resp.Header.Get("Retry-After")); resp.StatusCode != 429 || ra2 > ra {
		t.Errorf("second refused request: %d, Retry-After %d after %d", resp.StatusCode, ra2, ra)
	}
	if resp, _ := e.do("GET", "/v1/files", keyRW, nil, nil); resp.StatusCode != 200 {
		t.Errorf("another key was limited too: %d", resp.StatusCode)
	}
	if got := e.counter("filehub_http_rate_limited_total", map[string]string{"reason": "key"}); got != 2 {
		t.Errorf("rate_limited_total{key} = %v, want 2", got)
	}
}

// TestAuthFailureLimit: an address that keeps failing authentication gets
// 429 for its further failures; a valid key from it is still accepted
// (issue 15: never refuse a valid key because of failures).
func TestAuthFailureLimit(t *testing.T) {
	e := newEnv(t, envConfig{http: httpapi.Config{AuthFailureLimit: 0.01, AuthFailureBurst: 3}})
	bad := http.Header{"Authorization": {"Bearer fhk_guess"}}
	for range 3 {
		resp, body := e.do("GET", "/v1/files", "", nil, bad)
		wantProblem(t, resp, body, http.StatusUnauthorized, filehub.EUNAUTHORIZED)
	}
	resp, body := e.do("GET", "/v1/files", "", nil, bad)
	wantProblem(t, resp, body, http.StatusTooManyRequests, filehub.ERATELIMIT)
	if ra, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || ra < 1 {
		t.Errorf("Retry-After = %q", resp.Header.Get("Retry-After"))
	}
	if resp, _ := e.do("GET", "/v1/files", keyRead, nil, nil); resp.StatusCode != 200 {
		t.Errorf("valid key from the failing address: %d, want 200", resp.StatusCode)
	}
	if got := e.counter("filehub_http_rate_limited_total", map[string]string{"reason": "auth"}); got != 1 {
		t.Errorf("rate_limited_total{auth} = %v, want 1", got)
	}
	// /healthz needs no key and is never limited.
	if resp, _ := e.do("GET", "/healthz", "", nil, nil); resp.StatusCode != 200 {
		t.Errorf("healthz = %d", resp.StatusCode)
	}
}

// lateKeys is a KeyStore whose store is set after the env exists.
type lateKeys struct{ ks auth.KeyStore }

func (l *lateKeys) FindAPIKeyByHash(ctx context.Context, hash []byte) (*filehub.APIKey, error) {
	return l.ks.FindAPIKeyByHash(ctx, hash)
}

// TestAuthFailureLimitBehindProxy: behind a trusted reverse proxy, every
// client arrives from the proxy's address. One client with a bad key
// exhausts its own budget (by its forwarded address) and nobody else's: a
// valid key through the same proxy gets 200, and a second failing client
// still gets 401, not 429. A client that forges X-Forwarded-For cannot pick
// a fresh budget: the proxy appends the address it saw.
func TestAuthFailureLimitBehindProxy(t *testing.T) {
	proxies, err := auth.ParseTrustedProxies([]string{"127.0.0.1/32", "::1"})
	if err != nil {
		t.Fatal(err)
	}
	ks := &lateKeys{}
	a := auth.New(ks, auth.Config{FailureLimit: 0.01, FailureBurst: 3, TrustedProxies: proxies})
	e := newEnv(t, envConfig{http: httpapi.Config{Auth: a}})
	ks.ks = e.meta
	via := func(client, key string) http.Header {
		h := http.Header{"X-Forwarded-For": {client}}
		if key != "" {
			h.Set("Authorization", "Bearer "+key)
		}
		return h
	}
	for i := range 6 {
		// The forged first entry changes every time; the proxy's own
		// entry (the last) does not.
		resp, _ := e.do("GET", "/v1/files", "", nil, via(fmt.Sprintf("10.9.9.%d, 203.0.113.7", i), "fhk_wrong"))
		resp.Body.Close()
	}
	resp, body := e.do("GET", "/v1/files", "", nil, via("203.0.113.7", "fhk_wrong"))
	wantProblem(t, resp, body, http.StatusTooManyRequests, filehub.ERATELIMIT)
	if resp, body := e.do("GET", "/v1/files", "", nil, via("198.51.100.2", e.keys[keyRead])); resp.StatusCode != 200 {
		t.Errorf("valid key behind the proxy: %d %s, want 200", resp.StatusCode, body)
	}
	if resp, _ := e.do("GET", "/v1/files", "", nil, via("203.0.113.7", e.keys[keyRead])); resp.StatusCode != 200 {
		t.Errorf("valid key from the failing client itself: %d, want 200", resp.StatusCode)
	}
	resp, body = e.do("GET", "/v1/files", "", nil, via("198.51.100.3", "fhk_other"))
	wantProblem(t, resp, body, http.StatusUnauthorized, filehub.EUNAUTHORIZED)
}

// TestAuthStoreDown: a key store outage is 503, not 401, so clients retry
// rather than discard a good key.
func TestAuthStoreDown(t *testing.T) {
	e := newEnv(t, envConfig{})
	e.meta.Close()
	resp, body := e.do("GET", "/v1/files", keyRead, nil, nil)
	wantProblem(t, resp, body, http.StatusServiceUnavailable, filehub.EUNAVAILABLE)
}

// TestDownloadStall: a client that stops reading a download is cut off
// after the stall timeout instead of holding the handler forever.
func TestDownloadStall(t *testing.T) {
	e := newEnv(t, envConfig{
		files: files.Config{MaxUploadSize: 64 << 20},
		http:  httpapi.Config{DownloadStallTimeout: 200 * time.Millisecond},
	})
	// More than loopback socket buffers can absorb.
	data := bytes.Repeat([]byte("0123456789abcdef"), 2<<20) // 32 MiB
	up, err := e.svc.Upload(t.Context(), bytes.NewReader(data), "big.bin", "k_test")
	if err != nil {
		t.Fatal(err)
	}
	c := e.dial()
	c.Conn.(*net.TCPConn).SetReadBuffer(4096)
	c.send(e.requestHead("GET", "/v1/files/"+up.ID+"/content", keyRead))
	// Read the status line only, then stop reading.
	line, err := c.br.ReadString('\n')
	if err != nil || !strings.Contains(line, "200") {
		t.Fatalf("status line %q, %v", line, err)
	}
	// The handler returns (and is counted) only once the server gives up.
	e.waitCounter("filehub_http_requests_total", map[string]string{"route": "GET /v1/files/{id}/content"}, 1)
}

func (e *env) waitStaged(n int) {
	e.t.Helper()
	e.waitFor(fmt.Sprintf("%d staged blobs", n), func() bool { return e.blobs.stagedCount() >= n })
}

func (e *env) waitCounter(name string, labels map[string]string, want float64) {
	e.t.Helper()
	e.waitFor(fmt.Sprintf("%s%v = %v", name, labels, want), func() bool { return e.counter(name, labels) == want })
}

func (e *env) waitGauge(name string, want float64) {
	e.t.Helper()
	e.waitFor(fmt.Sprintf("%s = %v", name, want), func() bool { return e.gauge(name) == want })
}

// waitFor polls cond; it fails the test rather than hang, but asserts
// nothing about how long it took.
func (e *env) waitFor(what string, cond func() bool) {
	e.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			e.t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

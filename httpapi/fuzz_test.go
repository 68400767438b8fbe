package httpapi_test

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/filehub/filehub/api"
)

// FuzzMultipartUpload sends arbitrary multipart bodies and boundaries. The
// server must never panic, never answer 5xx other than 503/507 (a client's
// bytes are never a server fault), and never leave a staged file behind; a
// refused request must leave no record.
func FuzzMultipartUpload(f *testing.F) {
	f.Add([]byte("--B\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.txt\"\r\n\r\nhello\r\n--B--\r\n"), "B")
	f.Add([]byte("--B\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\nx\r\n--B\r\nContent-Disposition: form-data; name=\"file\"; filename=\"../b\"\r\n\r\ny\r\n--B--"), "B")
	f.Add([]byte("--B\r\nContent-Disposition: form-data; name=\"other\"\r\n\r\nx\r\n--B--\r\n"), "B")
	f.Add([]byte("--B\r\nContent-Disposition: form-data; name=\"file\"; filename=\"e\"\r\n\r\n\x7fELF\x02\x01\x01\r\n--B--\r\n"), "B")
	f.Add([]byte("--B\r\nContent-Disposition: form-data; name=\"file\"; filename=\"t\"\r\n\r\ntruncated"), "B")
	f.Add([]byte("--B--\r\n"), "B")
	f.Add([]byte(""), "")
	f.Add([]byte("garbage"), "\"quoted boundary\"")

	// One server for all inputs: a fresh database per input would make
	// fuzzing crawl. Checks compare before and after each input.
	e := newEnv(f, envConfig{})
	f.Fuzz(func(t *testing.T, body []byte, boundary string) {
		fe := *e
		fe.t = t
		before := fe.state()
		req := httptest.NewRequest("POST", "/v1/files", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+fe.keys[keyWrite])
		req.Header.Set("Content-Type", "multipart/form-data; boundary="+boundary)
		rec := httptest.NewRecorder()
		fe.h.ServeHTTP(rec, req)

		switch code := rec.Code; {
		case code == http.StatusCreated:
		case code >= 500 && code != http.StatusServiceUnavailable && code != http.StatusInsufficientStorage:
			t.Fatalf("status %d for a client's body: %s", code, rec.Body)
		case code >= 400:
			if ct := rec.Header().Get("Content-Type"); ct != api.ProblemContentType {
				t.Errorf("status %d with Content-Type %q", code, ct)
			}
			if after := fe.state(); after.records != before.records {
				t.Errorf("refused request changed records: %d → %d", before.records, after.records)
			}
		default:
			t.Fatalf("unexpected status %d", code)
		}
		if left := fe.tmpFiles(); len(left) > 0 {
			t.Fatalf("tmp not empty: %v", left)
		}
	})
}

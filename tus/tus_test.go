package tus_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/filehub/filehub"
	"github.com/filehub/filehub/files"
	"github.com/filehub/filehub/tus"
)

func TestOptions(t *testing.T) {
	e := newEnv(t, backends()[0], envConfig{tus: tus.Config{CORSOrigins: []string{"https://app.example"}}})
	// No key, no Tus-Resumable: discovery and CORS preflights need neither.
	resp, _ := e.do(req{method: "OPTIONS", path: base, noTus: true})
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("OPTIONS: %d", resp.StatusCode)
	}
	for h, want := range map[string]string{
		"Tus-Version":            "1.0.0",
		"Tus-Resumable":          "1.0.0",
		"Tus-Extension":          "creation,creation-with-upload,creation-defer-length,termination,checksum,expiration,concatenation",
		"Tus-Max-Size":           fmt.Sprint(testMaxUpload),
		"Tus-Checksum-Algorithm": "sha256,sha1,md5",
	} {
		if got := resp.Header.Get(h); got != want {
			t.Errorf("OPTIONS %s = %q, want %q", h, got, want)
		}
	}
	if resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("CORS headers without an Origin")
	}

	preflight := func(origin string) *http.Response {
		resp, _ := e.do(req{method: "OPTIONS", path: base + "u_abc", noTus: true, hdr: map[string]string{
			"Origin": origin, "Access-Control-Request-Method": "PATCH",
			"Access-Control-Request-Headers": "authorization,tus-resumable,upload-offset,content-type",
		}})
		return resp
	}
	resp = preflight("https://app.example")
	if got := resp.Header.Get("Access-Control-Allow-Origin"); got != "https://app.example" {
		t.Errorf("preflight from an allowed origin: Allow-Origin %q", got)
	}
	for _, h := range []string{"Authorization", "Upload-Offset", "Tus-Resumable", "Upload-Checksum", "X-HTTP-Method-Override"} {
		if !strings.Contains(resp.Header.Get("Access-Control-Allow-Headers"), h) {
			t.Errorf("preflight: Allow-Headers %q lacks %s", resp.Header.Get("Access-Control-Allow-Headers"), h)
		}
	}
	if !strings.Contains(resp.Header.Get("Access-Control-Allow-Methods"), "PATCH") {
		t.Errorf("preflight: Allow-Methods %q", resp.Header.Get("Access-Control-Allow-Methods"))
	}
	resp = preflight("https://evil.example")
	if got := resp.Header.Get("Access-Control-Allow-Origin"); got != "" {
		t.Errorf("preflight from another origin: Allow-Origin %q, want none", got)
	}
	// Real requests from an allowed origin expose the tus headers.
	resp, _ = e.do(req{method: "POST", path: base, key: keyWriter, hdr: map[string]string{"Upload-Length": "5", "Origin": "https://app.example"}})
	for _, h := range []string{"Location", "Upload-Offset", "Upload-Expires", tus.HeaderFileID} {
		if !strings.Contains(resp.Header.Get("Access-Control-Expose-Headers"), h) {
			t.Errorf("Expose-Headers %q lacks %s", resp.Header.Get("Access-Control-Expose-Headers"), h)
		}
	}
}

// TestUploadInChunks is the main path on every backend: chunks with and
// without checksums, HEAD between them, the last one answering with the
// file, which is an ordinary file (listed, downloadable, one file.created
// event); the same content again is deduplicated.
func TestUploadInChunks(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		e := newEnv(t, b, envConfig{})
		data := append([]byte("%PDF-1.7\n"), randomData(1<<20)...)
		up := e.create(keyWriter, int64(len(data)), map[string]string{
			"Upload-Metadata": metadata("filename", "../report.pdf", "filetype", "application/pdf"),
		})
		off, resp := e.offset(keyWriter, up)
		if off != 0 || resp.Header.Get("Upload-Length") != fmt.Sprint(len(data)) || resp.Header.Get("Upload-Expires") == "" ||
			resp.Header.Get("Cache-Control") != "no-store" || !strings.Contains(resp.Header.Get("Upload-Metadata"), "filename ") {
			t.Fatalf("HEAD of a new upload: offset %d, headers %v", off, resp.Header)
		}
		chunks := [][]byte{data[:100_000], data[100_000:600_000], data[600_000:]}
		var pos int64
		var last *http.Response
		for i, c := range chunks {
			var hdr map[string]string
			switch i {
			case 0:
				s := sha256.Sum256(c)
				hdr = map[string]string{"Upload-Checksum": "sha256 " + base64.StdEncoding.EncodeToString(s[:])}
			case 1:
				s := sha1.Sum(c)
				hdr = map[string]string{"Upload-Checksum": "sha1 " + base64.StdEncoding.EncodeToString(s[:])}
			case 2:
				s := md5.Sum(c)
				hdr = map[string]string{"Upload-Checksum": "md5 " + base64.StdEncoding.EncodeToString(s[:])}
			}
			last = e.patch(keyWriter, up, pos, c, hdr)
			pos += int64(len(c))
			if i < len(chunks)-1 {
				if got, _ := e.offset(keyWriter, up); got != pos {
					t.Fatalf("HEAD after chunk %d: offset %d, want %d", i, got, pos)
				}
				if last.Header.Get(tus.HeaderFileID) != "" || last.Header.Get("Upload-Expires") == "" {
					t.Fatalf("PATCH %d of an unfinished upload: headers %v", i, last.Header)
				}
			}
		}
		id := last.Header.Get(tus.HeaderFileID)
		if !strings.HasPrefix(id, "f_") || last.Header.Get(tus.HeaderDeduplicated) != "false" {
			t.Fatalf("final PATCH: %s=%q %s=%q", tus.HeaderFileID, id, tus.HeaderDeduplicated, last.Header.Get(tus.HeaderDeduplicated))
		}
		f, got := e.file(id)
		if !bytes.Equal(got, data) || f.SHA256 != sha(data) || f.Name != "report.pdf" || f.ContentType != "application/pdf" ||
			f.Size != int64(len(data)) || f.OwnerKeyID != e.keyIDs[keyWriter] {
			t.Fatalf("file %+v (%d bytes), want report.pdf, application/pdf, sha %s", f, len(got), sha(data))
		}
		if !e.listed(id) {
			t.Fatalf("file %s is not in GET /v1/files", id)
		}
		if n := e.createdEvents(); n != 1 {
			t.Fatalf("%d file.created events, want 1", n)
		}
		// A later HEAD carries the file too.
		off, resp = e.offset(keyWriter, up)
		if off != int64(len(data)) || resp.Header.Get(tus.HeaderFileID) != id || resp.Header.Get(tus.HeaderDeduplicated) != "false" {
			t.Fatalf("HEAD of the finished upload: offset %d, headers %v", off, resp.Header)
		}

		// The same content again, in one creation-with-upload request.
		resp, body := e.do(req{method: "POST", path: base, key: keyWriter, body: data, hdr: map[string]string{
			"Upload-Length": fmt.Sprint(len(data)), "Upload-Metadata": metadata("filename", "again.pdf"),
		}})
		if resp.StatusCode != http.StatusCreated || resp.Header.Get("Upload-Offset") != fmt.Sprint(len(data)) ||
			resp.Header.Get(tus.HeaderDeduplicated) != "true" || resp.Header.Get(tus.HeaderFileID) == id {
			t.Fatalf("creation-with-upload of known content: %d %s, headers %v", resp.StatusCode, body, resp.Header)
		}
		if n := e.createdEvents(); n != 2 {
			t.Fatalf("%d file.created events, want 2", n)
		}
		if got := e.counter("filehub_tus_uploads_finished_total"); got != 2 {
			t.Errorf("uploads_finished_total = %v, want 2", got)
		}
		if got := e.counter("filehub_tus_bytes_received_total"); got != float64(2*len(data)) {
			t.Errorf("bytes_received_total = %v, want %d", got, 2*len(data))
		}
	})
}

func TestDeferredLengthAndEmptyFile(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		e := newEnv(t, b, envConfig{})
		resp, body := e.do(req{method: "POST", path: base, key: keyWriter, hdr: map[string]string{"Upload-Defer-Length": "1"}})
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("deferred creation: %d %s", resp.StatusCode, body)
		}
		up := resp.Header.Get("Location")
		_, head := e.offset(keyWriter, up)
		if head.Header.Get("Upload-Defer-Length") != "1" || head.Header.Get("Upload-Length") != "" {
			t.Fatalf("HEAD of a deferred upload: %v", head.Header)
		}
		data := []byte("the length of this text was not known at first")
		e.patch(keyWriter, up, 0, data[:10], nil)
		last := e.patch(keyWriter, up, 10, data[10:], map[string]string{"Upload-Length": fmt.Sprint(len(data))})
		if _, got := e.file(last.Header.Get(tus.HeaderFileID)); !bytes.Equal(got, data) {
			t.Fatalf("content %q", got)
		}
		// Upload-Length 0 is a complete (empty) file at once.
		resp, body = e.do(req{method: "POST", path: base, key: keyWriter, hdr: map[string]string{"Upload-Length": "0"}})
		if resp.StatusCode != http.StatusCreated || resp.Header.Get(tus.HeaderFileID) == "" {
			t.Fatalf("empty upload: %d %s %v", resp.StatusCode, body, resp.Header)
		}
		if f, got := e.file(resp.Header.Get(tus.HeaderFileID)); len(got) != 0 || f.SHA256 != sha(nil) {
			t.Fatalf("empty file: %+v", f)
		}
	})
}

// TestWrongOffset: 409 with the right offset, and nothing changes.
func TestWrongOffset(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		e := newEnv(t, b, envConfig{})
		data := randomData(1000)
		up := e.create(keyWriter, 1000, nil)
		e.patch(keyWriter, up, 0, data[:400], nil)
		for _, off := range []string{"0", "300", "500"} {
			resp, body := e.do(req{method: "PATCH", path: up, key: keyWriter, body: data[400:], hdr: map[string]string{"Upload-Offset": off}})
			wantProblem(t, "PATCH at "+off, resp, body, http.StatusConflict, filehub.ECONFLICT)
			if got := resp.Header.Get("Upload-Offset"); got != "400" {
				t.Fatalf("409 answer's Upload-Offset = %q, want 400", got)
			}
		}
		if off, _ := e.offset(keyWriter, up); off != 400 {
			t.Fatalf("offset after refused PATCHes = %d, want 400", off)
		}
		last := e.patch(keyWriter, up, 400, data[400:], nil)
		if _, got := e.file(last.Header.Get(tus.HeaderFileID)); !bytes.Equal(got, data) {
			t.Fatal("content differs")
		}
		// Malformed and missing offsets and content types.
		resp, body := e.do(req{method: "PATCH", path: up, key: keyWriter, body: []byte("x"), hdr: map[string]string{"Upload-Offset": "-1"}})
		wantProblem(t, "negative offset", resp, body, http.StatusBadRequest, filehub.EINVALID)
		resp, body = e.do(req{method: "PATCH", path: up, key: keyWriter, body: []byte("x"), hdr: map[string]string{"Upload-Offset": "0", "Content-Type": "text/plain"}})
		wantProblem(t, "wrong content type", resp, body, http.StatusUnsupportedMediaType, filehub.EUNSUPPORTED)
	})
}

// TestChecksumMismatch: 460, the chunk is not kept, the offset is
// unchanged, the same chunk with the right checksum is then accepted.
func TestChecksumMismatch(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		e := newEnv(t, b, envConfig{})
		data := randomData(5000)
		up := e.create(keyWriter, 5000, nil)
		e.patch(keyWriter, up, 0, data[:2000], nil)
		wrong := sha256.Sum256([]byte("something else"))
		resp, body := e.do(req{method: "PATCH", path: up, key: keyWriter, body: data[2000:], hdr: map[string]string{
			"Upload-Offset": "2000", "Upload-Checksum": "sha256 " + base64.StdEncoding.EncodeToString(wrong[:]),
		}})
		wantProblem(t, "bad checksum", resp, body, tus.StatusChecksumMismatch(), filehub.ECHECKSUM)
		if off, _ := e.offset(keyWriter, up); off != 2000 {
			t.Fatalf("offset after a checksum mismatch = %d, want 2000", off)
		}
		rc, err := e.stager.ReadResumable(t.Context(), strings.TrimPrefix(up, base), 0)
		if err != nil {
			t.Fatal(err)
		}
		kept, _ := io.ReadAll(rc)
		rc.Close()
		if len(kept) != 2000 {
			t.Fatalf("%d bytes stored after the mismatch, want 2000: the chunk must not be kept", len(kept))
		}
		if got := e.counter("filehub_tus_checksum_mismatches_total"); got != 1 {
			t.Errorf("checksum_mismatches_total = %v", got)
		}
		for _, bad := range []string{"crc32 AAAAAA==", "sha256 not-base64!", "sha256 " + base64.StdEncoding.EncodeToString([]byte("short")), "sha256"} {
			resp, body = e.do(req{method: "PATCH", path: up, key: keyWriter, body: data[2000:], hdr: map[string]string{"Upload-Offset": "2000", "Upload-Checksum": bad}})
			wantProblem(t, "Upload-Checksum "+bad, resp, body, http.StatusBadRequest, filehub.EINVALID)
		}
		good := sha256.Sum256(data[2000:])
		last := e.patch(keyWriter, up, 2000, data[2000:], map[string]string{"Upload-Checksum": "sha256 " + base64.StdEncoding.EncodeToString(good[:])})
		if f, got := e.file(last.Header.Get(tus.HeaderFileID)); !bytes.Equal(got, data) || f.SHA256 != sha(data) {
			t.Fatal("content differs")
		}
	})
}

func TestTooLarge(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		e := newEnv(t, b, envConfig{})
		resp, body := e.do(req{method: "POST", path: base, key: keyWriter, hdr: map[string]string{"Upload-Length": fmt.Sprint(testMaxUpload + 1)}})
		wantProblem(t, "Upload-Length past the limit", resp, body, http.StatusRequestEntityTooLarge, filehub.ETOOLARGE)
		up := e.create(keyWriter, 10, nil)
		resp, body = e.do(req{method: "PATCH", path: up, key: keyWriter, body: make([]byte, 11), hdr: map[string]string{"Upload-Offset": "0"}})
		wantProblem(t, "chunk past the upload's length", resp, body, http.StatusRequestEntityTooLarge, filehub.ETOOLARGE)
		if off, _ := e.offset(keyWriter, up); off != 0 {
			t.Fatalf("offset after a refused chunk = %d", off)
		}
		deferred := e.do2("POST", map[string]string{"Upload-Defer-Length": "1"})
		resp, body = e.do(req{method: "PATCH", path: deferred, key: keyWriter, body: []byte("x"), hdr: map[string]string{
			"Upload-Offset": "0", "Upload-Length": fmt.Sprint(testMaxUpload + 1)}})
		wantProblem(t, "deferred Upload-Length past the limit", resp, body, http.StatusRequestEntityTooLarge, filehub.ETOOLARGE)
	})
}

// do2 creates an upload with the given headers and returns its path.
func (e *env) do2(method string, hdr map[string]string) string {
	e.t.Helper()
	resp, body := e.do(req{method: method, path: base, key: keyWriter, hdr: hdr})
	if resp.StatusCode != http.StatusCreated {
		e.t.Fatalf("create: %d %s", resp.StatusCode, body)
	}
	return resp.Header.Get("Location")
}

var elf = append([]byte("\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x3e\x00"), make([]byte, 200)...)

// TestExecutableRefused: a declared executable is refused before the
// upload exists; sniffed executable bytes are refused when they arrive, in
// a later chunk's PATCH or in the creation request, and the upload is gone.
func TestExecutableRefused(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		e := newEnv(t, b, envConfig{})
		resp, body := e.do(req{method: "POST", path: base, key: keyWriter, hdr: map[string]string{
			"Upload-Length": "100", "Upload-Metadata": metadata("filename", "tool", "filetype", "application/x-msdownload")}})
		wantProblem(t, "declared executable", resp, body, http.StatusUnsupportedMediaType, filehub.EUNSUPPORTED)
		if resp.Header.Get("Location") != "" {
			t.Fatal("a refused creation answered a Location")
		}
		up := e.create(keyWriter, int64(len(elf)), map[string]string{"Upload-Metadata": metadata("filename", "innocent.txt", "filetype", "text/plain")})
		resp, body = e.do(req{method: "PATCH", path: up, key: keyWriter, body: elf, hdr: map[string]string{"Upload-Offset": "0"}})
		wantProblem(t, "ELF bytes", resp, body, http.StatusUnsupportedMediaType, filehub.EUNSUPPORTED)
		if _, resp := e.offset(keyWriter, up); resp.StatusCode != http.StatusNotFound {
			t.Fatalf("HEAD of an upload refused by type: %d, want 404", resp.StatusCode)
		}
		if _, err := e.stager.ReadResumable(t.Context(), strings.TrimPrefix(up, base), 0); filehub.ErrorCode(err) != filehub.ENOTFOUND {
			t.Fatalf("a refused upload's bytes are still stored: %v", err)
		}
		resp, body = e.do(req{method: "POST", path: base, key: keyWriter, body: elf, hdr: map[string]string{"Upload-Length": fmt.Sprint(len(elf))}})
		wantProblem(t, "ELF in creation-with-upload", resp, body, http.StatusUnsupportedMediaType, filehub.EUNSUPPORTED)
		if n := e.createdEvents(); n != 0 {
			t.Fatalf("%d files created", n)
		}
	})
}

// TestStorageFloor: 507 below the free-space floor, before any byte is
// accepted. Only a blob store that knows its free space can say so (an S3
// bucket cannot), so this runs on the local disk.
func TestStorageFloor(t *testing.T) {
	e := newEnv(t, backends()[0], envConfig{files: files.Config{MinFreeSpace: 1 << 62}})
	resp, body := e.do(req{method: "POST", path: base, key: keyWriter, hdr: map[string]string{"Upload-Length": "10"}})
	wantProblem(t, "creation below the floor", resp, body, http.StatusInsufficientStorage, filehub.ESTORAGE)

	e2 := newEnv(t, backends()[0], envConfig{})
	up := e2.create(keyWriter, 10, nil)
	// The same stores, now below the floor: the PATCH is refused.
	full := newEnvOn(t, e2.meta, e2.blobs, e2.stager, envConfig{files: files.Config{MinFreeSpace: 1 << 62}, keysOf: e2})
	resp, body = full.do(req{method: "PATCH", path: up, key: keyWriter, body: []byte("0123456789"), hdr: map[string]string{"Upload-Offset": "0"}})
	wantProblem(t, "PATCH below the floor", resp, body, http.StatusInsufficientStorage, filehub.ESTORAGE)
	if off, _ := e2.offset(keyWriter, up); off != 0 {
		t.Fatalf("offset after a 507 = %d", off)
	}
}

// TestVisibility: an upload is its owner's (and admins'); other keys get
// 404 whatever they try; scopes are checked.
func TestVisibility(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		e := newEnv(t, b, envConfig{})
		up := e.create(keyWriter, 10, nil)
		for _, r := range []req{
			{method: "HEAD", path: up, key: keyOther},
			{method: "PATCH", path: up, key: keyOther, body: []byte("0123456789"), hdr: map[string]string{"Upload-Offset": "0"}},
			{method: "DELETE", path: up, key: keyOther},
			{method: "HEAD", path: base + "u_nosuchuploadatall", key: keyWriter},
			{method: "HEAD", path: base + "not-an-id", key: keyWriter},
		} {
			resp, body := e.do(r)
			wantProblem(t, r.method+" by another key", resp, body, http.StatusNotFound, filehub.ENOTFOUND)
		}
		if off, _ := e.offset(keyAdmin, up); off != 0 {
			t.Fatalf("admin HEAD: %d", off)
		}
		if off, _ := e.offset(keyReader, up); off != -1 {
			// keyReader is another key: not its upload.
			t.Fatalf("a read key of another owner sees the upload")
		}
		resp, body := e.do(req{method: "POST", path: base, key: keyReader, hdr: map[string]string{"Upload-Length": "10"}})
		wantProblem(t, "creation with a read key", resp, body, http.StatusForbidden, filehub.EFORBIDDEN)
		resp, body = e.do(req{method: "POST", path: base, hdr: map[string]string{"Upload-Length": "10"}})
		wantProblem(t, "creation without a key", resp, body, http.StatusUnauthorized, filehub.EUNAUTHORIZED)
		// A write-only key may HEAD its own upload.
		own := e.create(keyWrite, 10, nil)
		if off, _ := e.offset(keyWrite, own); off != 0 {
			t.Fatalf("HEAD with a write-only key: %d", off)
		}
		resp, body = e.do(req{method: "POST", path: base, key: keyWriter, noTus: true, hdr: map[string]string{"Upload-Length": "10"}})
		wantProblem(t, "no Tus-Resumable", resp, body, http.StatusPreconditionFailed, filehub.EPRECONDITION)
		if resp.Header.Get("Tus-Version") != "1.0.0" {
			t.Errorf("412 without Tus-Version")
		}
	})
}

// TestExpiry: Upload-Expires on every answer about an unfinished upload;
// past it 410, and after RemoveExpired 404 with the bytes gone.
func TestExpiry(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		e := newEnv(t, b, envConfig{tus: tus.Config{Expiry: time.Hour}})
		resp, _ := e.do(req{method: "POST", path: base, key: keyWriter, hdr: map[string]string{"Upload-Length": "10"}})
		up := resp.Header.Get("Location")
		exp, err := http.ParseTime(resp.Header.Get("Upload-Expires"))
		if err != nil || exp.Sub(e.clock.Now()) > time.Hour || exp.Sub(e.clock.Now()) < time.Hour-2*time.Second {
			t.Fatalf("Upload-Expires %q (%v), want an hour from now", resp.Header.Get("Upload-Expires"), err)
		}
		// A chunk pushes the expiry back.
		e.clock.Advance(50 * time.Minute)
		p := e.patch(keyWriter, up, 0, []byte("01234"), nil)
		if exp2, _ := http.ParseTime(p.Header.Get("Upload-Expires")); !exp2.After(exp) {
			t.Fatalf("PATCH: Upload-Expires %q not pushed back from %v", p.Header.Get("Upload-Expires"), exp)
		}
		e.clock.Advance(61 * time.Minute)
		resp, body := e.do(req{method: "PATCH", path: up, key: keyWriter, body: []byte("56789"), hdr: map[string]string{"Upload-Offset": "5"}})
		wantProblem(t, "PATCH after expiry", resp, body, http.StatusGone, filehub.EGONE)
		if _, resp := e.offset(keyWriter, up); resp.StatusCode != http.StatusGone {
			t.Fatalf("HEAD after expiry: %d, want 410", resp.StatusCode)
		}
		n, err := e.tus.RemoveExpired(t.Context(), e.clock.Now(), 0)
		if err != nil || n != 1 {
			t.Fatalf("RemoveExpired = %d, %v", n, err)
		}
		if _, resp := e.offset(keyWriter, up); resp.StatusCode != http.StatusNotFound {
			t.Fatalf("HEAD after removal: %d, want 404", resp.StatusCode)
		}
		if _, err := e.stager.ReadResumable(t.Context(), strings.TrimPrefix(up, base), 0); filehub.ErrorCode(err) != filehub.ENOTFOUND {
			t.Fatalf("expired upload's bytes still stored: %v", err)
		}
		if got := e.counter("filehub_tus_uploads_expired_total"); got != 1 {
			t.Errorf("uploads_expired_total = %v", got)
		}
	})
}

func TestMaxOpenUploads(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		e := newEnv(t, b, envConfig{tus: tus.Config{MaxOpenUploads: 2}})
		first := e.create(keyWriter, 3, nil)
		e.create(keyWriter, 3, nil)
		resp, body := e.do(req{method: "POST", path: base, key: keyWriter, hdr: map[string]string{"Upload-Length": "3"}})
		wantProblem(t, "third open upload", resp, body, http.StatusTooManyRequests, filehub.ERATELIMIT)
		e.create(keyOther, 3, nil) // another key has its own count
		e.patch(keyWriter, first, 0, []byte("abc"), nil)
		e.create(keyWriter, 3, nil) // a finished upload frees its place
	})
}

// TestConcurrentPatches: while one PATCH is streaming, a second one to the
// same upload gets 423 (or 409), and the stored content is the first's
// alone.
func TestConcurrentPatches(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		wrap, writing := newNotifyStager()
		e := newEnv(t, b, envConfig{wrapStager: wrap})
		data := bytes.Repeat([]byte("A"), 100_000)
		up := e.create(keyWriter, int64(len(data)), nil)
		pr, pw := io.Pipe()
		r1, err := http.NewRequestWithContext(t.Context(), "PATCH", e.srv.URL+up, pr)
		if err != nil {
			t.Fatal(err)
		}
		r1.ContentLength = int64(len(data))
		r1.Header.Set("Tus-Resumable", tus.Version)
		r1.Header.Set("Authorization", "Bearer "+e.keys[keyWriter])
		r1.Header.Set("Content-Type", "application/offset+octet-stream")
		r1.Header.Set("Upload-Offset", "0")
		done := make(chan *http.Response, 1)
		go func() {
			resp, err := e.srv.Client().Do(r1)
			if err != nil {
				t.Error(err)
				done <- nil
				return
			}
			resp.Body.Close()
			done <- resp
		}()
		pw.Write(data[:50_000])
		waitWriting(t, writing)
		// The first PATCH holds the upload: a second one at the same
		// offset is refused, and writes nothing.
		// (A small body: a refused request's unread body closes the
		// connection, which a large one would meet mid-send.)
		resp, body := e.do(req{method: "PATCH", path: up, key: keyWriter, body: bytes.Repeat([]byte("B"), 4096), hdr: map[string]string{"Upload-Offset": "0"}})
		if resp.StatusCode != http.StatusLocked && resp.StatusCode != http.StatusConflict {
			t.Fatalf("second PATCH: %d %s, want 423 or 409", resp.StatusCode, body)
		}
		pw.Write(data[50_000:])
		pw.Close()
		resp = <-done
		if resp == nil || resp.StatusCode != http.StatusNoContent {
			t.Fatalf("first PATCH: %v", resp)
		}
		if _, got := e.file(resp.Header.Get(tus.HeaderFileID)); !bytes.Equal(got, data) {
			t.Fatal("the content is not the first writer's alone")
		}
	})
}

func TestTermination(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		e := newEnv(t, b, envConfig{})
		up := e.create(keyWriter, 10, nil)
		e.patch(keyWriter, up, 0, []byte("01234"), nil)
		resp, _ := e.do(req{method: "DELETE", path: up, key: keyWriter})
		if resp.StatusCode != http.StatusNoContent {
			t.Fatalf("DELETE: %d", resp.StatusCode)
		}
		if _, resp := e.offset(keyWriter, up); resp.StatusCode != http.StatusNotFound {
			t.Fatalf("HEAD after DELETE: %d", resp.StatusCode)
		}
		if _, err := e.stager.ReadResumable(t.Context(), strings.TrimPrefix(up, base), 0); filehub.ErrorCode(err) != filehub.ENOTFOUND {
			t.Fatalf("bytes still stored after DELETE: %v", err)
		}
		if got := e.counter("filehub_tus_uploads_terminated_total"); got != 1 {
			t.Errorf("uploads_terminated_total = %v", got)
		}
		// X-HTTP-Method-Override: DELETE and PATCH through POST.
		up = e.create(keyWriter, 5, nil)
		resp, body := e.do(req{method: "POST", path: up, key: keyWriter, body: []byte("abcde"), hdr: map[string]string{
			"X-HTTP-Method-Override": "PATCH", "Upload-Offset": "0"}})
		if resp.StatusCode != http.StatusNoContent || resp.Header.Get(tus.HeaderFileID) == "" {
			t.Fatalf("PATCH by override: %d %s", resp.StatusCode, body)
		}
		resp, _ = e.do(req{method: "POST", path: up, key: keyWriter, hdr: map[string]string{"X-HTTP-Method-Override": "DELETE"}})
		if resp.StatusCode != http.StatusNoContent {
			t.Fatalf("DELETE by override: %d", resp.StatusCode)
		}
	})
}

// TestConcatenation: partial uploads (tus-js-client's parallelUploads)
// joined by a final upload into one file; the partials are gone after.
func TestConcatenation(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		e := newEnv(t, b, envConfig{})
		data := append([]byte("%PDF-1.4\n"), randomData(300_000)...)
		cuts := []int{0, 100_000, 200_000, len(data)}
		var urls []string
		for i := range 3 {
			part := data[cuts[i]:cuts[i+1]]
			up := e.create(keyWriter, int64(len(part)), map[string]string{"Upload-Concat": "partial"})
			e.patch(keyWriter, up, 0, part, nil)
			_, head := e.offset(keyWriter, up)
			if head.Header.Get("Upload-Concat") != "partial" || head.Header.Get(tus.HeaderFileID) != "" {
				t.Fatalf("HEAD of a partial upload: %v", head.Header)
			}
			urls = append(urls, e.srv.URL+up) // absolute, as tus-js-client sends them
		}
		// An incomplete part is refused.
		open := e.create(keyWriter, 10, map[string]string{"Upload-Concat": "partial"})
		resp, body := e.do(req{method: "POST", path: base, key: keyWriter, hdr: map[string]string{"Upload-Concat": "final;" + open}})
		wantProblem(t, "final with an incomplete part", resp, body, http.StatusBadRequest, filehub.EINVALID)
		// Another key's parts are not found.
		resp, body = e.do(req{method: "POST", path: base, key: keyOther, hdr: map[string]string{"Upload-Concat": "final;" + strings.Join(urls, " ")}})
		wantProblem(t, "final of another key's parts", resp, body, http.StatusNotFound, filehub.ENOTFOUND)

		resp, body = e.do(req{method: "POST", path: base, key: keyWriter, hdr: map[string]string{
			"Upload-Concat": "final;" + strings.Join(urls, " "), "Upload-Metadata": metadata("filename", "joined.pdf")}})
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("final: %d %s", resp.StatusCode, body)
		}
		id := resp.Header.Get(tus.HeaderFileID)
		f, got := e.file(id)
		if !bytes.Equal(got, data) || f.Name != "joined.pdf" || f.SHA256 != sha(data) {
			t.Fatalf("joined file %+v", f)
		}
		_, head := e.offset(keyWriter, resp.Header.Get("Location"))
		if !strings.HasPrefix(head.Header.Get("Upload-Concat"), "final;"+base) || head.Header.Get(tus.HeaderFileID) != id ||
			head.Header.Get("Upload-Offset") != fmt.Sprint(len(data)) {
			t.Fatalf("HEAD of the final upload: %v", head.Header)
		}
		for _, u := range urls {
			if _, resp := e.offset(keyWriter, strings.TrimPrefix(u, e.srv.URL)); resp.StatusCode != http.StatusNotFound {
				t.Fatalf("partial upload still there after the final: %d", resp.StatusCode)
			}
		}
		resp, body = e.do(req{method: "PATCH", path: resp.Header.Get("Location"), key: keyWriter, body: []byte("x"), hdr: map[string]string{"Upload-Offset": fmt.Sprint(len(data))}})
		wantProblem(t, "PATCH of a final upload", resp, body, http.StatusForbidden, filehub.EFORBIDDEN)
	})
}

// countingStager counts the bytes read back from stored uploads.
type countingStager struct {
	filehub.ResumableStager
	read *atomic.Int64
}

func (c countingStager) ReadResumable(ctx context.Context, id string, off int64) (io.ReadCloser, error) {
	rc, err := c.ResumableStager.ReadResumable(ctx, id, off)
	if err != nil {
		return nil, err
	}
	return countingReadCloser{rc, c.read}, nil
}

func (c countingStager) Unwrap() filehub.ResumableStager { return c.ResumableStager }

type countingReadCloser struct {
	io.ReadCloser
	n *atomic.Int64
}

func (c countingReadCloser) Read(p []byte) (int, error) {
	n, err := c.ReadCloser.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// TestResumeAfterRestart: a second server on the same stores (a restart,
// or another instance) continues an upload where the first left it, and
// the file's SHA-256 is right although no byte is read back to hash it:
// the hash state travelled with the offset. (Only the first bytes are read
// back, to sniff the type.)
func TestResumeAfterRestart(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		meta, blobs, stager := b.open(t)
		var read atomic.Int64
		wrap := func(s filehub.ResumableStager) filehub.ResumableStager { return countingStager{s, &read} }
		first := newEnvOn(t, meta, blobs, stager, envConfig{wrapStager: wrap})
		data := randomData(2 << 20)
		up := first.create(keyWriter, int64(len(data)), nil)
		first.patch(keyWriter, up, 0, data[:1<<20], nil)
		first.srv.Close()

		second := newEnvOn(t, meta, blobs, stager, envConfig{wrapStager: wrap, keysOf: first})
		if off, _ := second.offset(keyWriter, up); off != 1<<20 {
			t.Fatalf("offset on the second server = %d", off)
		}
		last := second.patch(keyWriter, up, 1<<20, data[1<<20:], nil)
		f, got := second.file(last.Header.Get(tus.HeaderFileID))
		if !bytes.Equal(got, data) || f.SHA256 != sha(data) {
			t.Fatalf("file after resume: sha %s, want %s", f.SHA256, sha(data))
		}
		// Native staging reads back only the sniffed head; a spool also
		// copies the bytes once into the blob store (never to hash).
		limit := int64(files.SniffLen)
		if b.name != "sqlite+localfs" {
			limit += int64(len(data))
		}
		if n := read.Load(); n > limit {
			t.Fatalf("%d bytes read back from the stored upload, want at most %d", n, limit)
		}
	})
}

// TestInterruptedChunkKeepsPrefix: a PATCH whose client goes away keeps the
// bytes that arrived (durably), and the upload resumes from there.
func TestInterruptedChunkKeepsPrefix(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		e := newEnv(t, b, envConfig{})
		data := randomData(200_000)
		up := e.create(keyWriter, int64(len(data)), nil)
		pr, pw := io.Pipe()
		r, err := http.NewRequestWithContext(t.Context(), "PATCH", e.srv.URL+up, pr)
		if err != nil {
			t.Fatal(err)
		}
		r.ContentLength = int64(len(data))
		r.Header.Set("Tus-Resumable", tus.Version)
		r.Header.Set("Authorization", "Bearer "+e.keys[keyWriter])
		r.Header.Set("Content-Type", "application/offset+octet-stream")
		r.Header.Set("Upload-Offset", "0")
		var wg sync.WaitGroup
		wg.Go(func() {
			resp, err := e.srv.Client().Do(r)
			if err == nil {
				resp.Body.Close()
			}
		})
		pw.Write(data[:120_000])
		// On the local disk, wait until the server has written the
		// bytes, then cut the body short. (An S3 chunk is one object,
		// visible only when complete: there the cut comes at once, and
		// the bytes already sent still arrive before the end of the
		// stream.)
		deadline := time.Now().Add(10 * time.Second)
		for b.name == "sqlite+localfs" && time.Now().Before(deadline) {
			rc, err := e.stager.ReadResumable(t.Context(), strings.TrimPrefix(up, base), 0)
			if err == nil {
				n, _ := io.Copy(io.Discard, rc)
				rc.Close()
				if n >= 120_000 {
					break
				}
			}
			time.Sleep(5 * time.Millisecond)
		}
		pw.CloseWithError(io.ErrUnexpectedEOF)
		wg.Wait()
		var off int64
		deadline = time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			if off, _ = e.offset(keyWriter, up); off == 120_000 {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
		if off != 120_000 {
			t.Fatalf("offset after a cut chunk = %d, want the 120000 bytes that arrived", off)
		}
		// The cut request may still be releasing the upload: 423 says
		// "retry", as tus clients do.
		var last *http.Response
		for {
			resp, body := e.do(req{method: "PATCH", path: up, key: keyWriter, body: data[off:], hdr: map[string]string{"Upload-Offset": fmt.Sprint(off)}})
			if resp.StatusCode == http.StatusLocked && time.Now().Before(deadline) {
				time.Sleep(5 * time.Millisecond)
				continue
			}
			if resp.StatusCode != http.StatusNoContent {
				t.Fatalf("resuming PATCH: %d %s", resp.StatusCode, body)
			}
			last = resp
			break
		}
		if f, got := e.file(last.Header.Get(tus.HeaderFileID)); !bytes.Equal(got, data) || f.SHA256 != sha(data) {
			t.Fatal("content differs after resuming a cut chunk")
		}
	})
}

// TestTwoInstances: on PostgreSQL + S3, an upload started on one instance
// is continued and finished on another (state in the database, chunks in
// the bucket), and while one instance writes an upload, the other's PATCH
// to it is refused with 423 (the database's lock), so their bytes never mix.
func TestTwoInstances(t *testing.T) {
	db1, openDB := openPostgresSchema(t)
	s1, openS3 := openS3Bucket(t)
	db2, s2 := openDB(), openS3()
	a := newEnvOn(t, db1, s1, s1, envConfig{})
	wrap, writing := newNotifyStager()
	aw := newEnvOn(t, db1, s1, s1, envConfig{keysOf: a, wrapStager: wrap}) // instance A's PATCH that B meets
	b := newEnvOn(t, db2, s2, s2, envConfig{keysOf: a})

	data := append([]byte("%PDF-1.5\n"), randomData(3<<20)...)
	up := a.create(keyWriter, int64(len(data)), map[string]string{"Upload-Metadata": metadata("filename", "moved.pdf")})
	a.patch(keyWriter, up, 0, data[:1<<20], nil)
	if off, _ := b.offset(keyWriter, up); off != 1<<20 {
		t.Fatalf("the second instance sees offset %d", off)
	}
	b.patch(keyWriter, up, 1<<20, data[1<<20:2<<20], nil)

	// Instance A streams the next chunk slowly; B's PATCH meanwhile is
	// refused.
	pr, pw := io.Pipe()
	r1, err := http.NewRequestWithContext(t.Context(), "PATCH", aw.srv.URL+up, pr)
	if err != nil {
		t.Fatal(err)
	}
	rest := data[2<<20:]
	r1.ContentLength = int64(len(rest))
	r1.Header.Set("Tus-Resumable", tus.Version)
	r1.Header.Set("Authorization", "Bearer "+a.keys[keyWriter])
	r1.Header.Set("Content-Type", "application/offset+octet-stream")
	r1.Header.Set("Upload-Offset", fmt.Sprint(2<<20))
	done := make(chan *http.Response, 1)
	go func() {
		resp, err := a.srv.Client().Do(r1)
		if err != nil {
			done <- nil
			return
		}
		resp.Body.Close()
		done <- resp
	}()
	pw.Write(rest[:1000])
	waitWriting(t, writing)
	// A small body: a refused request's unread body closes the
	// connection, which a large one would meet mid-send.
	resp, body := b.do(req{method: "PATCH", path: up, key: keyWriter, body: bytes.Repeat([]byte("B"), 4096), hdr: map[string]string{"Upload-Offset": fmt.Sprint(2 << 20)}})
	if resp.StatusCode != http.StatusLocked {
		t.Fatalf("PATCH on B while A writes: %d %s, want 423", resp.StatusCode, body)
	}
	pw.Write(rest[1000:])
	pw.Close()
	resp = <-done
	if resp == nil || resp.StatusCode != http.StatusNoContent {
		t.Fatalf("A's last PATCH: %v", resp)
	}
	id := resp.Header.Get(tus.HeaderFileID)
	f, got := b.file(id)
	if !bytes.Equal(got, data) || f.SHA256 != sha(data) || f.Name != "moved.pdf" {
		t.Fatalf("file after two instances: %+v", f)
	}
	if _, head := b.offset(keyWriter, up); head.Header.Get(tus.HeaderFileID) != id {
		t.Fatalf("HEAD on B after A finished: %v", head.Header)
	}
	if n := b.createdEvents(); n != 1 {
		t.Fatalf("%d file.created events", n)
	}
}

// notifyStager closes writing when the first WriteResumable starts: the
// request making it holds the upload's lock.
type notifyStager struct {
	filehub.ResumableStager
	once    *sync.Once
	writing chan struct{}
}

func newNotifyStager() (func(filehub.ResumableStager) filehub.ResumableStager, chan struct{}) {
	ch := make(chan struct{})
	once := &sync.Once{}
	return func(s filehub.ResumableStager) filehub.ResumableStager {
		return notifyStager{ResumableStager: s, once: once, writing: ch}
	}, ch
}

func (n notifyStager) WriteResumable(ctx context.Context, id string, off int64, r io.Reader) (int64, error) {
	n.once.Do(func() { close(n.writing) })
	return n.ResumableStager.WriteResumable(ctx, id, off, r)
}

func (n notifyStager) Unwrap() filehub.ResumableStager { return n.ResumableStager }

func waitWriting(t *testing.T, ch chan struct{}) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatal("the first PATCH never started writing")
	}
}

// TestFinishAfterCrash: a crash after the file of an upload was recorded
// (its staged blob took the bytes) and before the upload was: the client's
// retry of the last chunk finds the file by the ID derived from the
// upload's, and no second file is made.
func TestFinishAfterCrash(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		e := newEnv(t, b, envConfig{})
		ctx := t.Context()
		data := randomData(10_000)
		up := e.create(keyWriter, int64(len(data)), map[string]string{"Upload-Metadata": metadata("filename", "crash.bin")})
		e.patch(keyWriter, up, 0, data[:4000], nil)
		// What the crashed attempt did: the last chunk stored and the
		// file committed from it, the upload record untouched.
		id := strings.TrimPrefix(up, base)
		if _, err := e.stager.WriteResumable(ctx, id, 4000, bytes.NewReader(data[4000:])); err != nil {
			t.Fatal(err)
		}
		st, err := e.stager.StageResumable(ctx, id, int64(len(data)))
		if err != nil {
			t.Fatal(err)
		}
		fileID := "f_" + strings.TrimPrefix(id, "u_")
		_, err = e.svc.CommitStaged(ctx, st, &filehub.File{ID: fileID, Name: "crash.bin", Size: int64(len(data)),
			SHA256: sha(data), ContentType: "application/octet-stream", OwnerKeyID: e.keyIDs[keyWriter]})
		st.Close(ctx)
		if err != nil {
			t.Fatal(err)
		}
		last := e.patch(keyWriter, up, 4000, data[4000:], nil)
		if got := last.Header.Get(tus.HeaderFileID); got != fileID {
			t.Fatalf("retried last PATCH: file %q, want %q", got, fileID)
		}
		if n := e.createdEvents(); n != 1 {
			t.Fatalf("%d file.created events, want 1", n)
		}
		if _, got := e.file(fileID); !bytes.Equal(got, data) {
			t.Fatal("content differs")
		}
	})
}

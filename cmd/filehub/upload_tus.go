package main

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/filehub/filehub/api"
	"github.com/filehub/filehub/client"
)

// Resumable uploads from the command line: tus against /v1/uploads/, with
// the upload's URL kept under the user's cache directory (as tus-js-client
// keeps its fingerprints), so that running the same command again after an
// interruption continues where the server is.
const (
	// resumableThreshold is the size above which "filehub upload" uses
	// tus unless --resumable says otherwise.
	resumableThreshold = 16 << 20
	// tusChunkSize is the size of each PATCH: small enough that little is
	// sent again after a cut, large enough that the per-chunk fsync and
	// round trip are cheap next to it.
	tusChunkSize = 8 << 20
	// tusAttempts bounds the retries of one chunk after a network error.
	tusAttempts = 5
)

// tusState is what is kept per file between runs.
type tusState struct {
	URL string `json:"url"`
}

// tusUploader uploads one file with tus.
type tusUploader struct {
	server string // base URL, no trailing slash
	key    string
	hc     *http.Client
	c      *client.Client
	onSent func(offset int64) // progress
}

// statePath is where the upload URL of path is kept: under the user's cache
// directory, named by a hash of the server, the file's absolute path, size
// and modification time, so a changed file starts afresh.
func statePath(server, path string, fi os.FileInfo) (string, error) {
	dir, err := os.UserCacheDir()
	if err != nil {
		return "", err
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	h := sha256.Sum256(fmt.Appendf(nil, "%s\x00%s\x00%d\x00%d", server, abs, fi.Size(), fi.ModTime().UnixNano()))
	return filepath.Join(dir, "filehub", "uploads", hex.EncodeToString(h[:16])+".json"), nil
}

// upload sends f (size bytes) as name, resuming the upload recorded in
// state if the server still has it.
func (u *tusUploader) upload(ctx context.Context, f *os.File, size int64, name, state string) (*api.Upload, error) {
	loc, off := "", int64(-1)
	if b, err := os.ReadFile(state); err == nil {
		var st tusState
		if json.Unmarshal(b, &st) == nil && st.URL != "" {
			var done *api.Upload
			off, done, err = u.head(ctx, st.URL)
			switch {
			case err != nil:
				return nil, err
			case done != nil:
				os.Remove(state)
				return done, nil
			case off >= 0:
				loc = st.URL
			}
		}
	}
	if loc == "" {
		var err error
		if loc, err = u.create(ctx, size, name); err != nil {
			return nil, err
		}
		off = 0
		if err := writeState(state, tusState{URL: loc}); err != nil {
			return nil, err
		}
	}
	u.onSent(off)
	for attempt := 1; ; {
		up, next, err := u.patch(ctx, loc, f, off, size)
		switch {
		case err == nil && up != nil:
			os.Remove(state)
			return up, nil
		case err == nil:
			off, attempt = next, 1
			u.onSent(off)
			continue
		case !retryable(err) || attempt == tusAttempts || ctx.Err() != nil:
			return nil, err
		}
		// Where is the server? It may have kept part of the chunk.
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Duration(attempt*attempt) * 200 * time.Millisecond):
		}
		attempt++
		var done *api.Upload
		if off, done, err = u.head(ctx, loc); err != nil && !retryable(err) {
			return nil, err
		} else if done != nil {
			os.Remove(state)
			return done, nil
		} else if off < 0 {
			os.Remove(state)
			return nil, fmt.Errorf("the server no longer has the upload (expired or deleted); run the command again to start over")
		}
	}
}

func writeState(path string, st tusState) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o600)
}

// retryError marks a failure worth retrying (network, 5xx, 409, 423).
type retryError struct{ err error }

func (e *retryError) Error() string { return e.err.Error() }
func (e *retryError) Unwrap() error { return e.err }

func retryable(err error) bool {
	var r *retryError
	return errors.As(err, &r)
}

func (u *tusUploader) request(ctx context.Context, method, target string, body io.Reader, size int64) (*http.Request, error) {
	if !strings.Contains(target, "://") {
		target = u.server + target
	}
	req, err := http.NewRequestWithContext(ctx, method, target, body)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.ContentLength = size
		req.Header.Set("Content-Type", "application/offset+octet-stream")
	}
	req.Header.Set("Tus-Resumable", "1.0.0")
	req.Header.Set("Authorization", "Bearer "+u.key)
	return req, nil
}

// send sends req and returns the response, its body drained and closed; a
// status other than want becomes an error (retryable for 5xx, 409, 423).
func (u *tusUploader) send(req *http.Request, want ...int) (*http.Response, error) {
	resp, err := u.hc.Do(req)
	if err != nil {
		if req.Context().Err() != nil {
			return nil, req.Context().Err()
		}
		return nil, &retryError{err}
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	for _, w := range want {
		if resp.StatusCode == w {
			return resp, nil
		}
	}
	var p struct {
		Detail string `json:"detail"`
	}
	_ = json.Unmarshal(body, &p)
	err = fmt.Errorf("%s %s: %s: %s", req.Method, req.URL.Path, resp.Status, p.Detail)
	switch {
	case resp.StatusCode >= 500, resp.StatusCode == http.StatusConflict, resp.StatusCode == http.StatusLocked,
		resp.StatusCode == http.StatusTooManyRequests:
		return resp, &retryError{err}
	}
	return resp, err
}

func (u *tusUploader) create(ctx context.Context, size int64, name string) (string, error) {
	req, err := u.request(ctx, http.MethodPost, "/v1/uploads/", nil, 0)
	if err != nil {
		return "", err
	}
	req.Header.Set("Upload-Length", strconv.FormatInt(size, 10))
	req.Header.Set("Upload-Metadata", "filename "+base64.StdEncoding.EncodeToString([]byte(name)))
	resp, err := u.send(req, http.StatusCreated)
	if err != nil {
		return "", err
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || loc.Path == "" {
		return "", fmt.Errorf("the server answered no upload URL")
	}
	base, err := url.Parse(u.server + "/v1/uploads/")
	if err != nil {
		return "", err
	}
	return base.ResolveReference(loc).String(), nil
}

// head returns the upload's offset, -1 if the server no longer has it, or
// the file it became.
func (u *tusUploader) head(ctx context.Context, loc string) (int64, *api.Upload, error) {
	req, err := u.request(ctx, http.MethodHead, loc, nil, 0)
	if err != nil {
		return 0, nil, err
	}
	resp, err := u.send(req, http.StatusOK, http.StatusNotFound, http.StatusGone)
	if err != nil {
		return 0, nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return -1, nil, nil
	}
	if up, err := u.finished(ctx, resp); up != nil || err != nil {
		return 0, up, err
	}
	off, err := strconv.ParseInt(resp.Header.Get("Upload-Offset"), 10, 64)
	if err != nil {
		return 0, nil, fmt.Errorf("HEAD %s: bad Upload-Offset", loc)
	}
	return off, nil, nil
}

// patch sends the chunk at off and returns the new offset, or the file if
// it was the last one.
func (u *tusUploader) patch(ctx context.Context, loc string, f *os.File, off, size int64) (*api.Upload, int64, error) {
	n := min(tusChunkSize, size-off)
	h := sha256.New()
	if _, err := io.Copy(h, io.NewSectionReader(f, off, n)); err != nil {
		return nil, 0, err
	}
	req, err := u.request(ctx, http.MethodPatch, loc, io.NewSectionReader(f, off, n), n)
	if err != nil {
		return nil, 0, err
	}
	req.Header.Set("Upload-Offset", strconv.FormatInt(off, 10))
	req.Header.Set("Upload-Checksum", "sha256 "+base64.StdEncoding.EncodeToString(h.Sum(nil)))
	resp, err := u.send(req, http.StatusNoContent)
	if err != nil {
		return nil, 0, err
	}
	if up, err := u.finished(ctx, resp); up != nil || err != nil {
		return up, 0, err
	}
	next, err := strconv.ParseInt(resp.Header.Get("Upload-Offset"), 10, 64)
	if err != nil || next <= off {
		return nil, 0, fmt.Errorf("PATCH %s: the server did not advance the offset", loc)
	}
	return nil, next, nil
}

// finished returns the file of a finished upload's response, or nil.
func (u *tusUploader) finished(ctx context.Context, resp *http.Response) (*api.Upload, error) {
	id := resp.Header.Get("Filehub-File-Id")
	if id == "" {
		return nil, nil
	}
	f, err := u.c.Stat(ctx, id)
	if err != nil {
		return nil, err
	}
	return &api.Upload{File: f, Deduplicated: resp.Header.Get("Filehub-Deduplicated") == "true"}, nil
}

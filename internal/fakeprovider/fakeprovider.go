// Package fakeprovider is a stand-in for an OpenAI-compatible files API
// (POST /files, GET /files, GET /files/{id}, DELETE /files/{id}) for tests:
// it never stores content, only each file's size and SHA-256, and it can be
// told to fail in the ways real providers do (429 with Retry-After, 5xx,
// slow answers, files that expire).
package fakeprovider

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"
)

// File is a file the stand-in holds.
type File struct {
	ID       string `json:"id"`
	Object   string `json:"object"`
	Bytes    int64  `json:"bytes"`
	Created  int64  `json:"created_at"`
	Filename string `json:"filename"`
	Purpose  string `json:"purpose"`
	SHA256   string `json:"-"` // of the content received
}

// Fault is an injected answer to one request.
type Fault struct {
	// Status is the status to answer with (429, 500, 503, 400 ...); 0
	// with Hang set only delays.
	Status int
	// RetryAfter, if set, is sent as the Retry-After header.
	RetryAfter string
	// Hang holds the request until the client gives up (its context ends)
	// or the server closes: a slow answer.
	Hang bool
}

// Server is the stand-in. Create it with New.
type Server struct {
	// URL is the API base, including the version path: http://127.0.0.1:port/v1.
	URL string
	// APIKey is the bearer token the server accepts.
	APIKey string

	srv  *httptest.Server
	quit chan struct{}

	mu      sync.Mutex
	files   map[string]*File
	order   []string // file IDs in creation order
	nextID  int
	uploads int // successful uploads
	calls   map[string]int
	faults  map[string][]Fault // by "METHOD route", route being "/files" or "/files/{id}"
	maxSize int64
	// purposes are the upload purposes accepted; nil accepts any.
	purposes []string
}

// Documented are the upload purposes each provider's files API documents,
// by the name of filehub's preset (openai.Presets). They are copied from
// the providers' pages, not from the presets, so that a preset with a
// purpose its provider does not list fails the tests that use NewFor. The
// source of each is named in docs/providers.md.
var Documented = map[string][]string{
	// Moonshot AI, "Files" of the Kimi API reference.
	"kimi": {"file-extract", "image", "video"},
	// Zhipu (Z.ai), "Upload file" of the BigModel API reference.
	"glm": {"file-extract", "batch", "code-interpreter", "agent", "voice-clone-input"},
	// Alibaba Cloud Model Studio, "OpenAI compatible - File".
	"qwen": {"file-extract", "batch"},
	// OpenAI, API reference "Files: upload file".
	"openai": {"assistants", "batch", "fine-tune", "vision", "user_data", "evals"},
}

// NewFor starts a stand-in for the provider of the preset name, which
// refuses (400, as the providers do) a purpose Documented does not list
// for it. It fails the test if Documented has no entry for name.
func NewFor(tb testing.TB, apiKey, name string) *Server {
	tb.Helper()
	purposes, ok := Documented[name]
	if !ok {
		tb.Fatalf("fakeprovider: no documented purposes for provider %q; add them to Documented with their source", name)
	}
	s := New(tb, apiKey)
	s.purposes = purposes
	return s
}

// New starts a stand-in on 127.0.0.1 that accepts apiKey, closed when the
// test ends.
func New(tb testing.TB, apiKey string) *Server {
	tb.Helper()
	s := &Server{APIKey: apiKey, files: map[string]*File{}, calls: map[string]int{}, faults: map[string][]Fault{}, quit: make(chan struct{})}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/files", s.guard("POST /files", s.upload))
	mux.HandleFunc("GET /v1/files", s.guard("GET /files", s.list))
	mux.HandleFunc("GET /v1/files/{id}", s.guard("GET /files/{id}", s.retrieve))
	mux.HandleFunc("DELETE /v1/files/{id}", s.guard("DELETE /files/{id}", s.delete))
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	s.srv = &httptest.Server{Listener: l, Config: &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}}
	s.srv.Start()
	s.URL = s.srv.URL + "/v1"
	tb.Cleanup(func() {
		close(s.quit) // release hanging handlers before Close waits for them
		s.srv.Close()
	})
	return s
}

// SetMaxSize makes uploads larger than n bytes fail with 413 (0: no limit).
func (s *Server) SetMaxSize(n int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.maxSize = n
}

// Inject queues faults for route ("POST /files", "GET /files",
// "GET /files/{id}", "DELETE /files/{id}"): the next requests to it get
// them, one each, before it answers normally again.
func (s *Server) Inject(route string, faults ...Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults[route] = append(s.faults[route], faults...)
}

// Expire forgets the file id, as a provider does when a file expires: it
// is answered with 404 from then on.
func (s *Server) Expire(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.files, id)
}

// Uploads returns how many uploads succeeded.
func (s *Server) Uploads() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.uploads
}

// Calls returns how many requests route received, faults included.
func (s *Server) Calls(route string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[route]
}

// Files returns the files held, in creation order.
func (s *Server) Files() []File {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []File
	for _, id := range s.order {
		if f, ok := s.files[id]; ok {
			out = append(out, *f)
		}
	}
	return out
}

// Add stores a file as if uploaded, for tests of listing.
func (s *Server) Add(name, purpose string, size int64) File {
	s.mu.Lock()
	defer s.mu.Unlock()
	return *s.addLocked(name, purpose, size, "")
}

func (s *Server) addLocked(name, purpose string, size int64, sum string) *File {
	s.nextID++
	f := &File{ID: fmt.Sprintf("file-%04d", s.nextID), Object: "file", Bytes: size, Created: time.Now().Unix(),
		Filename: name, Purpose: purpose, SHA256: sum}
	s.files[f.ID] = f
	s.order = append(s.order, f.ID)
	return f
}

// guard counts the call, checks the key and applies an injected fault.
func (s *Server) guard(route string, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.calls[route]++
		var fault *Fault
		if q := s.faults[route]; len(q) > 0 {
			fault = &q[0]
			s.faults[route] = q[1:]
		}
		s.mu.Unlock()
		if r.Header.Get("Authorization") != "Bearer "+s.APIKey {
			writeError(w, http.StatusUnauthorized, "Incorrect API key provided")
			return
		}
		if fault != nil {
			if fault.Hang {
				select {
				case <-r.Context().Done():
				case <-s.quit:
				}
				return
			}
			if fault.RetryAfter != "" {
				w.Header().Set("Retry-After", fault.RetryAfter)
			}
			writeError(w, fault.Status, fmt.Sprintf("injected %d", fault.Status))
			return
		}
		h(w, r)
	}
}

// writeError answers in the OpenAI error format.
func writeError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{"message": msg, "type": "invalid_request_error"}})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// upload reads the multipart body part by part, hashing the file without
// keeping it, so the stand-in's memory does not grow with the upload.
func (s *Server) upload(w http.ResponseWriter, r *http.Request) {
	body := &counter{r: r.Body}
	r.Body = body
	mr, err := r.MultipartReader()
	if err != nil {
		writeError(w, http.StatusBadRequest, "want multipart/form-data: "+err.Error())
		return
	}
	var (
		purpose, name, sum string
		size               int64
		gotFile            bool
	)
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			writeError(w, http.StatusBadRequest, "bad multipart body: "+err.Error())
			return
		}
		switch p.FormName() {
		case "purpose":
			b, err := io.ReadAll(io.LimitReader(p, 256))
			if err != nil {
				writeError(w, http.StatusBadRequest, err.Error())
				return
			}
			purpose = string(b)
		case "file":
			name = p.FileName()
			h := sha256.New()
			n, err := io.Copy(h, p)
			if err != nil {
				writeError(w, http.StatusBadRequest, "reading the file: "+err.Error())
				return
			}
			size, sum, gotFile = n, hex.EncodeToString(h.Sum(nil)), true
		}
	}
	// A body cut short is a failed upload, as at a real provider, even
	// if what arrived parses.
	if _, err := io.Copy(io.Discard, body); err != nil || (r.ContentLength >= 0 && body.n != r.ContentLength) {
		writeError(w, http.StatusBadRequest, "incomplete body")
		return
	}
	if purpose == "" || !gotFile {
		writeError(w, http.StatusBadRequest, "purpose and file are required")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.purposes != nil && !slices.Contains(s.purposes, purpose) {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("invalid purpose %q (want one of %v)", purpose, s.purposes))
		return
	}
	if s.maxSize > 0 && size > s.maxSize {
		writeError(w, http.StatusRequestEntityTooLarge, "file size exceeds the limit")
		return
	}
	s.uploads++
	writeJSON(w, s.addLocked(name, purpose, size, sum))
}

// list pages by after and limit (default 3, so tests see several pages).
func (s *Server) list(w http.ResponseWriter, r *http.Request) {
	limit := 3
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			writeError(w, http.StatusBadRequest, "bad limit")
			return
		}
		limit = n
	}
	after := r.URL.Query().Get("after")
	s.mu.Lock()
	defer s.mu.Unlock()
	data := []*File{}
	started := after == ""
	more := false
	for _, id := range s.order {
		f, ok := s.files[id]
		if !ok {
			continue
		}
		if !started {
			started = id == after
			continue
		}
		if len(data) == limit {
			more = true
			break
		}
		data = append(data, f)
	}
	writeJSON(w, map[string]any{"object": "list", "data": data, "has_more": more})
}

func (s *Server) retrieve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, ok := s.files[r.PathValue("id")]
	if !ok {
		writeError(w, http.StatusNotFound, "No such File object: "+r.PathValue("id"))
		return
	}
	writeJSON(w, f)
}

func (s *Server) delete(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := r.PathValue("id")
	if _, ok := s.files[id]; !ok {
		writeError(w, http.StatusNotFound, "No such File object: "+id)
		return
	}
	delete(s.files, id)
	writeJSON(w, map[string]any{"id": id, "object": "file", "deleted": true})
}

// counter counts the bytes read through it.
type counter struct {
	r io.ReadCloser
	n int64
}

func (c *counter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func (c *counter) Close() error { return c.r.Close() }

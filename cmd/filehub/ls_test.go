package main_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/filehub/filehub"
	"github.com/filehub/filehub/api"
	main "github.com/filehub/filehub/cmd/filehub"
)

// TestLsAllStreams: ls --all prints each page before it asks for the next.
// The stand-in server holds the second page until the first page's files
// are on standard output; a listing kept in memory until the end never
// shows them, and the server gives up with an error after a deadline.
func TestLsAllStreams(t *testing.T) {
	out := &syncBuffer{}
	page := func(from, n int, next string) api.FilePage {
		p := api.FilePage{NextCursor: next}
		for i := from; i < from+n; i++ {
			p.Files = append(p.Files, &filehub.File{ID: fmt.Sprintf("f_page%04d", i), Name: "x", CreatedAt: time.Unix(0, 0)})
		}
		return p
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var p api.FilePage
		switch r.URL.Query().Get("cursor") {
		case "":
			p = page(0, 3, "second")
		case "second":
			deadline := time.Now().Add(10 * time.Second)
			for !strings.Contains(out.String(), "f_page0002") {
				if time.Now().After(deadline) {
					http.Error(w, "the first page was not printed before the second was asked for", http.StatusInternalServerError)
					return
				}
				time.Sleep(5 * time.Millisecond)
			}
			p = page(3, 2, "")
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(p)
	}))
	defer srv.Close()
	for _, format := range [][]string{{"--json"}, nil} {
		out.Reset()
		var stderr strings.Builder
		args := append([]string{"ls", "--all"}, format...)
		code := main.Execute(context.Background(), args, main.Env{
			Stdout: out, Stderr: &stderr,
			Getenv: func(k string) string {
				return map[string]string{"FILEHUB_SERVER": srv.URL, "FILEHUB_KEY": testKey}[k]
			},
		})
		if code != main.ExitOK {
			t.Fatalf("filehub %v: exit %d: %s", args, code, stderr.String())
		}
		for i := range 5 {
			if !strings.Contains(out.String(), fmt.Sprintf("f_page%04d", i)) {
				t.Errorf("filehub %v: output lacks file %d:\n%s", args, i, out.String())
			}
		}
	}
}

func (b *syncBuffer) Reset() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.Reset()
}

// Package ui is filehub's web dashboard: plain ES modules and CSS embedded in
// the binary and served under /ui/ on the API listener.
//
// The assets are public (they hold no data and no secret): the page asks for
// an API key, keeps it in sessionStorage and sends it as a bearer header on
// every API call, and in the hello frame of its WebSocket session. So the
// handler needs no authentication; what it must guarantee is that the page
// cannot be turned against its user, hence the strict Content-Security-Policy
// (no inline script or style, connections only to this origin, no framing)
// on every answer.
package ui

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"net/http"
	"strings"
)

//go:embed assets
var assets embed.FS

// Prefix is the path the dashboard is served under.
const Prefix = "/ui/"

// ContentSecurityPolicy is sent with every answer under Prefix. The page
// loads only its own files, talks only to its own origin (fetch, XHR and the
// WebSocket: 'self' covers ws: and wss: of the same host in current
// browsers), downloads through blob: URLs it creates, and may not be framed.
const ContentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// Handler returns the handler of the dashboard. Mount it at Prefix, for GET
// (ServeMux's "GET /ui/" also matches HEAD and redirects "/ui" to "/ui/").
func Handler() http.Handler {
	root, err := fs.Sub(assets, "assets")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	etags := make(map[string]string)
	// Embedded files have no modification time, so validators come from
	// their content: a browser revalidates (Cache-Control: no-cache) and
	// gets 304 until the binary changes.
	_ = fs.WalkDir(root, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(root, p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		etags[p] = `"` + hex.EncodeToString(sum[:12]) + `"`
		return nil
	})
	files := http.StripPrefix(Prefix, http.FileServerFS(root))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		SetSecurityHeaders(w.Header())
		w.Header().Set("Cache-Control", "no-cache")
		name := strings.TrimPrefix(r.URL.Path, Prefix)
		if strings.HasSuffix(name, "/") {
			// No directory listings: the page knows its files.
			http.NotFound(w, r)
			return
		}
		if name == "" {
			name = "index.html"
		}
		if tag, ok := etags[name]; ok {
			w.Header().Set("ETag", tag)
		}
		files.ServeHTTP(w, r)
	})
}

// SetSecurityHeaders sets the headers every dashboard answer carries.
func SetSecurityHeaders(h http.Header) {
	h.Set("Content-Security-Policy", ContentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
}

package httpapi

import (
	"net/http"
	"strconv"

	"github.com/filehub/filehub/api"
)

// The OpenAPI document is public: it describes the API, holds no data, and
// integrators' tools (Swagger UI, Redoc, code generators) fetch it without a
// key, often from another origin, hence the CORS header. It cannot carry
// credentials, so allowing any origin exposes nothing.

func (h *Handler) openapiJSON(w http.ResponseWriter, r *http.Request) error {
	serveDocument(w, "application/json", api.OpenAPIJSON())
	return nil
}

func (h *Handler) openapiYAML(w http.ResponseWriter, r *http.Request) error {
	serveDocument(w, "application/yaml", api.OpenAPIYAML())
	return nil
}

func serveDocument(w http.ResponseWriter, contentType string, doc []byte) {
	hdr := w.Header()
	hdr.Set("Content-Type", contentType)
	hdr.Set("Content-Length", strconv.Itoa(len(doc)))
	hdr.Set("Access-Control-Allow-Origin", "*")
	hdr.Set("X-Content-Type-Options", "nosniff")
	// The document changes only with the binary; a day of caching
	// between upgrades is harmless.
	hdr.Set("Cache-Control", "public, max-age=86400")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(doc) // a write error means the client has gone
}

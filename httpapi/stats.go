package httpapi

import (
	"net/http"
	"time"

	"github.com/filehub/filehub/api"
)

// stats serves GET /v1/stats: the store's totals of files, bytes, trash and
// blobs, counted by the metadata store in one query.
func (h *Handler) stats(w http.ResponseWriter, r *http.Request) error {
	st, err := h.svc.Stats(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, api.NewStats(st, time.Now()))
	return nil
}

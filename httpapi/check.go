package httpapi

import (
	"context"
	"net/http"

	"github.com/filehub/filehub"
	"github.com/filehub/filehub/api"
)

// Checker is the consistency check; *check.Checker implements it.
type Checker interface {
	// Check runs one check and returns its report; its problems are not
	// an error. EINVALID for a bad request, ECONFLICT while another check
	// runs.
	Check(ctx context.Context, req api.CheckRequest) (*api.CheckReport, error)
}

// check runs a consistency check and answers its report, 200 whatever it
// found: the report is the answer, and clients decide what a problem
// means to them (the CLI exits 1).
func (h *Handler) check(w http.ResponseWriter, r *http.Request) error {
	if h.cfg.Check == nil {
		return filehub.Errorf(filehub.ENOTFOUND, "this server has no consistency check")
	}
	var req api.CheckRequest
	if err := decodeBody(r, &req); err != nil {
		return err
	}
	rep, err := h.cfg.Check.Check(r.Context(), req)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, rep)
	return nil
}

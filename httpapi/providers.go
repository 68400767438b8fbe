package httpapi

import (
	"context"
	"net/http"

	"github.com/filehub/filehub"
	"github.com/filehub/filehub/api"
	"github.com/filehub/filehub/providers"
)

// Pusher is what the provider route needs of the push service;
// *providers.Service implements it.
type Pusher interface {
	// Push makes sure the file's content exists at the provider; see
	// providers.Service.Push for its errors (ENOTFOUND for an unknown
	// provider or file, ETOOLARGE, the provider's errors).
	Push(ctx context.Context, fileID, provider string) (*providers.Result, error)
}

var _ Pusher = (*providers.Service)(nil)

// push serves POST /v1/files/{id}/providers/{name}: 200 with
// {"provider","provider_file_id","reused"}.
func (h *Handler) push(w http.ResponseWriter, r *http.Request) error {
	p := api.PushRequest{ID: r.PathValue("id"), Provider: r.PathValue("name")}
	if h.cfg.Providers == nil {
		// The route exists without a push service, so that clients get
		// the same answer as for a provider that is not configured.
		return filehub.Errorf(filehub.ENOTFOUND, "unknown provider %q", p.Provider)
	}
	res, err := h.cfg.Providers.Push(r.Context(), p.ID, p.Provider)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, api.PushResult(*res))
	return nil
}

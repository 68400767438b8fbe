package server

import (
	"net/http"
	"strings"

	"github.com/filehub/filehub/httpapi"
)

// routeMux is the API listener's ServeMux. It remembers the patterns it is
// given, so that Routes lists what the listener really serves: the OpenAPI
// document's tests compare the two (cmd/filehub TestOpenAPIRoutesServed).
type routeMux struct {
	*http.ServeMux
	patterns []string
}

func newRouteMux() *routeMux { return &routeMux{ServeMux: http.NewServeMux()} }

// Handle registers h for pattern and records the pattern.
func (m *routeMux) Handle(pattern string, h http.Handler) {
	m.ServeMux.Handle(pattern, h)
	m.patterns = append(m.patterns, pattern)
}

// routesOf lists the patterns of root, with the catch-all "/" that hands
// the rest to the HTTP API replaced by that API's route table.
func routesOf(root *routeMux, api *httpapi.Handler) []string {
	var out []string
	for _, p := range root.patterns {
		if strings.TrimSpace(p) != "/" {
			out = append(out, p)
			continue
		}
		for _, rt := range api.Routes() {
			out = append(out, rt.Pattern())
		}
	}
	return out
}

// Routes returns the ServeMux patterns the API listener serves, such as
// "GET /v1/files/{id}" (patterns without a method serve every method).
// It is empty before New has built the transports.
func (s *Server) Routes() []string { return append([]string(nil), s.routes...) }

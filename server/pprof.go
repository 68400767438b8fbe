package server

import (
	"log/slog"
	"net/http"
	"net/http/pprof"
	"strconv"
	"time"

	"github.com/filehub/filehub"
	"github.com/filehub/filehub/api"
	"github.com/filehub/filehub/auth"
)

// pprofServer serves Go's profiles (net/http/pprof) on Config.PprofListen
// to API keys with the metrics scope (or admin), so that an operator can
// take a CPU profile of a live daemon with
//
//	go tool pprof -http=: 'http://ADDR/debug/pprof/profile?seconds=30' # with the header below
//
// A profile is not a secret the way the data is, but a CPU profile or
// trace costs the daemon CPU for as long as the client asks, and goroutine
// dumps show the code paths of requests in flight: hence the key, checked
// by the daemon's one Authenticator, whose limiter of failed attempts also
// covers this listener. /debug/pprof/cmdline is left out: the command line
// may hold a database password or a bootstrap key.
//
// It is a listener of its own rather than routes of the metrics listener,
// which serves without authentication, or of the API listener, whose
// routes are the API's.
func pprofServer(addr string, authn *auth.Authenticator, log *slog.Logger) *http.Server {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /debug/pprof/", pprof.Index) // the index and each named profile
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("POST /debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	guarded := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key, _, err := authn.Authenticate(r.Context(), auth.ClientAddr(r), auth.Bearer(r.Header.Get("Authorization")),
			"missing or malformed Authorization header (want: Bearer <key>)")
		if err == nil && !key.Has(filehub.ScopeMetrics) {
			err = filehub.Errorf(filehub.EFORBIDDEN, "this key lacks the %q scope", filehub.ScopeMetrics)
		}
		if err != nil {
			if n := auth.RetryAfter(err); n > 0 {
				w.Header().Set("Retry-After", strconv.Itoa(n))
			}
			api.WriteProblem(w, api.NewProblem(filehub.ErrorCode(err), filehub.ErrorMessage(err)))
			return
		}
		mux.ServeHTTP(w, r)
	})
	return &http.Server{
		Addr:              addr,
		Handler:           guarded,
		ReadHeaderTimeout: 10 * time.Second,
		// No WriteTimeout: a CPU profile or trace answers after the
		// seconds the client asked for.
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
}

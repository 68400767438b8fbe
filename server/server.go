// Package server assembles the filehub daemon: it opens the stores, builds
// the services on them, binds the listeners and runs them, in that order,
// in one place. cmd/filehub's "serve" command, the tests that run a whole
// daemon and the load tools all start it through New and Run, so what they
// measure and test is what operators run.
//
// Reading New top to bottom shows the dependency order; every value is
// built before anything that uses it, so no closure refers to a value
// assigned later. The one loop in the graph — services write events that
// the WebSocket hub, built after them, must hear of at once — is broken by
// a notifier created first (see notifier).
package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"golang.org/x/sync/errgroup"

	"github.com/filehub/filehub"
	"github.com/filehub/filehub/auth"
	"github.com/filehub/filehub/cleanup"
	"github.com/filehub/filehub/files"
	"github.com/filehub/filehub/internal/stores"
	"github.com/filehub/filehub/mcpserver"
	"github.com/filehub/filehub/openai"
	"github.com/filehub/filehub/providers"
	"github.com/filehub/filehub/tus"
	"github.com/filehub/filehub/wsserver"
)

// Server is the daemon: its stores, services and bound listeners. New
// builds it, Run serves until its context ends, Close stops it (or
// releases a Server that never ran).
type Server struct {
	cfg Config

	// Opened by New, in this order; released in the reverse one.
	lock      io.Closer // the data dir's lock; nil for shared stores
	blobs     filehub.BlobStore
	meta      stores.Meta
	notifier  *notifier
	providers []*openai.Client
	pusher    *providers.Service
	cleaner   *cleanup.Service
	files     *files.Service
	ws        *wsserver.Server
	mcp       *mcpserver.Server
	mcpLocal  *mcpserver.Local // the MCP server's backend, woken by the notifier
	tus       *tus.Handler     // nil when the stores cannot keep resumable uploads
	routes    []string         // what the API listener serves (Routes)
	listeners []listener
	bootstrap string // the generated bootstrap secret, if any

	// keyLimiters are the transports' per-key rate limiters (nil ones
	// when unlimited); instances shares them out over the cluster.
	keyLimiters []*auth.Limiters
	instances   *instances // nil without heartbeats

	mu      sync.Mutex
	state   runState
	stop    chan struct{} // closed by Close: Run returns
	done    chan struct{} // closed when Run has stopped everything
	runErr  error         // Run's result, for Close
	release sync.Once     // the stores and the lock are released once
}

type runState int

const (
	idle runState = iota
	running
	closed
)

// listener is one bound address and the HTTP server that will serve it.
type listener struct {
	name string
	srv  *http.Server
	ln   net.Listener
}

// New opens the stores, makes sure an API key exists, builds the services
// and binds the listeners, without serving yet. If it fails, it releases
// whatever it opened. The Server it returns holds the data dir's lock and
// the ports until Run ends or Close is called.
func New(ctx context.Context, cfg Config) (*Server, error) {
	cfg = cfg.withDefaults()
	if cfg.Registerer == nil && cfg.Gatherer == nil {
		reg := prometheus.NewRegistry()
		reg.MustRegister(
			collectors.NewGoCollector(),
			collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		)
		cfg.Registerer, cfg.Gatherer = reg, reg
	}
	if cfg.Registerer == nil || cfg.Gatherer == nil {
		return nil, errors.New("server: set both Config.Registerer and Config.Gatherer, or neither")
	}
	s := &Server{cfg: cfg, stop: make(chan struct{}), done: make(chan struct{})}
	if err := s.open(ctx); err != nil {
		s.closeListeners()
		return nil, errors.Join(err, s.releaseAll())
	}
	return s, nil
}

// open does New's work in dependency order: stores, services, listeners,
// and last the bootstrap key.
func (s *Server) open(ctx context.Context) error {
	if err := s.openStores(ctx); err != nil {
		return err
	}
	if err := s.buildServices(ctx); err != nil {
		return err
	}
	if err := s.bindListeners(); err != nil {
		return err
	}
	s.buildInstances()
	// Only now, with every setting checked and every port bound, may the
	// data dir get its first key: a start that fails must not have
	// created a secret that a later start would not show again.
	secret, err := bootstrapKey(ctx, s.meta, s.cfg.BootstrapKey, s.cfg.Logger)
	if err != nil {
		return err
	}
	s.bootstrap = secret
	return nil
}

// openStores takes the data dir's lock if a store is local, then opens the
// blob store and the metadata store.
func (s *Server) openStores(ctx context.Context) error {
	cfg := s.cfg
	target := stores.Target{DataDir: cfg.DataDir, DB: cfg.DB, Blobs: cfg.Blobs}
	if err := target.Check(); err != nil {
		return err
	}
	// The lock protects stores on the local disk from a second server on
	// them. Shared stores are meant for several servers: with PostgreSQL
	// and S3 the data dir is not used at all.
	if target.UsesDataDir() {
		if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
			return fmt.Errorf("create data dir: %w", err)
		}
		lock, err := stores.LockDataDir(cfg.DataDir)
		if err != nil {
			return err
		}
		if lock != nil {
			s.lock = lock
		}
	}
	blobs, err := stores.OpenBlobs(ctx, target, stores.BlobOptions{
		// Leftovers in tmp/ are uploads cut short by a crash: the lock
		// guarantees that no other server is receiving them. A bucket
		// has no such guarantee; the cleanup's stale_temp kind takes
		// care of abandoned uploads there.
		RemoveStaleTemp: target.LocalBlobs(),
		Logger:          cfg.Logger.With("component", target.BlobKind()),
		S3BufferMemory:  cfg.S3BufferMemory,
	})
	if err != nil {
		return err
	}
	s.blobs = blobs
	meta, err := stores.OpenMeta(ctx, target, stores.MetaOptions{
		Create:     true,
		Logger:     cfg.Logger.With("component", target.MetaKind()),
		Registerer: cfg.Registerer,
	})
	if err != nil {
		return err
	}
	s.meta = meta
	cfg.Logger.Info("stores open", "stores", target.Describe())
	return nil
}

// bindListeners binds every listener before any serves, so that a taken
// port fails New instead of leaving a half-started server.
func (s *Server) bindListeners() error {
	api, metrics, profiles := s.buildTransports()
	if err := s.bind("api", s.cfg.Listen, api); err != nil {
		return err
	}
	if s.cfg.TLSCertFile != "" || s.cfg.TLSKeyFile != "" {
		if s.cfg.TLSCertFile == "" || s.cfg.TLSKeyFile == "" {
			return errors.New("TLS needs both a certificate and a key file")
		}
		certs, err := newCertReloader(s.cfg.TLSCertFile, s.cfg.TLSKeyFile, s.cfg.Logger)
		if err != nil {
			return err
		}
		// Serve on a TLS listener enables HTTP/2 by itself when the
		// config offers "h2".
		l := &s.listeners[len(s.listeners)-1]
		l.srv.TLSConfig = certs.tlsConfig()
		l.ln = tls.NewListener(l.ln, l.srv.TLSConfig)
	}
	if metrics != nil {
		if err := s.bind("metrics", s.cfg.MetricsListen, metrics); err != nil {
			return err
		}
	}
	if profiles != nil {
		if err := s.bind("pprof", s.cfg.PprofListen, profiles); err != nil {
			return err
		}
	}
	return nil
}

func (s *Server) bind(name, addr string, srv *http.Server) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", addr, err)
	}
	s.listeners = append(s.listeners, listener{name, srv, ln})
	return nil
}

// Run serves until ctx ends, Close is called or a listener fails, then
// stops in the reverse order of New: the HTTP listeners and the WebSocket
// sessions first (clients are told to reconnect, close code 4005, and
// in-flight requests get Config.ShutdownTimeout), then the event hub and
// the cleanup scheduler, then the stores. It returns the listener's error,
// if one failed, and any error of the shutdown. Run may be called once.
func (s *Server) Run(ctx context.Context) error {
	s.mu.Lock()
	if s.state != idle {
		s.mu.Unlock()
		return errors.New("server: Run called twice or after Close")
	}
	s.state = running
	s.mu.Unlock()
	defer close(s.done)

	log := s.cfg.Logger
	// The services do not stop when ctx ends: they are stopped one by one
	// below, in order. Their group's context ends if one of them fails.
	group, gctx := errgroup.WithContext(context.WithoutCancel(ctx))
	wsCtx, wsStop := context.WithCancel(gctx)
	defer wsStop()
	group.Go(func() error { return s.ws.Run(wsCtx) })
	group.Go(func() error { return s.notifier.forward(wsCtx, s.ws, s.mcpLocal) })
	group.Go(func() error { return s.mcp.Run(wsCtx) })
	// A store shared by several processes may tell at once of events
	// the others append (PostgreSQL: LISTEN/NOTIFY); the hub's poll
	// stays as the safety net for what such a store cannot hear.
	if w, ok := s.meta.(filehub.EventWaker); ok {
		group.Go(func() error { return w.WatchEvents(wsCtx, s.notifier.Notify) })
	}
	cleanupCtx, cleanupStop := context.WithCancel(gctx)
	defer cleanupStop()
	instCtx, instStop := context.WithCancel(gctx)
	defer instStop()
	if s.instances != nil {
		group.Go(func() error { return s.instances.Run(instCtx) })
	}
	if s.cfg.CleanupInterval > 0 {
		group.Go(func() error { return s.cleaner.Loop(cleanupCtx) })
	}
	for _, l := range s.listeners {
		log.Info("listening", "addr", l.ln.Addr().String(), "listener", l.name)
		group.Go(func() error {
			if err := l.srv.Serve(l.ln); !errors.Is(err, http.ErrServerClosed) {
				return fmt.Errorf("serve %s: %w", l.name, err)
			}
			return nil
		})
	}

	select {
	case <-ctx.Done():
	case <-s.stop:
	case <-gctx.Done(): // a listener or service failed; Wait says why
	}
	// Leave the cluster first: the instances that keep serving take over
	// this one's share of the rate limits at their next heartbeat, while
	// this one drains requests it has already admitted.
	instStop()
	s.shutdownTransports()
	wsStop()
	// A scheduled run in progress stops at its next phase; whatever it
	// had left is found again by the next run.
	cleanupStop()
	err := group.Wait()
	err = errors.Join(err, s.releaseAll())
	log.Info("stopped")
	s.runErr = err
	return err
}

// shutdownTransports stops the listeners and lets in-flight requests
// finish for up to ShutdownTimeout, then cuts what is left.
func (s *Server) shutdownTransports() {
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancel()
	// Open MCP sessions hold event streams that Shutdown would wait for:
	// end them first (their clients reconnect elsewhere).
	s.mcp.Close()
	var wg sync.WaitGroup
	// http.Server.Shutdown does not track hijacked connections: the
	// WebSocket server tells its clients to reconnect (close code 4005)
	// and waits for its connections itself, in parallel.
	wg.Go(func() {
		if err := s.ws.Shutdown(ctx); err != nil {
			s.cfg.Logger.Warn("WebSocket shutdown", "err", err)
		}
	})
	for _, l := range s.listeners {
		wg.Go(func() {
			if err := l.srv.Shutdown(ctx); err != nil {
				// Out of time: cut the remaining connections.
				s.cfg.Logger.Warn("shutdown timeout, closing connections", "addr", l.srv.Addr, "err", err)
				l.srv.Close()
			}
		})
	}
	wg.Wait()
}

// Close stops a running Server as Run does when its context ends, and
// returns Run's result; a Server that never ran releases its listeners and
// stores. Close may be called more than once.
func (s *Server) Close() error {
	s.mu.Lock()
	state := s.state
	if state != closed {
		s.state = closed
		close(s.stop)
	}
	s.mu.Unlock()
	switch state {
	case running:
		<-s.done
		return s.runErr
	case idle:
		s.closeListeners()
		return s.releaseAll()
	}
	// Closed before: by Run's end, or by an earlier Close.
	select {
	case <-s.done:
		return s.runErr
	default:
		return nil
	}
}

// closeListeners closes listeners that never served.
func (s *Server) closeListeners() {
	for _, l := range s.listeners {
		l.ln.Close()
	}
}

// releaseAll closes the stores, the providers' clients and the lock, the
// reverse of openStores; it runs once.
func (s *Server) releaseAll() (err error) {
	s.release.Do(func() {
		var errs []error
		if s.meta != nil {
			if e := s.meta.Close(); e != nil {
				errs = append(errs, fmt.Errorf("close database: %w", e))
			}
		}
		if s.blobs != nil {
			if e := stores.CloseBlobs(s.blobs); e != nil {
				errs = append(errs, fmt.Errorf("close blob store: %w", e))
			}
		}
		for _, c := range s.providers {
			c.Close()
		}
		if s.lock != nil {
			s.lock.Close() // releases the lock
		}
		err = errors.Join(errs...)
	})
	return err
}

// Addr returns the address the HTTP API listens on, with the actual port
// when Config.Listen asked for port 0.
func (s *Server) Addr() string { return s.listeners[0].ln.Addr().String() }

// MetricsAddr returns the address of the metrics listener, or "" if there
// is none.
func (s *Server) MetricsAddr() string { return s.listenerAddr("metrics") }

// PprofAddr returns the address of the profiling listener
// (Config.PprofListen), or "" if there is none.
func (s *Server) PprofAddr() string { return s.listenerAddr("pprof") }

func (s *Server) listenerAddr(name string) string {
	for _, l := range s.listeners {
		if l.name == name {
			return l.ln.Addr().String()
		}
	}
	return ""
}

// BootstrapKey returns the secret of the admin key New generated because
// the store had no key and Config.BootstrapKey was empty, or "" if it
// generated none. It is not stored anywhere: the caller shows it once.
func (s *Server) BootstrapKey() string { return s.bootstrap }

// Meta returns the metadata store, for tools that prepare data beside the
// running daemon (load generators, benchmarks).
func (s *Server) Meta() filehub.MetaStore { return s.meta }

// Files returns the file service the HTTP API and the WebSocket sessions
// use.
func (s *Server) Files() *files.Service { return s.files }

// WS returns the WebSocket session server mounted at /v1/ws.
func (s *Server) WS() *wsserver.Server { return s.ws }

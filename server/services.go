package server

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/filehub/filehub"
	"github.com/filehub/filehub/cleanup"
	"github.com/filehub/filehub/files"
	"github.com/filehub/filehub/mcpserver"
	"github.com/filehub/filehub/openai"
	"github.com/filehub/filehub/providers"
)

// buildServices builds the services on the open stores, each after the
// ones it uses: the notifier, the providers' clients and the push service,
// the cleanup service (which deletes provider copies and exports their
// counts through the push service's metrics), and the file service (which
// asks the cleanup service for the trash grace set at run time).
func (s *Server) buildServices(ctx context.Context) error {
	cfg := s.cfg
	log := cfg.Logger
	// The event hub reads new events as soon as this process commits
	// them (it polls as well, for changes made by other processes).
	// Services signal the notifier; the hub, built later, listens on it.
	s.notifier = newNotifier()

	var provs []filehub.Provider
	var cleanupProvs []cleanup.Provider
	for _, pc := range cfg.Providers {
		pc.Registerer = cfg.Registerer
		c, err := openai.New(pc)
		if err != nil {
			return err
		}
		s.providers = append(s.providers, c)
		provs = append(provs, c)
		cleanupProvs = append(cleanupProvs, cleanup.Provider{Provider: c, FileQuota: pc.FileQuota})
	}
	pusher, err := providers.New(s.meta, s.blobs, provs, providers.Config{
		Logger:     log.With("component", "providers"),
		Registerer: cfg.Registerer,
	})
	if err != nil {
		return err
	}
	s.pusher = pusher
	if len(provs) > 0 {
		log.Info("model providers", "providers", describeProviders(cfg.Providers))
	}

	cleaner, err := cleanup.New(ctx, s.meta, s.blobs, cleanup.Config{
		Providers: func() []cleanup.Provider { return cleanupProvs },
		// A run's listing of each account is the only count of its files:
		// export it next to the account's quota.
		ProviderFiles:     func(name string, n int64) { pusher.SetProviderFiles(name, int(n)) },
		TrashGrace:        cfg.TrashGrace,
		BlobGrace:         cfg.BlobGrace,
		UploadExpiry:      cfg.UploadExpiry,
		MaxDeleteFraction: cfg.MaxDeleteFraction,
		// The TTL the WebSocket server promises clients is the one after
		// which the cleanup removes a detached durable session.
		WSSessionTTL: cfg.WSSessionTTL,
		// Without a scheduler the setting keeps its default; Run starts
		// the scheduler only for a positive interval.
		Interval:   max(cfg.CleanupInterval, 0),
		InstanceID: instanceID(cfg.InstanceID),
		Logger:     log.With("component", "cleanup"),
		Registerer: cfg.Registerer,
		// cleanup.started, cleanup.finished and file.purged are in the
		// event log when these are called: subscribers get them at once
		// rather than at the hub's next poll.
		OnEvent: func(string, *cleanup.Report) { s.notifier.Notify() },
		Changed: s.notifier.Notify,
	})
	if err != nil {
		return fmt.Errorf("start cleanup service: %w", err)
	}
	s.cleaner = cleaner

	svc, err := files.New(s.meta, s.blobs, files.Config{
		Changed:       s.notifier.Notify,
		MaxUploadSize: cfg.MaxUploadSize,
		MinFreeSpace:  cfg.MinFreeSpace, // negative: no floor, as in files.Config
		TrashGrace:    cfg.TrashGrace,
		// A trash_grace changed at run time applies to the next delete.
		TrashGraceFunc: cleaner.TrashGrace,
		AllowTypes:     cfg.AllowTypes,
		DenyTypes:      cfg.DenyTypes,
		Registerer:     cfg.Registerer,
		Logger:         log.With("component", "files"),
	})
	if err != nil {
		return err
	}
	s.files = svc

	// The MCP server's notifications come from the event log, like the
	// WebSocket hub's; the notifier wakes both.
	s.mcpLocal = mcpserver.NewLocal(svc, s.meta, s.pusher, cleaner)
	s.mcp, err = mcpserver.New(s.mcpLocal, mcpserver.Config{
		MaxUpload:          cfg.MCPMaxUpload,
		MaxSessions:        cfg.MCPMaxSessions,
		SessionIdleTimeout: cfg.MCPIdleTimeout,
		RateLimit:          cfg.MCPRateLimit,
		Version:            cfg.Version,
		Logger:             log.With("component", "mcp"),
		Registerer:         cfg.Registerer,
	})
	if err != nil {
		return err
	}
	// With no MCP session open, its feed skips the events instead of
	// reading each upload's event for nobody.
	mcpSrv := s.mcp
	s.mcpLocal.Idle = func() bool { return mcpSrv.Sessions() == 0 }
	return nil
}

// instanceID names this process as the holder of the cleanup lease, so an
// operator can tell which server a "cleanup is already running" refers to.
func instanceID(configured string) string {
	if configured != "" {
		return configured
	}
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "unknown-host"
	}
	return fmt.Sprintf("%s:%d", host, os.Getpid())
}

// describeProviders is the log line's view of the providers: names and
// base URLs, never keys.
func describeProviders(cfgs []openai.Config) string {
	var parts []string
	for _, c := range cfgs {
		parts = append(parts, fmt.Sprintf("%s (%s, purpose %s)", c.Name, c.BaseURL, c.Purpose))
	}
	return strings.Join(parts, ", ")
}

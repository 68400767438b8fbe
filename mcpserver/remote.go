package mcpserver

import (
	"context"
	"io"
	"log/slog"
	"time"

	"github.com/filehub/filehub"
	"github.com/filehub/filehub/api"
	"github.com/filehub/filehub/client"
	"github.com/filehub/filehub/wsclient"
)

// This file is the Backend of `filehub mcp`: a running filehub reached
// over its HTTP API (and its WebSocket event stream, for notifications).
// The server enforces the key's scopes and audits with the key as actor.

// Remote is the Backend of a filehub server reached over the network.
type Remote struct {
	// Client talks to the server's HTTP API with the key.
	Client *client.Client
	// WebSocketURL is the server's /v1/ws endpoint and Key the API key
	// secret, for the event stream.
	WebSocketURL string
	Key          string
	// Logger receives the event stream's connection events. Default:
	// discard.
	Logger *slog.Logger
}

var _ Backend = (*Remote)(nil)

// probeID names no file; requests about it tell a key's scopes apart
// without changing anything (the scope is checked before the file).
const probeID = "f_scopeprobe"

// ProbeKey asks the server which scopes the API key holds and returns a key
// with them (ID "remote"), for Config.Key: so that tools/list leaves out
// what the key can never use. The server checks the scopes again on every
// call. Returns the server's error if the key is refused or the server
// cannot be reached.
func (r *Remote) ProbeKey(ctx context.Context) (*filehub.APIKey, error) {
	key := &filehub.APIKey{ID: "remote", Name: "remote"}
	probes := []struct {
		scope filehub.Scope
		try   func() error
	}{
		{filehub.ScopeAdmin, func() error { _, err := r.Client.CleanupRunByID(ctx, 0); return err }},
		{filehub.ScopeWrite, func() error { _, err := r.Client.Restore(ctx, probeID); return err }},
		{filehub.ScopeRead, func() error { _, err := r.Client.Stat(ctx, probeID); return err }},
	}
	for _, p := range probes {
		switch err := p.try(); filehub.ErrorCode(err) {
		case filehub.EFORBIDDEN:
		case "", filehub.ENOTFOUND, filehub.EINVALID:
			key.Scopes = append(key.Scopes, p.scope)
			if p.scope == filehub.ScopeAdmin {
				return key, nil
			}
		default:
			return nil, err
		}
	}
	return key, nil
}

func (r *Remote) ListFiles(ctx context.Context, q ListQuery) ([]*filehub.File, string, error) {
	if q.IncludeDeleted {
		return nil, "", filehub.Errorf(filehub.EINVALID, "include_deleted is not available over stdio (the HTTP API does not list the trash); use the server's MCP endpoint /v1/mcp")
	}
	return r.Client.List(ctx, q.Limit, q.Cursor)
}

func (r *Remote) GetFile(ctx context.Context, id string) (*filehub.File, error) {
	return r.Client.Stat(ctx, id)
}

func (r *Remote) OpenContent(ctx context.Context, id string) (*filehub.File, io.ReadCloser, error) {
	f, err := r.Client.Stat(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	d, err := r.Client.Open(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	// The body verifies itself against the size and digest at its end.
	return f, d.Body, nil
}

func (r *Remote) Upload(ctx context.Context, name string, content io.Reader, size int64) (*filehub.File, bool, error) {
	up, err := r.Client.Upload(ctx, name, content, size)
	if err != nil {
		return nil, false, err
	}
	return up.File, up.Deduplicated, nil
}

func (r *Remote) Delete(ctx context.Context, id string) (*filehub.File, error) {
	return r.Client.Delete(ctx, id)
}

func (r *Remote) Restore(ctx context.Context, id string) (*filehub.File, error) {
	return r.Client.Restore(ctx, id)
}

func (r *Remote) Push(ctx context.Context, id, provider string) (*PushResult, error) {
	res, err := r.Client.Push(ctx, id, provider)
	if err != nil {
		return nil, err
	}
	return &PushResult{Provider: res.Provider, ProviderFileID: res.ProviderFileID, Reused: res.Reused}, nil
}

func (r *Remote) CleanupPreview(ctx context.Context) (*CleanupPreview, error) {
	rep, err := r.Client.CleanupRun(ctx, api.CleanupRunRequest{DryRun: true})
	if err != nil {
		return nil, err
	}
	return previewOf(rep), nil
}

func (r *Remote) StorageStats(ctx context.Context) (*StorageStats, error) {
	var st *StorageStats
	ws, err := r.Client.Stats(ctx)
	switch filehub.ErrorCode(err) {
	case "":
		st = statsFrom(&ws.StorageStats)
	case filehub.ENOTFOUND:
		// A server older than GET /v1/stats, or a store that cannot
		// count: page through the live files.
		if st, err = r.scanStats(ctx); err != nil {
			return nil, err
		}
	default:
		return nil, err
	}
	runs, err := r.Client.CleanupRuns(ctx, 1)
	switch filehub.ErrorCode(err) {
	case "":
		st.Providers = providerUsage(runs)
	case filehub.EFORBIDDEN:
		st.Notes = append(st.Notes, "provider usage needs a key with the admin scope")
	default:
		return nil, err
	}
	return st, nil
}

// scanStats counts the live files page by page; the HTTP API does not list
// the trash, so it is reported as not counted.
func (r *Remote) scanStats(ctx context.Context) (*StorageStats, error) {
	c := newStatsCounter()
	cursor := ""
	for {
		fs, next, err := r.Client.List(ctx, 1000, cursor)
		if err != nil {
			return nil, err
		}
		for _, f := range fs {
			c.add(f)
		}
		if next == "" {
			break
		}
		cursor = next
	}
	st := c.result(false)
	st.Notes = append(st.Notes, "the trash is not counted: this server has no GET /v1/stats, and its HTTP API does not list deleted files")
	return st, nil
}

func (r *Remote) Watch(ctx context.Context, after int64, fn func(*filehub.Event)) error {
	logger := r.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	c, err := wsclient.Dial(ctx, r.WebSocketURL, wsclient.Options{Key: r.Key, IgnoreMessages: true, Logger: logger})
	if err != nil {
		return err
	}
	defer c.Close()
	// The stream cannot start "now": it replays the retained log from
	// the start, and what happened before this process started is not
	// news to its client.
	var since time.Time
	if after < 0 {
		after, since = 0, time.Now().Add(-time.Second)
	}
	return c.Subscribe(ctx, after, func(e filehub.Event) error {
		if e.Time.Before(since) {
			return nil
		}
		fn(&e)
		return nil
	})
}

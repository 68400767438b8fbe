package cleanup

import (
	"context"

	"github.com/filehub/filehub/api"
)

// This file is the cleanup service's edge: the one place that translates
// between its domain types and the wire types in package api, for every
// transport (HTTP, WebSocket, CLI). Nothing else of the service knows api.

// RunOptionsFrom converts a run request (the HTTP body or the WebSocket
// params, which are the same type) to the service's options. trigger says
// which transport asked ("api", "websocket", "cli"). Returns EINVALID for
// an unknown kind; the mode of provider orphans is checked by Run.
func RunOptionsFrom(req api.CleanupRunRequest, trigger string) (RunOptions, error) {
	opts := RunOptions{DryRun: req.DryRun, Force: req.Force, Trigger: trigger, ProviderOrphans: req.ProviderOrphans}
	for _, s := range req.Only {
		k, err := ParseKind(s)
		if err != nil {
			return RunOptions{}, err
		}
		opts.Only = append(opts.Only, k)
	}
	return opts, nil
}

// ReportWire returns r as sent over the wire; nil for nil.
func ReportWire(r *Report) *api.CleanupReport {
	if r == nil {
		return nil
	}
	w := &api.CleanupReport{
		RunID: r.RunID, Trigger: r.Trigger, Actor: r.Actor, DryRun: r.DryRun, Force: r.Force,
		StartedAt: r.StartedAt, FinishedAt: r.FinishedAt, Status: r.Status, Error: r.Error,
		Settings:                 SettingsWire(r.Settings),
		TotalBlobs:               r.TotalBlobs,
		PlannedBlobDeletions:     r.PlannedBlobDeletions,
		TotalProviderFiles:       r.TotalProviderFiles,
		PlannedProviderDeletions: r.PlannedProviderDeletions,
		BytesFreed:               r.BytesFreed,
		Errors:                   r.Errors,
	}
	for _, q := range r.ProviderQuotas {
		w.ProviderQuotas = append(w.ProviderQuotas, api.ProviderQuota(q))
	}
	if r.Kinds != nil {
		w.Kinds = make(map[string]*api.CleanupKindReport, len(r.Kinds))
	}
	for k, kr := range r.Kinds {
		if kr == nil {
			w.Kinds[string(k)] = nil
			continue
		}
		wk := &api.CleanupKindReport{
			Scanned: kr.Scanned, Found: kr.Found, Deleted: kr.Deleted, BytesFreed: kr.BytesFreed,
			Skipped: kr.Skipped, Unsupported: kr.Unsupported,
		}
		if kr.Targets != nil {
			wk.Targets = make([]api.CleanupTarget, len(kr.Targets))
		}
		for i, t := range kr.Targets {
			wk.Targets[i] = api.CleanupTarget(t)
		}
		w.Kinds[string(k)] = wk
	}
	return w
}

// ReportsWire converts a list of reports; never nil, so that it encodes
// as [].
func ReportsWire(rs []*Report) []*api.CleanupReport {
	out := make([]*api.CleanupReport, len(rs))
	for i, r := range rs {
		out[i] = ReportWire(r)
	}
	return out
}

// SettingsWire returns s as sent over the wire.
func SettingsWire(s Settings) api.CleanupSettings {
	return api.CleanupSettings{
		TrashGrace:        api.Duration(s.TrashGrace),
		BlobGrace:         api.Duration(s.BlobGrace),
		UploadExpiry:      api.Duration(s.UploadExpiry),
		Interval:          api.Duration(s.Interval),
		MaxDeleteFraction: s.MaxDeleteFraction,
	}
}

// WireRunner runs cleanups for a transport that takes api requests, with
// the given trigger; it implements wsserver.CleanupRunner (the WebSocket
// method cleanup.run) without either package knowing the other.
type WireRunner struct {
	Service *Service
	Trigger string
}

// RunCleanup converts req, runs it and returns the report on the wire.
func (r WireRunner) RunCleanup(ctx context.Context, req api.CleanupRunRequest) (*api.CleanupReport, error) {
	opts, err := RunOptionsFrom(req, r.Trigger)
	if err != nil {
		return nil, err
	}
	rep, err := r.Service.Run(ctx, opts)
	if err != nil {
		return nil, err
	}
	return ReportWire(rep), nil
}

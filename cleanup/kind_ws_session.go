package cleanup

import (
	"context"
	"fmt"

	"github.com/filehub/filehub"
)

func init() { registerKind(KindWSSession, func() kind { return &wsSessionKind{} }) }

// expirePage is the most sessions one ExpireWSSessions call deletes, so that
// a run with many to expire holds SQLite's writer (which the WebSocket
// group commit shares) only briefly at a time.
const expirePage = 500

// wsSessionKind removes durable WebSocket sessions gone for longer than the
// session TTL (Config.WSSessionTTL, the daemon's --ws-session-ttl) — detached
// and never resumed, or still marked attached but not saved since (their
// process died with the connection open) — with their unacknowledged
// frames and cached results. The store deletes each only if that still
// holds, in the same statement, so a session resumed between plan and
// apply stays; that re-check is also why the deletion needs no lease
// fence: a run acting late deletes nothing a timely one would not.
type wsSessionKind struct {
	sessions filehub.WSSessionStore
	found    []*filehub.WSSession
}

func (*wsSessionKind) name() Kind         { return KindWSSession }
func (*wsSessionKind) phases() []string   { return []string{PhaseSessions} }
func (*wsSessionKind) refuse(*KindReport) {}

// deletions: a session is no blob and no provider file; the cap does not
// count it.
func (*wsSessionKind) deletions() (capBase, int64) { return capNone, 0 }

func (k *wsSessionKind) plan(ctx context.Context, x *execution, kr *KindReport) error {
	sessions, ok := x.s.meta.(filehub.WSSessionStore)
	lister, ok2 := x.s.meta.(filehub.WSSessionLister)
	if !ok || !ok2 {
		kr.Unsupported = true
		return nil
	}
	k.sessions = sessions
	found, err := lister.ListExpiredWSSessions(ctx, x.now.Add(-x.s.cfg.WSSessionTTL), 0)
	if err != nil {
		return err
	}
	k.found = found
	kr.Scanned = int64(len(found))
	kr.Found = int64(len(found))
	return nil
}

func (k *wsSessionKind) apply(ctx context.Context, x *execution, _ string, kr *KindReport) error {
	if len(k.found) == 0 {
		return nil
	}
	ttl := x.s.cfg.WSSessionTTL
	if x.r.DryRun {
		for _, s := range k.found {
			x.done(kr, Target{Name: s.ID}, false)
		}
		return nil
	}
	planned := make(map[string]*filehub.WSSession, len(k.found))
	for _, s := range k.found {
		planned[s.ID] = s
	}
	// The same cutoff as the plan: what crossed it since (nothing, but for
	// clocks that differ between instances) waits for the next run, and
	// no more than planned is deleted.
	cutoff := x.now.Add(-ttl)
	var audits []filehub.AuditEntry
	for left := len(k.found); left > 0; {
		ids, err := k.sessions.ExpireWSSessions(ctx, cutoff, min(left, expirePage))
		if err != nil {
			return filehub.WrapError(filehub.EUNAVAILABLE, "expire WebSocket sessions", err)
		}
		if len(ids) == 0 {
			break
		}
		left -= len(ids)
		for _, id := range ids {
			x.done(kr, Target{Name: id}, false)
			reason := fmt.Sprintf("WebSocket session detached for longer than the session TTL (%s)", ttl)
			if s := planned[id]; s != nil {
				reason = fmt.Sprintf("WebSocket session of key %s detached since %s, longer than the session TTL (%s)",
					s.KeyID, s.DetachedAt.UTC().Format("2006-01-02T15:04:05.000Z07:00"), ttl)
				delete(planned, id)
			}
			a := x.audit(filehub.AuditWSSessionExpired, reason)
			a.TargetKind, a.Target = filehub.TargetWSSession, id
			audits = append(audits, a)
		}
	}
	// What the plan found but the store kept was resumed (or deleted by
	// its server) meanwhile.
	for _, s := range k.found {
		if planned[s.ID] != nil {
			x.skip(ctx, kr, Target{Name: s.ID}, filehub.TargetWSSession, s.ID, "resumed or removed since the plan")
		}
	}
	if err := x.s.store.AppendAudit(ctx, audits...); err != nil {
		return filehub.WrapError(filehub.EUNAVAILABLE, "audit expired WebSocket sessions", err)
	}
	return nil
}

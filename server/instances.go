package server

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/filehub/filehub"
	"github.com/filehub/filehub/auth"
)

// liveIntervals is how many heartbeat intervals an instance may stay
// silent and still count as live: one late heartbeat (a slow database, a
// GC pause) must not make the others take its share at once.
const liveIntervals = 3

// instances makes the per-key rate limits hold across the instances on
// one metadata store (docs/decisions.md, "Cluster-wide rate limits"): it
// heartbeats into the store, counts the live instances and gives every
// per-key limiter of this process a share of 1/n of the configured limit.
// With a balancer that spreads a key's requests evenly, the cluster then
// admits the configured rate.
type instances struct {
	store    filehub.InstanceStore
	id       string // this process's run; unique even if InstanceID is shared
	interval time.Duration
	limiters []*auth.Limiters
	count    prometheus.Gauge
	log      *slog.Logger
	now      func() time.Time

	live int // the count the shares are set for (Run's goroutine only)
}

// newInstances returns the heartbeat service of instance id over store,
// setting the share of limiters (nil ones are skipped). It registers the
// gauge filehub_cluster_instances on reg.
func newInstances(store filehub.InstanceStore, id string, interval time.Duration, limiters []*auth.Limiters, reg prometheus.Registerer, log *slog.Logger) *instances {
	in := &instances{
		store: store, id: id, interval: interval, log: log, now: time.Now, live: 1,
		count: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "filehub_cluster_instances",
			Help: "Live filehub instances on this metadata store, as this instance counts them from their heartbeats; each enforces 1/n of the per-key rate limits.",
		}),
	}
	for _, l := range limiters {
		if l != nil {
			in.limiters = append(in.limiters, l)
		}
	}
	in.count.Set(1)
	reg.MustRegister(in.count)
	return in
}

// Run heartbeats every interval until ctx ends, then removes this
// instance from the store so that the others take over its share at their
// next heartbeat rather than a few intervals later. A failing store is
// logged and retried at the next interval; the shares stay as they were,
// the best guess while the cluster cannot be seen. Run returns nil.
func (in *instances) Run(ctx context.Context) error {
	t := time.NewTicker(in.interval)
	defer t.Stop()
	failing := false
	for ctx.Err() == nil {
		if err := in.beat(ctx); err != nil && ctx.Err() == nil {
			// Once per outage: the store's own errors are logged and
			// counted elsewhere too.
			if !failing {
				in.log.Warn("cluster heartbeat failed; keeping the rate-limit share", "err", err, "instances", in.live)
			}
			failing = true
		} else if err == nil && failing {
			in.log.Info("cluster heartbeat works again", "instances", in.live)
			failing = false
		}
		select {
		case <-ctx.Done():
		case <-t.C:
		}
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), in.interval)
	defer cancel()
	if err := in.store.RemoveInstance(rctx, in.id); err != nil {
		// Not fatal: the row stops counting after liveIntervals.
		in.log.Warn("cluster: could not remove this instance's heartbeat", "err", err)
	}
	return nil
}

// beat records this instance's heartbeat, counts the live instances and
// sets the shares if the count changed.
func (in *instances) beat(ctx context.Context) error {
	// A heartbeat stamped now that commits liveIntervals later counts
	// for no one: give up then rather than let a stuck store hold the
	// loop.
	ctx, cancel := context.WithTimeout(ctx, liveIntervals*in.interval)
	defer cancel()
	now := in.now()
	if err := in.store.HeartbeatInstance(ctx, in.id, now); err != nil {
		return err
	}
	n, err := in.store.LiveInstances(ctx, now.Add(-liveIntervals*in.interval))
	if err != nil {
		return err
	}
	// This instance has just sent its heartbeat, so it counts itself.
	n = max(n, 1)
	if n != in.live {
		in.log.Info("cluster size changed; per-key rate limits shared accordingly", "instances", n, "was", in.live)
		in.live = n
	}
	for _, l := range in.limiters {
		l.SetShare(n) // a no-op when unchanged
	}
	in.count.Set(float64(n))
	return nil
}

// buildInstances builds the heartbeat service on the metadata store, after
// the transports whose per-key limiters it shares out. A store without
// filehub.InstanceStore, or a negative Config.HeartbeatInterval, leaves
// each instance enforcing the whole limit, as a single server does.
func (s *Server) buildInstances() {
	store, ok := s.meta.(filehub.InstanceStore)
	if !ok || s.cfg.HeartbeatInterval <= 0 {
		return
	}
	// InstanceID may well be the same on every instance (one config file
	// for all, or pid 1 in containers of one host name): a random suffix
	// keeps each process's run a row of its own, or two instances would
	// count as one and admit twice the limit.
	id := instanceID(s.cfg.InstanceID) + "/" + filehub.NewID("")[:8]
	limiters := append(append([]*auth.Limiters(nil), s.keyLimiters...), s.mcp.KeyLimiters())
	s.instances = newInstances(store, id, s.cfg.HeartbeatInterval, limiters, s.cfg.Registerer,
		s.cfg.Logger.With("component", "cluster", "instance", id))
}

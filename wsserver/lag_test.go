package wsserver_test

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/filehub/filehub"
	"github.com/filehub/filehub/wsserver"
)

// TestEventsLagGauge: filehub_events_lag_seconds is 0 while the hub has
// read the whole log, the age of the oldest event it has not read while it
// lags (here: an event written behind its back, with a poll interval that
// never comes), and 0 again once it reads it.
func TestEventsLagGauge(t *testing.T) {
	e := newEnv(t, wsserver.Config{EventPollInterval: time.Hour})
	const lag = "filehub_events_lag_seconds"
	waitFor(t, "the hub to find the end of the log (lag 0)", func() bool { return e.metric(lag) == 0 })

	// Written without telling the hub, 90 s old: the hub reads the log
	// only when notified or after an hour.
	ev := &filehub.Event{Type: filehub.EventCleanupStarted, Time: time.Now().Add(-90 * time.Second)}
	if err := e.db.AppendEvent(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	if got := e.metric(lag); math.IsNaN(got) || got < 90 {
		t.Errorf("with an unread event 90 s old the lag is %v, want at least 90", got)
	}
	// A newer unread event does not hide the older one.
	if err := e.db.AppendEvent(context.Background(), &filehub.Event{Type: filehub.EventCleanupStarted, Time: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if got := e.metric(lag); got < 90 {
		t.Errorf("with a newer unread event too the lag is %v, want at least 90 (the oldest unread)", got)
	}

	e.srv.Notify()
	waitFor(t, "the lag to drop to 0 once the hub has read the events", func() bool { return e.metric(lag) == 0 })
}

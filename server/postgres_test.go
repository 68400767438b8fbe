package server_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/filehub/filehub"
	"github.com/filehub/filehub/client"
	"github.com/filehub/filehub/internal/citest"
	"github.com/filehub/filehub/server"
	"github.com/filehub/filehub/wsclient"
)

// postgresSchemaURL creates a schema of the test's own in the database of
// FILEHUB_TEST_POSTGRES, drops it when the test ends, and returns a URL
// whose connections use it. Without the variable the test is skipped,
// or fails in CI; set but unreachable, it fails.
func postgresSchemaURL(t *testing.T) string {
	t.Helper()
	base := citest.PostgresDSN(t)
	admin := func(sql string) error {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, base)
		if err != nil {
			return err
		}
		defer conn.Close(context.Background())
		_, err = conn.Exec(ctx, sql)
		return err
	}
	var b [6]byte
	rand.Read(b[:])
	schema := pgx.Identifier{"server_test_" + hex.EncodeToString(b[:])}
	if err := admin("CREATE SCHEMA " + schema.Sanitize()); err != nil {
		t.Fatalf("FILEHUB_TEST_POSTGRES is set but a schema cannot be created: %v", err)
	}
	t.Cleanup(func() {
		if err := admin("DROP SCHEMA " + schema.Sanitize() + " CASCADE"); err != nil {
			t.Errorf("drop schema: %v", err)
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("FILEHUB_TEST_POSTGRES: %v", err)
	}
	q := u.Query()
	q.Set("search_path", schema[0])
	u.RawQuery = q.Encode()
	return u.String()
}

// TestEventsAcrossInstances runs two daemons on one PostgreSQL schema with
// their event polls switched off (an hour): a file uploaded to A reaches
// a live WebSocket subscription on B only if A's commit wakes B's hub,
// through PostgreSQL's NOTIFY and B's listener. Each daemon keeps its
// blobs on its own disk; B only reads the event log.
func TestEventsAcrossInstances(t *testing.T) {
	db := postgresSchemaURL(t)
	start := func(name string) *server.Server {
		cfg := testConfig(t, t.TempDir())
		cfg.DB = db
		cfg.WSEventPollInterval = time.Hour
		cfg.CleanupInterval = -1
		cfg.InstanceID = name
		srv := MustNew(t, cfg)
		ctx, stop := context.WithCancel(context.Background())
		runErr := make(chan error, 1)
		go func() { runErr <- srv.Run(ctx) }()
		t.Cleanup(func() {
			stop()
			if err := <-runErr; err != nil {
				t.Errorf("%s: Run: %v", name, err)
			}
		})
		return srv
	}
	a, b := start("a"), start("b")
	ctx := t.Context()

	ws, err := wsclient.Dial(ctx, "ws://"+b.Addr()+"/v1/ws", wsclient.Options{Key: testKey, IgnoreMessages: true})
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	events := make(chan filehub.Event, 16)
	subCtx, endSub := context.WithCancel(ctx)
	subDone := make(chan error, 1)
	go func() {
		subDone <- ws.Subscribe(subCtx, 0, func(ev filehub.Event) error {
			events <- ev
			return nil
		})
	}()

	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	c := client.New("http://"+a.Addr(), testKey, client.WithHTTPClient(&http.Client{Transport: tr}))
	// The first event may be read when the subscription starts; the
	// later ones are committed on A while B's subscription is live.
	//
	// A wake-up can still be missed when it lands while B's subscription
	// is being set up (tracked in issue 14): each later commit on A
	// notifies again, so after 5 s without the event the test commits a
	// nudge on A. With B's poll at an hour, the event arrives only through
	// a NOTIFY either way; without LISTEN/NOTIFY it never does.
	upload := func(name string) string {
		t.Helper()
		up, err := c.Upload(ctx, name, strings.NewReader("committed on A: "+name), -1)
		if err != nil {
			t.Fatal(err)
		}
		return up.ID
	}
	nudges := 0
	for _, name := range []string{"first.txt", "second.txt", "third.txt"} {
		id := upload(name)
		deadline := time.After(30 * time.Second)
	wait:
		for {
			select {
			case ev := <-events:
				if ev.Type == filehub.EventFileCreated && ev.File != nil && ev.File.ID == id {
					break wait
				}
			case <-time.After(5 * time.Second):
				nudges++
				upload(fmt.Sprintf("nudge-%d.txt", nudges))
			case <-deadline:
				t.Fatalf("no %s event for %s over B's WebSocket (%d nudges)", filehub.EventFileCreated, id, nudges)
			}
		}
	}
	if nudges > 0 {
		t.Logf("%d nudge commits were needed: a wake-up was missed", nudges)
	}
	endSub()
	if err := <-subDone; !errors.Is(err, context.Canceled) {
		t.Errorf("Subscribe = %v, want context.Canceled", err)
	}
}

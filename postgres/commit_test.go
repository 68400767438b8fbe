package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/filehub/filehub"
	"github.com/filehub/filehub/postgres"
)

// TestCreateBatchIsolatesFailures commits one batch in which some calls
// fail on their own (a taken ID, a size that contradicts the stored one, a
// place that fails, one that panics, a canceled caller): each of them gets
// its own error and leaves nothing behind, and every other call of the
// batch is committed, with the right dedup flags, place calls, reference
// counts and a gap-free run of events.
func TestCreateBatchIsolatesFailures(t *testing.T) {
	db := mustOpen(t, postgres.Config{})
	ctx := t.Context()
	existing := newFile("existing")
	if _, err := db.CreateFile(ctx, existing, nil); err != nil {
		t.Fatal(err)
	}

	var placed sync.Map // file ID -> place calls
	place := func(f *filehub.File, fail error) filehub.PlaceFunc {
		return func(context.Context) error {
			n, _ := placed.LoadOrStore(f.ID, new(atomic.Int64))
			n.(*atomic.Int64).Add(1)
			if fail != nil {
				return fail
			}
			return nil
		}
	}
	errDisk := errors.New("disk on fire")
	canceled, cancel := context.WithCancel(ctx)
	cancel()

	newA, dupA := newFile("content a"), newFile("content a")
	takenID := newFile("content t")
	takenID.ID = existing.ID
	badSize := newFile("existing")
	badSize.Size++
	placeFails, afterFailed := newFile("content c"), newFile("content c")
	panics := newFile("content d")
	again := newFile("existing")
	calls := []struct {
		f       *filehub.File
		place   filehub.PlaceFunc
		ctx     context.Context
		code    string // "" for success
		dedup   bool
		placed  int64
		wantErr error
	}{
		{f: newA, place: place(newA, nil), placed: 1},
		{f: dupA, place: place(dupA, nil), dedup: true},
		{f: takenID, place: place(takenID, nil), code: filehub.ECONFLICT},
		{f: badSize, place: place(badSize, nil), code: filehub.EINVALID},
		{f: placeFails, place: place(placeFails, errDisk), placed: 1, wantErr: errDisk},
		// The first call of content c failed: this one inserts the record
		// and places the object itself.
		{f: afterFailed, place: place(afterFailed, nil), placed: 1},
		{f: panics, place: func(context.Context) error { panic("boom") }, code: filehub.EINTERNAL},
		{f: again, place: place(again, nil), dedup: true},
		{f: newFile("canceled"), ctx: canceled, wantErr: context.Canceled},
	}
	files := make([]*filehub.File, len(calls))
	places := make([]filehub.PlaceFunc, len(calls))
	ctxs := make([]context.Context, len(calls))
	for i, c := range calls {
		files[i], places[i], ctxs[i] = c.f, c.place, ctx
		if c.ctx != nil {
			ctxs[i] = c.ctx
		}
	}
	dedup, errs := db.CreateFilesInOneBatch(ctxs, files, places)

	var created []string
	for i, c := range calls {
		switch {
		case c.wantErr != nil:
			if !errors.Is(errs[i], c.wantErr) {
				t.Errorf("call %d (%s): err = %v, want %v", i, c.f.ID, errs[i], c.wantErr)
			}
		case c.code != "":
			if filehub.ErrorCode(errs[i]) != c.code {
				t.Errorf("call %d (%s): err = %v, want %s", i, c.f.ID, errs[i], c.code)
			}
		case errs[i] != nil:
			t.Errorf("call %d (%s): %v", i, c.f.ID, errs[i])
		case dedup[i] != c.dedup:
			t.Errorf("call %d (%s): deduplicated = %v, want %v", i, c.f.ID, dedup[i], c.dedup)
		}
		var n int64
		if v, ok := placed.Load(c.f.ID); ok {
			n = v.(*atomic.Int64).Load()
		}
		// A call's place may run once per attempt of its batch.
		if (n == 0) != (c.placed == 0) {
			t.Errorf("call %d (%s): place called %d times, want %d", i, c.f.ID, n, c.placed)
		}
		if c.f == takenID {
			continue // its ID belongs to the existing file
		}
		_, err := db.FindFile(ctx, c.f.ID)
		if ok := c.code == "" && c.wantErr == nil; ok {
			created = append(created, c.f.ID)
			if err != nil {
				t.Errorf("call %d (%s) succeeded but its file is not there: %v", i, c.f.ID, err)
			}
		} else if filehub.ErrorCode(err) != filehub.ENOTFOUND {
			t.Errorf("call %d (%s) failed but FindFile = %v, want ENOTFOUND", i, c.f.ID, err)
		}
	}

	for sum, want := range map[string]int64{newA.SHA256: 2, existing.SHA256: 2, placeFails.SHA256: 1} {
		if b, err := db.FindBlob(ctx, sum); err != nil || b.RefCount != want {
			t.Errorf("blob %s = %+v, %v; want count %d", sum, b, err, want)
		}
	}
	for _, f := range []*filehub.File{takenID, panics} {
		if _, err := db.FindBlob(ctx, f.SHA256); filehub.ErrorCode(err) != filehub.ENOTFOUND {
			t.Errorf("blob of failed call %s: FindBlob = %v, want ENOTFOUND", f.ID, err)
		}
	}

	events, err := db.ListEvents(ctx, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for i, e := range events {
		if e.ID != int64(i+1) || e.Type != filehub.EventFileCreated || e.File == nil {
			t.Fatalf("event %d = %+v, want file.created with id %d", i, e, i+1)
		}
		got = append(got, e.File.ID)
	}
	want := append([]string{existing.ID}, created...)
	slices.Sort(got[1:])
	slices.Sort(want[1:])
	if !slices.Equal(got, want) {
		t.Errorf("events for files %v, want %v", got, want)
	}
}

// TestCreateBatchesDoNotDeadlock runs batches of the same contents on two
// stores (two processes) at once, queued in opposite orders. Batches take
// several content locks; taken in queue order they would deadlock, which
// PostgreSQL breaks by aborting one transaction (a retry). Taken in key
// order they never do.
func TestCreateBatchesDoNotDeadlock(t *testing.T) {
	schema := freshSchema(t)
	regs := []*prometheus.Registry{prometheus.NewRegistry(), prometheus.NewRegistry()}
	stores := []*postgres.DB{
		mustOpen(t, postgres.Config{Schema: schema, Registerer: regs[0]}),
		mustOpen(t, postgres.Config{Schema: schema, Registerer: regs[1]}),
	}
	ctx := t.Context()
	const contents, rounds = 32, 40
	var wg sync.WaitGroup
	for s, db := range stores {
		wg.Go(func() {
			for r := range rounds {
				files := make([]*filehub.File, contents)
				ctxs := make([]context.Context, contents)
				places := make([]filehub.PlaceFunc, contents)
				for i := range contents {
					c := i
					if s == 1 {
						c = contents - 1 - i
					}
					files[i], ctxs[i] = newFile(fmt.Sprintf("content %d", c)), ctx
				}
				_, errs := db.CreateFilesInOneBatch(ctxs, files, places)
				if err := errors.Join(errs...); err != nil {
					t.Errorf("store %d, round %d: %v", s, r, err)
					return
				}
			}
		})
	}
	wg.Wait()
	for i := range contents {
		f := newFile(fmt.Sprintf("content %d", i))
		if b, err := stores[0].FindBlob(ctx, f.SHA256); err != nil || b.RefCount != 2*rounds {
			t.Errorf("content %d: blob = %+v, %v; want count %d", i, b, err, 2*rounds)
		}
	}
	for s, reg := range regs {
		if n := metricValue(t, reg, "filehub_postgres_tx_retries_total"); n != 0 {
			t.Errorf("store %d retried %v transactions (deadlocks), want 0", s, n)
		}
	}
}

// TestCreateFileGroupCommit checks that concurrent CreateFile calls are
// committed together: fewer batches than calls, and every call counted
// once.
func TestCreateFileGroupCommit(t *testing.T) {
	reg := prometheus.NewRegistry()
	db := mustOpen(t, postgres.Config{Registerer: reg, MaxConns: 8})
	ctx := t.Context()
	const workers, each = 32, 8
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				if _, err := db.CreateFile(ctx, newFile(fmt.Sprintf("w%d-%d", w, i%3)), nil); err != nil {
					t.Errorf("CreateFile: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	h := metric(t, reg, "filehub_postgres_create_batch_size").GetHistogram()
	if h.GetSampleSum() != workers*each {
		t.Errorf("batches hold %v calls, want %d", h.GetSampleSum(), workers*each)
	}
	if h.GetSampleCount() >= workers*each {
		t.Errorf("%d calls took %d batches: no two were committed together", workers*each, h.GetSampleCount())
	}
	if _, latest, err := db.EventBounds(ctx); err != nil || latest != workers*each {
		t.Errorf("EventBounds latest = %d, %v; want %d", latest, err, workers*each)
	}
}

// TestCreateFileAfterClose checks that a closed store refuses creates
// with EUNAVAILABLE instead of hanging on the stopped committer.
func TestCreateFileAfterClose(t *testing.T) {
	db, err := postgres.Open(t.Context(), testDSN(t), postgres.Config{Schema: freshSchema(t)})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := db.CreateFile(t.Context(), newFile("late"), nil); filehub.ErrorCode(err) != filehub.EUNAVAILABLE {
		t.Errorf("CreateFile after Close = %v, want EUNAVAILABLE", err)
	}
}

// metric returns the one metric of family name in reg.
func metric(t *testing.T, reg *prometheus.Registry, name string) *dto.Metric {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0]
		}
	}
	t.Fatalf("metric %s not registered", name)
	return nil
}

func metricValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	return metric(t, reg, name).GetCounter().GetValue()
}

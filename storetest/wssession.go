package storetest

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/filehub/filehub"
)

// RunWSSessionStore runs the filehub.WSSessionStore conformance suite
// against the stores returned by newStore (fresh and empty per subtest, as
// for RunMetaStore). If a store also implements filehub.WSSessionLister,
// the suite checks that it lists what ExpireWSSessions deletes.
func RunWSSessionStore(t *testing.T, newStore func(t *testing.T) filehub.WSSessionStore) {
	t.Helper()
	for _, tc := range []struct {
		name string
		fn   func(t *testing.T, s filehub.WSSessionStore)
	}{
		{"CreateClaim", testWSCreateClaim},
		{"CreateInvalid", testWSCreateInvalid},
		{"ClaimCredentials", testWSClaimCredentials},
		{"Fencing", testWSFencing},
		{"ConcurrentClaims", testWSConcurrentClaims},
		{"FramesPruned", testWSFramesPruned},
		{"Results", testWSResults},
		{"BatchWithLost", testWSBatchWithLost},
		{"SaveAgain", testWSSaveAgain},
		{"Expire", testWSExpire},
		{"Count", testWSCount},
		{"Delete", testWSDelete},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.fn(t, newStore(t))
		})
	}
}

// wsEpoch is the suite's "now", at a whole microsecond so that every
// backend stores it exactly.
var wsEpoch = time.Date(2026, 4, 1, 12, 0, 0, 0, time.UTC)

func wsHash(s string) []byte {
	h := sha256.Sum256([]byte(s))
	return h[:]
}

func newWSSession(key string) *filehub.WSSession {
	return &filehub.WSSession{
		ID:        filehub.NewID("s_"),
		KeyID:     key,
		TokenHash: wsHash("token"),
		Epoch:     1,
		Owner:     "instance-a",
		CreatedAt: wsEpoch,
		UpdatedAt: wsEpoch,
	}
}

func mustCreateWS(t *testing.T, s filehub.WSSessionStore, ws *filehub.WSSession) {
	t.Helper()
	if err := s.CreateWSSession(t.Context(), ws); err != nil {
		t.Fatalf("CreateWSSession(%s): %v", ws.ID, err)
	}
}

// wsClaim is a claim of session id for owner with the credentials
// newWSSession gives every session of key k_owner.
func wsClaim(id, owner string) filehub.WSClaim {
	return filehub.WSClaim{ID: id, Owner: owner, KeyID: "k_owner", TokenHash: wsHash("token")}
}

func mustClaimWS(t *testing.T, s filehub.WSSessionStore, id, owner string) *filehub.WSSession {
	t.Helper()
	ws, err := s.ClaimWSSession(t.Context(), wsClaim(id, owner), wsEpoch.Add(time.Minute))
	if err != nil {
		t.Fatalf("ClaimWSSession(%s): %v", id, err)
	}
	return ws
}

func mustSaveWS(t *testing.T, s filehub.WSSessionStore, updates ...filehub.WSSessionUpdate) []string {
	t.Helper()
	lost, err := s.SaveWSSessions(t.Context(), updates)
	if err != nil {
		t.Fatalf("SaveWSSessions: %v", err)
	}
	return lost
}

// wsUpdate returns an update of ws that changes nothing but UpdatedAt.
func wsUpdate(ws *filehub.WSSession) filehub.WSSessionUpdate {
	return filehub.WSSessionUpdate{
		ID: ws.ID, Epoch: ws.Epoch,
		TokenHash: ws.TokenHash, PrevTokenHash: ws.PrevTokenHash,
		InSeq: ws.InSeq, OutSeq: ws.OutSeq, ClientAcked: ws.ClientAcked,
		Subscribed: ws.Subscribed, EventCursor: ws.EventCursor,
		UpdatedAt: wsEpoch.Add(30 * time.Second), DetachedAt: ws.DetachedAt,
	}
}

func wantWSCode(t *testing.T, what string, err error, code string) {
	t.Helper()
	if got := filehub.ErrorCode(err); got != code {
		t.Fatalf("%s: error %v (code %q), want code %q", what, err, got, code)
	}
}

func frameSeqs(fs []filehub.WSFrame) []int64 {
	seqs := make([]int64, len(fs))
	for i, f := range fs {
		seqs[i] = f.Seq
	}
	return seqs
}

// resultsString renders results as "id=body" in order, a tombstone as
// "id=<nil>".
func resultsString(rs []filehub.WSResult) string {
	var b bytes.Buffer
	for i, r := range rs {
		if i > 0 {
			b.WriteByte(' ')
		}
		if r.Body == nil {
			fmt.Fprintf(&b, "%s=<nil>", r.ID)
		} else {
			fmt.Fprintf(&b, "%s=%s", r.ID, r.Body)
		}
	}
	return b.String()
}

func testWSCreateClaim(t *testing.T, s filehub.WSSessionStore) {
	ws := newWSSession("k_owner")
	ws.PrevTokenHash = wsHash("previous")
	ws.InSeq, ws.OutSeq, ws.ClientAcked = 17, 12, 9
	ws.Out = []filehub.WSFrame{{Seq: 10, Data: []byte(`{"t":"msg","seq":10}`)}, {Seq: 12, Data: []byte{0, 1, 2, 255}}}
	ws.Results = []filehub.WSResult{{ID: "r-b", Body: []byte(`"ok":true`)}, {ID: "r-a", Body: nil}, {ID: "r-c", Body: []byte{}}}
	ws.Subscribed, ws.EventCursor = true, 4242
	ws.CreatedAt = wsEpoch.Add(-time.Hour)
	ws.UpdatedAt = wsEpoch.Add(-time.Minute)
	ws.DetachedAt = wsEpoch.Add(-30 * time.Second)
	mustCreateWS(t, s, ws)

	err := s.CreateWSSession(t.Context(), ws)
	wantWSCode(t, "CreateWSSession of an existing ID", err, filehub.ECONFLICT)
	_, err = s.ClaimWSSession(t.Context(), wsClaim("s_nosuchsession", "b"), wsEpoch)
	wantWSCode(t, "ClaimWSSession of an unknown ID", err, filehub.ENOTFOUND)

	now := wsEpoch.Add(time.Minute)
	got, err := s.ClaimWSSession(t.Context(), wsClaim(ws.ID, "instance-b"), now)
	if err != nil {
		t.Fatalf("ClaimWSSession: %v", err)
	}
	if got.ID != ws.ID || got.KeyID != ws.KeyID || !bytes.Equal(got.TokenHash, ws.TokenHash) ||
		!bytes.Equal(got.PrevTokenHash, ws.PrevTokenHash) || got.Epoch != 2 || got.Owner != "instance-b" ||
		got.InSeq != 17 || got.OutSeq != 12 || got.ClientAcked != 9 || !got.Subscribed || got.EventCursor != 4242 ||
		!got.CreatedAt.Equal(ws.CreatedAt) || !got.UpdatedAt.Equal(now) || !got.DetachedAt.IsZero() {
		t.Errorf("claimed = %+v\nwant the created %+v with epoch 2, owner instance-b, updated now, attached", got, ws)
	}
	if got.CreatedAt.Location() != time.UTC {
		t.Errorf("CreatedAt in %v, want UTC", got.CreatedAt.Location())
	}
	if len(got.Out) != 2 || got.Out[0].Seq != 10 || !bytes.Equal(got.Out[0].Data, ws.Out[0].Data) ||
		got.Out[1].Seq != 12 || !bytes.Equal(got.Out[1].Data, ws.Out[1].Data) {
		t.Errorf("Out = %+v, want %+v", got.Out, ws.Out)
	}
	// An empty body is a result, not a tombstone.
	if r := resultsString(got.Results); r != "r-b=\"ok\":true r-a=<nil> r-c=" || got.Results[2].Body == nil {
		t.Errorf("Results = %s %+v, want r-b, tombstone r-a, empty r-c in that order", r, got.Results)
	}

	// A session without a previous token and never detached.
	bare := newWSSession("k_owner")
	mustCreateWS(t, s, bare)
	got = mustClaimWS(t, s, bare.ID, "instance-c")
	if got.PrevTokenHash != nil || len(got.Out) != 0 || len(got.Results) != 0 || got.Epoch != 2 || got.Subscribed {
		t.Errorf("claimed bare session = %+v", got)
	}
}

func testWSCreateInvalid(t *testing.T, s filehub.WSSessionStore) {
	for name, mod := range map[string]func(ws *filehub.WSSession){
		"no id":          func(ws *filehub.WSSession) { ws.ID = "" },
		"no key":         func(ws *filehub.WSSession) { ws.KeyID = "" },
		"no token hash":  func(ws *filehub.WSSession) { ws.TokenHash = nil },
		"epoch 0":        func(ws *filehub.WSSession) { ws.Epoch = 0 },
		"acked past out": func(ws *filehub.WSSession) { ws.OutSeq, ws.ClientAcked = 1, 2 },
	} {
		ws := newWSSession("k_owner")
		mod(ws)
		wantWSCode(t, "CreateWSSession with "+name, s.CreateWSSession(t.Context(), ws), filehub.EINVALID)
	}
	if n, err := s.CountWSSessions(t.Context(), "k_owner"); err != nil || n != 0 {
		t.Errorf("after invalid creations, CountWSSessions = %d, %v; want 0", n, err)
	}
	ws := newWSSession("k_owner")
	mustCreateWS(t, s, ws)
	u := wsUpdate(ws)
	u.TokenHash = nil
	if _, err := s.SaveWSSessions(t.Context(), []filehub.WSSessionUpdate{u}); filehub.ErrorCode(err) != filehub.EINVALID {
		t.Errorf("SaveWSSessions without a token hash = %v, want EINVALID", err)
	}
	// Two updates of one session in a batch are refused as a whole: the
	// group commit merges a session's changes into one.
	ok := wsUpdate(ws)
	ok.InSeq = 7
	twice := wsUpdate(ws)
	if _, err := s.SaveWSSessions(t.Context(), []filehub.WSSessionUpdate{ok, twice, twice}); filehub.ErrorCode(err) != filehub.EINVALID {
		t.Errorf("SaveWSSessions with one session twice = %v, want EINVALID", err)
	}
	if got := mustClaimWS(t, s, ws.ID, "b"); got.InSeq != 0 {
		t.Errorf("a refused batch saved InSeq %d", got.InSeq)
	}
}

func testWSFencing(t *testing.T, s filehub.WSSessionStore) {
	ws := newWSSession("k_owner")
	mustCreateWS(t, s, ws) // owned by A at epoch 1
	b := mustClaimWS(t, s, ws.ID, "instance-b")
	if b.Epoch != 2 {
		t.Fatalf("claim by B: epoch %d, want 2", b.Epoch)
	}

	// A, paused through the takeover, wakes and saves with its old epoch.
	stale := wsUpdate(ws)
	stale.InSeq, stale.OutSeq, stale.EventCursor = 99, 1, 99
	stale.AddOut = []filehub.WSFrame{{Seq: 1, Data: []byte("from A")}}
	stale.PutResults = []filehub.WSResult{{ID: "from-a", Body: []byte("x")}}
	stale.DetachedAt = wsEpoch.Add(time.Hour)
	if lost := mustSaveWS(t, s, stale); !slices.Equal(lost, []string{ws.ID}) {
		t.Fatalf("save with the old epoch: lost = %v, want [%s]", lost, ws.ID)
	}

	// B's save works.
	fresh := wsUpdate(b)
	fresh.InSeq, fresh.OutSeq = 5, 1
	fresh.AddOut = []filehub.WSFrame{{Seq: 1, Data: []byte("from B")}}
	if lost := mustSaveWS(t, s, fresh); len(lost) != 0 {
		t.Fatalf("save with the current epoch: lost = %v", lost)
	}
	c := mustClaimWS(t, s, ws.ID, "instance-c")
	if c.Epoch != 3 || c.InSeq != 5 || c.EventCursor != 0 || len(c.Out) != 1 || string(c.Out[0].Data) != "from B" ||
		len(c.Results) != 0 {
		t.Errorf("after the stale and the current save: %+v; want B's state only", c)
	}
	// And now B is fenced out too.
	if lost := mustSaveWS(t, s, fresh); !slices.Equal(lost, []string{ws.ID}) {
		t.Errorf("B's save after C's claim: lost = %v, want [%s]", lost, ws.ID)
	}
}

func testWSConcurrentClaims(t *testing.T, s filehub.WSSessionStore) {
	ws := newWSSession("k_owner")
	mustCreateWS(t, s, ws)
	const n = 20
	claims := make([]*filehub.WSSession, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			claims[i], errs[i] = s.ClaimWSSession(t.Context(), wsClaim(ws.ID, fmt.Sprintf("instance-%d", i)), wsEpoch)
		})
	}
	wg.Wait()
	epochs := make(map[int64]bool)
	var newest int64
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("claim %d: %v", i, errs[i])
		}
		e := claims[i].Epoch
		if epochs[e] || e < 2 || e > n+1 {
			t.Fatalf("claim %d got epoch %d: want distinct epochs in 2..%d (%v)", i, e, n+1, epochs)
		}
		epochs[e] = true
		newest = max(newest, e)
	}
	// Exactly one claimer, the last, may write.
	current := 0
	for i := range n {
		u := wsUpdate(claims[i])
		u.InSeq = int64(i + 1)
		lost := mustSaveWS(t, s, u)
		if len(lost) == 0 {
			current++
			if claims[i].Epoch != newest {
				t.Errorf("claim %d with epoch %d saved, but %d is newer", i, claims[i].Epoch, newest)
			}
		}
	}
	if current != 1 {
		t.Errorf("%d claimers could save, want exactly 1", current)
	}
}

func testWSFramesPruned(t *testing.T, s filehub.WSSessionStore) {
	ws := newWSSession("k_owner")
	mustCreateWS(t, s, ws)
	u := wsUpdate(ws)
	u.OutSeq = 5
	for seq := int64(1); seq <= 5; seq++ {
		u.AddOut = append(u.AddOut, filehub.WSFrame{Seq: seq, Data: fmt.Appendf(nil, "frame %d", seq)})
	}
	mustSaveWS(t, s, u)

	u = wsUpdate(ws)
	u.OutSeq, u.ClientAcked = 7, 3
	u.AddOut = []filehub.WSFrame{{Seq: 6, Data: []byte("frame 6")}, {Seq: 7, Data: []byte("frame 7")}}
	mustSaveWS(t, s, u)
	got := mustClaimWS(t, s, ws.ID, "b")
	if seqs := frameSeqs(got.Out); !slices.Equal(seqs, []int64{4, 5, 6, 7}) || string(got.Out[0].Data) != "frame 4" {
		t.Fatalf("after ack 3: Out seqs %v, want [4 5 6 7]", seqs)
	}

	// Frames acknowledged in the same update that adds them are not kept.
	u = wsUpdate(got)
	u.OutSeq, u.ClientAcked = 9, 8
	u.AddOut = []filehub.WSFrame{{Seq: 8, Data: []byte("frame 8")}, {Seq: 9, Data: []byte("frame 9")}}
	mustSaveWS(t, s, u)
	got = mustClaimWS(t, s, ws.ID, "c")
	if seqs := frameSeqs(got.Out); !slices.Equal(seqs, []int64{9}) || got.ClientAcked != 8 || got.OutSeq != 9 {
		t.Fatalf("after ack 8: Out seqs %v (acked %d, out %d), want [9]", seqs, got.ClientAcked, got.OutSeq)
	}
}

func testWSResults(t *testing.T, s filehub.WSSessionStore) {
	ws := newWSSession("k_owner")
	mustCreateWS(t, s, ws)
	save := func(put []filehub.WSResult, drop ...string) {
		t.Helper()
		cur := mustClaimWS(t, s, ws.ID, "x")
		u := wsUpdate(cur)
		u.PutResults, u.DropResults = put, drop
		if lost := mustSaveWS(t, s, u); len(lost) != 0 {
			t.Fatalf("save lost %v", lost)
		}
	}
	results := func() string {
		t.Helper()
		return resultsString(mustClaimWS(t, s, ws.ID, "x").Results)
	}

	save([]filehub.WSResult{{ID: "a", Body: []byte("1")}, {ID: "b", Body: []byte("2")}, {ID: "c", Body: []byte("3")}})
	save([]filehub.WSResult{{ID: "d", Body: []byte("4")}})
	if got := results(); got != "a=1 b=2 c=3 d=4" {
		t.Fatalf("results = %q, want insertion order a=1 b=2 c=3 d=4", got)
	}
	// Replacing keeps the position; a nil body is a tombstone.
	save([]filehub.WSResult{{ID: "c", Body: []byte("3'")}, {ID: "a", Body: nil}})
	if got := results(); got != "a=<nil> b=2 c=3' d=4" {
		t.Fatalf("after replacing c and tombstoning a: %q", got)
	}
	// Dropping forgets an id; dropping an unknown one is no error; one
	// added again goes to the end.
	save([]filehub.WSResult{{ID: "e", Body: []byte("5")}}, "b", "nosuch", "a")
	save([]filehub.WSResult{{ID: "a", Body: []byte("again")}})
	if got := results(); got != "c=3' d=4 e=5 a=again" {
		t.Fatalf("after dropping a and b and adding e, a: %q, want c=3' d=4 e=5 a=again", got)
	}
}

func testWSBatchWithLost(t *testing.T, s filehub.WSSessionStore) {
	sessions := make([]*filehub.WSSession, 4)
	for i := range sessions {
		sessions[i] = newWSSession("k_owner")
		mustCreateWS(t, s, sessions[i])
	}
	mustClaimWS(t, s, sessions[2].ID, "other") // fences out the epoch-1 saver
	var batch []filehub.WSSessionUpdate
	for i, ws := range sessions {
		u := wsUpdate(ws)
		u.InSeq, u.OutSeq = int64(10+i), 1
		u.AddOut = []filehub.WSFrame{{Seq: 1, Data: fmt.Appendf(nil, "to %d", i)}}
		u.PutResults = []filehub.WSResult{{ID: "r", Body: []byte("res")}}
		batch = append(batch, u)
	}
	gone := wsUpdate(newWSSession("k_owner")) // never created
	batch = slices.Insert(batch, 1, gone)
	lost := mustSaveWS(t, s, batch...)
	slices.Sort(lost)
	want := []string{gone.ID, sessions[2].ID}
	slices.Sort(want)
	if !slices.Equal(lost, want) {
		t.Fatalf("lost = %v, want %v", lost, want)
	}
	for i, ws := range sessions {
		got := mustClaimWS(t, s, ws.ID, "check")
		saved := got.InSeq == int64(10+i) && len(got.Out) == 1 && len(got.Results) == 1
		untouched := got.InSeq == 0 && len(got.Out) == 0 && len(got.Results) == 0
		if i == 2 && !untouched || i != 2 && !saved {
			t.Errorf("session %d after the batch: %+v (want saved: %v)", i, got, i != 2)
		}
	}
	if _, err := s.ClaimWSSession(t.Context(), wsClaim(gone.ID, "check"), wsEpoch); filehub.ErrorCode(err) != filehub.ENOTFOUND {
		t.Errorf("the lost update of an unknown session created it: %v", err)
	}
}

// testWSSaveAgain: a saver that did not learn whether a save committed (its
// connection broke during COMMIT) sends the same update again; that must
// not fail the batch it is in.
func testWSSaveAgain(t *testing.T, s filehub.WSSessionStore) {
	ws := newWSSession("k_owner")
	mustCreateWS(t, s, ws)
	u := wsUpdate(ws)
	u.OutSeq = 2
	u.AddOut = []filehub.WSFrame{{Seq: 1, Data: []byte("one")}, {Seq: 2, Data: []byte("two")}}
	u.PutResults = []filehub.WSResult{{ID: "r", Body: []byte("res")}}
	mustSaveWS(t, s, u)
	if lost := mustSaveWS(t, s, u); len(lost) != 0 {
		t.Fatalf("the same update again: lost %v", lost)
	}
	got := mustClaimWS(t, s, ws.ID, "b")
	if !slices.Equal(frameSeqs(got.Out), []int64{1, 2}) || resultsString(got.Results) != "r=res" {
		t.Errorf("after saving twice: Out %v, results %s", frameSeqs(got.Out), resultsString(got.Results))
	}
}

func testWSExpire(t *testing.T, s filehub.WSSessionStore) {
	detached := func(d time.Duration) *filehub.WSSession {
		ws := newWSSession("k_owner")
		ws.DetachedAt = wsEpoch.Add(-d)
		ws.OutSeq = 1
		ws.Out = []filehub.WSFrame{{Seq: 1, Data: []byte("pending")}}
		ws.Results = []filehub.WSResult{{ID: "r", Body: []byte("res")}}
		mustCreateWS(t, s, ws)
		return ws
	}
	oldest := detached(3 * time.Hour)
	old := detached(2 * time.Hour)
	recent := detached(10 * time.Minute) // within the TTL
	attached := newWSSession("k_owner")
	attached.CreatedAt = wsEpoch.Add(-24 * time.Hour) // old, but attached
	mustCreateWS(t, s, attached)
	// A session detached by a save, long ago, expires too.
	bySave := newWSSession("k_owner")
	mustCreateWS(t, s, bySave)
	u := wsUpdate(bySave)
	u.DetachedAt = wsEpoch.Add(-time.Hour)
	mustSaveWS(t, s, u)
	// One that was detached and is claimed again is attached.
	resumed := detached(5 * time.Hour)
	mustClaimWS(t, s, resumed.ID, "b")
	// One still marked attached but not saved for 2.5 h: its owner died
	// while a connection was attached.
	deadOwner := newWSSession("k_owner")
	deadOwner.UpdatedAt = wsEpoch.Add(-150 * time.Minute)
	mustCreateWS(t, s, deadOwner)

	cutoff := wsEpoch.Add(-30 * time.Minute)
	if l, ok := s.(filehub.WSSessionLister); ok {
		list, err := l.ListExpiredWSSessions(t.Context(), cutoff, 0)
		if err != nil {
			t.Fatalf("ListExpiredWSSessions: %v", err)
		}
		var ids []string
		for _, ws := range list {
			ids = append(ids, ws.ID)
			if ws.KeyID != "k_owner" || ws.DetachedAt.IsZero() && ws.ID != deadOwner.ID {
				t.Errorf("listed %+v", ws)
			}
		}
		if want := []string{oldest.ID, deadOwner.ID, old.ID, bySave.ID}; !slices.Equal(ids, want) {
			t.Errorf("ListExpiredWSSessions = %v, want %v (longest gone first)", ids, want)
		}
		if list, err := l.ListExpiredWSSessions(t.Context(), cutoff, 1); err != nil || len(list) != 1 || list[0].ID != oldest.ID {
			t.Errorf("ListExpiredWSSessions(limit 1) = %v, %v", list, err)
		}
	}

	ids, err := s.ExpireWSSessions(t.Context(), cutoff, 1)
	if err != nil || !slices.Equal(ids, []string{oldest.ID}) {
		t.Fatalf("ExpireWSSessions(limit 1) = %v, %v; want [%s], the longest detached", ids, err, oldest.ID)
	}
	ids, err = s.ExpireWSSessions(t.Context(), cutoff, 10)
	slices.Sort(ids)
	want := []string{deadOwner.ID, old.ID, bySave.ID}
	slices.Sort(want)
	if err != nil || !slices.Equal(ids, want) {
		t.Fatalf("ExpireWSSessions = %v, %v; want %v", ids, err, want)
	}
	if ids, err := s.ExpireWSSessions(t.Context(), cutoff, 10); err != nil || len(ids) != 0 {
		t.Fatalf("ExpireWSSessions again = %v, %v; want none", ids, err)
	}
	for _, ws := range []*filehub.WSSession{oldest, old, bySave} {
		if _, err := s.ClaimWSSession(t.Context(), wsClaim(ws.ID, "b"), wsEpoch); filehub.ErrorCode(err) != filehub.ENOTFOUND {
			t.Errorf("claim of expired %s: %v, want ENOTFOUND", ws.ID, err)
		}
	}
	if n, err := s.CountWSSessions(t.Context(), "k_owner"); err != nil || n != 3 {
		t.Errorf("CountWSSessions after expiry = %d, %v; want 3 (recent, attached, resumed)", n, err)
	}
	// An expired session's frames and results went with it: a new session
	// with its ID starts empty.
	again := newWSSession("k_owner")
	again.ID = oldest.ID
	mustCreateWS(t, s, again)
	if got := mustClaimWS(t, s, again.ID, "b"); len(got.Out) != 0 || len(got.Results) != 0 {
		t.Errorf("a new session with an expired one's ID has Out %v, results %v", got.Out, got.Results)
	}
	// No limit.
	ids, err = s.ExpireWSSessions(t.Context(), wsEpoch, 0)
	if err != nil || !slices.Equal(ids, []string{recent.ID}) {
		t.Errorf("ExpireWSSessions(now, no limit) = %v, %v; want [%s]", ids, err, recent.ID)
	}
}

func testWSCount(t *testing.T, s filehub.WSSessionStore) {
	for _, key := range []string{"k_a", "k_a", "k_b"} {
		ws := newWSSession(key)
		if key == "k_b" {
			ws.DetachedAt = wsEpoch // waiting for a resume counts
		}
		mustCreateWS(t, s, ws)
	}
	for key, want := range map[string]int{"k_a": 2, "k_b": 1, "k_none": 0} {
		if n, err := s.CountWSSessions(t.Context(), key); err != nil || n != want {
			t.Errorf("CountWSSessions(%s) = %d, %v; want %d", key, n, err, want)
		}
	}
}

func testWSDelete(t *testing.T, s filehub.WSSessionStore) {
	count := func() int {
		t.Helper()
		n, err := s.CountWSSessions(t.Context(), "k_owner")
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	a := newWSSession("k_owner")
	a.OutSeq = 1
	a.Out = []filehub.WSFrame{{Seq: 1, Data: []byte("pending")}}
	a.Results = []filehub.WSResult{{ID: "r", Body: nil}}
	mustCreateWS(t, s, a)
	b := newWSSession("k_owner")
	mustCreateWS(t, s, b)
	mustClaimWS(t, s, a.ID, "other") // epoch 2

	if err := s.DeleteWSSession(t.Context(), a.ID, 1); err != nil {
		t.Fatalf("DeleteWSSession with a stale epoch: %v", err)
	}
	if n := count(); n != 2 {
		t.Fatalf("a delete with a stale epoch removed the session (%d left)", n)
	}
	if err := s.DeleteWSSession(t.Context(), a.ID, 2); err != nil {
		t.Fatalf("DeleteWSSession with the current epoch: %v", err)
	}
	if n := count(); n != 1 {
		t.Fatalf("after deleting with the current epoch, %d sessions, want 1", n)
	}
	if err := s.DeleteWSSession(t.Context(), b.ID, 0); err != nil {
		t.Fatalf("DeleteWSSession with epoch 0: %v", err)
	}
	if n := count(); n != 0 {
		t.Fatalf("after deleting with epoch 0, %d sessions, want 0", n)
	}
	if err := s.DeleteWSSession(t.Context(), a.ID, 0); err != nil {
		t.Errorf("DeleteWSSession of a gone session: %v, want nil", err)
	}
	// Its frames and results went with it.
	again := newWSSession("k_owner")
	again.ID = a.ID
	mustCreateWS(t, s, again)
	if got := mustClaimWS(t, s, a.ID, "x"); len(got.Out) != 0 || len(got.Results) != 0 {
		t.Errorf("a new session with a deleted one's ID has Out %v, results %v", got.Out, got.Results)
	}
}

// BenchmarkSaveWSSessions measures SaveWSSessions with the batch a busy
// server's group commit writes: 64 sessions, each adding one frame (about
// 100 bytes, an echoed msg) and acknowledging the one before, after 1,000
// other sessions are stored. It reports ns/update next to ns/op (one
// batch); the batch=1 sub-benchmark gives the fixed cost of a save (its
// transaction and commit) to compare with.
func BenchmarkSaveWSSessions(b *testing.B, s filehub.WSSessionStore) {
	ctx := b.Context()
	for range 1000 / 50 {
		var others []filehub.WSSessionUpdate
		for range 50 {
			ws := newWSSession("k_other")
			ws.OutSeq = 1
			ws.Out = []filehub.WSFrame{{Seq: 1, Data: []byte("pending")}}
			if err := s.CreateWSSession(ctx, ws); err != nil {
				b.Fatal(err)
			}
			others = append(others, wsUpdate(ws))
		}
		if _, err := s.SaveWSSessions(ctx, others); err != nil {
			b.Fatal(err)
		}
	}
	for _, sessions := range []int{1, 64} {
		b.Run(fmt.Sprintf("batch=%d", sessions), func(b *testing.B) {
			benchmarkSaveWSSessions(b, s, sessions)
		})
	}
}

func benchmarkSaveWSSessions(b *testing.B, s filehub.WSSessionStore, sessions int) {
	ctx := b.Context()
	batch := make([]filehub.WSSessionUpdate, sessions)
	for i := range batch {
		ws := newWSSession("k_bench")
		if err := s.CreateWSSession(ctx, ws); err != nil {
			b.Fatal(err)
		}
		batch[i] = wsUpdate(ws)
	}
	data := bytes.Repeat([]byte("x"), 100)
	b.ReportAllocs()
	b.ResetTimer()
	seq := int64(0)
	for b.Loop() {
		seq++
		for i := range batch {
			u := &batch[i]
			u.InSeq, u.OutSeq, u.ClientAcked = seq, seq, seq-1
			u.AddOut = []filehub.WSFrame{{Seq: seq, Data: data}}
		}
		lost, err := s.SaveWSSessions(ctx, batch)
		if err != nil || len(lost) != 0 {
			b.Fatalf("SaveWSSessions: lost %v, %v", lost, err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*sessions), "ns/update")
}

// testWSClaimCredentials: a claim must present the session's key and its
// current or previous token hash; a refused claim changes nothing (the
// epoch stays, so the owner's saves still commit).
func testWSClaimCredentials(t *testing.T, s filehub.WSSessionStore) {
	ws := newWSSession("k_owner")
	ws.PrevTokenHash = wsHash("previous")
	mustCreateWS(t, s, ws)
	for name, c := range map[string]filehub.WSClaim{
		"another key":   {ID: ws.ID, Owner: "b", KeyID: "k_other", TokenHash: wsHash("token")},
		"a wrong token": {ID: ws.ID, Owner: "b", KeyID: "k_owner", TokenHash: wsHash("guess")},
	} {
		_, err := s.ClaimWSSession(t.Context(), c, wsEpoch)
		wantWSCode(t, "ClaimWSSession with "+name, err, filehub.EFORBIDDEN)
	}
	for name, c := range map[string]filehub.WSClaim{
		"no id":    {Owner: "b", KeyID: "k_owner", TokenHash: wsHash("token")},
		"no owner": {ID: ws.ID, KeyID: "k_owner", TokenHash: wsHash("token")},
		"no key":   {ID: ws.ID, Owner: "b", TokenHash: wsHash("token")},
		"no token": {ID: ws.ID, Owner: "b", KeyID: "k_owner"},
	} {
		_, err := s.ClaimWSSession(t.Context(), c, wsEpoch)
		wantWSCode(t, "ClaimWSSession with "+name, err, filehub.EINVALID)
	}
	// The refusals left epoch 1 in place: its owner still saves.
	u := wsUpdate(ws)
	u.InSeq = 3
	if lost := mustSaveWS(t, s, u); len(lost) != 0 {
		t.Fatalf("the owner's save after refused claims was lost: %v", lost)
	}
	// The previous token is accepted (the client may not have read the
	// welcome that carried the current one).
	got, err := s.ClaimWSSession(t.Context(), filehub.WSClaim{ID: ws.ID, Owner: "b", KeyID: "k_owner", TokenHash: wsHash("previous")}, wsEpoch)
	if err != nil {
		t.Fatalf("ClaimWSSession with the previous token: %v", err)
	}
	if got.Epoch != 2 || got.InSeq != 3 {
		t.Errorf("claimed epoch %d, in_seq %d; want 2 and 3", got.Epoch, got.InSeq)
	}

	// Past its TTL (AliveAfter after the last sign of life: here the
	// claim's updated_at, attached), a session is expired and unchanged.
	late := filehub.WSClaim{ID: ws.ID, Owner: "c", KeyID: "k_owner", TokenHash: wsHash("token"), AliveAfter: wsEpoch.Add(time.Hour)}
	if _, err := s.ClaimWSSession(t.Context(), late, wsEpoch.Add(2*time.Hour)); !errors.Is(err, filehub.ErrWSSessionExpired) {
		t.Fatalf("claim past the TTL: %v, want ErrWSSessionExpired", err)
	}
	late.AliveAfter = wsEpoch.Add(-time.Hour)
	got, err = s.ClaimWSSession(t.Context(), late, wsEpoch.Add(time.Minute))
	if err != nil || got.Epoch != 3 {
		t.Fatalf("claim within the TTL: %+v, %v; want epoch 3", got, err)
	}
}

package wsserver_test

import (
	"bytes"
	"context"
	"slices"
	"sync"
	"time"

	"github.com/filehub/filehub"
)

// memSessions is an in-memory filehub.WSSessionStore for tests. It follows
// the contract as the SQL stores do: a claim bumps the epoch and returns the
// state with DetachedAt cleared; a save naming an older epoch is lost.
type memSessions struct {
	mu    sync.Mutex
	rows  map[string]*filehub.WSSession
	saves int // SaveWSSessions calls that committed
	fail  error
	// onSave, if set, sees every SaveWSSessions call first (under the
	// lock); an error fails the call.
	onSave func(m *memSessions, updates []filehub.WSSessionUpdate) error
}

// setFail makes every call fail with err (nil: work again).
func (m *memSessions) setFail(err error) {
	m.mu.Lock()
	m.fail = err
	m.mu.Unlock()
}

var _ filehub.WSSessionStore = (*memSessions)(nil)

func newMemSessions() *memSessions { return &memSessions{rows: map[string]*filehub.WSSession{}} }

func cloneSession(s *filehub.WSSession) *filehub.WSSession {
	c := *s
	c.TokenHash = bytes.Clone(s.TokenHash)
	c.PrevTokenHash = bytes.Clone(s.PrevTokenHash)
	c.Out = slices.Clone(s.Out)
	c.Results = slices.Clone(s.Results)
	return &c
}

// get returns a copy of session id, or nil.
func (m *memSessions) get(id string) *filehub.WSSession {
	m.mu.Lock()
	defer m.mu.Unlock()
	if s := m.rows[id]; s != nil {
		return cloneSession(s)
	}
	return nil
}

func (m *memSessions) CreateWSSession(_ context.Context, s *filehub.WSSession) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return m.fail
	}
	if m.rows[s.ID] != nil {
		return filehub.Errorf(filehub.ECONFLICT, "session %s exists", s.ID)
	}
	m.rows[s.ID] = cloneSession(s)
	return nil
}

func (m *memSessions) ClaimWSSession(_ context.Context, c filehub.WSClaim, now time.Time) (*filehub.WSSession, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return nil, m.fail
	}
	if !c.Valid() {
		return nil, filehub.Errorf(filehub.EINVALID, "incomplete claim")
	}
	s := m.rows[c.ID]
	if s == nil {
		return nil, filehub.Errorf(filehub.ENOTFOUND, "session %s not found", c.ID)
	}
	if s.KeyID != c.KeyID || !bytes.Equal(s.TokenHash, c.TokenHash) && !bytes.Equal(s.PrevTokenHash, c.TokenHash) {
		return nil, filehub.Errorf(filehub.EFORBIDDEN, "session %s: key or token refused", c.ID)
	}
	if !c.AliveAfter.IsZero() && lastAlive(s).Before(c.AliveAfter) {
		return nil, filehub.ErrWSSessionExpired
	}
	s.Epoch++
	s.Owner = c.Owner
	s.DetachedAt = time.Time{}
	s.UpdatedAt = now
	return cloneSession(s), nil
}

func (m *memSessions) SaveWSSessions(_ context.Context, updates []filehub.WSSessionUpdate) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.onSave != nil {
		if err := m.onSave(m, updates); err != nil {
			return nil, err
		}
	}
	if m.fail != nil {
		return nil, m.fail
	}
	var lost []string
	for _, u := range updates {
		s := m.rows[u.ID]
		if s == nil || s.Epoch != u.Epoch {
			lost = append(lost, u.ID)
			continue
		}
		s.TokenHash, s.PrevTokenHash = bytes.Clone(u.TokenHash), bytes.Clone(u.PrevTokenHash)
		s.InSeq, s.OutSeq, s.ClientAcked = u.InSeq, u.OutSeq, u.ClientAcked
		s.Subscribed, s.EventCursor = u.Subscribed, u.EventCursor
		s.UpdatedAt, s.DetachedAt = u.UpdatedAt, u.DetachedAt
		for _, f := range u.AddOut {
			if n := len(s.Out); n > 0 && f.Seq <= s.Out[n-1].Seq {
				panic("AddOut not above the stored frames")
			}
			s.Out = append(s.Out, filehub.WSFrame{Seq: f.Seq, Data: bytes.Clone(f.Data)})
		}
		s.Out = slices.DeleteFunc(s.Out, func(f filehub.WSFrame) bool { return f.Seq <= s.ClientAcked })
		for _, r := range u.PutResults {
			s.Results = slices.DeleteFunc(s.Results, func(x filehub.WSResult) bool { return x.ID == r.ID })
			s.Results = append(s.Results, filehub.WSResult{ID: r.ID, Body: bytes.Clone(r.Body)})
		}
		for _, id := range u.DropResults {
			s.Results = slices.DeleteFunc(s.Results, func(x filehub.WSResult) bool { return x.ID == id })
		}
	}
	m.saves++
	return lost, nil
}

func (m *memSessions) DeleteWSSession(_ context.Context, id string, epoch int64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if s := m.rows[id]; s != nil && (epoch == 0 || s.Epoch == epoch) {
		delete(m.rows, id)
	}
	return nil
}

func (m *memSessions) ExpireWSSessions(_ context.Context, before time.Time, limit int) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var ids []string
	for id, s := range m.rows {
		if len(ids) < limit && lastAlive(s).Before(before) {
			ids = append(ids, id)
			delete(m.rows, id)
		}
	}
	return ids, nil
}

func (m *memSessions) CountWSSessions(_ context.Context, keyID string) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for _, s := range m.rows {
		if s.KeyID == keyID {
			n++
		}
	}
	return n, nil
}

// lastAlive is when s was last known alive: detached then, or saved then
// while attached (the stores' coalesce(detached_at, updated_at)).
func lastAlive(s *filehub.WSSession) time.Time {
	if !s.DetachedAt.IsZero() {
		return s.DetachedAt
	}
	return s.UpdatedAt
}

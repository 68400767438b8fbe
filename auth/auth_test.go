package auth_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/filehub/filehub"
	"github.com/filehub/filehub/auth"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// keys is a KeyStore of fixed keys by secret.
type keys struct {
	m    map[string]*filehub.APIKey // by hash
	down bool
}

func newKeys(secrets map[string]*filehub.APIKey) *keys {
	k := &keys{m: make(map[string]*filehub.APIKey)}
	for s, key := range secrets {
		k.m[string(filehub.HashAPIKey(s))] = key
	}
	return k
}

func (k *keys) FindAPIKeyByHash(_ context.Context, hash []byte) (*filehub.APIKey, error) {
	if k.down {
		return nil, errors.New("connection refused")
	}
	key, ok := k.m[string(hash)]
	if !ok {
		return nil, filehub.ErrNotFound
	}
	return key, nil
}

func TestAuthenticate(t *testing.T) {
	revoked := time.Now()
	ks := newKeys(map[string]*filehub.APIKey{
		"good": {ID: "k_good", Scopes: []filehub.Scope{filehub.ScopeRead}},
		"old":  {ID: "k_old", RevokedAt: &revoked},
	})
	a := auth.New(ks, auth.Config{FailureLimit: -1})
	ctx := context.Background()
	key, hash, err := a.Authenticate(ctx, "a", "good", "")
	if err != nil || key.ID != "k_good" || string(hash) != string(filehub.HashAPIKey("good")) {
		t.Fatalf("good key: %v, %v", key, err)
	}
	for _, tc := range []struct{ secret, code, msg string }{
		{"", filehub.EUNAUTHORIZED, "say where the key goes"},
		{"nope", filehub.EUNAUTHORIZED, "unknown API key"},
		{"old", filehub.EUNAUTHORIZED, "API key has been revoked"},
	} {
		_, _, err := a.Authenticate(ctx, "a", tc.secret, "say where the key goes")
		if filehub.ErrorCode(err) != tc.code || filehub.ErrorMessage(err) != tc.msg {
			t.Errorf("%q: %v, want %s %q", tc.secret, err, tc.code, tc.msg)
		}
	}
	ks.down = true
	if _, _, err := a.Authenticate(ctx, "a", "good", ""); filehub.ErrorCode(err) != filehub.EUNAVAILABLE {
		t.Errorf("store down: %v, want unavailable", err)
	}
}

// After the burst of failures an address is refused, even with a good key,
// while other addresses are not; store outages are not charged.
func TestFailureLimit(t *testing.T) {
	ks := newKeys(map[string]*filehub.APIKey{"good": {ID: "k_good"}})
	// A limit slow enough that no token comes back during the test.
	a := auth.New(ks, auth.Config{FailureLimit: 0.001, FailureBurst: 3})
	ctx := context.Background()
	ks.down = true
	for range 5 {
		if _, _, err := a.Authenticate(ctx, "1.2.3.4", "good", ""); filehub.ErrorCode(err) != filehub.EUNAVAILABLE {
			t.Fatalf("store down: %v", err)
		}
	}
	ks.down = false
	for i := range 3 {
		if _, _, err := a.Authenticate(ctx, "1.2.3.4", "bad", ""); filehub.ErrorCode(err) != filehub.EUNAUTHORIZED {
			t.Fatalf("failure %d: %v, want unauthorized", i, err)
		}
	}
	_, _, err := a.Authenticate(ctx, "1.2.3.4", "good", "")
	if filehub.ErrorCode(err) != filehub.ERATELIMIT {
		t.Fatalf("after the burst: %v, want rate_limited", err)
	}
	if n := auth.RetryAfter(err); n < 1 {
		t.Errorf("RetryAfter = %d, want >= 1", n)
	}
	if _, _, err := a.Authenticate(ctx, "5.6.7.8", "good", ""); err != nil {
		t.Errorf("another address: %v", err)
	}
	if n := auth.RetryAfter(filehub.Errorf(filehub.ERATELIMIT, "x")); n != 0 {
		t.Errorf("RetryAfter of another error = %d, want 0", n)
	}
}

func TestBearer(t *testing.T) {
	for h, want := range map[string]string{
		"Bearer abc":   "abc",
		"bearer  abc ": "abc",
		"Basic abc":    "",
		"Bearer":       "",
		"":             "",
	} {
		if got := auth.Bearer(h); got != want {
			t.Errorf("Bearer(%q) = %q, want %q", h, got, want)
		}
	}
}

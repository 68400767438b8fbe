package postgres_test

import (
	"testing"

	"github.com/filehub/filehub"
	"github.com/filehub/filehub/postgres"
	"github.com/filehub/filehub/storetest"
)

func TestWSSessionStore(t *testing.T) {
	storetest.RunWSSessionStore(t, func(t *testing.T) filehub.WSSessionStore {
		return mustOpen(t, postgres.Config{})
	})
}

// BenchmarkSaveWSSessions measures a group commit of 64 sessions' updates,
// each adding one frame and acknowledging one (see the storetest helper).
// It runs when a PostgreSQL server is reachable (FILEHUB_TEST_POSTGRES).
func BenchmarkSaveWSSessions(b *testing.B) {
	storetest.BenchmarkSaveWSSessions(b, mustOpen(b, postgres.Config{}))
}

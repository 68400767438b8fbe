package sqlite_test

import (
	"testing"

	"github.com/filehub/filehub"
	"github.com/filehub/filehub/sqlite"
	"github.com/filehub/filehub/storetest"
)

func TestWSSessionStore(t *testing.T) {
	storetest.RunWSSessionStore(t, func(t *testing.T) filehub.WSSessionStore {
		return mustOpen(t, tempPath(t), sqlite.Config{})
	})
}

// BenchmarkSaveWSSessions measures a group commit of 64 sessions' updates,
// each adding one frame and acknowledging one: the store's cost on the path
// of every acknowledged WebSocket frame. ns/op is per batch; the
// ns/update metric divides it by the batch.
func BenchmarkSaveWSSessions(b *testing.B) {
	storetest.BenchmarkSaveWSSessions(b, mustOpen(b, tempPath(b), sqlite.Config{}))
}

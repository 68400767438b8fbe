package sqlite_test

import (
	"testing"

	"github.com/filehub/filehub"
	"github.com/filehub/filehub/sqlite"
	"github.com/filehub/filehub/storetest"
)

func TestStatsReader(t *testing.T) {
	storetest.RunStatsReader(t, func(t *testing.T) filehub.MetaStore {
		return mustOpen(t, tempPath(t), sqlite.Config{})
	})
}

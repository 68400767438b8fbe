package postgres_test

import (
	"testing"

	"github.com/filehub/filehub"
	"github.com/filehub/filehub/postgres"
	"github.com/filehub/filehub/storetest"
)

func TestStatsReader(t *testing.T) {
	storetest.RunStatsReader(t, func(t *testing.T) filehub.MetaStore {
		return mustOpen(t, postgres.Config{})
	})
}

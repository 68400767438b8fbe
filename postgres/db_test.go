package postgres_test

import (
	"testing"

	"github.com/filehub/filehub"
	"github.com/filehub/filehub/postgres"
	"github.com/filehub/filehub/storetest"
)

func TestMetaStore(t *testing.T) {
	storetest.RunMetaStore(t, func(t *testing.T) filehub.MetaStore {
		return mustOpen(t, postgres.Config{})
	})
}

func TestCleanupStore(t *testing.T) {
	storetest.RunCleanupStore(t, func(t *testing.T) filehub.MetaStore {
		return mustOpen(t, postgres.Config{})
	})
}

func TestProviderStore(t *testing.T) {
	storetest.RunProviderStore(t, func(t *testing.T) filehub.MetaStore {
		return mustOpen(t, postgres.Config{})
	})
}

func TestUploadStore(t *testing.T) {
	storetest.RunUploadStore(t, func(t *testing.T) filehub.MetaStore {
		return mustOpen(t, postgres.Config{})
	})
}

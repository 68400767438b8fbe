package postgres_test

import (
	"fmt"
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

func TestChecker(t *testing.T) {
	storetest.RunChecker(t, func(t *testing.T) (filehub.MetaStore, storetest.SetRefCount) {
		schema := freshSchema(t)
		db := mustOpen(t, postgres.Config{Schema: schema})
		return db, func(t *testing.T, sum string, n int64) {
			adminExec(t, fmt.Sprintf(`UPDATE %s.blobs SET ref_count = %d WHERE sha256 = '%s'`, schema, n, sum))
		}
	})
}

func TestInstanceStore(t *testing.T) {
	storetest.RunInstanceStore(t, func(t *testing.T) filehub.MetaStore {
		return mustOpen(t, postgres.Config{})
	})
}

package main

import (
	"context"
	"fmt"

	"github.com/filehub/filehub"
	"github.com/filehub/filehub/postgres"
	"github.com/filehub/filehub/s3"
)

// openPostgres opens the PostgreSQL metadata store at url.
func openPostgres(ctx context.Context, url string, o metaOptions) (metaStore, error) {
	db, err := postgres.Open(ctx, url, postgres.Config{
		Logger:     o.Logger,
		Registerer: o.Registerer,
		NoMigrate:  o.NoMigrate,
	})
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	return db, nil
}

// openS3 opens the bucket named by url. Credentials come from the standard
// AWS environment (the SDK's default chain), never from the URL.
func openS3(ctx context.Context, url string, o blobOptions) (filehub.BlobStore, error) {
	store, err := s3.Open(ctx, url, s3.Config{Logger: o.Logger})
	if err != nil {
		return nil, fmt.Errorf("open blob store: %w", err)
	}
	return store, nil
}

type postgresMigrator struct{ *postgres.DB }

func (m postgresMigrator) status(ctx context.Context) ([]migrationState, error) {
	st, err := m.MigrationStatus(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]migrationState, len(st))
	for i, s := range st {
		out[i] = migrationState{Version: s.Version, Name: s.Name, AppliedAt: s.AppliedAt}
	}
	return out, nil
}

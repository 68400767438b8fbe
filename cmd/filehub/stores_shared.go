package main

import (
	"context"

	"github.com/filehub/filehub/postgres"
)

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

package postgres

import (
	"context"

	"github.com/filehub/filehub"
)

var _ filehub.StatsReader = (*DB)(nil)

// statsQuery reads every figure of filehub.StorageStats in one statement,
// so one snapshot: one pass over files, one over blobs, and the distinct
// contents of live files through the files' sha256 index (only for blobs
// that have references at all). sum(bigint) is numeric in PostgreSQL,
// hence the casts.
const statsQuery = `WITH
	f AS (SELECT
		count(*) FILTER (WHERE deleted_at IS NULL) AS files,
		coalesce(sum(size) FILTER (WHERE deleted_at IS NULL), 0)::bigint AS logical,
		count(deleted_at) AS trash,
		coalesce(sum(size) FILTER (WHERE deleted_at IS NOT NULL), 0)::bigint AS trash_bytes
		FROM files),
	b AS (SELECT
		count(*) AS blobs,
		coalesce(sum(size), 0)::bigint AS blob_bytes,
		count(*) FILTER (WHERE ref_count = 0) AS unref,
		coalesce(sum(size) FILTER (WHERE ref_count = 0), 0)::bigint AS unref_bytes
		FROM blobs),
	s AS (SELECT coalesce(sum(size), 0)::bigint AS stored FROM blobs
		WHERE ref_count > 0 AND EXISTS (SELECT 1 FROM files WHERE files.sha256 = blobs.sha256 AND files.deleted_at IS NULL))
	SELECT f.files, f.logical, s.stored, f.trash, f.trash_bytes, b.blobs, b.blob_bytes, b.unref, b.unref_bytes FROM f, b, s`

// StorageStats counts files, bytes, trash and blobs; see
// filehub.StatsReader.
func (db *DB) StorageStats(ctx context.Context) (*filehub.StorageStats, error) {
	if db.closed.Load() {
		return nil, errClosed
	}
	var st filehub.StorageStats
	err := db.pool.QueryRow(ctx, statsQuery).Scan(&st.Files, &st.LogicalBytes, &st.StoredBytes,
		&st.TrashFiles, &st.TrashBytes, &st.Blobs, &st.BlobBytes, &st.UnreferencedBlobs, &st.UnreferencedBytes)
	if err != nil {
		return nil, mapError(ctx, "count storage", err)
	}
	return &st, nil
}

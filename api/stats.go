package api

import (
	"time"

	"github.com/filehub/filehub"
)

// Stats is what the server stores, counted by its metadata store in one
// snapshot: the answer of GET /v1/stats (read scope) and what
// `filehub stats --json` prints.
type Stats struct {
	filehub.StorageStats
	// DedupSavingsBytes is LogicalBytes - StoredBytes: the bytes
	// deduplication saves on live files.
	DedupSavingsBytes int64 `json:"dedup_savings_bytes"`
	// Time is when the figures were read.
	Time time.Time `json:"time"`
}

// NewStats returns the wire form of st read at t.
func NewStats(st *filehub.StorageStats, t time.Time) *Stats {
	return &Stats{StorageStats: *st, DedupSavingsBytes: st.LogicalBytes - st.StoredBytes, Time: t.UTC()}
}

package files

import (
	"context"

	"github.com/filehub/filehub"
)

// Stats returns the metadata store's totals: live files, logical and
// stored bytes, the trash, and the blob records (see filehub.StorageStats).
// Returns ENOTFOUND when the store cannot count them (it does not
// implement filehub.StatsReader; both built-in stores do).
func (s *Service) Stats(ctx context.Context) (*filehub.StorageStats, error) {
	r, ok := s.meta.(filehub.StatsReader)
	if !ok {
		return nil, filehub.Errorf(filehub.ENOTFOUND, "this server's metadata store cannot count its contents")
	}
	return r.StorageStats(ctx)
}

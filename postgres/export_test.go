package postgres

import (
	"context"

	"github.com/filehub/filehub"
)

// CreateFilesInOneBatch runs CreateFile(ctxs[i], files[i], places[i]) for every
// i as one batch of the committer, as if they had been queued together,
// and returns each call's results. It lets tests put failures and
// successes in one transaction deterministically.
func (db *DB) CreateFilesInOneBatch(ctxs []context.Context, files []*filehub.File, places []filehub.PlaceFunc) ([]bool, []error) {
	jobs := make([]*createJob, len(files))
	for i, f := range files {
		if err := f.Validate(); err != nil {
			panic(err)
		}
		j, err := newCreateJob(ctxs[i], f, places[i])
		if err != nil {
			panic(err)
		}
		jobs[i] = j
	}
	db.commitCreates(jobs)
	dedup, errs := make([]bool, len(jobs)), make([]error, len(jobs))
	for i, j := range jobs {
		dedup[i], errs[i] = j.dedup, j.err
	}
	return dedup, errs
}

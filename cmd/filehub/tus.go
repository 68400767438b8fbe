package main

import (
	"fmt"
	"log/slog"
	"path/filepath"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/filehub/filehub"
	"github.com/filehub/filehub/files"
	"github.com/filehub/filehub/httpapi"
	"github.com/filehub/filehub/localfs"
	"github.com/filehub/filehub/tus"
)

// mountTus serves resumable uploads (tus) at /v1/uploads/ on the API
// handler, behind its authentication. Upload state goes to the metadata
// store; bytes to the blob store when it can stage resumable uploads
// (the local disk), else to a local spool under the data dir, from which a
// finished upload is copied once into the blob store.
func mountTus(api *httpapi.Handler, svc *files.Service, meta filehub.MetaStore, blobs filehub.BlobStore, cfg ServeConfig, log *slog.Logger, reg prometheus.Registerer) error {
	uploads, ok := meta.(filehub.UploadStore)
	if !ok {
		return fmt.Errorf("the metadata store %T cannot keep resumable uploads", meta)
	}
	stager, ok := blobs.(filehub.ResumableStager)
	if !ok {
		spool, err := localfs.Open(filepath.Join(cfg.DataDir, "tus-spool"), localfs.Config{Logger: log.With("component", "tus-spool")})
		if err != nil {
			return fmt.Errorf("open the resumable upload spool: %w", err)
		}
		log.Warn("resumable uploads are spooled on this instance's disk: an upload must be continued on the instance that started it",
			"spool", filepath.Join(cfg.DataDir, "tus-spool"))
		stager = spool
	}
	api.Mount(tus.DefaultBasePath, tus.New(svc, uploads, stager, blobs, api, tus.Config{
		Expiry:         cfg.TusExpiry,
		MaxOpenUploads: cfg.MaxOpenUploads,
		CORSOrigins:    cfg.CORSOrigins,
		StallTimeout:   cfg.UploadStallTimeout,
		Logger:         log.With("component", "tus"),
		Registerer:     reg,
	}))
	return nil
}

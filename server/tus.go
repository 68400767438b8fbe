package server

import (
	"github.com/filehub/filehub"
	"github.com/filehub/filehub/httpapi"
	"github.com/filehub/filehub/tus"
)

// mountTus serves resumable uploads (tus) at /v1/uploads/ on the API
// handler, behind its authentication and error table. Upload state goes to
// the metadata store, bytes to the blob store (uploads/ on the local disk,
// chunk objects in the bucket), so on PostgreSQL + S3 any instance
// continues any upload. Stores without those capabilities get no tus
// endpoint (404), with a warning.
func (s *Server) mountTus(handler *httpapi.Handler) {
	log := s.cfg.Logger.With("component", "tus")
	uploads, ok := s.meta.(filehub.UploadStore)
	stager, ok2 := s.blobs.(filehub.ResumableStager)
	if !ok || !ok2 {
		log.Warn("the stores cannot keep resumable uploads: /v1/uploads/ is off",
			"meta", ok, "blobs", ok2)
		return
	}
	s.tus = tus.New(s.files, uploads, stager, s.blobs, handler, tus.Config{
		Expiry:         s.cfg.TusExpiry,
		MaxOpenUploads: s.cfg.MaxOpenUploads,
		CORSOrigins:    s.cfg.CORSOrigins,
		StallTimeout:   s.cfg.UploadStallTimeout,
		Logger:         log,
		Registerer:     s.cfg.Registerer,
	})
	handler.Mount(tus.DefaultBasePath, s.tus)
}

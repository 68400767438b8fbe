package s3_test

import (
	"testing"

	"github.com/filehub/filehub"
	"github.com/filehub/filehub/storetest"
)

func TestResumableConformance(t *testing.T) {
	storetest.RunResumableStager(t, func(t *testing.T) filehub.BlobStore {
		return mustOpen(t, newFakeS3(t), "", testConfig())
	})
}

package main

import (
	"github.com/spf13/cobra"

	"github.com/filehub/filehub/internal/stores"
)

// The stores a command works on are chosen as internal/stores describes:
// --db and --blobs name shared stores, empty means the data dir.

// storeTarget names the stores a command works on.
type storeTarget = stores.Target

// metaStore is a metadata store as stores.OpenMeta returns it.
type metaStore = stores.Meta

// checkStores refuses store URLs of unknown kinds as a usage error (exit
// code 2), before anything is opened.
func checkStores(t storeTarget) error {
	if err := t.Check(); err != nil {
		return usageErrorf("%v", err)
	}
	return nil
}

// addStoreFlags defines --data-dir and --db on cmd (and --blobs if
// withBlobs), with serve's defaults. If configurable is set they also read
// FILEHUB_DATA_DIR, FILEHUB_DB and FILEHUB_BLOBS and the config file, as
// serve's do.
func addStoreFlags(cmd *cobra.Command, withBlobs, isConfigurable bool) *storeTarget {
	t := &storeTarget{}
	fs := cmd.Flags()
	fs.StringVar(&t.DataDir, "data-dir", DefaultServeConfig().DataDir, "data directory of the server (SQLite database, local blobs)")
	fs.StringVar(&t.DB, "db", "", "metadata database: empty for SQLite under --data-dir, or a postgres:// URL")
	names := []string{"data-dir", "db"}
	if withBlobs {
		fs.StringVar(&t.Blobs, "blobs", "", "blob storage: empty for the local disk under --data-dir, or an s3://BUCKET?endpoint=…&region=… URL")
		names = append(names, "blobs")
	}
	if isConfigurable {
		configurable(fs, names...)
	}
	return t
}

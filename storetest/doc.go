// Package storetest holds conformance suites for filehub's storage
// interfaces, to be run from each backend's own tests:
//
//	func TestMetaStore(t *testing.T) {
//		storetest.RunMetaStore(t, func(t *testing.T) filehub.MetaStore {
//			db := mustOpen(t) // fresh and empty, closed by t.Cleanup
//			return db
//		})
//	}
//
// RunMetaStore checks a filehub.MetaStore, RunBlobStore a filehub.BlobStore.
// Each subtest gets a fresh store from the constructor, so subtests neither
// depend on nor disturb each other. The suites test the contracts written in
// the interfaces' doc comments as seen from outside; what a backend does
// beyond them (schemas, file layout, batching) belongs in its own tests. A
// new backend is done when its suites pass.
package storetest

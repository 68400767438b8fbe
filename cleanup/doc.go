// Package cleanup is filehub's cleanup service: it purges soft-deleted files
// whose trash grace has expired, removes objects and blob records nothing
// refers to once their grace period has passed, reports (never deletes) blob
// records whose object is missing, and removes abandoned staged uploads.
//
// It is conservative: nothing younger than its grace period is touched; a
// run that would delete more than a fraction of all blobs stops before
// deleting anything unless forced; a dry run computes exactly the same plan
// and changes nothing; every action, and every planned action that was not
// taken, is written to the audit log with its run; only one run happens at a
// time across processes (a lease in the metadata store).
//
// Why nothing referenced can be deleted: every deletion of a blob record or
// an object runs inside the metadata store's single serialized writer, after
// re-checking in that same transaction that the blob is still unreferenced
// (or, for an object, that no record exists). An upload records its file in
// that same writer and, whenever it creates or revives a blob record, makes
// sure the object exists from its staged copy inside its transaction. So an
// upload either commits before the deletion (which then sees the reference
// and skips) or after it (and re-creates the object). docs/cleanup.md has the
// whole argument.
//
// Each kind is a unit of its own (kind_*.go, behind the kind interface in
// kind.go) that plans, applies and reports; the run in run.go only orders
// them (filehub.CleanupKinds), checks the safety cap over all of them and
// checkpoints between phases. docs/cleanup.md says how to add a kind.
//
// The metadata store must implement filehub.CleanupStore (the composition
// of the small store capabilities in the root). Orphan-object and
// missing-object detection need a blob store implementing
// filehub.SumWalker (preferred: only orphan candidates are stat'ed) or
// filehub.BlobWalker, stale temp files one implementing filehub.TempCleaner;
// without them those kinds are skipped.
package cleanup

// Package postgres is filehub's metadata store for deployments that outgrow
// one machine: a filehub.MetaStore and filehub.CleanupStore on PostgreSQL,
// using pgx (github.com/jackc/pgx/v5) and its connection pool. Several
// filehub processes may share one database (and, with Config.Schema, one
// database may hold several deployments); every guarantee below holds
// across processes, because it rests on PostgreSQL's locks, not on Go's.
//
// Its semantics are those of package sqlite, the reference implementation;
// where sqlite relies on its single serialized writer, this package takes
// locks instead.
//
// # Transactions
//
// Every change is one transaction in PostgreSQL's default READ COMMITTED
// isolation; a caller learns its result only after COMMIT returned, so a
// success is durable. A caller's context bounds its statements (giving up
// rolls its transaction back), but not its COMMIT, which once sent is seen
// through so that the outcome is known. A transaction aborted for a
// deadlock or a serialization failure is retried (at most three runs).
//
// # Dedup and cleanup
//
// CreateFile, purges, SweepBlob, DeleteOrphanObject and SetBlobMissing first
// take a transaction-level advisory lock keyed by the content's SHA-256
// (pg_advisory_xact_lock), held until the transaction ends. Concurrent
// uploads of one content therefore run one after the other: the first
// inserts the blob record (INSERT ... ON CONFLICT DO NOTHING) and calls
// place, the others increment its count, with no check-then-act race. A
// sweep re-checks the record, deletes it and calls the object-delete
// callback while holding that lock and the record's row lock, so an upload
// of the same content waits and then sees either its reference counted
// (sweep skipped) or no record (it inserts one and places the object
// again): the argument of docs/cleanup.md, with the lock in place of
// sqlite's single writer. The orphan-object check needs the advisory lock
// rather than a row lock, since it guards a record that does not exist.
// Taking the content lock first also gives those transactions one lock
// order (content, blob row, file rows, log counters), so they do not
// deadlock with each other.
//
// # Event and audit ids
//
// Readers follow the event log by asking for "id > last seen". With a
// sequence, ids are handed out at INSERT but become visible at COMMIT, so
// a transaction holding id 7 may commit after one holding id 8, and a
// reader that saw 8 would skip 7 for good. Instead, an event takes its id
// from a counter row (log_counters 'events', UPDATE ... SET last = last + 1
// RETURNING last) in the same statement that inserts it. The UPDATE's row
// lock is held until the transaction ends, so event-writing transactions
// commit in id order, and ids are gap-free because a rolled-back increment
// is undone. The counter also is the "highest id ever assigned" that
// EventBounds reports after a trim. A transaction-level advisory lock would
// serialize appends as well, but would still need a sequence (with the
// gaps of rolled-back transactions) and a separate record of the latest id.
// The cost is that event-writing transactions serialize from their event
// insert, their last statement, to their commit: about one commit (one WAL
// flush) at a time, which is why uploads are group-committed (below). The
// audit log uses a second counter row the same way, always locked before
// the events row when a transaction writes both.
//
// # Group commit
//
// With one transaction per upload, the serialized commits above capped
// small uploads at one WAL flush each. CreateFile therefore queues its
// call for the store's committer goroutine, which runs every call queued
// meanwhile (up to Config.MaxBatch) as one transaction on a connection of
// its own, in two round trips: BEGIN, the calls' content locks in
// ascending key order, and per call one statement that references the
// blob and inserts the file, all pipelined; then, after the place
// callbacks, one statement appending all the calls' events (the counter
// moves by the batch size) followed by COMMIT. The calls learn their
// results only after COMMIT, so an acknowledged upload is durable as
// before; events stay gap-free and commit in id order, since the batch
// holds the counter row like any other event writer.
//
// Per-content serialization is unchanged: each call's content lock is
// held from before its record is touched until COMMIT. Because a batch
// holds several content locks, they are taken in one order (ascending
// key) by every batch of every process, and every other transaction takes
// at most one, before its row locks; so batches cannot deadlock with each
// other or with sweeps and purges. (MarkBlobs locks several blob rows
// without content locks; a batch reviving two of the blobs it is marking
// can deadlock with it. PostgreSQL breaks that after deadlock_timeout and
// the loser runs again, as after any deadlock.) A call that fails on its own (a taken
// ID, a size mismatch, a failed place) rolls the batch back, and the rest
// run again without it, so it fails alone; a failure of the database
// fails every call of the batch, none of them acknowledged. A batch waits
// for the busiest of its contents: an upload may wait behind a sweep of
// another content, for the length of one object delete.
//
// # Notifications
//
// Every event insert also sends a NOTIFY on the schema's event channel,
// delivered by PostgreSQL only when the transaction commits; WatchEvents
// (filehub.EventWaker) listens on it on a connection of its own, so other
// processes' readers of the log wake within milliseconds instead of at
// their next poll.
//
// # Failures
//
// Connections are opened with a short timeout (Config.ConnectTimeout), so
// while the server is down or unreachable every method fails within it
// with EUNAVAILABLE, and the HTTP layer answers 503. The pool discards
// connections that failed and pings idle ones before reuse, so the store
// heals by itself when the server is back, without being reopened. A
// change whose connection broke during COMMIT may or may not have been
// applied; the caller gets EUNAVAILABLE and no acknowledgement.
//
// # Schema
//
// The schema is created and upgraded by versioned SQL migrations embedded
// in the binary (directory migrations, applied with goose under an
// advisory lock so concurrent starts apply each once), numbered like
// sqlite's. Open applies pending migrations unless Config.NoMigrate is set,
// and refuses a schema newer than this binary knows. Times are timestamptz
// (microsecond precision, returned in UTC); event snapshots are jsonb.
package postgres

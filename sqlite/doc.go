// Package sqlite is filehub's default metadata store: a filehub.MetaStore on
// one SQLite database file, using the pure-Go driver modernc.org/sqlite so
// that filehub stays a single static binary.
//
// # Durability and concurrency
//
// The database runs in WAL mode with synchronous=FULL: once a write returns,
// it survives a power loss. Foreign keys are enforced. Other processes (the
// `filehub keys` commands) may open the same file while the server runs; WAL
// lets their readers and ours run concurrently, and a busy timeout makes a
// writer wait for the other process's write lock instead of failing at once.
//
// Inside one process, a DB holds two connection pools: a read pool of several
// connections for queries (WAL readers never block each other or the
// writer), and exactly one write connection. Because every write of the
// process goes through that one connection, SQLite never reports "database is
// locked" between our own writers; contention is resolved in Go, in a queue.
//
// # Group commit
//
// SQLite serializes writers and every commit costs an fsync (about 250µs on
// the reference machine), so one transaction per upload would cap uploads at
// roughly 4,000 per second. Instead, every write (CreateFile, deletes,
// restores, purges, key changes) is handed to a single writer goroutine.
// The writer takes the first waiting request, then everything else already
// waiting, up to Config.MaxBatch, and runs them all in one transaction:
//
//	BEGIN IMMEDIATE
//	  SAVEPOINT w; <request 1>; RELEASE w
//	  SAVEPOINT w; <request 2 fails>; ROLLBACK TO w; RELEASE w
//	  ...
//	COMMIT
//
// Each request runs in its own savepoint, so a request that fails (its place
// callback fails, a unique constraint is violated, its context is done) is
// undone alone while the others commit. Callers learn their result only after
// COMMIT returned, so a success is always durable; if COMMIT fails, every
// request of the batch fails with it. The batch forms by itself: while one
// batch commits, new requests queue up, so batches grow with load and a lone
// request is committed at once, without any artificial delay.
//
// A caller whose context is done while it waits in the queue leaves it with
// the context's error and nothing is written. Once the writer has taken a
// request the caller waits for its real outcome; the writer skips requests
// whose context ended meanwhile and passes the caller's context to the place
// callback. SQL statements themselves run under the writer's own context:
// interrupting a statement would make SQLite roll back the whole batch.
//
// # Schema
//
// The schema is created and upgraded by versioned SQL migrations embedded in
// the binary (directory migrations, applied with goose). Open applies pending
// migrations unless Config.NoMigrate is set, and refuses a database whose
// schema is newer than this binary knows. Times are stored as INTEGER Unix
// nanoseconds in UTC. The event log stores a JSON snapshot of the file.
package sqlite

// Package wsclient is the Go client library of filehub's WebSocket
// protocol (docs/protocol.md): a session with a filehub server that makes a
// flaky network invisible to the application.
//
// Dial opens a session and returns a Client that keeps it alive by itself.
// When the connection drops, the client reconnects with exponential backoff
// and full jitter (Options.Backoff) and resumes the session: each side
// replays what the other has not acknowledged, and duplicates are dropped by
// sequence number. The guarantees:
//
//   - Send returns nil only once the server has processed the message. A
//     message sent while disconnected waits in a bounded outbox
//     (Options.OutboxMaxFrames, Options.OutboxMaxBytes) and goes out after
//     reconnecting; when the outbox is full, Send waits for room or, with
//     Options.FailWhenFull, fails with ErrOutboxFull.
//   - Server messages (Messages) and events (Subscribe) reach the
//     application exactly once and in order, across reconnects.
//   - Call runs a request at most once, even if it is replayed after a
//     reconnect: the server keeps the results of recent request ids.
//   - If the server no longer knows the session (it restarted, or the session
//     outlived its TTL), what was transmitted but not acknowledged fails with
//     ErrSessionLost — the application learns exactly which sends may not
//     have made it — and an event subscription continues from the last event
//     handed to the application, without gaps or duplicates. Server
//     messages the lost session had not yet delivered are lost with it.
//   - A connection on which nothing arrives for the server's heartbeat
//     interval plus Options.PongTimeout is considered dead and replaced; the
//     client also pings at that interval so a silent client notices a
//     vanished server.
//   - Failures reconnecting cannot fix — a bad key (HTTP 401 or close 4001),
//     a refused protocol version (426), a protocol error (4002), a message
//     too big (1009), a session taken over (4007) — stop the client: Err,
//     Done and every pending operation report a *ConnError saying why.
//
// The state (State, Options.OnStateChange) goes Connecting → Connected →
// Reconnecting → Connected … and finally Closed.
//
// Metrics go to the hooks in Options.Metrics; wsclientprom.New(reg) returns
// Prometheus collectors (namespace filehub_wsclient) for them, so that this
// package links no metrics library: connected and disconnected seconds,
// reconnect attempts,
// successes and failures, messages delivered and failed, outbox depth in
// frames and bytes, acknowledgement latency, sessions lost and events
// delivered.
package wsclient

// Package wsbench holds the throughput and fan-out benchmarks of filehub's
// WebSocket session layer: the real client (wsclient) against the real
// server (wsserver) on real stores in a temp dir, each figure next to a
// baseline measured in the same run — a plain gorilla/websocket echo or
// broadcast over loopback in the same process — so docs/benchmarks.md can
// quote ratios rather than absolute rates on a noisy shared machine.
//
//	go test -run '^$' -bench . -benchtime 3s ./internal/wsbench/
//
// Each benchmark reports its rate (msgs/s or deliveries/s), the p99 latency
// and, for filehub, the ratio to the baseline of the same run
// (x-baseline). Memory per idle session is measured from a separate
// process with the filehub-load command; see docs/benchmarks.md.
package wsbench

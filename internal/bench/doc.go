// Package bench holds filehub's upload benchmarks. Every figure is measured
// next to the reference handler (internal/refserver) in the same run, on a
// fresh data directory, so docs/benchmarks.md can quote ratios rather than
// absolute times on a noisy shared machine. Run them with
//
//	go test -run '^$' -bench . -benchtime 20x ./internal/bench/
//
// The separate-process figures (peak RSS, 1 GiB uploads) come from the
// filehub-load command; see docs/benchmarks.md.
package bench

#!/usr/bin/env bash
# Upload benchmarks against separate server processes, each figure next to
# the reference handler (stream to a temp file while hashing, fsync, rename)
# measured in the same run on a fresh data directory. Prints one JSON line per
# run and a summary table of medians and filehub/reference ratios.
#
#   scripts/bench-uploads.sh            # all scenarios, 3 rounds
#   ROUNDS=5 scripts/bench-uploads.sh small
#
# Scenarios: large (1 x 1 GiB; LARGE_SIZE overrides), small (2,000 x 4 KiB
# at concurrency 50), many (100 concurrent 10 MiB uploads, with server peak
# RSS), dup (duplicate content). Only 127.0.0.1 is used.
#
# Stores (default: SQLite + local disk under a fresh data dir):
#
#   DB=postgres://postgres@127.0.0.1:5432/test?sslmode=disable scripts/bench-uploads.sh small
#       filehub on PostgreSQL: each round gets a fresh schema (filehub_bench),
#       dropped at the end; needs psql.
#   BLOBS=fake scripts/bench-uploads.sh small
#       filehub on S3: each round starts "filehub-load s3-server", an
#       in-memory gofakes3 bucket on 127.0.0.1 (a fast local object store).
#   BLOBS='s3://bucket?endpoint=…' scripts/bench-uploads.sh small
#       a real S3-compatible store (MinIO, …), with the AWS_* credentials
#       of the environment; the bucket is not emptied between rounds.
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS="${ROUNDS:-3}"
DB="${DB:-}"
BLOBS="${BLOBS:-}"
LARGE_SIZE="${LARGE_SIZE:-1GiB}"
BENCH_SCHEMA=filehub_bench
SCENARIOS=("${@:-large small many dup}")
read -r -a SCENARIOS <<<"${SCENARIOS[*]}"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/filehub-bench.XXXXXX")"
cleanup_work() {
	kill $(jobs -p) 2>/dev/null || true
	wait 2>/dev/null || true
	if [ -n "$DB" ]; then
		psql -q -d "$DB" -c "DROP SCHEMA IF EXISTS $BENCH_SCHEMA CASCADE" >/dev/null 2>&1 || true
	fi
	rm -rf "$WORK"
}
trap cleanup_work EXIT

go build -o "$WORK/filehub" ./cmd/filehub
go build -o "$WORK/filehub-load" ./cmd/filehub-load
KEY="fhk_benchmark_key_$(date +%s)_local_only_0123456789"
PORT_FH=18181
PORT_REF=18182

wait_port() { # wait until something accepts on 127.0.0.1:$1
	for _ in $(seq 1 100); do
		(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
		sleep 0.1
	done
	echo "nothing listening on port $1" >&2
	return 1
}

S3_PID=""
start_filehub() {
	rm -rf "$WORK/fh-data"
	local db="" blobs="$BLOBS"
	if [ -n "$DB" ]; then
		psql -q -d "$DB" -c "DROP SCHEMA IF EXISTS $BENCH_SCHEMA CASCADE" -c "CREATE SCHEMA $BENCH_SCHEMA" >/dev/null
		db="$DB&search_path=$BENCH_SCHEMA"
		[[ "$DB" == *\?* ]] || db="$DB?search_path=$BENCH_SCHEMA"
	fi
	if [ "$BLOBS" = fake ]; then
		"$WORK/filehub-load" s3-server --listen 127.0.0.1:0 >"$WORK/s3.url" 2>"$WORK/s3.log" &
		S3_PID=$!
		for _ in $(seq 1 100); do [ -s "$WORK/s3.url" ] && break; sleep 0.1; done
		blobs="$(cat "$WORK/s3.url")"
	fi
	AWS_ACCESS_KEY_ID="${AWS_ACCESS_KEY_ID:-bench}" AWS_SECRET_ACCESS_KEY="${AWS_SECRET_ACCESS_KEY:-bench}" \
		AWS_EC2_METADATA_DISABLED=true FILEHUB_BOOTSTRAP_KEY="$KEY" \
		"$WORK/filehub" serve --data-dir "$WORK/fh-data" --db "$db" --blobs "$blobs" \
		--listen "127.0.0.1:$PORT_FH" --rate-limit 0 --max-upload-size 2GiB \
		--min-free-space 0 --log-level warn >"$WORK/fh.log" 2>&1 &
	SERVER_PID=$!
	wait_port "$PORT_FH"
}

start_reference() {
	rm -rf "$WORK/ref-data"
	"$WORK/filehub-load" reference --listen "127.0.0.1:$PORT_REF" --dir "$WORK/ref-data" 2>"$WORK/ref.log" &
	SERVER_PID=$!
	wait_port "$PORT_REF"
}

stop_server() {
	kill "$SERVER_PID" 2>/dev/null || true
	wait "$SERVER_PID" 2>/dev/null || true
	if [ -n "$S3_PID" ]; then
		kill "$S3_PID" 2>/dev/null || true
		wait "$S3_PID" 2>/dev/null || true
		S3_PID=""
	fi
}

# scenario_args NAME -> load tool arguments
scenario_args() {
	case "$1" in
	large) echo "-n 1 -c 1 --size $LARGE_SIZE" ;;
	small) echo "-n 2000 -c 50 --size 4KiB" ;;
	many) echo "-n 100 -c 100 --size 10MiB" ;;
	dup) echo "-n 200 -c 10 --size 1MiB --duplicate" ;;
	*) echo "unknown scenario $1" >&2; exit 2 ;;
	esac
}

RESULTS="$WORK/results.tsv"
: >"$RESULTS"
for scenario in "${SCENARIOS[@]}"; do
	args="$(scenario_args "$scenario")"
	for round in $(seq 1 "$ROUNDS"); do
		for target in reference filehub; do
			if [ "$target" = filehub ]; then
				start_filehub
				url="http://127.0.0.1:$PORT_FH/v1/files"
			else
				start_reference
				url="http://127.0.0.1:$PORT_REF/"
			fi
			# shellcheck disable=SC2086
			out="$("$WORK/filehub-load" upload --url "$url" --key "$KEY" --pid "$SERVER_PID" $args)"
			blob_bytes=0
			if [ "$target" = filehub ] && [ -z "$BLOBS" ]; then
				blob_bytes="$(du -sb "$WORK/fh-data/blobs" | cut -f1)"
			fi
			stop_server
			echo "{\"scenario\":\"$scenario\",\"round\":$round,\"target\":\"$target\",\"blob_dir_bytes\":$blob_bytes,\"result\":$out}"
			printf '%s\t%s\t%s\n' "$scenario" "$target" "$out" >>"$RESULTS"
		done
	done
done

python3 - "$RESULTS" <<'PY'
import json, statistics, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1])]
by = {}
for scen, target, out in rows:
    by.setdefault((scen, target), []).append(json.loads(out))
print()
print(f"{'scenario':9} {'target':10} {'uploads/s':>10} {'MB/s':>8} {'p99 ms':>8} {'peak RSS MiB':>13}")
for (scen, target), rs in by.items():
    med = lambda k: statistics.median(r.get(k, 0) for r in rs)
    print(f"{scen:9} {target:10} {med('uploads_per_sec'):10.0f} {med('mb_per_sec'):8.0f} {med('p99_ms'):8.1f} {med('server_peak_rss_bytes')/2**20:13.1f}")
for scen in dict.fromkeys(s for s, _ in by):
    f, r = by.get((scen, "filehub")), by.get((scen, "reference"))
    if f and r:
        ratios = [a["uploads_per_sec"] / b["uploads_per_sec"] for a, b in zip(f, r)]
        print(f"{scen}: filehub/reference throughput per round {', '.join(f'{x:.2f}' for x in ratios)}; median {statistics.median(ratios):.2f}")
PY

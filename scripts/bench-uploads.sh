#!/usr/bin/env bash
# Upload benchmarks against separate server processes, each figure next to
# the reference handler (stream to a temp file while hashing, fsync, rename)
# measured in the same run on a fresh data directory. Prints one JSON line per
# run and a summary table of medians and filehub/reference ratios.
#
#   scripts/bench-uploads.sh            # all scenarios, 3 rounds
#   ROUNDS=5 scripts/bench-uploads.sh small
#
# Scenarios: large (1 x 1 GiB; LARGE_SIZE overrides), small (10,000 x 4 KiB
# at concurrency 50; SMALL_N overrides the count), many (100 concurrent
# 10 MiB uploads, with server peak RSS), dup (duplicate content). Only
# 127.0.0.1 is used.
#
# Stores (default: SQLite + local disk under a fresh data dir):
#
#   DB=postgres://postgres@127.0.0.1:5432/test?sslmode=disable scripts/bench-uploads.sh small
#       filehub on PostgreSQL: each round gets a fresh schema (filehub_bench),
#       dropped at the end; needs psql.
#   BLOBS=fake scripts/bench-uploads.sh small
#       filehub on S3: each round starts "filehub-load s3-server", an
#       in-memory gofakes3 bucket on 127.0.0.1 (a fast local object store).
#   BLOBS=versitygw scripts/bench-uploads.sh small
#       filehub on a real S3 server: each round starts the Versity S3
#       Gateway (v1.8.0, installed with go install into a temporary GOBIN,
#       or FILEHUB_VERSITYGW if set) on a fresh posix directory under the
#       data dir, with a new bucket (created with curl --aws-sigv4).
#   BLOBS='s3://bucket?endpoint=…' scripts/bench-uploads.sh small
#       a real S3-compatible store (MinIO, …), with the AWS_* credentials
#       of the environment; the bucket is not emptied between rounds.
#
# Small-file rates swing several-fold on a file system with many recently
# deleted files. As root, FRESH_FS=1 puts every data directory on a new ext4
# file system (mkfs.ext4 on a sparse file, loop-mounted; FRESH_FS_SIZE,
# default 8G), removed at the end:
#
#   FRESH_FS=1 ROUNDS=5 scripts/bench-uploads.sh small
#
# Regression check against an earlier commit:
#
#   BASE_REV=4559b18 scripts/bench-uploads.sh small large
#       also builds filehub at BASE_REV (in a temporary git worktree) and
#       runs it as a third target in every round, alternating with the
#       reference and the working tree's filehub; the summary adds the
#       filehub/base ratio per round.
#
# tusd as a peer:
#
#   TUSD=1 scripts/bench-uploads.sh small large
#       installs tusd (TUSD_VERSION, default v2.9.1) with go install into a
#       temporary GOBIN and runs it as one more target in every round, on
#       its file store in a fresh directory; the load tool sends each
#       upload as one tus creation-with-upload request (--tus). tusd
#       neither hashes nor fsyncs, so it is a rate to beat, not a like-for-
#       like durable write.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/bench-lib.sh
. scripts/bench-lib.sh

ROUNDS="${ROUNDS:-3}"
DB="${DB:-}"
BLOBS="${BLOBS:-}"
LARGE_SIZE="${LARGE_SIZE:-1GiB}"
SMALL_N="${SMALL_N:-10000}"
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
	if mountpoint -q "$WORK/fs" 2>/dev/null; then
		umount "$WORK/fs" || true
	fi
	rm -rf "$WORK"
}
trap cleanup_work EXIT

# DATA is where the servers' data directories go.
DATA="$WORK"
if [ "${FRESH_FS:-}" = 1 ]; then
	[ "$(id -u)" = 0 ] || { echo "FRESH_FS=1 needs root (mount -o loop)" >&2; exit 2; }
	truncate -s "${FRESH_FS_SIZE:-8G}" "$WORK/fs.img"
	mkfs.ext4 -q -F "$WORK/fs.img"
	mkdir -p "$WORK/fs"
	mount -o loop "$WORK/fs.img" "$WORK/fs"
	DATA="$WORK/fs"
fi

go build -o "$WORK/filehub" ./cmd/filehub
go build -o "$WORK/filehub-load" ./cmd/filehub-load
BASE_REV="${BASE_REV:-}"
TARGETS=(reference filehub)
if [ -n "$BASE_REV" ]; then
	git worktree add -q --detach "$WORK/base-src" "$BASE_REV"
	(cd "$WORK/base-src" && go build -o "$WORK/filehub-base" ./cmd/filehub)
	git worktree remove --force "$WORK/base-src"
	TARGETS+=(base)
fi
VERSITYGW=""
if [ "$BLOBS" = versitygw ]; then
	VERSITYGW="${FILEHUB_VERSITYGW:-}"
	if [ -z "$VERSITYGW" ]; then
		# Outside filehub's module, so its go.mod plays no part.
		(cd "$WORK" && GOFLAGS= GOWORK=off GOBIN="$WORK/gobin" \
			go install -trimpath github.com/versity/versitygw/cmd/versitygw@v1.8.0)
		VERSITYGW="$WORK/gobin/versitygw"
	fi
fi
if [ "${TUSD:-}" = 1 ]; then
	GOBIN="$WORK/gobin" go install "github.com/tus/tusd/v2/cmd/tusd@${TUSD_VERSION:-v2.9.1}"
	TARGETS+=(tusd)
fi
KEY="fhk_benchmark_key_$(date +%s)_local_only_0123456789"
PORT_FH=18181
PORT_REF=18182
PORT_TUSD=18183
PORT_GW=18184

S3_PID=""
start_filehub() { # [binary]
	local bin="${1:-$WORK/filehub}"
	rm -rf "$DATA/fh-data"
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
	elif [ "$BLOBS" = versitygw ]; then
		rm -rf "$DATA/gw-root"
		mkdir -p "$DATA/gw-root"
		"$VERSITYGW" --access bench --secret bench --region us-east-1 --port "127.0.0.1:$PORT_GW" --quiet \
			posix "$DATA/gw-root" >"$WORK/gw.log" 2>&1 &
		S3_PID=$!
		wait_port "$PORT_GW"
		curl -sSf --aws-sigv4 "aws:amz:us-east-1:s3" --user bench:bench -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" \
			-X PUT "http://127.0.0.1:$PORT_GW/filehub-bench" -o /dev/null
		blobs="s3://filehub-bench?endpoint=http://127.0.0.1:$PORT_GW&region=us-east-1&path_style=true"
	fi
	local ak="${AWS_ACCESS_KEY_ID:-bench}" sk="${AWS_SECRET_ACCESS_KEY:-bench}"
	[ "$BLOBS" = versitygw ] && ak=bench sk=bench
	AWS_ACCESS_KEY_ID="$ak" AWS_SECRET_ACCESS_KEY="$sk" \
		AWS_EC2_METADATA_DISABLED=true FILEHUB_BOOTSTRAP_KEY="$KEY" \
		"$bin" serve --data-dir "$DATA/fh-data" --db "$db" --blobs "$blobs" \
		--listen "127.0.0.1:$PORT_FH" --rate-limit 0 --max-upload-size 2GiB \
		--min-free-space 0 --log-level warn >"$WORK/fh.log" 2>&1 &
	SERVER_PID=$!
	wait_port "$PORT_FH"
}

start_reference() {
	rm -rf "$DATA/ref-data"
	"$WORK/filehub-load" reference --listen "127.0.0.1:$PORT_REF" --dir "$DATA/ref-data" 2>"$WORK/ref.log" &
	SERVER_PID=$!
	wait_port "$PORT_REF"
}

start_tusd() {
	rm -rf "$DATA/tusd-data"
	"$WORK/gobin/tusd" -host 127.0.0.1 -port "$PORT_TUSD" -upload-dir "$DATA/tusd-data" \
		-base-path /files/ -disable-download -disable-termination >"$WORK/tusd.log" 2>&1 &
	SERVER_PID=$!
	wait_port "$PORT_TUSD"
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

# cpu_ticks PID -> the process's user+system CPU time so far, in clock ticks
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
CLK_TCK="$(getconf CLK_TCK)"

# scenario_args NAME -> load tool arguments
scenario_args() {
	case "$1" in
	large) echo "-n 1 -c 1 --size $LARGE_SIZE" ;;
	small) echo "-n $SMALL_N -c 50 --size 4KiB" ;;
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
		for target in "${TARGETS[@]}"; do
			if [ "$target" = filehub ]; then
				start_filehub
				url="http://127.0.0.1:$PORT_FH/v1/files"
			elif [ "$target" = base ]; then
				start_filehub "$WORK/filehub-base"
				url="http://127.0.0.1:$PORT_FH/v1/files"
			elif [ "$target" = tusd ]; then
				start_tusd
				url="http://127.0.0.1:$PORT_TUSD/files/"
			else
				start_reference
				url="http://127.0.0.1:$PORT_REF/"
			fi
			cpu0="$(cpu_ticks "$SERVER_PID")"
			# shellcheck disable=SC2086
			tus=""
			[ "$target" = tusd ] && tus="--tus"
			out="$("$WORK/filehub-load" upload --url "$url" --key "$KEY" --pid "$SERVER_PID" $tus $args)"
			cpu1="$(cpu_ticks "$SERVER_PID")"
			# Server CPU per upload (user+system, µs): steadier than the rate
			# on a noisy machine.
			n_uploads="$(echo "$args" | awk '{for (i = 1; i < NF; i++) if ($i == "-n") print $(i + 1)}')"
			cpu_us="$(awk -v a="$cpu0" -v b="$cpu1" -v t="$CLK_TCK" -v n="$n_uploads" 'BEGIN { printf "%.0f", (b - a) / t / n * 1e6 }')"
			out="${out%\}},\"server_cpu_us_per_upload\":$cpu_us}"
			blob_bytes=0
			if { [ "$target" = filehub ] || [ "$target" = base ]; } && [ -z "$BLOBS" ]; then
				blob_bytes="$(du -sb "$DATA/fh-data/blobs" | cut -f1)"
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
print(f"{'scenario':9} {'target':10} {'uploads/s':>10} {'MB/s':>8} {'p99 ms':>8} {'peak RSS MiB':>13} {'CPU µs/upload':>14}")
for (scen, target), rs in by.items():
    med = lambda k: statistics.median(r.get(k, 0) for r in rs)
    print(f"{scen:9} {target:10} {med('uploads_per_sec'):10.0f} {med('mb_per_sec'):8.0f} {med('p99_ms'):8.1f} {med('server_peak_rss_bytes')/2**20:13.1f} {med('server_cpu_us_per_upload'):14.0f}")
for scen in dict.fromkeys(s for s, _ in by):
    f, r = by.get((scen, "filehub")), by.get((scen, "reference"))
    if f and r:
        ratios = [a["uploads_per_sec"] / b["uploads_per_sec"] for a, b in zip(f, r)]
        print(f"{scen}: filehub/reference throughput per round {', '.join(f'{x:.2f}' for x in ratios)}; median {statistics.median(ratios):.2f}")
    t = by.get((scen, "tusd"))
    if f and t:
        ratios = [a["uploads_per_sec"] / c["uploads_per_sec"] for a, c in zip(f, t)]
        print(f"{scen}: filehub/tusd throughput per round {', '.join(f'{x:.2f}' for x in ratios)}; median {statistics.median(ratios):.2f}")
    b = by.get((scen, "base"))
    if f and b:
        ratios = [a["uploads_per_sec"] / c["uploads_per_sec"] for a, c in zip(f, b)]
        print(f"{scen}: filehub/base throughput per round {', '.join(f'{x:.2f}' for x in ratios)}; median {statistics.median(ratios):.2f}")
PY

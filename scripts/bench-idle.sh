#!/usr/bin/env bash
# Server memory per idle WebSocket session, filehub next to a bare
# gorilla/websocket server in the same run, each server a separate process
# from the load generator: VmRSS before the first connection and after the
# last one opened (filehub-load ws-idle). Every round starts fresh servers;
# the targets alternate their order round by round.
#
#   scripts/bench-idle.sh                       # 3 rounds of 10,000 connections
#   ROUNDS=5 CONNS=5000 scripts/bench-idle.sh
#   BASE_REV=eb1af81 scripts/bench-idle.sh      # adds filehub at BASE_REV (durable sessions)
#
# Targets: bare (the baseline), filehub (the daemon's default, durable
# sessions in SQLite) and filehub-memory (--ws-sessions memory).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/bench-lib.sh
. scripts/bench-lib.sh

ROUNDS="${ROUNDS:-3}"
CONNS="${CONNS:-10000}"
BASE_REV="${BASE_REV:-}"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/filehub-idle.XXXXXX")"
cleanup_work() {
	kill $(jobs -p) 2>/dev/null || true
	wait 2>/dev/null || true
	rm -rf "$WORK"
}
trap cleanup_work EXIT

go build -o "$WORK/filehub-load" ./cmd/filehub-load
TARGETS=(bare filehub filehub-memory)
if [ -n "$BASE_REV" ]; then
	git worktree add -q --detach "$WORK/base-src" "$BASE_REV"
	(cd "$WORK/base-src" && go build -o "$WORK/filehub-load-base" ./cmd/filehub-load)
	git worktree remove --force "$WORK/base-src"
	TARGETS+=(base)
fi
KEY="fhk_idle_key_$(date +%s)_local_only_0123456789"
PORT=18201

RESULTS="$WORK/results.jsonl"
run() { # round target
	local dir="$WORK/$2-$1" url args=()
	mkdir -p "$dir"
	case "$2" in
	bare) "$WORK/filehub-load" ws-bare --listen "127.0.0.1:$PORT" >"$dir.json" & ;;
	filehub) "$WORK/filehub-load" ws-server --listen "127.0.0.1:$PORT" --dir "$dir" --key "$KEY" >"$dir.json" & ;;
	filehub-memory) "$WORK/filehub-load" ws-server --listen "127.0.0.1:$PORT" --dir "$dir" --key "$KEY" --ws-sessions memory >"$dir.json" & ;;
	base) "$WORK/filehub-load-base" ws-server --listen "127.0.0.1:$PORT" --dir "$dir" --key "$KEY" >"$dir.json" & ;;
	esac
	local server=$!
	wait_port "$PORT"
	url="$(jq -r .url "$dir.json")"
	if [ "$2" != bare ]; then args=(--key "$KEY"); fi
	local load out
	load="$(cut -d' ' -f1-3 /proc/loadavg)"
	out="$("$WORK/filehub-load" ws-idle --url "$url" -n "$CONNS" --pid "$(jq -r .pid "$dir.json")" "${args[@]}")" ||
		{ echo "$out"; echo "round $1 $2 failed" >&2; exit 1; }
	kill -INT "$server"
	wait "$server" || true
	record "$1" "$2" "$load" "$out"
}

run_rounds

python3 - "$RESULTS" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
by = {}
for r in rows:
    by.setdefault(r["round"], {})[r["server"]] = r
print()
print("| round | server | load (1/5/15 min) | KB (1000 bytes) per idle connection (RSS) | / bare |")
print("|---|---|---|---:|---:|")
for rnd in sorted(by):
    bare = by[rnd].get("bare")
    for name, r in by[rnd].items():
        kb = r["server_bytes_per_conn"] / 1000
        ratio = "%.2f" % (r["server_bytes_per_conn"] / bare["server_bytes_per_conn"]) if bare else ""
        print("| %d | %s | %s | %.1f | %s |" % (rnd, name, r["load"], kb, ratio))
PY

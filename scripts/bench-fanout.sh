#!/usr/bin/env bash
# Event fan-out against Centrifugo, in the same run: 1,000 WebSocket
# subscribers on one event stream, events produced through each server's HTTP
# API, the two servers alternating round by round. Prints one JSON line per
# run (with the load average at its start) and a table of every round with the
# filehub/Centrifugo ratios.
#
#   scripts/bench-fanout.sh                    # 3 rounds, 1,000 subscribers, 200 events/s
#   ROUNDS=5 RATE=0 EVENTS=3000 scripts/bench-fanout.sh     # as fast as each server takes events
#   BASE_REV=eb1af81 scripts/bench-fanout.sh   # adds filehub at BASE_REV as one more target
#   DURABLE=1 scripts/bench-fanout.sh          # adds filehub with durable sessions (filehub-durable)
#
# filehub: `filehub-load ws-server`, the whole daemon (package server, as
# `filehub serve` runs it) on SQLite (synchronous=FULL) and the local disk, with
# WebSocket sessions in memory (--ws-sessions memory), the counterpart of
# Centrifugo's memory engine: neither keeps sessions across a restart, and a
# filehub client still loses no event, since it re-subscribes from the event
# log (docs/protocol.md §8); DURABLE=1 adds the daemon's default, durable
# sessions, which save every unacknowledged frame, events included; each
# event is a real DELETE /v1/files/{id} or POST /v1/files/{id}/restore, its event
# written in the change's transaction; the subscribers are raw protocol clients
# (hello, events.subscribe, acks within 20 ms or 64 frames as docs/protocol.md
# §4 asks) that check every event arrives once, in id order, with contiguous
# frame seqs.
#
# Centrifugo (CENTRIFUGO_VERSION, default v6.9.1, installed with go install into
# a temporary GOBIN; CENTRIFUGO_BIN=path skips the build): memory engine, one
# namespace with history and forced recovery (history_size 1000, history_ttl
# 300s); each event is an /api/publish of the JSON of a filehub event of the same
# shape; the subscribers connect with an HS256 token and check that publication
# offsets arrive once, in order.
#
# Both servers are separate processes from the load generator; only 127.0.0.1
# is used. Knobs: ROUNDS (3), SUBS (1000), EVENTS (2000), RATE (200 events/s; 0:
# as fast as the server takes them), PRODUCERS (16).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/bench-lib.sh
. scripts/bench-lib.sh

ROUNDS="${ROUNDS:-3}"
SUBS="${SUBS:-1000}"
EVENTS="${EVENTS:-2000}"
RATE="${RATE:-200}"
PRODUCERS="${PRODUCERS:-16}"
CENTRIFUGO_VERSION="${CENTRIFUGO_VERSION:-v6.9.1}"
BASE_REV="${BASE_REV:-}"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/filehub-fanout.XXXXXX")"
cleanup_work() {
	kill $(jobs -p) 2>/dev/null || true
	wait 2>/dev/null || true
	rm -rf "$WORK"
}
trap cleanup_work EXIT

go build -o "$WORK/filehub-load" ./cmd/filehub-load
TARGETS=(filehub centrifugo)
if [ "${DURABLE:-}" = 1 ]; then
	TARGETS+=(filehub-durable)
fi
if [ -n "$BASE_REV" ]; then
	git worktree add -q --detach "$WORK/base-src" "$BASE_REV"
	(cd "$WORK/base-src" && go build -o "$WORK/filehub-load-base" ./cmd/filehub-load)
	git worktree remove --force "$WORK/base-src"
	TARGETS+=(base)
fi
CENTRIFUGO="${CENTRIFUGO_BIN:-}"
if [ -z "$CENTRIFUGO" ]; then
	GOBIN="$WORK/gobin" go install "github.com/centrifugal/centrifugo/v6@$CENTRIFUGO_VERSION"
	CENTRIFUGO="$WORK/gobin/centrifugo"
fi

KEY="fhk_fanout_key_$(date +%s)_local_only_0123456789"
CF_SECRET="fanout-secret-$RANDOM$RANDOM"
CF_API_KEY="fanout-api-$RANDOM$RANDOM"
PORT_FH=18191
PORT_CF=18192
PORT_BASE=18193
PORT_DURABLE=18194

start_ws_server() { # binary port dir sessions; sets WS_PID (started here, so that cleanup's jobs -p sees it)
	mkdir -p "$3"
	local sessions=()
	if [ -n "$4" ]; then sessions=(--ws-sessions "$4"); fi
	"$1" ws-server --listen "127.0.0.1:$2" --dir "$3" --key "$KEY" "${sessions[@]}" >"$3.json" &
	wait_port "$2"
	WS_PID="$(jq -r .pid "$3.json")"
}

cat >"$WORK/centrifugo.json" <<EOF
{
  "http_server": {"address": "127.0.0.1", "port": $PORT_CF},
  "log": {"level": "error"},
  "engine": {"type": "memory"},
  "client": {"token": {"hmac_secret_key": "$CF_SECRET"}, "allowed_origins": ["*"]},
  "http_api": {"key": "$CF_API_KEY"},
  "channel": {"namespaces": [{
    "name": "fanout", "history_size": 1000, "history_ttl": "300s",
    "force_recovery": true, "allow_subscribe_for_client": true
  }]}
}
EOF
"$CENTRIFUGO" --config "$WORK/centrifugo.json" >"$WORK/centrifugo.log" 2>&1 &
CF_PID=$!
wait_port "$PORT_CF"
start_ws_server "$WORK/filehub-load" "$PORT_FH" "$WORK/fh" memory
FH_PID="$WS_PID"
if [ "${DURABLE:-}" = 1 ]; then
	start_ws_server "$WORK/filehub-load" "$PORT_DURABLE" "$WORK/durable" durable
	DURABLE_PID="$WS_PID"
fi
if [ -n "$BASE_REV" ]; then
	# BASE_SESSIONS= (empty) for a base older than ws-server's --ws-sessions.
	start_ws_server "$WORK/filehub-load-base" "$PORT_BASE" "$WORK/base" "${BASE_SESSIONS-memory}"
	BASE_PID="$WS_PID"
fi

RESULTS="$WORK/results.jsonl"
run() { # round target
	local args=(-n "$SUBS" --events "$EVENTS" --rate "$RATE" --producers "$PRODUCERS")
	case "$2" in
	filehub) args+=(--url "ws://127.0.0.1:$PORT_FH/v1/ws" --key "$KEY" --pid "$FH_PID") ;;
	filehub-durable) args+=(--url "ws://127.0.0.1:$PORT_DURABLE/v1/ws" --key "$KEY" --pid "$DURABLE_PID") ;;
	base) args+=(--url "ws://127.0.0.1:$PORT_BASE/v1/ws" --key "$KEY" --pid "$BASE_PID") ;;
	centrifugo) args+=(--target centrifugo --url "ws://127.0.0.1:$PORT_CF/connection/websocket"
		--api-url "http://127.0.0.1:$PORT_CF/api" --api-key "$CF_API_KEY" --token-secret "$CF_SECRET" --pid "$CF_PID") ;;
	esac
	local load out
	load="$(cut -d' ' -f1-3 /proc/loadavg)"
	out="$("$WORK/filehub-load" ws-fanout "${args[@]}")" || { echo "$out"; echo "round $1 $2 failed" >&2; exit 1; }
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
print("| round | server | load (1/5/15 min) | deliveries/s | p50 ms | p99 ms | produce request p50 ms | server CPU µs / 1000 deliveries | filehub/centrifugo deliveries/s | p99 centrifugo/filehub |")
print("|---|---|---|---:|---:|---:|---:|---:|---:|---:|")
for rnd in sorted(by):
    cf = by[rnd].get("centrifugo")
    for name, r in by[rnd].items():
        ratio = p99 = ""
        if cf and name != "centrifugo":
            ratio = "%.2f" % (r["deliveries_per_sec"] / cf["deliveries_per_sec"])
            p99 = "%.2f" % (cf["p99_ms"] / r["p99_ms"]) if r["p99_ms"] else ""
        print("| %d | %s | %s | %.0f | %.1f | %.1f | %.1f | %.0f | %s | %s |" % (
            rnd, name, r["load"], r["deliveries_per_sec"], r["p50_ms"], r["p99_ms"], r.get("produce_p50_ms", 0),
            r.get("server_cpu_us_per_1000_deliveries", 0), ratio, p99))
PY

# Helpers shared by the scripts/bench-*.sh benchmarks. Sourced, not run:
#
#   cd "$(dirname "$0")/.." && . scripts/bench-lib.sh

# wait_port PORT waits until something accepts connections on
# 127.0.0.1:PORT, for 10 s at most.
wait_port() {
	for _ in $(seq 1 100); do
		(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
		sleep 0.1
	done
	echo "nothing listening on port $1" >&2
	return 1
}

# round_order ROUND TARGET... prints the targets one per line in the order
# they run in round ROUND: as given in odd rounds, reversed in even ones, so
# that no target always runs first (or right after a given other one).
round_order() {
	local round=$1
	shift
	if [ $((round % 2)) = 0 ]; then
		for ((i = $#; i >= 1; i--)); do echo "${!i}"; done
	else
		printf '%s\n' "$@"
	fi
}

# run_rounds calls the script's run function for every round (1..$ROUNDS)
# and every target of TARGETS, in round_order.
run_rounds() {
	for round in $(seq 1 "$ROUNDS"); do
		for t in $(round_order "$round" "${TARGETS[@]}"); do
			run "$round" "$t"
		done
	done
}

# record ROUND TARGET LOAD JSON appends the load tool's JSON result, tagged
# with its round, target and the load average at its start, to $RESULTS
# and prints it.
record() {
	echo "$4" | jq -c --arg r "$1" --arg t "$2" --arg l "$3" '{round: ($r|tonumber), server: $t, load: $l} + .' | tee -a "$RESULTS"
}

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

# bench/lib.sh — sourced by the bench scripts: a private temporary
# directory and the processes a script starts, all gone when it exits.
#
#   bench_init PREFIX    sets TMP (mktemp -d /tmp/PREFIX.XXXXXX) and PIDS,
#                        and traps EXIT (cleanup) and INT/TERM (exit 130)
#   PIDS+=("$pid")       a process to stop (SIGTERM) at exit
#   say TEXT...          prints one line

cleanup() {
	local p
	for p in "${PIDS[@]}"; do
		if kill -0 "$p" 2>/dev/null; then
			kill -TERM "$p" 2>/dev/null || true
			wait "$p" 2>/dev/null || true
		fi
	done
	rm -rf "$TMP"
}

bench_init() {
	TMP=$(mktemp -d "/tmp/$1.XXXXXX")
	PIDS=()
	trap cleanup EXIT
	trap 'exit 130' INT TERM
}

say() { printf '%s\n' "$*"; }

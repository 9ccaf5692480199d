#!/usr/bin/env bash
# kubemedicd's Kubernetes side at scale, next to what a Go user would write
# (a client-go informer program: kmctl informer), in the same run on the same
# cluster: the time to the initial sync of every resource kubemedic watches,
# then memory and CPU over a window of churn (kmctl churn deleting pods at
# CHURN a second; their replacements, bindings and status updates follow).
# Rounds alternate the two.
#
# usage: bench/kube_scale.sh [NODES [DEPLOYMENTS [REPLICAS [ROUNDS [WINDOW [CHURN]]]]]]
#        (defaults: 1000 30 1000 2 30s 20 — issue 10's 1,000 nodes and
#        30,000 pods; pod creation alone takes 5 to 15 minutes here)
# KM_SCALE_STATE=DIR: use the cluster already up in DIR (tests/e2e/cluster/up
# DIR, then kmctl scale) instead of starting one, and leave it up.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cluster=$root/tests/e2e/cluster
build=${KM_BUILD:-$root/build}
nodes=${1:-1000}
deployments=${2:-30}
replicas=${3:-1000}
rounds=${4:-2}
window=${5:-30s}
churn=${6:-20}

ninja -C "$build" kubemedicd >/dev/null
pid=
kmctl=$cluster/.bin/tools/kmctl
echo "# kube_scale: $nodes nodes, $deployments x $replicas pods, $rounds rounds, window $window, churn $churn pods/s, $(nproc) cores, load: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# commit: $(git -C "$root" rev-parse --short HEAD)$(git -C "$root" diff --quiet || echo ' (dirty)')"
if [[ -n ${KM_SCALE_STATE:-} ]]; then
	state=$KM_SCALE_STATE
	trap '[[ -n $pid ]] && kill "$pid" 2>/dev/null' EXIT
	trap 'exit 130' INT TERM HUP
	(cd "$cluster" && GOFLAGS=-p=1 go build -o "$kmctl" ./cmd/kmctl)
	echo "cluster: $state (already up): $("$kmctl" nodes --kubeconfig "$state/admin.kubeconfig" 2>/dev/null | head -n 1)"
else
	state=$(mktemp -d "${TMPDIR:-/tmp}/kubemedic-kube-scale.XXXXXX")
	touch "$state/.kubemedic-e2e"
	trap '[[ -n $pid ]] && kill "$pid" 2>/dev/null; "$cluster/down" "$state"' EXIT
	trap 'exit 130' INT TERM HUP
	t0=$SECONDS
	KM_E2E_NODES=$nodes KM_E2E_NODES_TIMEOUT=900s "$cluster/up" "$state" >/dev/null
	echo "up with $nodes nodes: $((SECONDS - t0)) s"
	t0=$SECONDS
	"$kmctl" scale --kubeconfig "$state/admin.kubeconfig" --deployments "$deployments" --replicas "$replicas" >/dev/null
	echo "$((deployments * replicas)) pods running: $((SECONDS - t0)) s"
fi
kc=$state/kubemedic.kubeconfig

now_ms() { echo $(($(date +%s%N) / 1000000)); }
# waitlog FILE PATTERN COUNT: until FILE has COUNT lines matching PATTERN
# (a benchmark's clock, read every 50 ms; at most 15 minutes).
waitlog() {
	local i
	for ((i = 0; i < 18000; i++)); do
		# (a file not there yet counts none)
		(($(cat -- "$1" 2>/dev/null | grep -c -- "$2") >= $3)) && return 0
		sleep 0.05
	done
	echo "kube_scale: $2 not seen in $1" >&2
	return 1
}
stat_of() { # NAME PID: "cpu rss peak" over the window, pods churning
	"$kmctl" churn --kubeconfig "$state/admin.kubeconfig" --rate "$churn" --duration "$window" \
		>>"$state/churn.log" 2>&1 &
	local cp=$!
	"$kmctl" procstat --window "$window" "$1=$2" | awk -v n="$1" '$1 == n {print $2, $3, $4}'
	wait "$cp" || echo "kube_scale: churn failed: $(tail -n 1 "$state/churn.log")" >&2
}

printf '\n%-6s %-10s %10s %10s %10s %10s\n' round program sync_ms cpu_cores rss_mib peak_mib
for ((r = 1; r <= rounds; r++)); do
	# client-go
	log=$state/informer.$r.log
	rm -f "$log" # an earlier run's: waitlog must not read it before it is truncated
	start=$(now_ms)
	"$kmctl" informer --kubeconfig "$kc" >"$log" 2>&1 &
	pid=$!
	waitlog "$log" "informer synced" 1
	sync=$(($(now_ms) - start))
	read -r cpu rss peak < <(stat_of informer "$pid")
	kill "$pid"; wait "$pid" 2>/dev/null || true; pid=
	printf '%-6s %-10s %10s %10s %10s %10s   %s\n' "$r" client-go "$sync" "$cpu" "$rss" "$peak" "$(cat "$log")"
	# kubemedicd: synced when all nine resources have been listed
	log=$state/kubemedicd.$r.log
	rm -f "$log"
	rm -f "$state/km.$r.db"*
	start=$(now_ms)
	"$build/kubemedicd" --listen 127.0.0.1:0 --db "$state/km.$r.db" --kubeconfig "$kc" 2>"$log" &
	pid=$!
	waitlog "$log" 'msg="kube: listed"' 9
	sync=$(($(now_ms) - start))
	read -r cpu rss peak < <(stat_of kubemedicd "$pid")
	kill "$pid"; wait "$pid" 2>/dev/null || true; pid=
	objs=$(sed -n 's/.*msg="kube: listed".* objects=\([0-9]*\).*/\1/p' "$log" | awk '{s += $1} END {print s}')
	printf '%-6s %-10s %10s %10s %10s %10s   kubemedicd listed objects=%s\n' "$r" kubemedicd "$sync" "$cpu" "$rss" "$peak" "$objs"
done

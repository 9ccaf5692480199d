#!/usr/bin/env bash
# How many simulated nodes and pods the e2e harness sustains, and what it
# costs: starts the control plane with NODES kubesim nodes, measures CPU and
# memory while idle, creates DEPLOYMENTS × REPLICAS pods, times until all are
# Running and Ready, measures again at steady state, tears everything down.
#
# usage: bench/e2e_scale.sh [NODES [DEPLOYMENTS [REPLICAS [WINDOW]]]]
#        (defaults: 1000 30 1000 60s — the issue 4 target of 1,000 nodes and
#        30,000 pods; WINDOW is each measurement's length)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cluster=$root/tests/e2e/cluster
nodes=${1:-1000}
deployments=${2:-30}
replicas=${3:-1000}
window=${4:-60s}

state=$(mktemp -d "${TMPDIR:-/tmp}/kubemedic-e2e-bench.XXXXXX")
touch "$state/.kubemedic-e2e"
trap '"$cluster/down" "$state"' EXIT
trap 'exit 130' INT TERM HUP

echo "# e2e_scale: $nodes nodes, $deployments x $replicas pods, $(nproc) cores, load: $(cut -d' ' -f1-3 /proc/loadavg)"
t0=$SECONDS
KM_E2E_NODES=$nodes KM_E2E_NODES_TIMEOUT=900s "$cluster/up" "$state" >/dev/null
echo "up with $nodes nodes registered: $((SECONDS - t0)) s"

kmctl=$cluster/.bin/tools/kmctl
procs() {
	local n
	for n in etcd kube-apiserver kube-controller-manager kubesim; do
		echo "$n=$(<"$state/pids/$n.pid")"
	done
}
# shellcheck disable=SC2046
{
	echo
	echo "## idle: $nodes nodes, no pods (window $window)"
	"$kmctl" procstat --window "$window" $(procs)
	"$kmctl" nodes --kubeconfig "$state/admin.kubeconfig"
	echo
	echo "## creating $((deployments * replicas)) pods"
	"$kmctl" scale --kubeconfig "$state/admin.kubeconfig" --deployments "$deployments" --replicas "$replicas"
	"$kmctl" nodes --kubeconfig "$state/admin.kubeconfig"
	echo
	echo "## steady state: $nodes nodes, $((deployments * replicas)) pods (window $window)"
	"$kmctl" procstat --window "$window" $(procs)
	"$kmctl" nodes --kubeconfig "$state/admin.kubeconfig"
	echo
	echo "etcd data: $(du -sm "$state/etcd" | cut -f1) MiB; load: $(cut -d' ' -f1-3 /proc/loadavg)"
}

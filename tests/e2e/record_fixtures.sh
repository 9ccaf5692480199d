#!/usr/bin/env bash
# record_fixtures.sh: (re)record tests/unit/kube_fixtures/ from a real control
# plane (etcd + kube-apiserver + kube-controller-manager + kubesim, started by
# cluster/up in a temporary STATE and stopped by cluster/down on exit).
#
# Every fixture is the API server's own bytes, as it answers a client that
# asks for JSON (`Accept: application/json`) and is not curl: the API server
# pretty-prints JSON for a User-Agent starting with "curl", so we send
# "kubemedic-fixture-recorder" and get the compact encoding kubemedic sees.
# Objects come from the real controllers (Deployment, ReplicaSet, StatefulSet,
# DaemonSet, Job, EndpointSlice, node lifecycle taints and NodeStatusUnknown)
# and from kubesim (node registration, Lease, pods it runs, scenarios
# node-notready and node-heartbeat-stop); states that neither can make
# (OOMKilled, ImagePullBackOff, unschedulable, Evicted, an init container
# waiting, one container of two not ready, a Job pod that succeeded, memory and
# disk pressure, NetworkUnavailable) are written by this script as a kubelet or
# the scheduler would: a merge patch of the object's /status subresource.
# README.md in the output folder lists what each file is.
#
# Usage: tests/e2e/record_fixtures.sh [OUTDIR]   (default tests/unit/kube_fixtures)
# Takes about 100 s after up: the node lifecycle controller's 40 s grace period
# (node-unknown) and the watch cache's 75 s event window (watch-gone) are waited
# for, not faked.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
out=${1:-$root/tests/unit/kube_fixtures}
export GOFLAGS=${GOFLAGS:--p=2}

for tool in curl jq sha256sum; do
	command -v "$tool" >/dev/null || { echo "record_fixtures: needs $tool" >&2; exit 1; }
done

work=$(mktemp -d "${TMPDIR:-/tmp}/kubemedic-fixtures.XXXXXX")
state=$work/state
stage=$work/out
mkdir -p "$stage"
watch_pid= lease_pid= # background jobs of ours, killed by id on exit

cleanup() {
	local rc=$? p
	for p in $watch_pid $lease_pid; do kill "$p" 2>/dev/null || true; done
	for p in $watch_pid $lease_pid; do wait "$p" 2>/dev/null || true; done
	if [[ -e $state/.kubemedic-e2e ]]; then
		if ((rc != 0)); then
			echo "record_fixtures: failed (exit $rc); last log lines:" >&2
			for f in "$state"/logs/*.log; do
				[[ -e $f ]] && { echo "--- $f" >&2; tail -n 10 "$f" >&2; }
			done
		fi
		if ! "$here/cluster/down" "$state" >&2; then
			echo "record_fixtures: down failed; keeping $work" >&2
			exit 1
		fi
	fi
	rm -rf "$work"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

log() { echo "record_fixtures: $*" >&2; }

# Five kubesim nodes: 0 Ready, 1 NotReady, 2 silent (Unknown), 3 under
# pressure, 4 cordoned. Default grace period (40 s).
KM_E2E_NODES=5 "$here/cluster/up" "$state" >/dev/null
# shellcheck disable=SC1091
source "$state/env"
t_start=$SECONDS

UA=kubemedic-fixture-recorder
NS=fixtures
WNS=fixtures-watch

# api METHOD PATH [curl args...]: admin request, body on stdout, fails on >= 400.
api() {
	local m=$1 p=$2
	shift 2
	curl -sS --fail-with-body -A "$UA" --cacert "$KM_E2E_CA" \
		--cert "$KM_E2E_ADMIN_CERT" --key "$KM_E2E_ADMIN_KEY" \
		-H "Accept: ${ACCEPT:-application/json}" -X "$m" "$@" "$KM_E2E_APISERVER$p"
}
absent() { ! api GET "$1"; }
create() { api POST "$1" -H 'Content-Type: application/json' --data-binary @- >/dev/null; }
mpatch() { api PATCH "$1" -H 'Content-Type: application/merge-patch+json' --data-binary @- >/dev/null; }
# record FILE PATH [curl args]: the server's bytes for GET PATH, unchanged.
record() {
	local f=$1 p=$2
	shift 2
	api GET "$p" "$@" -o "$stage/$f"
	log "recorded $f ($(wc -c <"$stage/$f") bytes)"
}
# record_status FILE WANT-CODE PATH [curl args]: an error answer, unchanged.
record_status() {
	local f=$1 want=$2 p=$3 code
	shift 3
	code=$(curl -sS -A "$UA" --cacert "$KM_E2E_CA" -H 'Accept: application/json' \
		-o "$stage/$f" -w '%{http_code}' "$@" "$KM_E2E_APISERVER$p")
	if [[ $code != "$want" ]]; then
		log "$f: wanted HTTP $want, got $code: $(head -c 300 "$stage/$f")"
		return 1
	fi
	log "recorded $f (HTTP $code, $(wc -c <"$stage/$f") bytes)"
}
admin=(--cert "$KM_E2E_ADMIN_CERT" --key "$KM_E2E_ADMIN_KEY")

# until_ok DESC TIMEOUT CMD...: poll CMD every 0.5 s.
until_ok() {
	local desc=$1 end=$((SECONDS + $2))
	shift 2
	until "$@" >/dev/null 2>&1; do
		if ((SECONDS >= end)); then
			log "timed out waiting for $desc"
			if [[ $1 == jtrue ]]; then
				api GET "$2" | jq -c '.status // .items' | head -c 3000 >&2 || true
				echo >&2
			fi
			return 1
		fi
		sleep 0.5
	done
}
# jtrue PATH JQ: does the object at PATH satisfy JQ?
jtrue() { api GET "$1" | jq -e "$2"; }

now() { date -u +%FT%TZ; }
micro() { date -u +%FT%T.%6NZ; }
hex64() { head -c 32 /dev/urandom | sha256sum | cut -c1-64; }
cid() { echo "containerd://$(hex64)"; }
digest() { echo "$1@sha256:$(hex64)"; } # image reference by digest, as runtimes report imageID
sim() { curl -fsS -X POST "$KM_E2E_KUBESIM/$1?name=$2&target=$3" >/dev/null; }

# --- node scenarios first: the heartbeat-stop clock (40 s grace) starts now -----
sim scenario node-notready kubesim-node-1
sim scenario node-heartbeat-stop kubesim-node-2

# --- namespaces ------------------------------------------------------------
for ns in $NS $WNS; do
	create /api/v1/namespaces <<<"{\"apiVersion\":\"v1\",\"kind\":\"Namespace\",\"metadata\":{\"name\":\"$ns\"}}"
done
for ns in $NS $WNS; do
	until_ok "ServiceAccount $ns/default" 60 api GET "/api/v1/namespaces/$ns/serviceaccounts/default"
done

# --- watch stream: ADDED, MODIFIED, DELETED, then BOOKMARKs ----------------
# The watch cache sends a bookmark 2 s before the watch's deadline
# (timeoutSeconds) and otherwise about once a minute, so timeoutSeconds=45
# bounds it.
rv_watch=$(api GET "/api/v1/namespaces/$WNS/pods" | jq -r .metadata.resourceVersion)
curl -sS -N -A "$UA" --cacert "$KM_E2E_CA" "${admin[@]}" -H 'Accept: application/json' --max-time 80 \
	-o "$stage/watch-pods.jsonl" \
	"$KM_E2E_APISERVER/api/v1/namespaces/$WNS/pods?watch=1&allowWatchBookmarks=true&resourceVersion=$rv_watch&timeoutSeconds=45" &
watch_pid=$!
sleep 0.5
create "/api/v1/namespaces/$WNS/pods" <<'EOF'
{"apiVersion":"v1","kind":"Pod","metadata":{"name":"watched","labels":{"app":"watched"}},
 "spec":{"nodeSelector":{"kubernetes.io/hostname":"kubesim-node-0"},
  "containers":[{"name":"app","image":"docker.io/library/nginx:1.27"}]}}
EOF
until_ok "pod $WNS/watched Ready" 60 jtrue "/api/v1/namespaces/$WNS/pods/watched" \
	'.status.conditions // [] | any(.type == "Ready" and .status == "True")'
api DELETE "/api/v1/namespaces/$WNS/pods/watched" >/dev/null
until_ok "pod $WNS/watched gone" 60 absent "/api/v1/namespaces/$WNS/pods/watched"

# --- fixture nodes: not kubesim's, their status written here ----------------
# fixture-node-a hosts the hand-made pods (Ready); fixture-node-b's first
# condition is NetworkUnavailable=True and its last is Ready=False. A Lease
# renewed every 10 s keeps the node lifecycle controller from calling them
# Unknown.
fixture_node() { # NAME IP
	create /api/v1/nodes <<EOF
{"apiVersion":"v1","kind":"Node","metadata":{"name":"$1","labels":{"kubernetes.io/hostname":"$1",
 "kubernetes.io/os":"linux","kubernetes.io/arch":"amd64","type":"fixture","topology.kubernetes.io/zone":"zone-a"}}}
EOF
	local uid
	uid=$(api GET "/api/v1/nodes/$1" | jq -r .metadata.uid)
	create /apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases <<EOF
{"apiVersion":"coordination.k8s.io/v1","kind":"Lease","metadata":{"name":"$1","namespace":"kube-node-lease",
 "ownerReferences":[{"apiVersion":"v1","kind":"Node","name":"$1","uid":"$uid"}]},
 "spec":{"holderIdentity":"$1","leaseDurationSeconds":40,"renewTime":"$(micro)"}}
EOF
}
node_status() { # NAME IP CONDITIONS-JSON
	mpatch "/api/v1/nodes/$1/status" <<EOF
{"status":{"capacity":{"cpu":"4","memory":"16Gi","pods":"110","ephemeral-storage":"100Gi"},
 "allocatable":{"cpu":"3800m","memory":"15Gi","pods":"110","ephemeral-storage":"95Gi"},
 "conditions":$3,
 "addresses":[{"type":"InternalIP","address":"$2"},{"type":"Hostname","address":"$1"}],
 "daemonEndpoints":{"kubeletEndpoint":{"Port":10250}},
 "nodeInfo":{"machineID":"$(hex64 | cut -c1-32)","systemUUID":"$(cat /proc/sys/kernel/random/uuid)",
  "bootID":"$(cat /proc/sys/kernel/random/uuid)","kernelVersion":"6.1.0-28-amd64","osImage":"Debian GNU/Linux 12 (bookworm)",
  "containerRuntimeVersion":"containerd://1.7.24","kubeletVersion":"$KM_E2E_K8S_VERSION",
  "operatingSystem":"linux","architecture":"amd64"}}}
EOF
}
cond() { # TYPE STATUS REASON MESSAGE [TRANSITION]
	jq -nc --arg t "$1" --arg s "$2" --arg r "$3" --arg m "$4" --arg hb "$(now)" --arg tr "${5:-$(now)}" \
		'{type:$t,status:$s,lastHeartbeatTime:$hb,lastTransitionTime:$tr,reason:$r,message:$m}'
}
kubelet_ok_conds() {
	cond MemoryPressure False KubeletHasSufficientMemory "kubelet has sufficient memory available" "$1"
	cond DiskPressure False KubeletHasNoDiskPressure "kubelet has no disk pressure" "$1"
	cond PIDPressure False KubeletHasSufficientPID "kubelet has sufficient PID available" "$1"
}
fixture_node fixture-node-a
fixture_node fixture-node-b
t_boot=$(now)
node_status fixture-node-a 198.18.10.1 "$({ kubelet_ok_conds "$t_boot"
	cond Ready True KubeletReady "kubelet is posting ready status" "$t_boot"; } | jq -sc .)"
node_status fixture-node-b 198.18.10.2 "$({ cond NetworkUnavailable True NoRouteCreated "Node created without a route" "$t_boot"
	kubelet_ok_conds "$t_boot"
	cond Ready False KubeletNotReady "container runtime network not ready: NetworkReady=false reason:NetworkPluginNotReady message:Network plugin returns error: cni plugin not initialized" "$t_boot"; } | jq -sc .)"
(
	trap 'kill "$s" 2>/dev/null; exit 0' TERM
	while :; do
		sleep 10 &
		s=$!
		wait "$s"
		for n in fixture-node-a fixture-node-b; do
			mpatch "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/$n" \
				<<<"{\"spec\":{\"renewTime\":\"$(micro)\"}}" || true
		done
	done
) &
lease_pid=$!

# --- kubesim-node-3 under memory and disk pressure; kubesim-node-4 cordoned ----
# kubesim re-posts its conditions only every 5 min, so this patch stands.
api GET /api/v1/nodes/kubesim-node-3 | jq -c --arg now "$(now)" '{status:{conditions:[.status.conditions[] |
	if .type == "MemoryPressure" then .status = "True" | .reason = "KubeletHasInsufficientMemory" |
		.message = "kubelet has insufficient memory available" | .lastTransitionTime = $now | .lastHeartbeatTime = $now
	elif .type == "DiskPressure" then .status = "True" | .reason = "KubeletHasDiskPressure" |
		.message = "kubelet has disk pressure" | .lastTransitionTime = $now | .lastHeartbeatTime = $now
	else .lastHeartbeatTime = $now end]}}' | mpatch /api/v1/nodes/kubesim-node-3/status
mpatch /api/v1/nodes/kubesim-node-4 <<<'{"spec":{"unschedulable":true}}'

# --- hand-made pods on fixture-node-a -----------------------------------------
hostip=198.18.10.1
pod_uid() { api GET "/api/v1/namespaces/$NS/pods/$1" | jq -r .metadata.uid; }
pcond() { # TYPE STATUS [REASON [MESSAGE]] [TRANSITION]
	jq -nc --arg t "$1" --arg s "$2" --arg r "${3:-}" --arg m "${4:-}" --arg tr "${5:-$(now)}" \
		'{type:$t,status:$s,lastProbeTime:null,lastTransitionTime:$tr} + (if $r != "" then {reason:$r} else {} end)
		 + (if $m != "" then {message:$m} else {} end)'
}

# Every pod is made first, its status written 2 s later: times in a status
# are never before the object's creationTimestamp.
create "/api/v1/namespaces/$NS/pods" <<'EOF'
{"apiVersion":"v1","kind":"Pod","metadata":{"name":"running-notready","labels":{"app":"web","track":"canary"}},
 "spec":{"nodeName":"fixture-node-a","containers":[
  {"name":"app","image":"docker.io/library/nginx:1.27","ports":[{"name":"http","containerPort":8080}],
   "readinessProbe":{"httpGet":{"path":"/healthz","port":8080},"periodSeconds":5}},
  {"name":"sidecar","image":"docker.io/envoyproxy/envoy:v1.31.2","ports":[{"name":"admin","containerPort":9901}],
   "readinessProbe":{"httpGet":{"path":"/ready","port":9901},"periodSeconds":5,"failureThreshold":3}}]}}
EOF
create "/api/v1/namespaces/$NS/pods" <<'EOF'
{"apiVersion":"v1","kind":"Pod","metadata":{"name":"crashloop-oomkilled","labels":{"app":"cart"}},
 "spec":{"nodeName":"fixture-node-a","containers":[{"name":"app","image":"ghcr.io/example/cart:2.4.1",
  "resources":{"requests":{"cpu":"100m","memory":"128Mi"},"limits":{"memory":"256Mi"}}}]}}
EOF
create "/api/v1/namespaces/$NS/pods" <<'EOF'
{"apiVersion":"v1","kind":"Pod","metadata":{"name":"imagepullbackoff","labels":{"app":"cart"}},
 "spec":{"nodeName":"fixture-node-a","containers":[{"name":"app","image":"ghcr.io/example/cart:2.4.2-typo"}]}}
EOF
create "/api/v1/namespaces/$NS/pods" <<'EOF'
{"apiVersion":"v1","kind":"Pod","metadata":{"name":"pending-unschedulable","labels":{"app":"trainer"}},
 "spec":{"nodeSelector":{"kubernetes.io/hostname":"gpu-node-7"},
  "containers":[{"name":"app","image":"ghcr.io/example/trainer:0.9","resources":{"requests":{"cpu":"2","memory":"4Gi"}}}]}}
EOF
create "/api/v1/namespaces/$NS/pods" <<'EOF'
{"apiVersion":"v1","kind":"Pod","metadata":{"name":"evicted","labels":{"app":"report"}},
 "spec":{"nodeName":"fixture-node-a","containers":[{"name":"app","image":"ghcr.io/example/report:1.2.0",
  "resources":{"requests":{"memory":"256Mi"}}}]}}
EOF
create "/api/v1/namespaces/$NS/pods" <<'EOF'
{"apiVersion":"v1","kind":"Pod","metadata":{"name":"init-waiting","labels":{"app":"orders"}},
 "spec":{"nodeName":"fixture-node-a",
  "initContainers":[{"name":"init-schema","image":"ghcr.io/example/migrate:1.0","args":["--wait-for-db","orders-db:5432"]}],
  "containers":[{"name":"app","image":"ghcr.io/example/orders:3.1.0"}]}}
EOF
t_c=$(now)
sleep 2

# running-notready: two containers, the sidecar's readiness probe fails. Label
# app=web puts it behind Service web, as a not-ready endpoint.
msg="containers with unready status: [sidecar]"
jq -nc --arg hip $hostip --arg pip 198.18.9.1 --arg st "$t_c" --arg t1 "$t_c" \
	--arg c1 "$(cid)" --arg c2 "$(cid)" --arg i1 "$(digest docker.io/library/nginx)" --arg i2 "$(digest docker.io/envoyproxy/envoy)" \
	--argjson conds "$({ pcond PodReadyToStartContainers True "" "" "$t_c"; pcond Initialized True "" "" "$t_c"
		pcond Ready False ContainersNotReady "$msg" "$(now)"; pcond ContainersReady False ContainersNotReady "$msg" "$(now)"
		pcond PodScheduled True "" "" "$t_c"; } | jq -sc .)" '{status:{phase:"Running",conditions:$conds,
	hostIP:$hip,hostIPs:[{ip:$hip}],podIP:$pip,podIPs:[{ip:$pip}],startTime:$st,containerStatuses:[
	{name:"app",state:{running:{startedAt:$t1}},lastState:{},ready:true,restartCount:0,image:"docker.io/library/nginx:1.27",
	 imageID:$i1,containerID:$c1,started:true},
	{name:"sidecar",state:{running:{startedAt:$t1}},lastState:{},ready:false,restartCount:0,image:"docker.io/envoyproxy/envoy:v1.31.2",
	 imageID:$i2,containerID:$c2,started:true}]}}' | mpatch "/api/v1/namespaces/$NS/pods/running-notready/status"

# crashloop-oomkilled: the kubelet's CrashLoopBackOff after an OOM kill.
uid=$(pod_uid crashloop-oomkilled)
msg="containers with unready status: [app]"
c=$(cid)
jq -nc --arg hip $hostip --arg pip 198.18.9.2 --arg st "$t_c" --arg s "$t_c" --arg f "$(now)" --arg c "$c" \
	--arg i "$(digest ghcr.io/example/cart)" --arg bo "back-off 5m0s restarting failed container=app pod=crashloop-oomkilled_${NS}($uid)" \
	--argjson conds "$({ pcond PodReadyToStartContainers True "" "" "$t_c"; pcond Initialized True "" "" "$t_c"
		pcond Ready False ContainersNotReady "$msg" "$t_c"; pcond ContainersReady False ContainersNotReady "$msg" "$t_c"
		pcond PodScheduled True "" "" "$t_c"; } | jq -sc .)" '{status:{phase:"Running",conditions:$conds,
	hostIP:$hip,hostIPs:[{ip:$hip}],podIP:$pip,podIPs:[{ip:$pip}],startTime:$st,containerStatuses:[
	{name:"app",state:{waiting:{reason:"CrashLoopBackOff",message:$bo}},
	 lastState:{terminated:{exitCode:137,reason:"OOMKilled",startedAt:$s,finishedAt:$f,containerID:$c}},
	 ready:false,restartCount:7,image:"ghcr.io/example/cart:2.4.1",imageID:$i,containerID:$c,started:false,
	 resources:{requests:{cpu:"100m",memory:"128Mi"},limits:{memory:"256Mi"}}}]}}' |
	mpatch "/api/v1/namespaces/$NS/pods/crashloop-oomkilled/status"

# imagepullbackoff: the image does not exist.
img=ghcr.io/example/cart:2.4.2-typo
jq -nc --arg hip $hostip --arg pip 198.18.9.3 --arg st "$t_c" --arg img $img \
	--arg m "Back-off pulling image \"$img\": ErrImagePull: failed to pull and unpack image \"$img\": failed to resolve reference \"$img\": $img: not found" \
	--argjson conds "$({ pcond PodReadyToStartContainers True "" "" "$t_c"; pcond Initialized True "" "" "$t_c"
		pcond Ready False ContainersNotReady "containers with unready status: [app]" "$t_c"
		pcond ContainersReady False ContainersNotReady "containers with unready status: [app]" "$t_c"
		pcond PodScheduled True "" "" "$t_c"; } | jq -sc .)" '{status:{phase:"Pending",conditions:$conds,
	hostIP:$hip,hostIPs:[{ip:$hip}],podIP:$pip,podIPs:[{ip:$pip}],startTime:$st,containerStatuses:[
	{name:"app",state:{waiting:{reason:"ImagePullBackOff",message:$m}},lastState:{},ready:false,restartCount:0,
	 image:$img,imageID:"",started:false}]}}' | mpatch "/api/v1/namespaces/$NS/pods/imagepullbackoff/status"

# pending-unschedulable: pinned to a node that does not exist; kubesim (our
# scheduler) leaves it alone, the status is the scheduler's.
nn=$(api GET /api/v1/nodes | jq '.items | length')
jq -nc --argjson conds "$(pcond PodScheduled False Unschedulable \
	"0/$nn nodes are available: $nn node(s) didn't match Pod's node affinity/selector. preemption: 0/$nn nodes are available: $nn Preemption is not helpful for scheduling." \
	"$t_c" | jq -sc .)" '{status:{phase:"Pending",conditions:$conds}}' |
	mpatch "/api/v1/namespaces/$NS/pods/pending-unschedulable/status"

# evicted: the kubelet evicted it under memory pressure.
em="The node was low on resource: memory. Threshold quantity: 100Mi, available: 87432Ki. Container app was using 1843200Ki, request is 256Mi, has larger consumption of memory. "
jq -nc --arg hip $hostip --arg st "$t_c" --arg em "$em" \
	--argjson conds "$({ pcond DisruptionTarget True TerminationByKubelet "$em" "$(now)"
		pcond PodReadyToStartContainers False "" "" "$(now)"; pcond Initialized True "" "" "$t_c"
		pcond Ready False PodFailed "" "$(now)"; pcond ContainersReady False PodFailed "" "$(now)"
		pcond PodScheduled True "" "" "$t_c"; } | jq -sc .)" '{status:{phase:"Failed",reason:"Evicted",message:$em,
	conditions:$conds,hostIP:$hip,hostIPs:[{ip:$hip}],startTime:$st,containerStatuses:[
	{name:"app",state:{terminated:{exitCode:137,reason:"ContainerStatusUnknown",
	 message:"The container could not be located when the pod was terminated",startedAt:null,finishedAt:null}},
	 lastState:{},ready:false,restartCount:0,image:"ghcr.io/example/report:1.2.0",imageID:"",started:false}]}}' |
	mpatch "/api/v1/namespaces/$NS/pods/evicted/status"

# init-waiting: its init container crash-loops (kubectl: Init:CrashLoopBackOff).
uid=$(pod_uid init-waiting)
c=$(cid)
jq -nc --arg hip $hostip --arg pip 198.18.9.5 --arg st "$t_c" --arg s "$t_c" --arg f "$(now)" --arg c "$c" \
	--arg i "$(digest ghcr.io/example/migrate)" --arg bo "back-off 40s restarting failed container=init-schema pod=init-waiting_${NS}($uid)" \
	--argjson conds "$({ pcond PodReadyToStartContainers True "" "" "$t_c"
		pcond Initialized False ContainersNotInitialized "containers with incomplete status: [init-schema]" "$t_c"
		pcond Ready False ContainersNotReady "containers with unready status: [app]" "$t_c"
		pcond ContainersReady False ContainersNotReady "containers with unready status: [app]" "$t_c"
		pcond PodScheduled True "" "" "$t_c"; } | jq -sc .)" '{status:{phase:"Pending",conditions:$conds,
	hostIP:$hip,hostIPs:[{ip:$hip}],podIP:$pip,podIPs:[{ip:$pip}],startTime:$st,
	initContainerStatuses:[{name:"init-schema",state:{waiting:{reason:"CrashLoopBackOff",message:$bo}},
	 lastState:{terminated:{exitCode:1,reason:"Error",startedAt:$s,finishedAt:$f,containerID:$c}},
	 ready:false,restartCount:3,image:"ghcr.io/example/migrate:1.0",imageID:$i,containerID:$c,started:false}],
	containerStatuses:[{name:"app",state:{waiting:{reason:"PodInitializing"}},lastState:{},ready:false,restartCount:0,
	 image:"ghcr.io/example/orders:3.1.0",imageID:"",started:false}]}}' |
	mpatch "/api/v1/namespaces/$NS/pods/init-waiting/status"

# Job migrate: its pod (on fixture-node-a) runs, then succeeds; the Job
# controller completes the Job and removes its tracking finalizer.
create "/apis/batch/v1/namespaces/$NS/jobs" <<'EOF'
{"apiVersion":"batch/v1","kind":"Job","metadata":{"name":"migrate"},
 "spec":{"backoffLimit":2,"template":{"spec":{"nodeName":"fixture-node-a","restartPolicy":"Never",
  "containers":[{"name":"migrate","image":"ghcr.io/example/migrate:1.0","args":["--apply"]}]}}}}
EOF
jobpod() { api GET "/api/v1/namespaces/$NS/pods?labelSelector=batch.kubernetes.io%2Fjob-name%3Dmigrate" | jq -er '.items[0].metadata.name'; }
until_ok "Job migrate's pod" 60 jobpod
jp=$(jobpod)
c=$(cid)
i=$(digest ghcr.io/example/migrate)
t_run=$(now)
jq -nc --arg hip $hostip --arg pip 198.18.9.6 --arg st "$t_run" --arg s "$t_run" --arg c "$c" --arg i "$i" \
	--argjson conds "$({ pcond PodReadyToStartContainers True "" "" "$t_run"; pcond Initialized True "" "" "$t_run"
		pcond Ready True "" "" "$t_run"; pcond ContainersReady True "" "" "$t_run"
		pcond PodScheduled True "" "" "$t_run"; } | jq -sc .)" '{status:{phase:"Running",conditions:$conds,
	hostIP:$hip,hostIPs:[{ip:$hip}],podIP:$pip,podIPs:[{ip:$pip}],startTime:$st,containerStatuses:[
	{name:"migrate",state:{running:{startedAt:$s}},lastState:{},ready:true,restartCount:0,
	 image:"ghcr.io/example/migrate:1.0",imageID:$i,containerID:$c,started:true}]}}' |
	mpatch "/api/v1/namespaces/$NS/pods/$jp/status"
sleep 2
t_done=$(now)
jq -nc --arg hip $hostip --arg pip 198.18.9.6 --arg st "$t_run" --arg s "$t_run" --arg f "$t_done" --arg c "$c" --arg i "$i" \
	--argjson conds "$({ pcond PodReadyToStartContainers False "" "" "$t_done"; pcond Initialized True "" "" "$t_run"
		pcond Ready False PodCompleted "" "$t_done"; pcond ContainersReady False PodCompleted "" "$t_done"
		pcond PodScheduled True "" "" "$t_run"; } | jq -sc .)" '{status:{phase:"Succeeded",conditions:$conds,
	hostIP:$hip,hostIPs:[{ip:$hip}],podIP:$pip,podIPs:[{ip:$pip}],startTime:$st,containerStatuses:[
	{name:"migrate",state:{terminated:{exitCode:0,reason:"Completed",startedAt:$s,finishedAt:$f,containerID:$c}},
	 lastState:{},ready:false,restartCount:0,image:"ghcr.io/example/migrate:1.0",imageID:$i,containerID:$c,started:false}]}}' |
	mpatch "/api/v1/namespaces/$NS/pods/$jp/status"

# --- pods and workloads kubesim runs (all pinned to kubesim-node-0) ---------
create "/api/v1/namespaces/$NS/pods" <<'EOF'
{"apiVersion":"v1","kind":"Pod","metadata":{"name":"running","labels":{"app":"api"}},
 "spec":{"nodeSelector":{"kubernetes.io/hostname":"kubesim-node-0"},"containers":[
  {"name":"app","image":"ghcr.io/example/api:5.0.3","ports":[{"name":"http","containerPort":8080}],
   "resources":{"requests":{"cpu":"250m","memory":"256Mi"},"limits":{"memory":"512Mi"}}},
  {"name":"log-shipper","image":"docker.io/fluent/fluent-bit:3.2"}]}}
EOF
pin='"nodeSelector":{"kubernetes.io/hostname":"kubesim-node-0"}'
create "/apis/apps/v1/namespaces/$NS/deployments" <<EOF
{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web","labels":{"app":"web"}},
 "spec":{"replicas":2,"selector":{"matchLabels":{"app":"web"}},
  "template":{"metadata":{"labels":{"app":"web"},"annotations":{"kubesim.kubemedic.io/pod-ip-pool":"endpoints"}},
   "spec":{$pin,"containers":[{"name":"nginx","image":"docker.io/library/nginx:1.27",
    "ports":[{"name":"http","containerPort":8080}],"readinessProbe":{"httpGet":{"path":"/healthz","port":"http"}}}]}}}}
EOF
create "/apis/apps/v1/namespaces/$NS/deployments" <<EOF
{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"stuck","labels":{"app":"stuck"}},
 "spec":{"replicas":1,"progressDeadlineSeconds":10,"selector":{"matchLabels":{"app":"stuck"}},
  "template":{"metadata":{"labels":{"app":"stuck"},"annotations":{"kubesim.kubemedic.io/crashloop":"true"}},
   "spec":{$pin,"containers":[{"name":"app","image":"ghcr.io/example/cart:2.5.0-rc1"}]}}}}
EOF
create "/apis/apps/v1/namespaces/$NS/statefulsets" <<EOF
{"apiVersion":"apps/v1","kind":"StatefulSet","metadata":{"name":"db","labels":{"app":"db"}},
 "spec":{"replicas":2,"serviceName":"db","selector":{"matchLabels":{"app":"db"}},
  "template":{"metadata":{"labels":{"app":"db"}},
   "spec":{$pin,"containers":[{"name":"postgres","image":"docker.io/library/postgres:16",
    "ports":[{"name":"postgres","containerPort":5432}]}]}}}}
EOF
create "/apis/apps/v1/namespaces/$NS/daemonsets" <<'EOF'
{"apiVersion":"apps/v1","kind":"DaemonSet","metadata":{"name":"node-agent","labels":{"app":"node-agent"}},
 "spec":{"selector":{"matchLabels":{"app":"node-agent"}},
  "template":{"metadata":{"labels":{"app":"node-agent"}},
   "spec":{"nodeSelector":{"type":"kubesim"},"containers":[{"name":"agent","image":"ghcr.io/example/node-agent:1.4.0"}]}}}}
EOF
create "/api/v1/namespaces/$NS/services" <<'EOF'
{"apiVersion":"v1","kind":"Service","metadata":{"name":"web","labels":{"app":"web"}},
 "spec":{"selector":{"app":"web"},"ports":[{"name":"http","port":80,"targetPort":"http","protocol":"TCP"}]}}
EOF
create "/api/v1/namespaces/$NS/services" <<'EOF'
{"apiVersion":"v1","kind":"Service","metadata":{"name":"external-db","labels":{"app":"external-db"}},
 "spec":{"ports":[{"name":"postgres","port":5432,"targetPort":5432,"protocol":"TCP"}]}}
EOF
create "/apis/discovery.k8s.io/v1/namespaces/$NS/endpointslices" <<'EOF'
{"apiVersion":"discovery.k8s.io/v1","kind":"EndpointSlice",
 "metadata":{"name":"external-db-1","labels":{"kubernetes.io/service-name":"external-db",
  "endpointslice.kubernetes.io/managed-by":"fixtures.kubemedic.io"}},
 "addressType":"IPv4",
 "endpoints":[{"addresses":["198.18.20.1"],"conditions":{"ready":true,"serving":true,"terminating":false}},
  {"addresses":["198.18.20.2"],"conditions":{"ready":false,"serving":false,"terminating":false}}],
 "ports":[{"name":"postgres","port":5432,"protocol":"TCP"}]}
EOF

# --- T0: a paginated LIST of pods, whose resourceVersion and continue token
# expire later (status-410*.json, watch-gone.jsonl) ------------------------
record pods-list-page1.json "/api/v1/namespaces/$NS/pods?limit=2"
rv_old=$(jq -r .metadata.resourceVersion "$stage/pods-list-page1.json")
tok_old=$(jq -r .metadata.continue "$stage/pods-list-page1.json")
t0=$SECONDS

# --- wait for the controllers and kubesim, then record -----------------------
P=/api/v1/namespaces/$NS
A=/apis/apps/v1/namespaces/$NS
ready='.status.conditions // [] | any(.type == "Ready" and .status == "True")'
until_ok "pod running Ready" 60 jtrue "$P/pods/running" "$ready"
record pod-running.json "$P/pods/running"
for p in running-notready crashloop-oomkilled imagepullbackoff pending-unschedulable evicted init-waiting; do
	record "pod-$p.json" "$P/pods/$p"
done

until_ok "Job migrate Complete and its pod's finalizer removed" 60 jtrue "$P/pods/$jp" \
	'.status.phase == "Succeeded" and ((.metadata.finalizers // []) | length == 0)'
until_ok "Job migrate Complete" 60 jtrue "/apis/batch/v1/namespaces/$NS/jobs/migrate" \
	'.status.conditions // [] | any(.type == "Complete" and .status == "True")'
record pod-succeeded-job.json "$P/pods/$jp"
record job.json "/apis/batch/v1/namespaces/$NS/jobs/migrate"

until_ok "Deployment web available" 90 jtrue "$A/deployments/web" \
	'.status.observedGeneration == 1 and .status.availableReplicas == 2 and .status.updatedReplicas == 2 and
	 (.status.conditions // [] | any(.type == "Progressing" and .reason == "NewReplicaSetAvailable"))'
record deployment.json "$A/deployments/web"
rs=$(api GET "$A/replicasets?labelSelector=app%3Dweb" | jq -r '.items[0].metadata.name')
until_ok "ReplicaSet $rs ready" 60 jtrue "$A/replicasets/$rs" '.status.readyReplicas == 2 and .status.availableReplicas == 2'
record replicaset.json "$A/replicasets/$rs"
webpod=$(api GET "$P/pods?labelSelector=app%3Dweb" |
	jq -r '[.items[] | select(.metadata.ownerReferences[0].kind == "ReplicaSet")][0].metadata.name')
record pod-deployment.json "$P/pods/$webpod"

record service.json "$P/services/web"
record service-noselector.json "$P/services/external-db"
slices=/apis/discovery.k8s.io/v1/namespaces/$NS/endpointslices
until_ok "EndpointSlice of web: 2 ready, 1 not ready" 60 jtrue "$slices?labelSelector=kubernetes.io%2Fservice-name%3Dweb" \
	'(.items | length == 1) and ([.items[0].endpoints[]? | select(.conditions.ready == true)] | length == 2)
	 and ([.items[0].endpoints[]? | select(.conditions.ready == false)] | length == 1)'
slice=$(api GET "$slices?labelSelector=kubernetes.io%2Fservice-name%3Dweb" | jq -r '.items[0].metadata.name')
record endpointslice.json "$slices/$slice"
record endpointslice-noselector.json "$slices/external-db-1"

until_ok "StatefulSet db ready" 90 jtrue "$A/statefulsets/db" \
	'.status.observedGeneration == 1 and .status.readyReplicas == 2 and .status.availableReplicas == 2 and
	 .status.currentRevision == .status.updateRevision'
record statefulset.json "$A/statefulsets/db"

until_ok "Deployment stuck: ProgressDeadlineExceeded" 90 jtrue "$A/deployments/stuck" \
	'.status.conditions // [] | any(.type == "Progressing" and .status == "False" and .reason == "ProgressDeadlineExceeded")'
record deployment-progress-deadline.json "$A/deployments/stuck"
stuckpod=$(api GET "$P/pods?labelSelector=app%3Dstuck" | jq -r '.items[0].metadata.name')
until_ok "pod $stuckpod in CrashLoopBackOff" 60 jtrue "$P/pods/$stuckpod" \
	'.status.containerStatuses // [] | any(.state.waiting.reason == "CrashLoopBackOff")'
record pod-crashloop-kubesim.json "$P/pods/$stuckpod"

# The DaemonSet, on the 5 kubesim nodes: the controller skips NotReady node 1
# (its not-ready:NoSchedule taint is not among a DaemonSet's tolerations) and
# places pods on 0, 2, 3 and 4 (pressure and cordon are tolerated; node 2 was
# not yet Unknown when the DaemonSet was made). kubesim runs those on 0, 3 and
# 4; the one on silent node 2 stays Pending: 4 desired, 3 ready, 1 unavailable.
until_ok "DaemonSet node-agent settled" 90 jtrue "$A/daemonsets/node-agent" \
	'.status.observedGeneration == 1 and .status.desiredNumberScheduled == 4 and .status.currentNumberScheduled == 4
	 and .status.updatedNumberScheduled == 4 and .status.numberReady == 3 and .status.numberAvailable == 3
	 and .status.numberUnavailable == 1'
record daemonset.json "$A/daemonsets/node-agent"

# --- nodes ---------------------------------------------------------------------
taint() { # NODE KEY EFFECT
	jtrue "/api/v1/nodes/$1" ".spec.taints // [] | any(.key == \"$2\" and .effect == \"$3\")"
}
node_cond() { # NODE TYPE STATUS
	jtrue "/api/v1/nodes/$1" ".status.conditions // [] | any(.type == \"$2\" and .status == \"$3\")"
}
until_ok "kubesim-node-0 Ready" 30 node_cond kubesim-node-0 Ready True
record node-ready.json /api/v1/nodes/kubesim-node-0
until_ok "kubesim-node-1 Ready=False" 60 node_cond kubesim-node-1 Ready False
until_ok "kubesim-node-1 not-ready NoSchedule taint" 60 taint kubesim-node-1 node.kubernetes.io/not-ready NoSchedule
until_ok "kubesim-node-1 not-ready NoExecute taint" 60 taint kubesim-node-1 node.kubernetes.io/not-ready NoExecute
record node-notready.json /api/v1/nodes/kubesim-node-1
until_ok "kubesim-node-3 pressure taints" 60 taint kubesim-node-3 node.kubernetes.io/memory-pressure NoSchedule
until_ok "kubesim-node-3 disk-pressure taint" 60 taint kubesim-node-3 node.kubernetes.io/disk-pressure NoSchedule
record node-pressure.json /api/v1/nodes/kubesim-node-3
until_ok "kubesim-node-4 unschedulable taint" 60 taint kubesim-node-4 node.kubernetes.io/unschedulable NoSchedule
record node-cordoned.json /api/v1/nodes/kubesim-node-4
until_ok "fixture-node-b network-unavailable taint" 60 taint fixture-node-b node.kubernetes.io/network-unavailable NoSchedule
until_ok "fixture-node-b not-ready NoExecute taint" 60 taint fixture-node-b node.kubernetes.io/not-ready NoExecute
record node-ready-last.json /api/v1/nodes/fixture-node-b
until_ok "kubesim-node-2 Unknown (grace period $KM_E2E_NODE_MONITOR_GRACE_PERIOD)" 150 node_cond kubesim-node-2 Ready Unknown
until_ok "kubesim-node-2 unreachable NoExecute taint" 60 taint kubesim-node-2 node.kubernetes.io/unreachable NoExecute
record node-unknown.json /api/v1/nodes/kubesim-node-2

record nodes-list-page1.json "/api/v1/nodes?limit=2"
tok=$(jq -r .metadata.continue "$stage/nodes-list-page1.json")
record nodes-list-page2.json "/api/v1/nodes?limit=2&continue=$tok"
tok=$(jq -r .metadata.continue "$stage/nodes-list-page2.json")
record nodes-list-page3.json "/api/v1/nodes?limit=500&continue=$tok"
record lease.json /apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/kubesim-node-0

# --- errors, health, version ----------------------------------------------
record_status status-403.json 403 "$P/secrets" -H "Authorization: Bearer $(<"$KM_E2E_TOKEN_FILE")"
record_status status-404.json 404 "$P/pods/no-such-pod" "${admin[@]}"
ACCEPT='*/*' record livez.txt "/livez?verbose"
ACCEPT='*/*' record readyz.txt "/readyz?verbose"
record version.json /version

# --- the watch stream ends at its timeoutSeconds -------------------------------
wait "$watch_pid" || { watch_pid=; log "watch stream failed"; exit 1; }
watch_pid=
log "recorded watch-pods.jsonl ($(wc -c <"$stage/watch-pods.jsonl") bytes)"

# --- 410 Gone --------------------------------------------------------------
# The watch cache keeps at least 75 s of events (DefaultEventFreshDuration)
# and grows its buffer while every event in it is younger than that. Once
# rv_old is older than 75 s, events that fill the buffer push it out; then a
# watch from rv_old (or the older rv_watch) gets 410 Expired from the cache.
# Compacting etcd past rv_old makes the LIST at that exact resourceVersion and
# the old continue token, which then fall through to etcd, 410 too.
while ((SECONDS - t0 < 80)); do sleep 1; done
etcd_post() {
	curl -sS --fail-with-body --cacert "$KM_E2E_CA" --cert "$state/pki/apiserver-etcd-client.crt" \
		--key "$state/pki/apiserver-etcd-client.key" -X POST "$KM_E2E_ETCD$1" --data-binary "$2"
}
rev=$(etcd_post /v3/kv/range '{"key":"AA=="}' | jq -r .header.revision)
etcd_post /v3/kv/compaction "{\"revision\":\"$rev\",\"physical\":true}" >/dev/null
log "etcd compacted at revision $rev (rv_old $rv_old, rv_watch $rv_watch)"
create "/api/v1/namespaces/$WNS/pods" <<'EOF'
{"apiVersion":"v1","kind":"Pod","metadata":{"name":"churn"},
 "spec":{"schedulerName":"nobody","containers":[{"name":"app","image":"docker.io/library/busybox:1.37"}]}}
EOF
gone=
for ((b = 0; b < 200; b++)); do
	for ((i = 0; i < 50; i++)); do
		mpatch "/api/v1/namespaces/$WNS/pods/churn" <<<"{\"metadata\":{\"annotations\":{\"churn\":\"$b-$i\"}}}"
	done
	w=$(api GET "/api/v1/namespaces/$NS/pods?watch=1&resourceVersion=$rv_old&timeoutSeconds=1" 2>/dev/null || true)
	if [[ $w == *'"type":"ERROR"'* ]]; then
		gone=1
		break
	fi
done
[[ -n $gone ]] || { log "resourceVersion $rv_old never left the watch cache"; exit 1; }
log "rv $rv_old left the watch cache after $(((b + 1) * 50)) pod updates"
api DELETE "/api/v1/namespaces/$WNS/pods/churn?gracePeriodSeconds=0" >/dev/null
record watch-gone.jsonl "/api/v1/namespaces/$WNS/pods?watch=1&allowWatchBookmarks=true&resourceVersion=$rv_watch&timeoutSeconds=10"
record_status status-410.json 410 "$P/pods?resourceVersion=$rv_old&resourceVersionMatch=Exact" "${admin[@]}"
record_status status-410-continue.json 410 "$P/pods?limit=2&continue=$tok_old" "${admin[@]}"

# --- check that each fixture shows what it is named for --------------------------
check() { # FILE JQ [-s]
	local f=$1 q=$2
	shift 2
	jq -e "$@" "$q" "$stage/$f" >/dev/null || { log "check failed: $f: $q"; exit 1; }
}
readyq() { echo "(.status.conditions[] | select(.type == \"Ready\"))"; }
check node-ready.json "$(readyq).status == \"True\" and .status.conditions[0].type != \"Ready\""
check node-notready.json "$(readyq).status == \"False\" and $(readyq).reason == \"KubeletNotReady\""
check node-unknown.json "$(readyq).status == \"Unknown\" and $(readyq).reason == \"NodeStatusUnknown\""
check node-pressure.json '[.status.conditions[] | select(.status == "True") | .type] | contains(["MemoryPressure","DiskPressure","Ready"])'
check node-ready-last.json '.status.conditions[0].status == "True" and .status.conditions[-1].type == "Ready" and .status.conditions[-1].status == "False"'
check node-cordoned.json '.spec.unschedulable == true'
check nodes-list-page1.json '(.items | length == 2) and (.metadata.continue | length > 0)'
check nodes-list-page2.json '(.items | length == 2) and (.metadata.continue | length > 0)'
check nodes-list-page3.json '(.items | length > 0) and (.metadata.continue // "" | length == 0)'
check lease.json '.spec.renewTime and .spec.holderIdentity == "kubesim-node-0"'
check pod-running.json '.status.phase == "Running" and ([.status.containerStatuses[].ready] | all)'
check pod-running-notready.json '.status.phase == "Running" and ([.status.containerStatuses[].ready] | any and (all | not))'
check pod-crashloop-oomkilled.json '.status.containerStatuses[0] | .state.waiting.reason == "CrashLoopBackOff" and .lastState.terminated.reason == "OOMKilled" and .lastState.terminated.exitCode == 137 and .restartCount > 0'
check pod-imagepullbackoff.json '.status.containerStatuses[0].state.waiting.reason == "ImagePullBackOff"'
check pod-pending-unschedulable.json '.status.phase == "Pending" and (.status.conditions[] | select(.type == "PodScheduled") | .status == "False" and .reason == "Unschedulable")'
check pod-evicted.json '.status.phase == "Failed" and .status.reason == "Evicted"'
check pod-succeeded-job.json '.status.phase == "Succeeded" and .metadata.ownerReferences[0].kind == "Job"'
check pod-init-waiting.json '.status.initContainerStatuses[0].state.waiting.reason == "CrashLoopBackOff"'
check pod-deployment.json '.metadata.ownerReferences[0].kind == "ReplicaSet"'
check replicaset.json '.metadata.ownerReferences[0].kind == "Deployment"'
check pod-crashloop-kubesim.json '.status.containerStatuses[0].state.waiting.reason == "CrashLoopBackOff"'
check deployment-progress-deadline.json '.status.conditions[] | select(.type == "Progressing") | .reason == "ProgressDeadlineExceeded"'
check service.json '.spec.selector.app == "web"'
check service-noselector.json '.spec.selector == null'
check endpointslice.json '[.endpoints[].conditions.ready] | any and (all | not)'
check endpointslice-noselector.json '[.endpoints[].conditions.ready] | any and (all | not)'
check status-403.json '.kind == "Status" and .code == 403 and .reason == "Forbidden"'
check status-404.json '.kind == "Status" and .code == 404 and .reason == "NotFound"'
check status-410.json '.kind == "Status" and .code == 410 and .reason == "Expired"'
check status-410-continue.json '.kind == "Status" and .code == 410 and .reason == "Expired" and (.metadata.continue | length > 0)'
check watch-pods.jsonl '[.[].type] as $t | ["ADDED","MODIFIED","DELETED","BOOKMARK"] | all(. as $w | $t | index([$w]) != null)' -s
check watch-gone.jsonl '.[0].type == "ERROR" and .[0].object.code == 410' -s

# --- replace the recorded files (README.md and anything else stays) ------------
mkdir -p "$out"
for f in "$stage"/*; do
	mv -f "$f" "$out/"
done
log "done in $((SECONDS - t_start)) s after up: $(ls "$out" | wc -l) files in $out"

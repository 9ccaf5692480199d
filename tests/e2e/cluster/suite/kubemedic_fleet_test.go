package suite

// One kubemedicd watching two clusters (issue 10 item 9): the harness's own
// cluster ("a") and its second one ("b": another kube-apiserver on the same
// etcd under --etcd-prefix /registry-b, with a kubesim of its own, started by
// up with KM_E2E_SECOND_CLUSTER=1). b's API server is stopped: b is reported
// down while a keeps being judged at its normal pace; b is started again and
// is judged again.

import (
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"
)

// runScript runs one of the harness's scripts (STATE/stop-apiserver-b, ...).
func runScript(t *testing.T, path string) {
	t.Helper()
	if out, err := exec.Command(path).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v: %s", path, err, out)
	}
}

// inCluster prefixes target names with their cluster's name, as kubemedicd
// names the targets of a clusters: list.
func inCluster(cluster string, names []string) []string {
	var out []string
	for _, n := range names {
		out = append(out, cluster+":"+n)
	}
	return out
}

// bNodeTargets are the second cluster's simulated nodes' targets, unprefixed.
func bNodeTargets() []string {
	var n int
	fmt.Sscan(env["KM_E2E_B_NODES"], &n)
	var out []string
	for i := 0; i < n; i++ {
		out = append(out, fmt.Sprintf("node//%s%d", env["KM_E2E_B_NODE_PREFIX"], i))
	}
	return out
}

// awaitTransitions waits (a little: storage may trail the watch) until
// target's stored transitions go to exactly these states, in this order, and
// fails the test with what is stored if they do not.
func (d *daemon) awaitTransitions(t *testing.T, target string, states ...string) {
	t.Helper()
	want := strings.Join(states, " ")
	deadline := time.Now().Add(10 * time.Second)
	for {
		var got []string
		for _, tr := range d.transitionsOf(t, target) {
			got = append(got, tr.ToState)
		}
		if strings.Join(got, " ") == want || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	d.expectTransitions(t, target, states...)
}

// requireSecondCluster skips the test when the harness was started without
// the second cluster, and fails it when it should have been (tests/e2e/run
// exports KM_E2E_SECOND_CLUSTER=1 for up and for the suite).
func requireSecondCluster(t *testing.T) {
	t.Helper()
	for _, k := range []string{"KM_E2E_B_KUBECONFIG", "KM_E2E_B_STOP_APISERVER", "KM_E2E_B_START_APISERVER",
		"KM_E2E_B_KUBESIM", "KM_E2E_B_NODES", "KM_E2E_B_NODE_PREFIX"} {
		if env[k] != "" {
			continue
		}
		if os.Getenv("KM_E2E_SECOND_CLUSTER") == "1" {
			t.Fatalf("KM_E2E_SECOND_CLUSTER=1, but $KM_E2E_ENV has no %s: up did not start the second cluster", k)
		}
		t.Skipf("no second cluster in $KM_E2E_ENV (no %s): start the harness with KM_E2E_SECOND_CLUSTER=1 "+
			"(tests/e2e/run does)", k)
	}
}

var apiserverCauseRe = regexp.MustCompile(`^/(livez|readyz) `)

const leaseGrace = 30 * time.Second

// quiet reads transitions until the deadline and fails the test for any
// that nothing should have caused (what is true of it).
func quiet(t *testing.T, ch <-chan event, until time.Time, what string, bad func(*transition) bool) {
	t.Helper()
	deadline := time.After(time.Until(until))
	for {
		select {
		case ev, open := <-ch:
			if !open {
				t.Fatalf("%s: the watch ended", what)
			}
			if tr := ev.Transition; tr != nil && bad(tr) {
				t.Errorf("%s, but: %s %s->%s (%s)", what, tr.Target, tr.FromState, tr.ToState, tr.Cause)
			}
		case <-deadline:
			return
		}
	}
}

func TestKubemedicFleetOneClusterDown(t *testing.T) {
	requireSecondCluster(t)
	const apiA, apiB = "a:controlplane//apiserver", "b:controlplane//apiserver"
	aNodes := inCluster("a", nodeTargets())
	bNodes := inCluster("b", bNodeTargets())

	// The control plane is asked every second, so that b's fall and return
	// are seen in seconds; the Lease grace is 30 s (kubesim renews every
	// 10-12 s), so that b can stay down past it without making the test
	// long.
	d := startDaemonWith(t, "", fmt.Sprintf("auth: {localRole: viewer}\n"+
		"kube: {controlPlanePeriod: 1s, leaseGrace: %v}\n"+
		"clusters:\n"+
		"  - {name: a, kubeconfig: %q}\n"+
		"  - {name: b, kubeconfig: %q}\n", leaseGrace, env["KM_E2E_KUBECONFIG"], env["KM_E2E_B_KUBECONFIG"]))
	ch := d.watchHealth(t)

	// (a) Both clusters judged, each target under its own cluster's name.
	awaitAll(t, ch, 60*time.Second, healthy, append(append([]string{apiA, apiB}, aNodes...), bNodes...))
	for cluster, want := range map[string][]string{"a": aNodes, "b": bNodes} {
		got := d.targets(t, "--cluster", cluster, "--kind", "node")
		sort.Strings(got)
		if strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("cluster %s's node targets %v, want %v", cluster, got, want)
		}
	}
	for _, name := range d.targets(t) {
		if !strings.HasPrefix(name, "a:") && !strings.HasPrefix(name, "b:") {
			t.Errorf("target %q names no cluster", name)
		}
	}

	// (b) b's API server stops (etcd and a run on): b is reported down.
	t.Cleanup(func() {
		// Whatever happened, b runs again for the tests after this one.
		if out, err := exec.Command(env["KM_E2E_B_START_APISERVER"]).CombinedOutput(); err != nil {
			t.Errorf("starting b's API server again: %v: %s", err, out)
		}
	})
	mark := d.logLen()
	stopped := time.Now()
	runScript(t, env["KM_E2E_B_STOP_APISERVER"])
	stopTook := time.Since(stopped)
	ev := await(t, ch, 30*time.Second, apiB+" UNHEALTHY", func(tr *transition) bool {
		return tr.Target == apiB && tr.ToState == unhealthy
	})
	if !apiserverCauseRe.MatchString(ev.Transition.Cause) {
		t.Errorf("%s's cause %q, want what /livez or /readyz did", apiB, ev.Transition.Cause)
	}
	// The cause says why in full: not the request's URL, cut off before
	// the reason (a cause is at most 120 characters).
	if c := ev.Transition.Cause; strings.Contains(c, "GET https://") || strings.HasSuffix(c, ": ") {
		t.Errorf("%s's cause %q: the URL, not why", apiB, c)
	}
	t.Logf("b's API server stopped in %v; %s UNHEALTHY %v after the stop began (%q)",
		stopTook.Round(100*time.Millisecond), apiB, ev.Transition.Time.Sub(stopped).Round(100*time.Millisecond),
		ev.Transition.Cause)
	d.awaitLogFrom(t, mark, 30*time.Second,
		regexp.MustCompile(`msg="kube: watching a resource fails; trying again with backoff" cluster=b `))

	// While b is down, a is judged as promptly as ever: a node made not
	// ready is UNHEALTHY in about a second (a watch event), and HEALTHY
	// again on recovery. 20 s is far more than that and far less than
	// anything waiting on b's backoff (up to 30 s) or timeouts would take.
	node := lastNode()
	target := "a:node//" + node
	broke := time.Now()
	kubesim(t, "scenario", "node-notready", node)
	t.Cleanup(func() { kubesim(t, "recover", "node-notready", node) })
	ev = await(t, ch, 20*time.Second, target+" UNHEALTHY while b is down", func(tr *transition) bool {
		return tr.Target == target && tr.ToState == unhealthy
	})
	if !strings.HasPrefix(ev.Transition.Cause, "node is not ready") {
		t.Errorf("%s's cause %q, want it to say the node is not ready", target, ev.Transition.Cause)
	}
	notReadyAfter := time.Since(broke)
	healed := time.Now()
	kubesim(t, "recover", "node-notready", node)
	await(t, ch, 20*time.Second, target+" HEALTHY again while b is down", func(tr *transition) bool {
		return tr.Target == target && tr.ToState == healthy
	})
	t.Logf("with b down, %s UNHEALTHY in %v, HEALTHY again in %v", target,
		notReadyAfter.Round(10*time.Millisecond), time.Since(healed).Round(10*time.Millisecond))

	// b stays down past the Lease grace: its kubelets' Leases are not
	// renewed (kubesim cannot reach b), but kubemedicd cannot see them
	// either, and does not blame b's nodes for what it does not see.
	quiet(t, ch, stopped.Add(leaseGrace+5*time.Second), "b has been down for longer than the lease grace",
		func(tr *transition) bool { return strings.HasPrefix(tr.Target, "b:") })
	// b was down all along (not back between its stop and now).
	d.awaitTransitions(t, apiB, healthy, unhealthy)

	// (c) b's API server starts again: b is judged again, its watches
	// included (a node of b made not ready is seen), and its Leases' ages
	// count again (a kubelet of b that goes silent now is seen to).
	mark = d.logLen()
	restarted := time.Now()
	runScript(t, env["KM_E2E_B_START_APISERVER"])
	t.Logf("b down for %v", time.Since(stopped).Round(100*time.Millisecond))
	await(t, ch, 30*time.Second, apiB+" HEALTHY again", func(tr *transition) bool {
		return tr.Target == apiB && tr.ToState == healthy
	})
	t.Logf("%s HEALTHY %v after the start began", apiB, time.Since(restarted).Round(100*time.Millisecond))
	d.awaitLogFrom(t, mark, 60*time.Second,
		regexp.MustCompile(`msg="kube: watching a resource again" cluster=b resource=nodes `))
	silent := env["KM_E2E_B_NODE_PREFIX"] + "1"
	silentTarget := "b:node//" + silent
	silentCh := d.watchHealth(t, silentTarget)
	silenced := time.Now()
	kubesim(t, "scenario", "--addr", env["KM_E2E_B_KUBESIM"], "node-heartbeat-stop", silent)
	t.Cleanup(func() { kubesim(t, "recover", "--addr", env["KM_E2E_B_KUBESIM"], "node-heartbeat-stop", silent) })
	bNode := env["KM_E2E_B_NODE_PREFIX"] + "0"
	bTarget := "b:node//" + bNode
	kubesim(t, "scenario", "--addr", env["KM_E2E_B_KUBESIM"], "node-notready", bNode)
	t.Cleanup(func() { kubesim(t, "recover", "--addr", env["KM_E2E_B_KUBESIM"], "node-notready", bNode) })
	await(t, ch, 30*time.Second, bTarget+" UNHEALTHY", func(tr *transition) bool {
		return tr.Target == bTarget && tr.ToState == unhealthy
	})
	kubesim(t, "recover", "--addr", env["KM_E2E_B_KUBESIM"], "node-notready", bNode)
	await(t, ch, 30*time.Second, bTarget+" HEALTHY again", func(tr *transition) bool {
		return tr.Target == bTarget && tr.ToState == healthy
	})
	// b has no controller manager: only the Lease's age tells.
	ev = await(t, silentCh, leaseGrace+30*time.Second, silentTarget+" UNHEALTHY", func(tr *transition) bool {
		return tr.ToState == unhealthy
	})
	if !strings.HasPrefix(ev.Transition.Cause, "node lease not renewed") || ev.Transition.Time.Before(silenced) {
		t.Errorf("%s UNHEALTHY at %v (%q), want it after its kubelet went silent at %v, for its Lease",
			silentTarget, ev.Transition.Time, ev.Transition.Cause, silenced)
	}
	t.Logf("%s UNHEALTHY %v after its kubelet went silent (%q)", silentTarget,
		ev.Transition.Time.Sub(silenced).Round(100*time.Millisecond), ev.Transition.Cause)
	kubesim(t, "recover", "--addr", env["KM_E2E_B_KUBESIM"], "node-heartbeat-stop", silent)
	await(t, silentCh, 30*time.Second, silentTarget+" HEALTHY again", func(tr *transition) bool {
		return tr.ToState == healthy
	})

	// Exactly what happened, and nothing from b's fall or return: a's
	// targets and b's saw no transition they should not have.
	for _, n := range aNodes {
		if n == target {
			d.awaitTransitions(t, n, healthy, unhealthy, healthy)
		} else {
			d.awaitTransitions(t, n, healthy)
		}
	}
	d.awaitTransitions(t, apiA, healthy)
	d.awaitTransitions(t, apiB, healthy, unhealthy, healthy)
	for _, n := range bNodes {
		if n == bTarget || n == silentTarget {
			d.awaitTransitions(t, n, healthy, unhealthy, healthy)
		} else {
			d.awaitTransitions(t, n, healthy)
		}
	}
	// Cluster a's watches never failed.
	if m := regexp.MustCompile(`.*msg="kube: watching a resource fails.*cluster=a .*`).FindString(d.logText()); m != "" {
		t.Errorf("cluster a's watches failed: %s", m)
	}
}

package suite

// Automatic recovery on the real control plane: a policy restarts a
// Deployment's crash-looping pod, and its replacement is healthy
// (VERIFIED); a Deployment whose every pod crash-loops climbs a policy's
// ladder with the kubelet's backoff until the policy gives up; a NotReady
// node is cordoned; with every node of the cluster NotReady at once, a
// policy that would cordon them stops at the storm guard and records why.

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// recoveriesOf lists the recoveries of target (newest first).
func (d *daemon) recoveriesOf(t *testing.T, args ...string) []recovery {
	t.Helper()
	out, errs, err := d.cli(t, append([]string{"-o", "json", "recoveries"}, args...)...)
	if err != nil {
		t.Fatalf("recoveries %v: %v: %s", args, err, errs)
	}
	var list []recovery
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatalf("recoveries %v: %v: %s", args, err, out)
	}
	return list
}

// awaitRecoveryOf waits up to timeout for a recovery of target and
// returns the newest.
func (d *daemon) awaitRecoveryOf(t *testing.T, target string, timeout time.Duration) recovery {
	t.Helper()
	var r recovery
	waitFor(t, timeout, "a recovery of "+target, func() (bool, string, error) {
		list := d.recoveriesOf(t, target)
		if len(list) == 0 {
			return false, "none", nil
		}
		r = list[0]
		return true, "", nil
	})
	return r
}

// crashLoop makes the pod NAMESPACE/POD crash-loop through kubesim until
// the test ends. (The pod may be gone by then: nothing to recover, and
// no error.)
func crashLoop(t *testing.T, ns, pod string) {
	t.Helper()
	name := ns + "/" + pod
	kubesim(t, "scenario", "pod-crashloop", name)
	t.Cleanup(func() {
		cmd := exec.Command(env["KM_E2E_KUBESIM_BIN"], "recover", "pod-crashloop", name)
		cmd.Env = append(os.Environ(), "KUBESIM_ADDR="+env["KM_E2E_KUBESIM"])
		cmd.Run()
	})
}

func TestKubemedicRecoveryPolicyRestartsACrashLoop(t *testing.T) {
	adm := admin(t)
	ns := namespace(t, adm)
	deployment(t, adm, ns, "web", 2)
	pods := runningPods(t, adm, ns, "web", 2)
	d := startDaemonWith(t, env["KM_E2E_KUBECONFIG"], "auth: {localRole: operator}\n"+
		"recovery:\n  policies:\n    - name: crashloop\n"+
		"      match: {kinds: [pod], namespaces: ["+ns+"]}\n"+
		"      trigger: {reasons: [CrashLoopBackOff]}\n"+
		"      action: restart_pod\n")
	victim := pods[0]
	target := "pod/" + ns + "/" + victim.Name
	d.awaitTarget(t, target)
	d.awaitTarget(t, "deployment/"+ns+"/web")

	broke := time.Now()
	crashLoop(t, ns, victim.Name)
	r := d.awaitRecoveryOf(t, target, 60*time.Second)
	if r.Requester != "policy:crashloop" || r.Action != "RECOVERY_ACTION_RESTART_POD" ||
		r.TargetUID != string(victim.UID) || !strings.Contains(r.Reason, "CrashLoopBackOff") {
		t.Errorf("the policy's recovery: %+v", r)
	}
	done := d.awaitPhase(t, r.ID, "RECOVERY_PHASE_VERIFIED", 90*time.Second)
	t.Logf("crash loop injected → recovery %s VERIFIED in %v: %q", r.ID,
		time.Since(broke).Round(10*time.Millisecond), done.LastError)
	podGone(t, adm, ns, victim, 30*time.Second)
	expectReplaced(t, adm, ns, "web", pods, victim)
	if n := len(d.recoveriesOf(t, "--state", "verified")); n != 1 {
		t.Errorf("%d verified recoveries, want 1", n)
	}
}

func TestKubemedicRecoveryPolicyStopsInAStorm(t *testing.T) {
	nodes := nodeTargets()
	d := startDaemonWith(t, env["KM_E2E_KUBECONFIG"], "auth: {localRole: operator}\n"+
		"recovery:\n  budget: {storm: {share: 40, minUnhealthy: 3}}\n"+
		"  policies:\n    - name: lost-nodes\n"+
		"      match: {kinds: [node]}\n"+
		"      trigger: {unhealthyFor: 5s}\n"+
		"      action: cordon\n")
	for _, n := range nodes {
		d.awaitTarget(t, n)
	}
	adm := admin(t)
	for _, n := range nodes {
		name := strings.TrimPrefix(n, "node//")
		uncordonAtEnd(t, adm, name)
		kubesim(t, "scenario", "node-notready", name)
		t.Cleanup(func() { kubesim(t, "recover", "node-notready", name) })
	}
	// All three NotReady within a second, each due 5 s later: by then
	// 100% > 40% of the policy's members, and at least three, are
	// unhealthy — a storm; every policy recovery is refused, recorded so.
	d.awaitLog(t, 60*time.Second, regexp.MustCompile(`msg="recovery: storm: automatic actions stop`))
	waitFor(t, 30*time.Second, "skipped cordons", func() (bool, string, error) {
		list := d.recoveriesOf(t)
		var phases []string
		for _, r := range list {
			if r.Phase != "RECOVERY_PHASE_SKIPPED" {
				return false, "", nil
			}
			phases = append(phases, r.Phase)
		}
		return len(list) >= 1, strings.Join(phases, " "), nil
	})
	for _, r := range d.recoveriesOf(t) {
		if r.Phase != "RECOVERY_PHASE_SKIPPED" || !strings.Contains(r.LastError, "storm") &&
			!strings.Contains(r.LastError, "rate limit") {
			t.Errorf("in a storm: %+v", r)
		}
	}
	for _, n := range nodes {
		node, err := adm.CoreV1().Nodes().Get(ctx(t), strings.TrimPrefix(n, "node//"), metav1.GetOptions{})
		if err != nil || node.Spec.Unschedulable {
			t.Errorf("node %s cordoned in a storm: %v", n, err)
		}
	}
}

// A Deployment whose every pod crash-loops (kubesim's annotation on its
// template: the replacements of a restart and the pods of a rollout
// restart crash-loop too), and whose pods take 5 s to stop (so that a
// replacement fails while its predecessor is still there, UNHEALTHY: the
// newest is the one the ladder climbs on with), climbs its policy's
// ladder: restart_pod until it
// failed escalation.after times, then rollout_restart until maxAttempts;
// each recovery ends NOT_RECOVERED when the verify window is over, and the
// next waits the kubelet's backoff after it (2 s, 4 s, 8 s, 8 s: doubling
// to the max). Then the policy gives up on the Deployment, says so, and
// asks for nothing more.
func TestKubemedicRecoveryPolicyClimbsTheLadder(t *testing.T) {
	const window = 4 * time.Second
	delays := []time.Duration{2 * time.Second, 4 * time.Second, 8 * time.Second, 8 * time.Second}
	adm := admin(t)
	ns := namespace(t, adm)
	d := startDaemonWith(t, env["KM_E2E_KUBECONFIG"], "auth: {localRole: operator}\n"+
		"recovery:\n  verifyWindow: 4s\n"+
		// Every pod of the Deployment is broken, and a rollout restart
		// adds one: three broken at once would be a storm (100% of
		// the policy's members, at least 3), and the policy would
		// stop for that reason rather than give up. Rates: no limit,
		// so that only the backoff spaces the recoveries.
		"  budget:\n    storm: {minUnhealthy: 1000}\n"+
		"    rates: {restart_pod: {rate: 0}, rollout_restart: {rate: 0}}\n"+
		"  policies:\n    - name: ladder\n"+
		"      match: {kinds: [pod], namespaces: ["+ns+"]}\n"+
		"      trigger: {reasons: [CrashLoopBackOff]}\n"+
		"      action: restart_pod\n"+
		"      escalation: {after: 2, ladder: [rollout_restart]}\n"+
		"      maxAttempts: 3\n"+
		"      backoff: {initial: 2s, max: 8s}\n")
	owner := "deployment/" + ns + "/web"
	deploymentWith(t, adm, ns, "web", 1, map[string]string{
		"kubesim.kubemedic.io/crashloop":  "true",
		"kubesim.kubemedic.io/stop-delay": "5s",
	})
	d.awaitTarget(t, owner)

	// One ladder for the Deployment's pods: the policy gives up on it.
	gaveUp := d.awaitLog(t, 150*time.Second, regexp.MustCompile(
		`msg="recovery: a policy gave up on a target".* target=`+regexp.QuoteMeta(owner)+`( |$)`))
	t.Logf("%s", gaveUp)
	if !strings.Contains(gaveUp, "policy=ladder") || !strings.Contains(gaveUp, "rollout_restart failed 3 times") {
		t.Errorf("the give-up line: %s", gaveUp)
	}
	list := d.recoveriesOf(t)
	for i, j := 0, len(list)-1; i < j; i, j = i+1, j-1 {
		list[i], list[j] = list[j], list[i] // oldest first
	}
	want := []struct {
		action, rung string
	}{
		{"RECOVERY_ACTION_RESTART_POD", "rung 1 of 2, attempt 1 of 2"},
		{"RECOVERY_ACTION_RESTART_POD", "rung 1 of 2, attempt 2 of 2"},
		{"RECOVERY_ACTION_ROLLOUT_RESTART", "rung 2 of 2, attempt 1 of 3"},
		{"RECOVERY_ACTION_ROLLOUT_RESTART", "rung 2 of 2, attempt 2 of 3"},
		{"RECOVERY_ACTION_ROLLOUT_RESTART", "rung 2 of 2, attempt 3 of 3"},
	}
	var story []string
	for i, r := range list {
		story = append(story, fmt.Sprintf("\n  %s %s %s %s..%s %q", r.ID, r.Action, r.Target, r.Phase,
			r.UpdateTime.Sub(r.CreateTime).Round(10*time.Millisecond), r.Reason))
		if i > 0 {
			story = append(story, fmt.Sprintf(" (%v after the one before ended)",
				r.CreateTime.Sub(list[i-1].UpdateTime).Round(10*time.Millisecond)))
		}
	}
	t.Logf("the ladder:%s", strings.Join(story, ""))
	if len(list) != len(want) {
		t.Fatalf("%d recoveries, want %d", len(list), len(want))
	}
	restarted := map[string]bool{}
	for i, r := range list {
		if r.Requester != "policy:ladder" || r.Action != want[i].action ||
			!strings.Contains(r.Reason, "("+want[i].rung+")") || !strings.Contains(r.Reason, "CrashLoopBackOff") {
			t.Errorf("recovery %d: %+v; want %s (%s)", i+1, r, want[i].action, want[i].rung)
		}
		// Never healed: each ends when its window does.
		if r.Phase != "RECOVERY_PHASE_NOT_RECOVERED" {
			t.Errorf("recovery %d (%s) ended %s: %q", i+1, r.ID, r.Phase, r.LastError)
		}
		if took := r.UpdateTime.Sub(r.CreateTime); took < window-slack {
			t.Errorf("recovery %d (%s) ended %v after it was requested: less than the verify window", i+1, r.ID, took)
		}
		switch r.Action {
		case "RECOVERY_ACTION_RESTART_POD":
			// The pod broken then: a replacement, not the one
			// restarted before.
			if !strings.HasPrefix(r.Target, "pod/"+ns+"/web-") || restarted[r.TargetUID] {
				t.Errorf("recovery %d restarts %s (uid %s)", i+1, r.Target, r.TargetUID)
			}
			restarted[r.TargetUID] = true
		case "RECOVERY_ACTION_ROLLOUT_RESTART":
			if r.Target != owner {
				t.Errorf("recovery %d restarts %s, not %s", i+1, r.Target, owner)
			}
		}
		// The backoff: each waits the delay after the one before
		// ended (the end is its NOT_RECOVERED), doubling to the max.
		if i > 0 {
			if gap := r.CreateTime.Sub(list[i-1].UpdateTime); gap < delays[i-1]-slack {
				t.Errorf("recovery %d came %v after recovery %d ended; the backoff is %v", i+1, gap, i, delays[i-1])
			}
		}
	}

	// The first replacement failed before the pod it replaced was gone.
	if len(restarted) == 2 {
		var failed, gone time.Time
		for _, tr := range d.transitionsOf(t, list[1].Target) {
			if tr.ToState == unhealthy && failed.IsZero() {
				failed = tr.Time
			}
		}
		for _, tr := range d.transitionsOf(t, list[0].Target) {
			if tr.ToState == "HEALTH_STATE_DELETED" {
				gone = tr.Time
			}
		}
		if failed.IsZero() || gone.IsZero() || !failed.Before(gone) {
			t.Errorf("%s UNHEALTHY at %v, %s gone at %v: not the overlap kubesim's stop delay makes",
				list[1].Target, failed, list[0].Target, gone)
		}
	}

	// Given up: nothing more, not even after the longest backoff (8 s),
	// though the Deployment's pods stay broken (and new ones appear).
	time.Sleep(delays[len(delays)-1] + 2*time.Second)
	if after := d.recoveriesOf(t); len(after) != len(list) {
		t.Errorf("%d recoveries after the policy gave up, want %d: newest %+v", len(after), len(list), after[0])
	}
}

// How far the recorded times (the store's wall clock) may stray from the
// engine's schedule (its monotonic clock).
const slack = 250 * time.Millisecond

// One node of three NotReady: a policy cordons it once it has been
// UNHEALTHY for its trigger's 5 s (one in three is no storm), the
// recovery is VERIFIED, the API server has the node unschedulable, and
// the other nodes are left alone.
func TestKubemedicRecoveryPolicyCordonsANotReadyNode(t *testing.T) {
	nodes := nodeTargets()
	adm := admin(t)
	target := nodes[len(nodes)-1]
	victim := strings.TrimPrefix(target, "node//")
	// (Before the daemon starts: it is stopped before the uncordon.)
	uncordonAtEnd(t, adm, victim)
	d := startDaemonWith(t, env["KM_E2E_KUBECONFIG"], "auth: {localRole: operator}\n"+
		"recovery:\n  policies:\n    - name: lost-nodes\n"+
		"      match: {kinds: [node]}\n"+
		"      trigger: {unhealthyFor: 5s}\n"+
		"      action: cordon\n")
	waitFor(t, 30*time.Second, "every node healthy", func() (bool, string, error) {
		got := d.targets(t, "--kind", "node", "--state", "healthy")
		return len(got) == len(nodes), strings.Join(got, " "), nil
	})
	for _, n := range nodes {
		node, err := adm.CoreV1().Nodes().Get(ctx(t), strings.TrimPrefix(n, "node//"), metav1.GetOptions{})
		if err != nil || node.Spec.Unschedulable {
			t.Fatalf("node %s cordoned before the test: %v", n, err)
		}
	}
	broke := time.Now()
	kubesim(t, "scenario", "node-notready", victim)
	t.Cleanup(func() { kubesim(t, "recover", "node-notready", victim) })

	r := d.awaitRecoveryOf(t, target, 60*time.Second)
	if r.Requester != "policy:lost-nodes" || r.Action != "RECOVERY_ACTION_CORDON" || r.Target != target {
		t.Errorf("the policy's recovery: %+v", r)
	}
	// Not before the node was UNHEALTHY for 5 s (it became so after
	// the scenario began).
	if after := r.CreateTime.Sub(broke); after < 5*time.Second-slack {
		t.Errorf("cordon requested %v after the node went NotReady; the trigger is 5s", after)
	}
	done := d.awaitPhase(t, r.ID, "RECOVERY_PHASE_VERIFIED", 60*time.Second)
	t.Logf("node NotReady → recovery %s requested after %v, VERIFIED: %q", r.ID,
		r.CreateTime.Sub(broke).Round(10*time.Millisecond), done.LastError)
	for _, n := range nodes {
		name := strings.TrimPrefix(n, "node//")
		node, err := adm.CoreV1().Nodes().Get(ctx(t), name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if node.Spec.Unschedulable != (name == victim) {
			t.Errorf("node %s: spec.unschedulable %v", name, node.Spec.Unschedulable)
		}
	}
	if list := d.recoveriesOf(t); len(list) != 1 {
		t.Errorf("%d recoveries, want 1 (the NotReady node's cordon): %+v", len(list), list)
	}
}

// Two pods of a Deployment crash-loop, the second a moment after the
// first, within a trigger's wait: the newest is the ladder's subject and
// is restarted; the other, UNHEALTHY all along with no news of its own,
// is the subject once the first's replacement is healthy — not forgotten.
func TestKubemedicRecoveryPolicyRestartsEveryBrokenPod(t *testing.T) {
	adm := admin(t)
	ns := namespace(t, adm)
	deployment(t, adm, ns, "web", 2)
	pods := runningPods(t, adm, ns, "web", 2)
	d := startDaemonWith(t, env["KM_E2E_KUBECONFIG"], "auth: {localRole: operator}\n"+
		"recovery:\n  verifyWindow: 20s\n"+
		"  policies:\n    - name: crashloop\n"+
		"      match: {kinds: [pod], namespaces: ["+ns+"]}\n"+
		"      trigger: {unhealthyFor: 3s, reasons: [CrashLoopBackOff]}\n"+
		"      action: restart_pod\n"+
		"      backoff: {initial: 1s, max: 2s}\n")
	for _, p := range pods {
		d.awaitTarget(t, "pod/"+ns+"/"+p.Name)
	}
	for _, p := range pods {
		crashLoop(t, ns, p.Name)
		// One after the other: the second is the newer.
		target := "pod/" + ns + "/" + p.Name
		waitFor(t, 30*time.Second, target+" UNHEALTHY", func() (bool, string, error) {
			out, _, err := d.cli(t, "status", target)
			return err == nil && strings.Contains(out, "State:       UNHEALTHY"), out, nil
		})
	}
	for _, p := range pods {
		target := "pod/" + ns + "/" + p.Name
		r := d.awaitRecoveryOf(t, target, 90*time.Second)
		if r.Requester != "policy:crashloop" || r.TargetUID != string(p.UID) {
			t.Errorf("the recovery of %s: %+v", target, r)
		}
		d.awaitPhase(t, r.ID, "RECOVERY_PHASE_VERIFIED", 60*time.Second)
		podGone(t, adm, ns, p, 30*time.Second)
	}
}

// A pod already crash-looping when kubemedicd starts (its transition was
// recorded by the run before, which had no policy): the policy, whose
// trigger is a reason, acts on it — the start judges every UNHEALTHY
// target with its last cause.
func TestKubemedicRecoveryPolicyActsOnWhatWasBrokenBeforeItsStart(t *testing.T) {
	adm := admin(t)
	ns := namespace(t, adm)
	deployment(t, adm, ns, "web", 1)
	pod := runningPods(t, adm, ns, "web", 1)[0]
	target := "pod/" + ns + "/" + pod.Name
	dir := t.TempDir()
	first := startDaemonIn(t, dir, env["KM_E2E_KUBECONFIG"], "auth: {localRole: operator}\n")
	first.awaitTarget(t, target)
	crashLoop(t, ns, pod.Name)
	waitFor(t, 30*time.Second, target+" UNHEALTHY", func() (bool, string, error) {
		out, _, err := first.cli(t, "status", target)
		return err == nil && strings.Contains(out, "CrashLoopBackOff"), out, nil
	})
	first.kill(t)

	d := startDaemonIn(t, dir, env["KM_E2E_KUBECONFIG"], "auth: {localRole: operator}\n"+
		"recovery:\n  policies:\n    - name: crashloop\n"+
		"      match: {kinds: [pod], namespaces: ["+ns+"]}\n"+
		"      trigger: {reasons: [CrashLoopBackOff]}\n"+
		"      action: restart_pod\n")
	r := d.awaitRecoveryOf(t, target, 60*time.Second)
	if r.Requester != "policy:crashloop" || !strings.Contains(r.Reason, "CrashLoopBackOff") {
		t.Errorf("the policy's recovery: %+v", r)
	}
	d.awaitPhase(t, r.ID, "RECOVERY_PHASE_VERIFIED", 60*time.Second)
}

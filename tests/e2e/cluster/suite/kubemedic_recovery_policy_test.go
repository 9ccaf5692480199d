package suite

// Automatic recovery on the real control plane: a policy restarts a
// Deployment's crash-looping pod, and its replacement is healthy
// (VERIFIED); with every node of the cluster NotReady at once, a policy
// that would cordon them stops at the storm guard and records why.

import (
	"encoding/json"
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
	kubesim(t, "scenario", "pod-crashloop", ns+"/"+victim.Name)
	// (The pod is gone by the end: nothing to recover then.)
	t.Cleanup(func() {
		cmd := exec.Command(env["KM_E2E_KUBESIM_BIN"], "recover", "pod-crashloop", ns+"/"+victim.Name)
		cmd.Env = append(os.Environ(), "KUBESIM_ADDR="+env["KM_E2E_KUBESIM"])
		cmd.Run()
	})
	var r recovery
	waitFor(t, 60*time.Second, "a policy's recovery of "+target, func() (bool, string, error) {
		list := d.recoveriesOf(t, target)
		if len(list) == 0 {
			return false, "none", nil
		}
		r = list[0]
		return true, "", nil
	})
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

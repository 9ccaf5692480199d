package suite

// The storm guard on the real control plane (issue 11, item 4): when more
// than the configured share of a policy's targets, or of a zone's nodes,
// are unhealthy at once, automatic actions stop; the storm is recorded
// (ListStorms, `kubemedic storms`) with the recoveries it refused, and
// grpc.health.v1 answers NOT_SERVING for automatic recovery until it ends.
// In a zone's storm a person's action needs force.

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

const automatic = "kubemedic.v1.RecoveryService/automatic"

type storm struct {
	ID        string `json:"id"`
	Group     string `json:"group"`
	Name      string `json:"name"`
	Cluster   string `json:"cluster"`
	Active    bool   `json:"active"`
	Unhealthy int64  `json:"unhealthy,string"`
	Total     int64  `json:"total,string"`
	Share     int    `json:"sharePercent"`
	Why       string `json:"why"`
	Refused   int64  `json:"refused,string"`
	StartTime string `json:"startTime"`
	EndTime   string `json:"endTime"`
	EndNote   string `json:"endNote"`
}

func (d *daemon) storms(t *testing.T, args ...string) []storm {
	t.Helper()
	out, errs, err := d.cli(t, append([]string{"-o", "json", "storms"}, args...)...)
	if err != nil {
		t.Fatalf("storms %v: %v: %s", args, err, errs)
	}
	var list []storm
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatalf("storms %v: %v: %s", args, err, out)
	}
	return list
}

// automaticStatus is grpc.health.v1's answer for automatic recovery.
func (d *daemon) automaticStatus(t *testing.T) string {
	t.Helper()
	out, errs, _ := d.cli(t, "health", automatic)
	if strings.TrimSpace(out) == "" {
		t.Fatalf("health %s: %s", automatic, errs)
	}
	return strings.TrimSpace(out)
}

func (d *daemon) awaitAutomatic(t *testing.T, want string) {
	t.Helper()
	waitFor(t, 30*time.Second, "automatic recovery "+want, func() (bool, string, error) {
		got := d.automaticStatus(t)
		return got == want, got, nil
	})
}

// notReady makes the nodes NotReady through kubesim until the test ends.
func notReady(t *testing.T, nodes ...string) {
	for _, n := range nodes {
		kubesim(t, "scenario", "node-notready", n)
		name := n
		t.Cleanup(func() { kubesim(t, "recover", "node-notready", name) })
	}
}

// 2 of the cluster's 3 nodes NotReady: 67% > 40% of the policy's
// targets — a storm. The policy's cordons are refused and counted; the
// storm ends when the nodes are Ready again, and is kept.
func TestKubemedicRecoveryStormIsRecordedAndServed(t *testing.T) {
	d := startDaemonWith(t, env["KM_E2E_KUBECONFIG"], "auth: {localRole: operator}\n"+
		"recovery:\n  budget: {storm: {share: 40, minUnhealthy: 2}}\n"+
		"  policies:\n    - name: lost-nodes\n"+
		"      match: {kinds: [node]}\n"+
		"      trigger: {unhealthyFor: 2s}\n"+
		"      action: cordon\n")
	nodes := nodeTargets()
	for _, n := range nodes {
		d.awaitTarget(t, n)
	}
	d.awaitAutomatic(t, "SERVING")
	if list := d.storms(t); len(list) != 0 {
		t.Fatalf("storms before any: %+v", list)
	}
	adm := admin(t)
	broken := []string{"kubesim-node-0", "kubesim-node-1"}
	for _, n := range broken {
		uncordonAtEnd(t, adm, n)
	}
	notReady(t, broken...)

	d.awaitLog(t, 60*time.Second, regexp.MustCompile(`msg="recovery: storm: automatic actions stop.*policy=lost-nodes`))
	d.awaitAutomatic(t, "NOT_SERVING")
	var on storm
	waitFor(t, 60*time.Second, "the storm to refuse the policy's cordons", func() (bool, string, error) {
		list := d.storms(t, "--active")
		if len(list) != 1 {
			return false, "", nil
		}
		on = list[0]
		return on.Refused >= 1, fmt.Sprintf("refused %d", on.Refused), nil
	})
	if on.Group != "STORM_GROUP_POLICY" || on.Name != "lost-nodes" || !on.Active ||
		on.Unhealthy != 2 || on.Total != 3 || on.Share != 40 || on.ID == "" ||
		!strings.Contains(on.Why, "2 of 3 targets of policy lost-nodes") {
		t.Errorf("the storm on: %+v", on)
	}
	for _, r := range d.recoveriesOf(t) {
		if r.Phase != "RECOVERY_PHASE_SKIPPED" || !strings.Contains(r.LastError, "storm") {
			t.Errorf("a recovery in the storm: %+v", r)
		}
	}
	for _, n := range nodes {
		node, err := adm.CoreV1().Nodes().Get(ctx(t), strings.TrimPrefix(n, "node//"), metav1.GetOptions{})
		if err != nil || node.Spec.Unschedulable {
			t.Errorf("node %s cordoned in a storm: %v", n, err)
		}
	}

	// Ready again: the storm ends, is kept, and automatic recovery serves.
	for _, n := range broken {
		kubesim(t, "recover", "node-notready", n)
	}
	d.awaitLog(t, 60*time.Second, regexp.MustCompile(`msg="recovery: the storm is over" policy=lost-nodes`))
	d.awaitAutomatic(t, "SERVING")
	if list := d.storms(t, "--active"); len(list) != 0 {
		t.Errorf("storms on after the end: %+v", list)
	}
	var ended storm
	waitFor(t, 30*time.Second, "the storm's end recorded", func() (bool, string, error) {
		list := d.storms(t)
		if len(list) != 1 {
			return false, "", nil
		}
		ended = list[0]
		return !ended.Active && ended.EndTime != "", ended.EndTime, nil
	})
	if ended.ID != on.ID || ended.Refused < on.Refused || ended.EndNote != "" {
		t.Errorf("the storm ended: %+v (on: %+v)", ended, on)
	}
}

// zone labels every node with topology.kubernetes.io/zone until the test
// ends.
func zone(t *testing.T, name string, nodes ...string) {
	adm := admin(t)
	label := func(v string) {
		patch := `{"metadata":{"labels":{"topology.kubernetes.io/zone":` + v + `}}}`
		for _, n := range nodes {
			if _, err := adm.CoreV1().Nodes().Patch(ctx(t), n, types.StrategicMergePatchType,
				[]byte(patch), metav1.PatchOptions{}); err != nil {
				t.Fatalf("label %s: %v", n, err)
			}
		}
	}
	label(`"` + name + `"`)
	t.Cleanup(func() { label("null") })
}

// No policy at all: 2 of a zone's 3 nodes NotReady stop a person's cordon
// in that zone unless forced; the refusal is recorded, counted by the
// storm, and force passes.
func TestKubemedicRecoveryZoneStormNeedsForce(t *testing.T) {
	all := []string{"kubesim-node-0", "kubesim-node-1", "kubesim-node-2"}
	zone(t, "e2e-zone-a", all...)
	d := startDaemonWith(t, env["KM_E2E_KUBECONFIG"], "auth: {localRole: operator}\n"+
		"recovery:\n  budget: {storm: {share: 40, minUnhealthy: 2}}\n")
	for _, n := range all {
		d.awaitTarget(t, "node//"+n)
	}
	adm := admin(t)
	uncordonAtEnd(t, adm, "kubesim-node-2")
	notReady(t, "kubesim-node-0", "kubesim-node-1")
	d.awaitLog(t, 60*time.Second, regexp.MustCompile(`msg="recovery: storm: automatic actions stop.*zone=e2e-zone-a`))
	d.awaitAutomatic(t, "NOT_SERVING")

	_, errs, err := d.cli(t, "recover", "node//kubesim-node-2", "--action", "cordon", "--reason", "e2e: in a zone's storm")
	if err == nil || !strings.Contains(errs, "FAILED_PRECONDITION") ||
		!strings.Contains(errs, "storm: 2 of 3 nodes in e2e-zone-a") ||
		!strings.Contains(errs, "an operator may force it") {
		t.Fatalf("a cordon in a zone's storm: %v: %s", err, errs)
	}
	skipped := d.recoveriesOf(t, "node//kubesim-node-2")
	if len(skipped) != 1 || skipped[0].Phase != "RECOVERY_PHASE_SKIPPED" ||
		!strings.Contains(skipped[0].LastError, "storm: 2 of 3 nodes in e2e-zone-a") {
		t.Fatalf("the refusal recorded: %+v", skipped)
	}
	r := d.recover(t, "node//kubesim-node-2", "--action", "cordon", "--reason", "e2e: forced in a storm", "--force")
	d.awaitPhase(t, r.ID, "RECOVERY_PHASE_VERIFIED", 60*time.Second)
	if n, err := adm.CoreV1().Nodes().Get(ctx(t), "kubesim-node-2", metav1.GetOptions{}); err != nil || !n.Spec.Unschedulable {
		t.Fatalf("the forced cordon: %v", err)
	}
	list := d.storms(t, "--active")
	if len(list) != 1 || list[0].Group != "STORM_GROUP_ZONE" || list[0].Name != "e2e-zone-a" ||
		list[0].Refused != 1 || list[0].Total != 3 {
		t.Errorf("the zone's storm: %+v", list)
	}
}

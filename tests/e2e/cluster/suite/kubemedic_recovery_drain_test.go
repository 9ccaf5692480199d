package suite

// A drain on the real control plane: the node is cordoned, its pods are
// evicted through the Eviction API, a PodDisruptionBudget holds them until
// it allows, and the drain ends when the node has no evictable pod left;
// a node with a pod no controller would bring back is not drained unless
// forced.

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func TestKubemedicRecoveryDrainHonoursAPDB(t *testing.T) {
	adm := admin(t)
	ns := namespace(t, adm)
	node := "kubesim-node-0"
	target := "node//" + node
	uncordonAtEnd(t, adm, node)
	deployment(t, adm, ns, "db", 3)
	pods := runningPods(t, adm, ns, "db", 3)
	var onNode []corev1.Pod
	for _, p := range pods {
		if p.Spec.NodeName == node {
			onNode = append(onNode, p)
		}
	}
	if len(onNode) == 0 {
		t.Fatalf("no pod of db on %s (kubesim binds round-robin over 3 nodes)", node)
	}
	// No disruption allowed: every eviction is refused (429).
	minAvail := intstr.FromInt32(3)
	pdb := &policyv1.PodDisruptionBudget{ObjectMeta: metav1.ObjectMeta{Name: "db"},
		Spec: policyv1.PodDisruptionBudgetSpec{MinAvailable: &minAvail,
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "db"}}}}
	if _, err := adm.PolicyV1().PodDisruptionBudgets(ns).Create(ctx(t), pdb, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "the PDB's status", func() (bool, string, error) {
		p, err := adm.PolicyV1().PodDisruptionBudgets(ns).Get(ctx(t), "db", metav1.GetOptions{})
		if err != nil {
			return false, "", err
		}
		return p.Status.ObservedGeneration == p.Generation && p.Status.ExpectedPods == 3,
			p.Status.String(), nil
	})

	d := startDaemonWith(t, env["KM_E2E_KUBECONFIG"], "auth: {localRole: operator}\n")
	d.awaitTarget(t, target)
	r := d.recover(t, target, "--action", "drain", "--reason", "e2e: drain")
	waitFor(t, 30*time.Second, "the drain held by the PDB", func() (bool, string, error) {
		out, _, err := d.cli(t, "-o", "json", "recovery", r.ID)
		return err == nil && strings.Contains(out, "draining: 0 of") &&
			strings.Contains(out, "disruption budget"), out, nil
	})
	for _, p := range onNode {
		got, err := adm.CoreV1().Pods(ns).Get(ctx(t), p.Name, metav1.GetOptions{})
		if err != nil || got.UID != p.UID || got.DeletionTimestamp != nil {
			t.Errorf("pod %s evicted against its PDB: %v", p.Name, err)
		}
	}
	n, err := adm.CoreV1().Nodes().Get(ctx(t), node, metav1.GetOptions{})
	if err != nil || !n.Spec.Unschedulable {
		t.Errorf("node %s not cordoned while draining: %v", node, err)
	}

	// The budget allows one disruption at a time: the drain goes on.
	minAvail = intstr.FromInt32(2)
	p, err := adm.PolicyV1().PodDisruptionBudgets(ns).Get(ctx(t), "db", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p.Spec.MinAvailable = &minAvail
	if _, err := adm.PolicyV1().PodDisruptionBudgets(ns).Update(ctx(t), p, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	done := d.awaitPhase(t, r.ID, "RECOVERY_PHASE_VERIFIED", 120*time.Second)
	t.Logf("drain %s: %q", r.ID, done.LastError)
	if !strings.Contains(done.LastError, "no pod to evict is left") {
		t.Errorf("drain verified with %q", done.LastError)
	}
	for _, p := range onNode {
		podGone(t, adm, ns, p, 30*time.Second)
	}
	for _, p := range runningPods(t, adm, ns, "db", 3) {
		if p.Spec.NodeName == node {
			t.Errorf("pod %s runs on the drained node", p.Name)
		}
	}
}

func TestKubemedicRecoveryDrainKeepsUnmanagedPods(t *testing.T) {
	adm := admin(t)
	ns := namespace(t, adm)
	node := "kubesim-node-1"
	uncordonAtEnd(t, adm, node)
	bare := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "bare"},
		Spec: corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "app", Image: "registry.example/app:1"}}}}
	created, err := adm.CoreV1().Pods(ns).Create(ctx(t), bare, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	d := startDaemonWith(t, env["KM_E2E_KUBECONFIG"], "auth: {localRole: operator}\n")
	d.awaitTarget(t, "pod/"+ns+"/bare")
	r := d.recover(t, "node//"+node, "--action", "drain", "--reason", "e2e: unmanaged")
	failed := d.awaitPhase(t, r.ID, "RECOVERY_PHASE_FAILED", 30*time.Second)
	if !strings.Contains(failed.LastError, "no controller") {
		t.Errorf("drain of a node with a bare pod: %q", failed.LastError)
	}
	got, err := adm.CoreV1().Pods(ns).Get(ctx(t), "bare", metav1.GetOptions{})
	if err != nil || got.UID != created.UID || got.DeletionTimestamp != nil {
		t.Errorf("the bare pod was evicted without force: %v", err)
	}
}

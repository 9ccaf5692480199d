package suite

// Two replicas of kubemedicd on one cluster, with leader election on a
// Lease: one dispatches, the other answers UNAVAILABLE naming it; when
// the leader is killed (no chance to give the Lease up), the other takes
// over once the Lease has expired, and dispatches.

import (
	"regexp"
	"strings"
	"testing"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestKubemedicRecoveryLeaderElection(t *testing.T) {
	adm := admin(t)
	ns := namespace(t, adm)
	// What deploy/ grants kubemedic for its Lease, in this namespace.
	role := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "kubemedic-leader-election"},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{"coordination.k8s.io"},
			Resources: []string{"leases"}, Verbs: []string{"get", "create", "update"}}}}
	if _, err := adm.RbacV1().Roles(ns).Create(ctx(t), role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	rb := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "kubemedic-leader-election"},
		RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: role.Name},
		Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Name: "kubemedic", Namespace: "kubemedic"}}}
	if _, err := adm.RbacV1().RoleBindings(ns).Create(ctx(t), rb, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	config := func(id string) string {
		return "auth: {localRole: operator}\nrecovery:\n  leaderElection:\n    enabled: true\n" +
			"    namespace: " + ns + "\n    identity: " + id + "\n" +
			"    leaseDuration: 3s\n    renewDeadline: 2s\n    retryPeriod: 500ms\n"
	}
	node := "kubesim-node-1"
	target := "node//" + node
	uncordonAtEnd(t, adm, node)

	a := startDaemonIn(t, t.TempDir(), env["KM_E2E_KUBECONFIG"], config("replica-a"))
	a.awaitLog(t, 20*time.Second, regexp.MustCompile(`msg="recovery: leading; this replica dispatches".*leader=replica-a`))
	b := startDaemonIn(t, t.TempDir(), env["KM_E2E_KUBECONFIG"], config("replica-b"))
	b.awaitLog(t, 20*time.Second, regexp.MustCompile(`msg="recovery: not leading; the leader dispatches".*leader=replica-a`))
	a.awaitTarget(t, target)
	b.awaitTarget(t, target)

	// The follower refuses, naming the leader; the leader acts.
	_, errs, err := b.cli(t, "recover", target, "--action", "cordon", "--reason", "e2e: follower")
	if err == nil || !strings.Contains(errs, "UNAVAILABLE") || !strings.Contains(errs, "the leader is replica-a") {
		t.Fatalf("a follower's recovery: %v: %s", err, errs)
	}
	r := a.recover(t, target, "--action", "cordon", "--reason", "e2e: leader")
	a.awaitPhase(t, r.ID, "RECOVERY_PHASE_VERIFIED", 30*time.Second)
	lease, err := adm.CoordinationV1().Leases(ns).Get(ctx(t), "kubemedic-recovery", metav1.GetOptions{})
	if err != nil || lease.Spec.HolderIdentity == nil || *lease.Spec.HolderIdentity != "replica-a" {
		t.Fatalf("the Lease: %v %+v", err, lease)
	}

	// While a lives, b never leads.
	if strings.Contains(b.logText(), "recovery: leading") {
		t.Fatalf("replica-b led while replica-a held the Lease:\n%s", b.logText())
	}
	// The leader dies without giving the Lease up: b takes over once it
	// has not seen it renewed for the lease duration (counted from b's
	// last sight of a renewal, which may be a little before the kill).
	from := b.logLen()
	a.kill(t)
	killed := time.Now()
	b.awaitLogFrom(t, from, 20*time.Second, regexp.MustCompile(`msg="recovery: leading; this replica dispatches".*leader=replica-b`))
	took := time.Since(killed)
	t.Logf("replica-b leads %v after replica-a was killed (lease 3s, retry 500ms)", took.Round(10*time.Millisecond))
	r = b.recover(t, target, "--action", "uncordon", "--reason", "e2e: new leader")
	b.awaitPhase(t, r.ID, "RECOVERY_PHASE_VERIFIED", 30*time.Second)
	n, err := adm.CoreV1().Nodes().Get(ctx(t), node, metav1.GetOptions{})
	if err != nil || n.Spec.Unschedulable {
		t.Errorf("node %s: %v, unschedulable %v", node, err, n != nil && n.Spec.Unschedulable)
	}
	lease, err = adm.CoordinationV1().Leases(ns).Get(ctx(t), "kubemedic-recovery", metav1.GetOptions{})
	if err != nil || *lease.Spec.HolderIdentity != "replica-b" || lease.Spec.LeaseTransitions == nil ||
		*lease.Spec.LeaseTransitions != 1 {
		t.Errorf("the Lease after the takeover: %v %+v", err, lease.Spec)
	}
}

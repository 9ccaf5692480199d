package suite

// The role of a ServiceAccount from the cluster's RBAC
// (auth.kubernetesAccessReview): kubemedicd reviews a caller's token
// (TokenReview) and asks the API server, with a SubjectAccessReview, which
// of kubemedic's roles the cluster gives it. kubemedicd runs as a
// ServiceAccount with exactly deploy/kubemedic.yaml's rules for it (read,
// create on tokenreviews and subjectaccessreviews), so a rule missing there
// fails this test.

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	authv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// What deploy/kubemedic.yaml gives kubemedicd for auth.kubernetesTokens and
// auth.kubernetesAccessReview, beside its read rules.
var reviewRules = []rbacv1.PolicyRule{
	{APIGroups: []string{"authentication.k8s.io"}, Resources: []string{"tokenreviews"}, Verbs: []string{"create"}},
	{APIGroups: []string{"authorization.k8s.io"}, Resources: []string{"subjectaccessreviews"}, Verbs: []string{"create"}},
	{NonResourceURLs: []string{"/livez", "/readyz"}, Verbs: []string{"get"}},
}

// saToken makes ServiceAccount ns/name and writes a token of it to a file.
func saToken(t *testing.T, cs kubernetes.Interface, ns, name string) string {
	t.Helper()
	if _, err := cs.CoreV1().ServiceAccounts(ns).Create(ctx(t), &corev1.ServiceAccount{
		ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	tr, err := cs.CoreV1().ServiceAccounts(ns).CreateToken(ctx(t), name,
		&authv1.TokenRequest{Spec: authv1.TokenRequestSpec{}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), name+".token")
	if err := os.WriteFile(path, []byte(tr.Status.Token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// grant makes a ClusterRole of verb on health.kubemedic.io bound to the
// ServiceAccount ns/sa (both deleted when the test ends); it returns the
// binding's name.
func grant(t *testing.T, cs kubernetes.Interface, ns, sa, verb string) string {
	t.Helper()
	name := ns + "-" + sa
	role := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: name}, Rules: []rbacv1.PolicyRule{
		{APIGroups: []string{"kubemedic.io"}, Resources: []string{"health"}, Verbs: []string{verb}}}}
	if _, err := cs.RbacV1().ClusterRoles().Create(ctx(t), role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cs.RbacV1().ClusterRoles().Delete(context.Background(), name, metav1.DeleteOptions{}) })
	b := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: name},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: sa, Namespace: ns}},
	}
	if _, err := cs.RbacV1().ClusterRoleBindings().Create(ctx(t), b, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cs.RbacV1().ClusterRoleBindings().Delete(context.Background(), name, metav1.DeleteOptions{}) })
	return name
}

// serverOf rewrites a kubeconfig's server (to go through a proxy).
func serverOf(t *testing.T, kubeconfig, server string) string {
	t.Helper()
	cfg, err := clientcmd.LoadFromFile(kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cfg.Clusters {
		c.Server = server
	}
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestKubemedicServiceAccountAccessReview(t *testing.T) {
	adm := admin(t)
	ns := namespace(t, adm)
	viewer := saToken(t, adm, ns, "viewer")
	operator := saToken(t, adm, ns, "operator")
	stranger := saToken(t, adm, ns, "stranger")
	viewerBinding := grant(t, adm, ns, "viewer", "get")
	grant(t, adm, ns, "operator", "update")
	user := func(sa string) string { return "system:serviceaccount:" + ns + ":" + sa }

	// kubemedicd as a ServiceAccount with deploy/kubemedic.yaml's rules,
	// through a proxy that can cut it off from the API server.
	kc := serviceAccount(t, adm, "km-access-review", append(append([]rbacv1.PolicyRule{},
		kubemedicReadRules...), reviewRules...))
	px := startProxy(t, strings.TrimPrefix(env["KM_E2E_APISERVER"], "https://"))
	// Answers of the cluster's RBAC are kept 2 s, so a change of a
	// binding shows within seconds; no bindings of kubemedic's own. The
	// local user (this test, over loopback) is an admin, to read the
	// audit trail.
	d := startDaemonWith(t, serverOf(t, kc, px.url()),
		"auth:\n  localRole: admin\n  kubernetesTokens: true\n"+
			"  kubernetesAccessReview: {cacheAllowed: 2s, cacheDenied: 1s}\n")
	cli := func(token string, args ...string) (string, error) {
		pre := []string{"-s", d.addr}
		if token != "" {
			pre = append(pre, "--token-file", token)
		}
		out, err := exec.Command(binary(t, "KM_KUBEMEDIC"), append(pre, args...)...).CombinedOutput()
		return string(out), err
	}
	denied := func(what, out string, err error, parts ...string) {
		t.Helper()
		if err == nil || !strings.Contains(out, "PERMISSION_DENIED") {
			t.Fatalf("%s: want PERMISSION_DENIED, got %v: %s", what, err, out)
		}
		for _, p := range parts {
			if !strings.Contains(out, p) {
				t.Errorf("%s: %q is not in: %s", what, p, out)
			}
		}
	}
	node := fmt.Sprintf("node//%s0", env["KM_E2E_NODE_PREFIX"])

	// The viewer (get): GetHealth, once the node is known; not a change.
	waitFor(t, 60*time.Second, "GetHealth of "+node+" as the viewer", func() (bool, string, error) {
		out, err := cli(viewer, "status", node)
		if strings.Contains(out, "PERMISSION_DENIED") || strings.Contains(out, "UNAVAILABLE") {
			t.Fatalf("GetHealth as the viewer: %v: %s", err, out)
		}
		return err == nil, out, nil
	})
	out, err := cli(viewer, "probes", "create", "by-viewer", "--tcp", "127.0.0.1:9")
	denied("CreateProbe as the viewer", out, err, "needs the operator role",
		`Kubernetes user "`+user("viewer")+`" has viewer`,
		`the cluster's RBAC gives operator to whom it allows "update" on health.kubemedic.io`)

	// The operator (update): a TCP probe; not an exec probe (admin).
	if out, err := cli(operator, "probes", "create", "by-operator", "--tcp", "127.0.0.1:9"); err != nil {
		t.Fatalf("CreateProbe as the operator: %v: %s", err, out)
	}
	out, err = cli(operator, "probes", "create", "exec-by-operator", "--exec", "--", "true")
	denied("an exec probe as the operator", out, err, "needs the admin role",
		`Kubernetes user "`+user("operator")+`" has operator`, `allows "*" on health.kubemedic.io`)

	// A ServiceAccount the cluster grants nothing: refused everything.
	out, err = cli(stranger, "probes", "list")
	denied("ListProbes as a stranger", out, err, "needs the viewer role",
		`Kubernetes user "`+user("stranger")+`" has no role`, `allows "get" on health.kubemedic.io`)

	// Each refusal is in the audit trail, with who was refused.
	waitFor(t, 10*time.Second, "the refusals in the audit trail", func() (bool, string, error) {
		out, err := cli("", "-o", "json", "audit", "--since", "1h")
		ok := err == nil
		for _, u := range []string{"viewer", "operator", "stranger"} {
			ok = ok && strings.Contains(out, user(u))
		}
		return ok && strings.Contains(out, `"code":7`), out, err // PERMISSION_DENIED
	})

	// The viewer's binding goes: within the cache's 2 s (polled, with
	// room for a slow machine), the viewer is refused.
	if err := adm.RbacV1().ClusterRoleBindings().Delete(ctx(t), viewerBinding, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	gone := time.Now()
	waitFor(t, 30*time.Second, "the viewer refused once its binding is gone", func() (bool, string, error) {
		out, err := cli(viewer, "status", node)
		return err != nil && strings.Contains(out, "PERMISSION_DENIED") &&
			strings.Contains(out, "has no role"), out, nil
	})
	t.Logf("the binding's removal took effect after %v", time.Since(gone).Round(100*time.Millisecond))

	// An API server that cannot be asked: the operator's kept answer
	// expires and the next call is UNAVAILABLE (its token review is still
	// kept, so it is the access review that fails), not a lower role.
	px.cut()
	waitFor(t, 30*time.Second, "UNAVAILABLE for the operator while the API server is cut off", func() (bool, string, error) {
		out, err := cli(operator, "probes", "list")
		if strings.Contains(out, "PERMISSION_DENIED") {
			t.Fatalf("the operator, with the API server cut off: %v: %s", err, out)
		}
		return err != nil && strings.Contains(out, "UNAVAILABLE") &&
			strings.Contains(out, "could not be asked of the cluster"), out, nil
	})
	px.restore()
	waitFor(t, 30*time.Second, "the operator back once the API server is", func() (bool, string, error) {
		out, err := cli(operator, "probes", "list")
		return err == nil, out, nil
	})
}

package suite

// kubemedicd when things go wrong between it and the cluster (issue 10 item
// 9): a Service losing its endpoints, a watch whose resourceVersion is gone
// (410), a kind the ServiceAccount may not read, a token that is wrong and
// then rotated, and the API server restarted under its watches. Each test
// follows kubemedic's transitions as events, and counts them where it says
// nothing else happened.

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	authv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// ---- helpers ------------------------------------------------------------------

// transitionsOf is what kubemedicd has stored for target, oldest first.
func (d *daemon) transitionsOf(t *testing.T, target string) []transition {
	t.Helper()
	out, err := exec.Command(binary(t, "KM_KUBEMEDIC"), "-s", d.addr, "-o", "json",
		"transitions", target, "--oldest-first").Output()
	if err != nil {
		t.Fatalf("kubemedic transitions %s: %v", target, err)
	}
	var trs []transition
	if err := json.Unmarshal(out, &trs); err != nil {
		t.Fatalf("kubemedic transitions %s: %v: %s", target, err, out)
	}
	return trs
}

// expectTransitions checks that target's stored transitions go to exactly
// these states, in this order.
func (d *daemon) expectTransitions(t *testing.T, target string, states ...string) {
	t.Helper()
	trs := d.transitionsOf(t, target)
	var got []string
	for _, tr := range trs {
		got = append(got, tr.ToState)
	}
	if strings.Join(got, " ") != strings.Join(states, " ") {
		var seen []string
		for _, tr := range trs {
			seen = append(seen, fmt.Sprintf("%s %s->%s (%s)", tr.Time.Format(time.RFC3339Nano),
				tr.FromState, tr.ToState, tr.Cause))
		}
		t.Errorf("%s: transitions %v, want exactly %v:\n  %s", target, got, states, strings.Join(seen, "\n  "))
	}
}

// nodeTargets are the simulated nodes' targets.
func nodeTargets() []string {
	var n int
	fmt.Sscan(env["KM_E2E_NODES"], &n)
	var out []string
	for i := 0; i < n; i++ {
		out = append(out, fmt.Sprintf("node//%s%d", env["KM_E2E_NODE_PREFIX"], i))
	}
	return out
}

// awaitAll waits until every target in want has reached state.
func awaitAll(t *testing.T, ch <-chan event, timeout time.Duration, state string, want []string) {
	t.Helper()
	left := map[string]bool{}
	for _, w := range want {
		left[w] = true
	}
	deadline := time.Now().Add(timeout)
	for len(left) > 0 {
		ev := await(t, ch, time.Until(deadline), fmt.Sprintf("%s for %v", state, left), func(tr *transition) bool {
			return left[tr.Target] && tr.ToState == state
		})
		delete(left, ev.Transition.Target)
	}
}

// kubeconfigFile writes a kubeconfig for the test's API server (or server,
// when not empty) with this user, and returns its path.
func kubeconfigFile(t *testing.T, server string, auth *clientcmdapi.AuthInfo) string {
	t.Helper()
	if server == "" {
		server = env["KM_E2E_APISERVER"]
	}
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["e2e"] = &clientcmdapi.Cluster{Server: server, CertificateAuthority: env["KM_E2E_CA"]}
	cfg.AuthInfos["user"] = auth
	cfg.Contexts["e2e"] = &clientcmdapi.Context{Cluster: "e2e", AuthInfo: "user"}
	cfg.CurrentContext = "e2e"
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatal(err)
	}
	return path
}

// writeFileAtomic replaces path's contents at once, as the kubelet swaps a
// projected token.
func writeFileAtomic(t *testing.T, path string, data []byte) {
	t.Helper()
	tmp := path + ".new"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// token asks the TokenRequest API for a token of the ServiceAccount.
func token(t *testing.T, cs kubernetes.Interface, ns, sa string) string {
	t.Helper()
	secs := int64(3600)
	var tr *authv1.TokenRequest
	waitFor(t, 30*time.Second, "a token for "+ns+"/"+sa, func() (bool, string, error) {
		var err error
		tr, err = cs.CoreV1().ServiceAccounts(ns).CreateToken(ctx(t), sa,
			&authv1.TokenRequest{Spec: authv1.TokenRequestSpec{ExpirationSeconds: &secs}}, metav1.CreateOptions{})
		return err == nil, "", err
	})
	return tr.Status.Token
}

// The kubemedic ClusterRole's read rules (cmd/kmctl/bootstrap.go).
var kubemedicReadRules = []rbacv1.PolicyRule{
	{APIGroups: []string{""}, Resources: []string{"nodes", "pods", "services"}, Verbs: []string{"get", "list", "watch"}},
	{APIGroups: []string{"discovery.k8s.io"}, Resources: []string{"endpointslices"}, Verbs: []string{"get", "list", "watch"}},
	{APIGroups: []string{"apps"}, Resources: []string{"deployments", "statefulsets", "daemonsets", "replicasets"}, Verbs: []string{"get", "list", "watch"}},
	{APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"}, Verbs: []string{"get", "list", "watch"}},
}

// serviceAccount makes a ServiceAccount in the kubemedic namespace bound to
// a ClusterRole of these rules (all deleted when the test ends), and returns
// a kubeconfig with a TokenRequest token in a tokenFile.
func serviceAccount(t *testing.T, cs kubernetes.Interface, name string, rules []rbacv1.PolicyRule) string {
	t.Helper()
	const ns = "kubemedic"
	c := ctx(t)
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}}
	if _, err := cs.CoreV1().ServiceAccounts(ns).Create(c, sa, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cs.CoreV1().ServiceAccounts(ns).Delete(context.Background(), name, metav1.DeleteOptions{}) })
	role := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: name}, Rules: rules}
	if _, err := cs.RbacV1().ClusterRoles().Create(c, role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cs.RbacV1().ClusterRoles().Delete(context.Background(), name, metav1.DeleteOptions{}) })
	binding := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: name},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: name, Namespace: ns}},
	}
	if _, err := cs.RbacV1().ClusterRoleBindings().Create(c, binding, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cs.RbacV1().ClusterRoleBindings().Delete(context.Background(), name, metav1.DeleteOptions{})
	})
	tokenFile := filepath.Join(t.TempDir(), "token")
	writeFileAtomic(t, tokenFile, []byte(token(t, cs, ns, name)))
	return kubeconfigFile(t, "", &clientcmdapi.AuthInfo{TokenFile: tokenFile})
}

// proxy passes TCP connections to the API server through (TLS end to end),
// and can cut them all and refuse new ones: a network partition between
// kubemedicd and the cluster, with the cluster itself still running.
type proxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	down   bool
	conns  map[net.Conn]bool
}

func startProxy(t *testing.T, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: target, conns: map[net.Conn]bool{}}
	t.Cleanup(func() { ln.Close(); p.cut() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go p.serve(c)
		}
	}()
	return p
}

func (p *proxy) track(cs ...net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.down {
		return false
	}
	for _, c := range cs {
		p.conns[c] = true
	}
	return true
}

func (p *proxy) serve(c net.Conn) {
	if !p.track(c) {
		c.Close()
		return
	}
	s, err := net.Dial("tcp", p.target)
	if err != nil || !p.track(s) {
		c.Close()
		if s != nil {
			s.Close()
		}
		return
	}
	done := make(chan struct{}, 2)
	go func() { io.Copy(s, c); done <- struct{}{} }()
	go func() { io.Copy(c, s); done <- struct{}{} }()
	<-done
	c.Close()
	s.Close()
	p.mu.Lock()
	delete(p.conns, c)
	delete(p.conns, s)
	p.mu.Unlock()
}

func (p *proxy) url() string { return "https://" + p.ln.Addr().String() }

// cut closes every connection and refuses new ones until restore.
func (p *proxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = true
	for c := range p.conns {
		c.Close()
	}
}

func (p *proxy) restore() {
	p.mu.Lock()
	p.down = false
	p.mu.Unlock()
}

// etcdPost is a request to etcd's HTTP gateway with the API server's client
// certificate.
func etcdPost(t *testing.T, path, body string) []byte {
	t.Helper()
	pki := filepath.Join(env["KM_E2E_STATE"], "pki")
	cert, err := tls.LoadX509KeyPair(filepath.Join(pki, "apiserver-etcd-client.crt"), filepath.Join(pki, "apiserver-etcd-client.key"))
	if err != nil {
		t.Fatal(err)
	}
	caPEM, err := os.ReadFile(env["KM_E2E_CA"])
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(caPEM)
	hc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{cert}}}}
	resp, err := hc.Post(env["KM_E2E_ETCD"]+path, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("etcd %s: HTTP %d: %s", path, resp.StatusCode, out)
	}
	return out
}

// fastAdmin is the admin client without client-go's default rate limit (5
// QPS), for churn.
func fastAdmin(t *testing.T) kubernetes.Interface {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", env["KM_E2E_ADMIN_KUBECONFIG"])
	if err != nil {
		t.Fatal(err)
	}
	cfg.QPS, cfg.Burst = 1000, 2000
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

// watchGone says whether a watch of pods from rv is answered 410 Gone.
func watchGone(t *testing.T, cs kubernetes.Interface, rv string) bool {
	t.Helper()
	secs := int64(1)
	w, err := cs.CoreV1().Pods("").Watch(ctx(t), metav1.ListOptions{ResourceVersion: rv, TimeoutSeconds: &secs})
	if apierrors.IsResourceExpired(err) || apierrors.IsGone(err) {
		return true
	}
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	for ev := range w.ResultChan() {
		if ev.Type == watch.Error {
			st, ok := ev.Object.(*metav1.Status)
			return ok && st.Code == http.StatusGone
		}
	}
	return false
}

// ---- the tests -----------------------------------------------------------------

// kubesim's service-endpoints-drop makes a Service's pods not ready: every
// endpoint of its EndpointSlice goes not ready, and kubemedic says so of the
// Service, then sees them back.
func TestKubemedicServiceEndpointsDrop(t *testing.T) {
	adm := admin(t)
	ns := namespace(t, adm)
	replicaSet(t, adm, ns, "api", 2, map[string]string{"kubesim.kubemedic.io/pod-ip-pool": "endpoints"})
	runningPods(t, adm, ns, "api", 2)
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "api"},
		Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "api"},
			Ports: []corev1.ServicePort{{Port: 80}}},
	}
	if _, err := adm.CoreV1().Services(ns).Create(ctx(t), svc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t)
	target := "service/" + ns + "/api"
	ch := d.watchHealth(t, target)
	await(t, ch, 60*time.Second, target+" HEALTHY", func(tr *transition) bool { return tr.ToState == healthy })
	kubesim(t, "scenario", "service-endpoints-drop", ns+"/api")
	t.Cleanup(func() { kubesim(t, "recover", "service-endpoints-drop", ns+"/api") })
	ev := await(t, ch, 60*time.Second, target+" UNHEALTHY", func(tr *transition) bool { return tr.ToState == unhealthy })
	if !strings.HasPrefix(ev.Transition.Cause, "no ready endpoints") {
		t.Errorf("cause %q, want no ready endpoints", ev.Transition.Cause)
	}
	kubesim(t, "recover", "service-endpoints-drop", ns+"/api")
	await(t, ch, 60*time.Second, target+" HEALTHY again", func(tr *transition) bool { return tr.ToState == healthy })
	d.expectTransitions(t, target, healthy, unhealthy, healthy)
}

var goneRe = regexp.MustCompile(`msg="kube: the watch's version is gone; listing again".*resource=pods`)

// The API server answers kubemedicd's pod watch 410 Gone, as it does to a
// client that comes back after its resourceVersion left the watch cache
// (tests/e2e/record_fixtures.sh makes the same): a partition keeps
// kubemedicd away while the version ages past the cache's 75 s, etcd is
// compacted and pods churn until a watch from there is refused. kubemedicd
// lists again; a pod deleted meanwhile ends DELETED, and the pods that did
// not change get no transition more.
func TestKubemedicWatchGone(t *testing.T) {
	adm := fastAdmin(t)
	ns := namespace(t, adm)
	replicaSet(t, adm, ns, "keep", 2, nil)
	replicaSet(t, adm, ns, "doomed", 1, nil)
	keep := runningPods(t, adm, ns, "keep", 2)
	doomed := runningPods(t, adm, ns, "doomed", 1)[0]

	u, err := url.Parse(env["KM_E2E_APISERVER"])
	if err != nil {
		t.Fatal(err)
	}
	px := startProxy(t, u.Host)
	tokenFile := filepath.Join(env["KM_E2E_STATE"], "kubemedic.token")
	d := startDaemonWith(t, kubeconfigFile(t, px.url(), &clientcmdapi.AuthInfo{TokenFile: tokenFile}), defaultConfig)
	ch := d.watchHealth(t)
	targets := []string{"pod/" + ns + "/" + keep[0].Name, "pod/" + ns + "/" + keep[1].Name, "pod/" + ns + "/" + doomed.Name}
	awaitAll(t, ch, 60*time.Second, healthy, targets)

	// The partition: kubemedicd keeps the resourceVersion it had.
	mark := d.logLen()
	px.cut()
	t0 := time.Now()
	d.awaitLogFrom(t, mark, 30*time.Second, regexp.MustCompile(`watching a resource fails.*resource=pods`))
	list, err := adm.CoreV1().Pods("").List(ctx(t), metav1.ListOptions{Limit: 1})
	if err != nil {
		t.Fatal(err)
	}
	rv := list.ResourceVersion // newer than anything kubemedicd saw
	// Meanwhile the ReplicaSet is scaled to nothing: its pod goes.
	scale := []byte(`{"spec":{"replicas":0}}`)
	if _, err := adm.AppsV1().ReplicaSets(ns).Patch(ctx(t), "doomed", types.MergePatchType, scale, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 60*time.Second, "pod "+doomed.Name+" gone", func() (bool, string, error) {
		_, err := adm.CoreV1().Pods(ns).Get(ctx(t), doomed.Name, metav1.GetOptions{})
		return apierrors.IsNotFound(err), "still there", nil
	})

	// The watch cache keeps every event younger than 75 s whatever their
	// number (DefaultEventFreshDuration): only time gets rv out of it, so
	// this waits for time, not for an event.
	time.Sleep(time.Until(t0.Add(80 * time.Second)))
	out := etcdPost(t, "/v3/kv/range", `{"key":"AA=="}`)
	var hdr struct {
		Header struct {
			Revision string `json:"revision"`
		} `json:"header"`
	}
	if err := json.Unmarshal(out, &hdr); err != nil {
		t.Fatal(err)
	}
	etcdPost(t, "/v3/kv/compaction", fmt.Sprintf(`{"revision":"%s","physical":true}`, hdr.Header.Revision))
	churn := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "churn"},
		Spec: corev1.PodSpec{SchedulerName: "nobody",
			Containers: []corev1.Container{{Name: "app", Image: "registry.example/churn:1"}}},
	}
	if _, err := adm.CoreV1().Pods(ns).Create(ctx(t), churn, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	patches := 0
	for !watchGone(t, adm, rv) {
		if patches >= 20000 {
			t.Fatalf("resourceVersion %s still in the watch cache after %d pod updates", rv, patches)
		}
		for i := 0; i < 50; i++ {
			p := []byte(fmt.Sprintf(`{"metadata":{"annotations":{"churn":"%d"}}}`, patches))
			if _, err := adm.CoreV1().Pods(ns).Patch(ctx(t), "churn", types.MergePatchType, p, metav1.PatchOptions{}); err != nil {
				t.Fatal(err)
			}
			patches++
		}
	}
	t.Logf("resourceVersion %s gone %v after the partition, after %d pod updates", rv,
		time.Since(t0).Round(time.Second), patches)
	zero := int64(0)
	if err := adm.CoreV1().Pods(ns).Delete(ctx(t), "churn", metav1.DeleteOptions{GracePeriodSeconds: &zero}); err != nil {
		t.Fatal(err)
	}

	// The partition heals: kubemedicd's watch is refused 410, it lists.
	px.restore()
	healed := time.Now()
	ev := await(t, ch, 90*time.Second, targets[2]+" DELETED", func(tr *transition) bool {
		return tr.Target == targets[2] && tr.ToState == "HEALTH_STATE_DELETED"
	})
	t.Logf("%s DELETED %v after the partition healed (%q)", targets[2], time.Since(healed).Round(100*time.Millisecond), ev.Transition.Cause)
	t.Logf("kubemedicd: %s", d.awaitLogFrom(t, mark, 10*time.Second, goneRe))
	d.expectTransitions(t, targets[0], healthy)
	d.expectTransitions(t, targets[1], healthy)
	d.expectTransitions(t, targets[2], healthy, "HEALTH_STATE_DELETED")
}

// The ServiceAccount may read everything kubemedic watches but Leases:
// kubemedicd says so, naming the kind, and judges the rest.
func TestKubemedicForbiddenKind(t *testing.T) {
	adm := admin(t)
	var rules []rbacv1.PolicyRule
	for _, r := range kubemedicReadRules {
		if r.APIGroups[0] != "coordination.k8s.io" {
			rules = append(rules, r)
		}
	}
	kc := serviceAccount(t, adm, "kubemedic-noleases", rules)
	ns := namespace(t, adm)
	replicaSet(t, adm, ns, "web", 1, nil)
	pod := runningPods(t, adm, ns, "web", 1)[0]

	d := startDaemonWith(t, kc, defaultConfig)
	ch := d.watchHealth(t)
	line := d.awaitLog(t, 30*time.Second, regexp.MustCompile(`resource=leases.*Forbidden`))
	if !strings.Contains(line, "forbidden") || !strings.Contains(line, "kubemedic-noleases") {
		t.Errorf("the log line does not say who is forbidden what: %s", line)
	}
	t.Logf("kubemedicd: %s", line)
	awaitAll(t, ch, 60*time.Second, healthy, append(nodeTargets(), "pod/"+ns+"/"+pod.Name))
}

// The kubeconfig's user reads its token from a file. First it holds a wrong
// token: every request is 401 and kubemedicd says so. Then a valid one is
// written, as a token rotation does: kubemedicd reads it again (after a 401,
// or a minute) and judges the nodes.
func TestKubemedicTokenFileRotation(t *testing.T) {
	adm := admin(t)
	tokenFile := filepath.Join(t.TempDir(), "token")
	writeFileAtomic(t, tokenFile, []byte("not-a-valid-token"))
	d := startDaemonWith(t, kubeconfigFile(t, "", &clientcmdapi.AuthInfo{TokenFile: tokenFile}), defaultConfig)
	ch := d.watchHealth(t)
	t.Logf("kubemedicd: %s", d.awaitLog(t, 30*time.Second, regexp.MustCompile(`watching a resource fails.*HTTP 401`)))
	// Nothing was judged with the wrong token: no node among the stored
	// transitions (up to the replay's end) nor the live ones so far.
	noNode := func(ev event) {
		if ev.Transition != nil && strings.HasPrefix(ev.Transition.Target, "node//") {
			t.Fatalf("a node judged without a valid token: %+v", ev.Transition)
		}
	}
	for replayed := false; !replayed; {
		select {
		case ev := <-ch:
			noNode(ev)
			replayed = ev.ReplayEnd
		case <-time.After(30 * time.Second):
			t.Fatal("kubemedic watch: no end of the replay within 30 s")
		}
	}
	for drained := false; !drained; {
		select {
		case ev := <-ch:
			noNode(ev)
		default:
			drained = true
		}
	}
	rotated := time.Now()
	writeFileAtomic(t, tokenFile, []byte(token(t, adm, "kubemedic", "kubemedic")))
	awaitAll(t, ch, 150*time.Second, healthy, nodeTargets())
	t.Logf("nodes HEALTHY %v after the token was rotated", time.Since(rotated).Round(100*time.Millisecond))
}

// The API server is stopped and started again with the same flags under
// kubemedicd's watches: they resume (by watching on or by listing again),
// a node going not ready afterwards is seen, and no target gets a
// transition for nothing.
func TestKubemedicAPIServerRestart(t *testing.T) {
	restart := env["KM_E2E_RESTART_APISERVER"]
	if restart == "" {
		t.Fatal("KM_E2E_RESTART_APISERVER is not set: tests/e2e/cluster/up writes it")
	}
	adm := admin(t)
	ns := namespace(t, adm)
	replicaSet(t, adm, ns, "web", 1, nil)
	pod := runningPods(t, adm, ns, "web", 1)[0]
	podTarget := "pod/" + ns + "/" + pod.Name
	d := startDaemon(t)
	ch := d.watchHealth(t)
	awaitAll(t, ch, 60*time.Second, healthy, append(nodeTargets(), podTarget))

	mark := d.logLen()
	start := time.Now()
	var out bytes.Buffer
	cmd := exec.Command(restart)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s: %v: %s", restart, err, out.String())
	}
	t.Logf("API server restarted and ready in %v", time.Since(start).Round(100*time.Millisecond))
	// kubemedicd saw its watches end.
	d.awaitLogFrom(t, mark, 30*time.Second, regexp.MustCompile(`watching a resource fails.*resource=(nodes|pods|leases)`))

	node := lastNode()
	target := "node//" + node
	kubesim(t, "scenario", "node-notready", node)
	t.Cleanup(func() { kubesim(t, "recover", "node-notready", node) })
	ev := await(t, ch, 90*time.Second, target+" UNHEALTHY", func(tr *transition) bool {
		return tr.Target == target && tr.ToState == unhealthy
	})
	t.Logf("%s UNHEALTHY %v after the restart began (%q)", target, time.Since(start).Round(100*time.Millisecond), ev.Transition.Cause)
	kubesim(t, "recover", "node-notready", node)
	await(t, ch, 90*time.Second, target+" HEALTHY again", func(tr *transition) bool {
		return tr.Target == target && tr.ToState == healthy
	})
	if m := goneRe.FindString(d.logText()[mark:]); m != "" {
		t.Logf("kubemedicd listed pods again: %s", m)
	}
	for _, n := range nodeTargets() {
		if n == target {
			d.expectTransitions(t, n, healthy, unhealthy, healthy)
		} else {
			d.expectTransitions(t, n, healthy)
		}
	}
	d.expectTransitions(t, podTarget, healthy)
}

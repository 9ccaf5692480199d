package suite

// kubemedicd itself against the real control plane (issue 10): started with
// the kubemedic ServiceAccount's kubeconfig, it lists and watches the
// cluster and judges nodes, pods and the API server; each test follows its
// transitions as they happen through `kubemedic watch` (events, not polls)
// while kubesim breaks and heals things.

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	authv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	yamlutil "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/clientcmd"
)

type daemon struct {
	addr string
	cmd  *exec.Cmd
	db   string        // its database
	done chan struct{} // closed when its log has ended
	// killed: stopped by kill, not by the test's end.
	killed bool

	mu     sync.Mutex
	log    strings.Builder
	logged chan struct{} // closed (and replaced) on every new line
}

// logText is kubemedicd's log so far.
func (d *daemon) logText() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.log.String()
}

// logLen is how much kubemedicd has logged so far, for awaitLogFrom.
func (d *daemon) logLen() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.log.Len()
}

// awaitLog waits until a line of kubemedicd's log matches re, and returns it.
func (d *daemon) awaitLog(t *testing.T, timeout time.Duration, re *regexp.Regexp) string {
	t.Helper()
	return d.awaitLogFrom(t, 0, timeout, re)
}

// awaitLogFrom is awaitLog for the lines logged after the first from bytes.
func (d *daemon) awaitLogFrom(t *testing.T, from int, timeout time.Duration, re *regexp.Regexp) string {
	t.Helper()
	deadline := time.After(timeout)
	for {
		d.mu.Lock()
		text, next := d.log.String()[from:], d.logged
		d.mu.Unlock()
		for _, line := range strings.Split(text, "\n") {
			if re.MatchString(line) {
				return line
			}
		}
		select {
		case <-next:
		case <-deadline:
			t.Fatalf("kubemedicd's log has no line matching %q within %v", re, timeout)
		}
	}
}

func binary(t *testing.T, key string) string {
	t.Helper()
	p := os.Getenv(key)
	if p == "" {
		t.Fatalf("%s is not set: tests/e2e/run sets it to the build's binary", key)
	}
	return p
}

var listenRe = regexp.MustCompile(`msg="kubemedicd started".* listen=([^ ]+)`)

// startDaemon runs kubemedicd on loopback with a database of its own,
// watching the cluster as the kubemedic ServiceAccount, and stops it (SIGTERM,
// exit 0 expected) when the test ends.
func startDaemon(t *testing.T) *daemon {
	t.Helper()
	return startDaemonWith(t, env["KM_E2E_KUBECONFIG"], defaultConfig)
}

// What most tests run kubemedicd with: the local user may read.
const defaultConfig = "auth: {localRole: viewer}\n"

// startDaemonWith runs kubemedicd with that kubeconfig and config text; with
// kubeconfig "", the config's clusters: say what it watches.
func startDaemonWith(t *testing.T, kubeconfig, config string) *daemon {
	t.Helper()
	return startDaemonIn(t, t.TempDir(), kubeconfig, config)
}

// startDaemonIn is startDaemonWith with its config and database in dir: a
// daemon started again in the same dir takes up the database another left.
func startDaemonIn(t *testing.T, dir, kubeconfig, config string) *daemon {
	t.Helper()
	cfg := filepath.Join(dir, "km.yaml")
	if err := os.WriteFile(cfg, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	args := []string{"--config", cfg, "--listen", "127.0.0.1:0", "--db", filepath.Join(dir, "km.db")}
	if kubeconfig != "" {
		args = append(args, "--kubeconfig", kubeconfig)
	}
	cmd := exec.Command(binary(t, "KM_KUBEMEDICD"), args...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	d := &daemon{cmd: cmd, db: filepath.Join(dir, "km.db"), done: done, logged: make(chan struct{})}
	started := make(chan string, 1)
	go func() {
		defer close(done)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			d.mu.Lock()
			d.log.WriteString(line + "\n")
			close(d.logged)
			d.logged = make(chan struct{})
			d.mu.Unlock()
			if m := listenRe.FindStringSubmatch(line); m != nil {
				started <- m[1]
			}
		}
	}()
	t.Cleanup(func() {
		if d.killed {
			if t.Failed() {
				t.Logf("kubemedicd's log (killed):\n%s", d.logText())
			}
			return
		}
		cmd.Process.Signal(syscall.SIGTERM)
		<-done
		err := cmd.Wait()
		if t.Failed() || err != nil {
			t.Logf("kubemedicd's log:\n%s", d.logText())
		}
		if err != nil {
			t.Errorf("kubemedicd did not stop cleanly: %v", err)
		}
	})
	select {
	case d.addr = <-started:
	case <-time.After(30 * time.Second):
		t.Fatalf("kubemedicd did not start:\n%s", d.logText())
	}
	return d
}

// kill stops kubemedicd with SIGKILL, as a crash would: nothing it holds
// is written or cleaned up.
func (d *daemon) kill(t *testing.T) {
	t.Helper()
	if err := d.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-d.done
	d.cmd.Wait() // "signal: killed"
	d.killed = true
}

type transition struct {
	Target    string    `json:"target"`
	Time      time.Time `json:"time"`
	FromState string    `json:"fromState"`
	ToState   string    `json:"toState"`
	Cause     string    `json:"cause"`
}

type event struct {
	ReplayEnd  bool        `json:"replayEnd"`
	Transition *transition `json:"transition"`
	Target     *struct {
		Name  string `json:"name"`
		UID   string `json:"uid"`
		Owner string `json:"owner"`
		Node  string `json:"node"`
	} `json:"target"`
}

// watchHealth follows `kubemedic watch ARGS... --from-oldest`: every
// transition stored, then the live ones, on the returned channel.
func (d *daemon) watchHealth(t *testing.T, args ...string) <-chan event {
	t.Helper()
	args = append([]string{"-s", d.addr, "-o", "json", "watch", "--from-oldest"}, args...)
	cmd := exec.Command(binary(t, "KM_KUBEMEDIC"), args...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	ch := make(chan event, 1024)
	go func() {
		defer close(ch)
		dec := json.NewDecoder(out)
		for {
			var ev event
			if err := dec.Decode(&ev); err != nil {
				// EOF, or the pipe closed by the test's cleanup.
				if err != io.EOF && !errors.Is(err, os.ErrClosed) {
					t.Logf("watch: %v", err)
				}
				return
			}
			ch <- ev
		}
	}()
	return ch
}

// targets lists the names `kubemedic targets ARGS...` shows.
func (d *daemon) targets(t *testing.T, args ...string) []string {
	t.Helper()
	args = append([]string{"-s", d.addr, "-o", "json", "targets"}, args...)
	out, err := exec.Command(binary(t, "KM_KUBEMEDIC"), args...).Output()
	if err != nil {
		t.Fatalf("kubemedic %v: %v", args, err)
	}
	var list []struct {
		Name string `json:"name"`
	}
	if err := json.Unmarshal(out, &list); err != nil {
		t.Fatalf("kubemedic %v: %v: %s", args, err, out)
	}
	var names []string
	for _, x := range list {
		names = append(names, x.Name)
	}
	return names
}

// await reads transitions until one satisfies ok, or fails the test after
// timeout; it returns that transition.
func await(t *testing.T, ch <-chan event, timeout time.Duration, what string, ok func(*transition) bool) *event {
	t.Helper()
	deadline := time.After(timeout)
	var seen []string
	for {
		select {
		case ev, open := <-ch:
			if !open {
				t.Fatalf("%s: the watch ended (seen: %v)", what, seen)
			}
			if ev.Transition == nil {
				continue
			}
			seen = append(seen, fmt.Sprintf("%s %s->%s (%s)", ev.Transition.Target,
				ev.Transition.FromState, ev.Transition.ToState, ev.Transition.Cause))
			if ok(ev.Transition) {
				return &ev
			}
		case <-deadline:
			t.Fatalf("%s: not seen within %v (seen: %v)", what, timeout, seen)
		}
	}
}

const (
	healthy   = "HEALTH_STATE_HEALTHY"
	unhealthy = "HEALTH_STATE_UNHEALTHY"
)

func TestKubemedicJudgesNodesAndTheAPIServer(t *testing.T) {
	d := startDaemon(t)
	ch := d.watchHealth(t)
	var n int
	fmt.Sscan(env["KM_E2E_NODES"], &n)
	want := map[string]bool{"controlplane//apiserver": true}
	for i := 0; i < n; i++ {
		want[fmt.Sprintf("node//%s%d", env["KM_E2E_NODE_PREFIX"], i)] = true
	}
	for len(want) > 0 {
		ev := await(t, ch, 60*time.Second, fmt.Sprintf("HEALTHY for %v", want), func(tr *transition) bool {
			return want[tr.Target] && tr.ToState == healthy
		})
		delete(want, ev.Transition.Target)
		if strings.HasPrefix(ev.Transition.Target, "node//") && ev.Transition.Cause != "node is ready" {
			t.Errorf("%s: cause %q", ev.Transition.Target, ev.Transition.Cause)
		}
	}
	// The initial sync of each resource is logged with what it brought:
	// a v1.37 API server streams every list as a watch's initial events.
	d.awaitLog(t, 30*time.Second, regexp.MustCompile(fmt.Sprintf(
		`msg="kube: listed" cluster=\(default\) resource=nodes objects=%d pages=0 how=stream ms=\d+`, n)))
	d.awaitLog(t, 30*time.Second, regexp.MustCompile(
		`msg="kube: listed" cluster=\(default\) resource=pods objects=\d+ pages=0 how=stream ms=\d+ encoding=protobuf`))
}

func TestKubemedicNodeNotReady(t *testing.T) {
	d := startDaemon(t)
	node := lastNode()
	target := "node//" + node
	ch := d.watchHealth(t, target)
	await(t, ch, 60*time.Second, target+" HEALTHY", func(tr *transition) bool { return tr.ToState == healthy })
	kubesim(t, "scenario", "node-notready", node)
	t.Cleanup(func() { kubesim(t, "recover", "node-notready", node) })
	ev := await(t, ch, 90*time.Second, target+" UNHEALTHY", func(tr *transition) bool { return tr.ToState == unhealthy })
	if !strings.HasPrefix(ev.Transition.Cause, "node is not ready") {
		t.Errorf("cause %q, want it to say the node is not ready", ev.Transition.Cause)
	}
	kubesim(t, "recover", "node-notready", node)
	await(t, ch, 90*time.Second, target+" HEALTHY again", func(tr *transition) bool { return tr.ToState == healthy })
}

// The node's kubelet goes silent: kubemedic sees the Lease grow old and
// says so; the node lifecycle controller sets Ready=Unknown after its own
// grace. Both times are logged (bench/RESULTS.md keeps them).
func TestKubemedicHeartbeatStop(t *testing.T) {
	d := startDaemon(t)
	adm := admin(t)
	node := lastNode()
	target := "node//" + node
	ch := d.watchHealth(t, target)
	await(t, ch, 60*time.Second, target+" HEALTHY", func(tr *transition) bool { return tr.ToState == healthy })

	w, err := adm.CoreV1().Nodes().Watch(ctx(t), metav1.ListOptions{FieldSelector: "metadata.name=" + node})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	unknown := make(chan time.Time, 1)
	go func() {
		for ev := range w.ResultChan() {
			if n, ok := ev.Object.(*corev1.Node); ok && ev.Type == watch.Modified &&
				nodeCondition(n, corev1.NodeReady) == corev1.ConditionUnknown {
				unknown <- time.Now()
				return
			}
		}
	}()

	start := time.Now()
	kubesim(t, "scenario", "node-heartbeat-stop", node)
	t.Cleanup(func() { kubesim(t, "recover", "node-heartbeat-stop", node) })
	grace, _ := time.ParseDuration(env["KM_E2E_NODE_MONITOR_GRACE_PERIOD"])
	ev := await(t, ch, grace+60*time.Second, target+" UNHEALTHY", func(tr *transition) bool { return tr.ToState == unhealthy })
	kmAfter := time.Since(start)
	if !strings.Contains(ev.Transition.Cause, "node lease not renewed") &&
		!strings.Contains(ev.Transition.Cause, "unreachable") {
		t.Errorf("cause %q, want the silent Lease or an unreachable node", ev.Transition.Cause)
	}
	select {
	case at := <-unknown:
		t.Logf("heartbeat stop -> kubemedic UNHEALTHY: %v (%q); -> node lifecycle controller Ready=Unknown: %v",
			kmAfter.Round(100*time.Millisecond), ev.Transition.Cause, at.Sub(start).Round(100*time.Millisecond))
	case <-time.After(grace + 60*time.Second):
		t.Errorf("the node lifecycle controller never set Ready=Unknown")
	}
	kubesim(t, "recover", "node-heartbeat-stop", node)
	await(t, ch, 90*time.Second, target+" HEALTHY again", func(tr *transition) bool { return tr.ToState == healthy })
}

func TestKubemedicPodCrashLoopAndDeletion(t *testing.T) {
	d := startDaemon(t)
	adm := admin(t)
	ns := namespace(t, adm)
	replicaSet(t, adm, ns, "crashy", 1, nil)
	pod := runningPods(t, adm, ns, "crashy", 1)[0]
	target := "pod/" + ns + "/" + pod.Name
	ch := d.watchHealth(t, target)
	ev := await(t, ch, 60*time.Second, target+" HEALTHY", func(tr *transition) bool { return tr.ToState == healthy })
	if ev.Target == nil || ev.Target.Owner != "replicaset/"+ns+"/crashy" || ev.Target.UID != string(pod.UID) || ev.Target.Node != pod.Spec.NodeName {
		t.Errorf("target identity %+v, want owner replicaset/%s/crashy, uid %s, node %s", ev.Target, ns, pod.UID, pod.Spec.NodeName)
	}
	// Listed by its identity: its owner, its node and namespace.
	for _, args := range [][]string{
		{"--owner", "replicaset/" + ns + "/crashy"},
		{"--namespace", ns, "--node", pod.Spec.NodeName, "--kind", "pod"},
		{"--uid", string(pod.UID)},
	} {
		if got := d.targets(t, args...); len(got) != 1 || got[0] != target {
			t.Errorf("targets %v: %v, want [%s]", args, got, target)
		}
	}
	if got := d.targets(t, "--owner", "replicaset/"+ns+"/other"); len(got) != 0 {
		t.Errorf("targets of another owner: %v", got)
	}
	kubesim(t, "scenario", "pod-crashloop", ns+"/"+pod.Name)
	ev = await(t, ch, 90*time.Second, target+" UNHEALTHY", func(tr *transition) bool { return tr.ToState == unhealthy })
	if !strings.Contains(ev.Transition.Cause, "CrashLoopBackOff") {
		t.Errorf("cause %q, want CrashLoopBackOff", ev.Transition.Cause)
	}
	kubesim(t, "recover", "pod-crashloop", ns+"/"+pod.Name)
	await(t, ch, 90*time.Second, target+" HEALTHY again", func(tr *transition) bool { return tr.ToState == healthy })
	// Deleted: the target goes (its history stays).
	if err := adm.CoreV1().Pods(ns).Delete(ctx(t), pod.Name, metav1.DeleteOptions{GracePeriodSeconds: new(int64)}); err != nil {
		t.Fatal(err)
	}
	ev = await(t, ch, 60*time.Second, target+" deleted", func(tr *transition) bool { return tr.ToState == "HEALTH_STATE_DELETED" })
	if ev.Transition.Cause != "pod deleted" {
		t.Errorf("deletion cause %q", ev.Transition.Cause)
	}
}

// deploy/kubemedic.yaml as the real API server takes it: every object
// created with a server-side dry run (validated, defaulted and admitted,
// nothing kept), and every kind the manifest must have is there.
func TestDeployManifestsApply(t *testing.T) {
	path := filepath.Join("..", "..", "..", "..", "deploy", "kubemedic.yaml")
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cfg, err := clientcmd.BuildConfigFromFlags("", env["KM_E2E_ADMIN_KUBECONFIG"])
	if err != nil {
		t.Fatal(err)
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	groups, err := restmapper.GetAPIGroupResources(dc)
	if err != nil {
		t.Fatal(err)
	}
	mapper := restmapper.NewDiscoveryRESTMapper(groups)
	dec := yamlutil.NewYAMLOrJSONDecoder(f, 4096)
	kinds := map[string]bool{}
	for {
		var u unstructured.Unstructured
		if err := dec.Decode(&u.Object); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		if len(u.Object) == 0 {
			continue
		}
		gvk := u.GroupVersionKind()
		m, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		if err != nil {
			t.Fatalf("%s: %v", gvk, err)
		}
		var ri dynamic.ResourceInterface = dyn.Resource(m.Resource)
		if m.Scope.Name() == meta.RESTScopeNameNamespace {
			ns := u.GetNamespace()
			if ns == "" {
				t.Fatalf("%s %s has no namespace", gvk.Kind, u.GetName())
			}
			ri = dyn.Resource(m.Resource).Namespace(ns)
		}
		_, err = ri.Create(ctx(t), &u, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		// The harness made the kubemedic namespace and ServiceAccount
		// already: a dry run finds them after validation and admission
		// have passed, which is no fault of the manifest.
		if err != nil && !apierrors.IsAlreadyExists(err) {
			t.Errorf("%s %s: %v", gvk.Kind, u.GetName(), err)
		}
		kinds[gvk.Kind] = true
	}
	for _, k := range []string{"Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "ConfigMap", "Deployment", "Service"} {
		if !kinds[k] {
			t.Errorf("deploy/kubemedic.yaml has no %s", k)
		}
	}
}

// A ServiceAccount's token as a kubemedic credential (auth.kubernetesTokens):
// reviewed by the API server, bound to a role by its user name; a token the
// cluster does not know is refused.
func TestKubemedicServiceAccountTokens(t *testing.T) {
	adm := admin(t)
	ns := namespace(t, adm)
	if _, err := adm.CoreV1().ServiceAccounts(ns).Create(ctx(t), &corev1.ServiceAccount{
		ObjectMeta: metav1.ObjectMeta{Name: "bot"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	tr, err := adm.CoreV1().ServiceAccounts(ns).CreateToken(ctx(t), "bot",
		&authv1.TokenRequest{Spec: authv1.TokenRequestSpec{}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	good := filepath.Join(dir, "good")
	bad := filepath.Join(dir, "bad")
	os.WriteFile(good, []byte(tr.Status.Token+"\n"), 0o600)
	os.WriteFile(bad, []byte("not-a-token-of-this-cluster\n"), 0o600)
	// The admin identity may create tokenreviews; the harness's kubemedic
	// ServiceAccount may not (deploy/kubemedic.yaml's may).
	d := startDaemonWith(t, env["KM_E2E_ADMIN_KUBECONFIG"], fmt.Sprintf(
		"auth:\n  localRole: viewer\n  kubernetesTokens: true\n"+
			"  bindings: [{role: operator, users: [\"system:serviceaccount:%s:bot\"]}]\n", ns))
	cli := func(token string, args ...string) (string, error) {
		args = append([]string{"-s", d.addr, "--token-file", token}, args...)
		out, err := exec.Command(binary(t, "KM_KUBEMEDIC"), args...).CombinedOutput()
		return string(out), err
	}
	// An operator may create a TCP probe.
	if out, err := cli(good, "probes", "create", "sa-made", "--tcp", "127.0.0.1:9"); err != nil {
		t.Fatalf("the ServiceAccount's token: %v: %s", err, out)
	}
	// And is not an admin.
	if out, err := cli(good, "probes", "create", "sa-exec", "--exec", "--", "true"); err == nil ||
		!strings.Contains(out, `Kubernetes user "system:serviceaccount:`+ns+`:bot"`) {
		t.Errorf("an exec probe as the ServiceAccount: %v: %s", err, out)
	}
	if out, err := cli(bad, "probes", "list"); err == nil || !strings.Contains(out, "UNAUTHENTICATED") ||
		!strings.Contains(out, "not valid in the cluster") {
		t.Errorf("an unknown token: %v: %s", err, out)
	}
}

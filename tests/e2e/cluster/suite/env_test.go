// Package suite is the e2e suite run by tests/e2e/run against the control
// plane that tests/e2e/cluster/up started; it finds it through $KM_E2E_ENV.
package suite

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

var env map[string]string

func TestMain(m *testing.M) {
	path := os.Getenv("KM_E2E_ENV")
	if path == "" {
		fmt.Fprintln(os.Stderr, "KM_E2E_ENV is not set: run tests/e2e/run, or tests/e2e/cluster/up first")
		os.Exit(1)
	}
	var err error
	if env, err = readEnv(path); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(m.Run())
}

func readEnv(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	m := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok {
			m[k] = v
		}
	}
	return m, sc.Err()
}

func client(t *testing.T, kubeconfigKey string) kubernetes.Interface {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", env[kubeconfigKey])
	if err != nil {
		t.Fatal(err)
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

func admin(t *testing.T) kubernetes.Interface     { return client(t, "KM_E2E_ADMIN_KUBECONFIG") }
func kubemedic(t *testing.T) kubernetes.Interface { return client(t, "KM_E2E_KUBECONFIG") }

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	return c
}

// waitFor polls cond against the real API server until it holds or timeout;
// the last observation is reported on failure.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() (bool, string, error)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	last := ""
	for {
		ok, seen, err := cond()
		if err != nil {
			seen = "error: " + err.Error()
		}
		if ok {
			return
		}
		last = seen
		if time.Now().After(deadline) {
			t.Fatalf("%s: not so after %v (last seen: %s)", what, timeout, last)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// namespace makes a fresh namespace (deleted at the end of the test) and waits
// for its default ServiceAccount, without which pods are refused.
func namespace(t *testing.T, cs kubernetes.Interface) string {
	t.Helper()
	c := ctx(t)
	name := fmt.Sprintf("e2e-%s-%04x", strings.ToLower(strings.ReplaceAll(t.Name(), "/", "-")), rand.IntN(1<<16))
	if len(name) > 63 {
		name = name[len(name)-63:]
	}
	name = strings.TrimLeft(name, "-")
	_, err := cs.CoreV1().Namespaces().Create(c, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cs.CoreV1().Namespaces().Delete(context.Background(), name, metav1.DeleteOptions{})
	})
	waitFor(t, 30*time.Second, "default ServiceAccount in "+name, func() (bool, string, error) {
		_, err := cs.CoreV1().ServiceAccounts(name).Get(c, "default", metav1.GetOptions{})
		return err == nil, "missing", nil
	})
	return name
}

// kubesim runs the simulator's CLI, as a person or a C test would.
func kubesim(t *testing.T, args ...string) {
	t.Helper()
	cmd := exec.Command(env["KM_E2E_KUBESIM_BIN"], args...)
	cmd.Env = append(os.Environ(), "KUBESIM_ADDR="+env["KM_E2E_KUBESIM"])
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("kubesim %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func nodeCondition(n *corev1.Node, typ corev1.NodeConditionType) corev1.ConditionStatus {
	for _, c := range n.Status.Conditions {
		if c.Type == typ {
			return c.Status
		}
	}
	return ""
}

package suite

// A policy on a pod's mirrored liveness probe (issue 11, item 10): the
// kubelet's answer to a failing liveness probe, from outside the node. A
// Deployment's pods are annotated kubemedic.io/probe: "true"; kubesim gives
// each a loopback address of its own, and the test serves every one of
// them on one port, deciding per address what it answers. One pod's
// endpoint starts answering 500: its liveness probe (1 s, threshold 3)
// goes UNHEALTHY, the policy restarts that pod (its uid the precondition),
// and the recovery is VERIFIED once the replacement's own probe is healthy.
// The policy's label selector matches the pods' labels.

import (
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
)

// podServer answers /healthz for every pod address on one port: 200, or
// 500 for the addresses failed.
type podServer struct {
	port   int
	mu     sync.Mutex
	failed map[string]bool
	asked  map[string]int
}

func servePods(t *testing.T) *podServer {
	t.Helper()
	// Every pod has an address of 127.0.0.0/8 (kubesim's loopback pool):
	// one listener on all of them, loopback callers only.
	ln, err := net.Listen("tcp4", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &podServer{port: ln.Addr().(*net.TCPAddr).Port, failed: map[string]bool{}, asked: map[string]int{}}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		local, _ := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
		remote, _, _ := net.SplitHostPort(r.RemoteAddr)
		if ip := net.ParseIP(remote); local == nil || ip == nil || !ip.IsLoopback() || r.URL.Path != "/healthz" {
			http.Error(w, "no", http.StatusForbidden)
			return
		}
		host, _, _ := net.SplitHostPort(local.String())
		s.mu.Lock()
		s.asked[host]++
		bad := s.failed[host]
		s.mu.Unlock()
		if bad {
			http.Error(w, "injected failure", http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusOK)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return s
}

func (s *podServer) fail(ip string) {
	s.mu.Lock()
	s.failed[ip] = true
	s.mu.Unlock()
}

// probedDeployment: a Deployment whose pods' liveness probe (httpGet
// /healthz, period 1 s, failure threshold 3) kubemedicd mirrors.
func probedDeployment(t *testing.T, cs kubernetes.Interface, ns, name string, replicas int32, port int) {
	t.Helper()
	lbl := map[string]string{"app": name}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: lbl},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: lbl,
					Annotations: map[string]string{"kubemedic.io/probe": "true"}},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name:  "app",
					Image: "registry.example/app:1",
					Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: int32(port)}},
					LivenessProbe: &corev1.Probe{
						ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
							Path: "/healthz", Port: intstr.FromString("http")}},
						PeriodSeconds: 1, TimeoutSeconds: 1, FailureThreshold: 3,
					},
				}}},
			},
		},
	}
	if _, err := cs.AppsV1().Deployments(ns).Create(ctx(t), d, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func TestKubemedicRecoveryPolicyRestartsOnLiveness(t *testing.T) {
	srv := servePods(t)
	adm := admin(t)
	ns := namespace(t, adm)
	probedDeployment(t, adm, ns, "web", 2, srv.port)
	pods := runningPods(t, adm, ns, "web", 2)
	d := startDaemonWith(t, env["KM_E2E_KUBECONFIG"], operatorConfig+
		"recovery:\n  policies:\n    - name: liveness\n"+
		// A mirrored probe has no labels: the selector sees its pod's.
		"      match: {kinds: [probe], namespaces: ["+ns+"], labelSelector: \"app=web\"}\n"+
		"      trigger: {unhealthyFor: 0s}\n"+
		"      action: restart_pod\n")
	ch := d.watchHealth(t)
	victim := pods[0]
	live := func(pod string) string { return "probe/" + ns + "/" + pod + ".app.liveness" }
	for _, p := range pods {
		d.awaitTarget(t, live(p.Name))
	}
	waitFor(t, 30*time.Second, "both liveness probes HEALTHY", func() (bool, string, error) {
		var seen []string
		ok := true
		for _, p := range pods {
			out, _, err := d.cli(t, "status", live(p.Name))
			seen = append(seen, out)
			ok = ok && err == nil && strings.Contains(out, "HEALTHY") && !strings.Contains(out, "UNHEALTHY")
		}
		return ok, strings.Join(seen, " | "), nil
	})

	broke := time.Now()
	srv.fail(victim.Status.PodIP)
	await(t, ch, 30*time.Second, live(victim.Name)+" UNHEALTHY", func(tr *transition) bool {
		return tr.Target == live(victim.Name) && tr.ToState == unhealthy
	})
	unhealthyAt := time.Now()
	target := "pod/" + ns + "/" + victim.Name
	r := d.awaitRecoveryOf(t, target, 30*time.Second)
	if r.Requester != "policy:liveness" || r.Action != "RECOVERY_ACTION_RESTART_POD" ||
		r.TargetUID != string(victim.UID) || !strings.Contains(r.Reason, live(victim.Name)) {
		t.Errorf("the policy's recovery: %+v", r)
	}
	done := d.awaitPhase(t, r.ID, "RECOVERY_PHASE_VERIFIED", 90*time.Second)
	t.Logf("500 injected → probe UNHEALTHY in %v → recovery %s VERIFIED %v later: %q",
		unhealthyAt.Sub(broke).Round(10*time.Millisecond), r.ID,
		time.Since(unhealthyAt).Round(10*time.Millisecond), done.LastError)
	podGone(t, adm, ns, victim, 30*time.Second)
	expectReplaced(t, adm, ns, "web", pods, victim)
	now := runningPods(t, adm, ns, "web", 2)
	var fresh corev1.Pod
	for _, p := range now {
		if p.UID != pods[1].UID {
			fresh = p
		}
	}
	// Verified by the replacement's own probe, not by its pod alone.
	if !strings.Contains(done.LastError, "its probe "+live(fresh.Name)+" is healthy") {
		t.Errorf("verified with %q, want the replacement's probe %s healthy", done.LastError, live(fresh.Name))
	}
	if fresh.Status.PodIP == victim.Status.PodIP {
		t.Errorf("the replacement has the failed pod's address %s", fresh.Status.PodIP)
	}
	// One recovery, of the failed pod only; the other pod's probe was
	// never touched.
	if list := d.recoveriesOf(t); len(list) != 1 {
		t.Errorf("%d recoveries, want 1: %+v", len(list), list)
	}
	d.expectTransitions(t, live(pods[1].Name), healthy)
}

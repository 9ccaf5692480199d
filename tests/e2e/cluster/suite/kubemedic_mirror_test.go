package suite

// Pods' own probes mirrored (issue 10, item 4): a pod annotated
// kubemedic.io/probe: "true" has its containers' httpGet, tcpSocket and grpc
// liveness and readiness probes run by kubemedicd against the pod's address,
// as targets of their own. kubesim gives the pod an address on loopback
// where the test itself serves the probe, so the test decides what it
// answers.

import (
	"fmt"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func TestKubemedicMirrorsPodProbes(t *testing.T) {
	const podIP = "127.1.200.7"
	ln, err := net.Listen("tcp", podIP+":0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	var status atomic.Int32
	var asked atomic.Int64
	status.Store(http.StatusOK)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/ready" || r.Header.Get("X-Probe") != "kubemedic-test" {
			http.Error(w, "unexpected "+r.URL.Path, http.StatusNotFound)
			return
		}
		asked.Add(1)
		w.WriteHeader(int(status.Load()))
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })

	d := startDaemon(t)
	ch := d.watchHealth(t)
	adm := admin(t)
	ns := namespace(t, adm)
	fast := func(h corev1.ProbeHandler) *corev1.Probe {
		return &corev1.Probe{ProbeHandler: h, PeriodSeconds: 1, TimeoutSeconds: 1, FailureThreshold: 2}
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "probed", Annotations: map[string]string{
			"kubemedic.io/probe":          "true",
			"kubesim.kubemedic.io/pod-ip": podIP,
		}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name:  "app",
			Image: "registry.example/app:1",
			Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: int32(port)}},
			// A named port, a path and a header, as the kubelet sends them.
			ReadinessProbe: fast(corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
				Path: "/ready", Port: intstr.FromString("http"),
				HTTPHeaders: []corev1.HTTPHeader{{Name: "X-Probe", Value: "kubemedic-test"}}}}),
			LivenessProbe: fast(corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(int32(port))}}),
		}, {
			Name:  "sidecar",
			Image: "registry.example/sidecar:1",
			// Never mirrored: it runs in the container; and a host that is
			// not the pod's (kubemedicd would probe what the pod names).
			LivenessProbe: fast(corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"true"}}}),
			ReadinessProbe: fast(corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
				Host: "169.254.169.254", Path: "/", Port: intstr.FromInt32(80)}}),
		}}},
	}
	created, err := adm.CoreV1().Pods(ns).Create(ctx(t), pod, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// And a pod that does not ask: nothing of it is mirrored.
	plain := pod.DeepCopy()
	plain.Name = "plain"
	plain.Annotations = nil
	if _, err := adm.CoreV1().Pods(ns).Create(ctx(t), plain, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	base := "probe/" + ns + "/probed.app."
	ready, live := base+"readiness", base+"liveness"
	want := map[string]bool{ready: true, live: true}
	for len(want) > 0 {
		ev := await(t, ch, 60*time.Second, fmt.Sprintf("HEALTHY for %v", want), func(tr *transition) bool {
			return want[tr.Target] && tr.ToState == healthy
		})
		delete(want, ev.Transition.Target)
		if ev.Target == nil || ev.Target.Owner != "pod/"+ns+"/probed" || ev.Target.UID != string(created.UID) {
			t.Errorf("%s: identity %+v, want owner pod/%s/probed and the pod's uid %s", ev.Transition.Target, ev.Target, ns, created.UID)
		}
	}
	if asked.Load() == 0 {
		t.Errorf("the readiness probe is HEALTHY but %s:%d/ready was never asked", podIP, port)
	}
	for _, c := range []string{"liveness", "readiness"} {
		d.awaitLog(t, 10*time.Second, regexp.MustCompile(
			`kube: a pod's probe is not mirrored" pod=pod/`+regexp.QuoteMeta(ns)+`/probed container=sidecar probe=`+c))
	}
	got := d.targets(t, "--kind", "probe", "--namespace", ns)
	if len(got) != 2 {
		t.Errorf("probe targets of %s: %v, want exactly %s and %s", ns, got, ready, live)
	}

	// The pod's endpoint fails: the readiness probe's target goes
	// UNHEALTHY after its failureThreshold (2 at 1 s), and comes back.
	status.Store(http.StatusServiceUnavailable)
	ev := await(t, ch, 30*time.Second, ready+" UNHEALTHY", func(tr *transition) bool {
		return tr.Target == ready && tr.ToState == unhealthy
	})
	if !regexp.MustCompile(strconv.Itoa(http.StatusServiceUnavailable)).MatchString(ev.Transition.Cause) {
		t.Errorf("cause %q, want the status code", ev.Transition.Cause)
	}
	status.Store(http.StatusOK)
	await(t, ch, 30*time.Second, ready+" HEALTHY again", func(tr *transition) bool {
		return tr.Target == ready && tr.ToState == healthy
	})

	// The pod goes: its probes' targets go with it, their history kept.
	if err := adm.CoreV1().Pods(ns).Delete(ctx(t), "probed", metav1.DeleteOptions{GracePeriodSeconds: new(int64)}); err != nil {
		t.Fatal(err)
	}
	gone := map[string]bool{ready: true, live: true}
	for len(gone) > 0 {
		ev := await(t, ch, 60*time.Second, fmt.Sprintf("DELETED for %v", gone), func(tr *transition) bool {
			return gone[tr.Target] && tr.ToState == "HEALTH_STATE_DELETED"
		})
		delete(gone, ev.Transition.Target)
		if ev.Transition.Cause != "pod deleted" {
			t.Errorf("%s: deletion cause %q, want \"pod deleted\"", ev.Transition.Target, ev.Transition.Cause)
		}
	}
	d.expectTransitions(t, ready, healthy, unhealthy, healthy, "HEALTH_STATE_DELETED")
	d.expectTransitions(t, live, healthy, "HEALTH_STATE_DELETED")
}

package main

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestCrashLoopBackoffDoubles(t *testing.T) {
	start := time.Unix(1000, 0)
	c := &crashLoop{start: start, base: 2}
	cases := []struct {
		after   time.Duration
		crashes int32
		backoff time.Duration
	}{
		{0, 1, 10 * time.Second},
		{9 * time.Second, 1, 10 * time.Second},
		{10 * time.Second, 2, 20 * time.Second},
		{30 * time.Second, 3, 40 * time.Second},
		{70 * time.Second, 4, 80 * time.Second},
		{150 * time.Second, 5, 160 * time.Second},
		{310 * time.Second, 6, 5 * time.Minute}, // capped
		{610 * time.Second, 7, 5 * time.Minute},
	}
	for _, tc := range cases {
		n, _, backoff, next := c.crashes(start.Add(tc.after), 10*time.Second)
		if n != tc.crashes || backoff != tc.backoff {
			t.Errorf("after %v: %d crashes, back-off %v; want %d, %v", tc.after, n, backoff, tc.crashes, tc.backoff)
		}
		if !next.After(start.Add(tc.after)) {
			t.Errorf("after %v: next crash %v is not in the future", tc.after, next)
		}
	}
}

func TestStopWait(t *testing.T) {
	asked := time.Unix(1000, 0)
	pod := func(delay string, grace int64) *corev1.Pod {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{
			Annotations:                map[string]string{AnnStopDelay: delay},
			DeletionTimestamp:          &metav1.Time{Time: asked.Add(time.Duration(grace) * time.Second)},
			DeletionGracePeriodSeconds: &grace,
		}}
		if delay == "" {
			p.Annotations = nil
		}
		return p
	}
	cases := []struct {
		delay string
		grace int64
		now   time.Duration // after the deletion was asked for
		want  time.Duration
	}{
		{"", 30, 0, 0},                 // at once
		{"3s", 30, 0, 3 * time.Second}, // stopping
		{"3s", 30, 2500 * time.Millisecond, 500 * time.Millisecond},
		{"3s", 30, 3 * time.Second, 0}, // stopped
		{"3s", 30, 10 * time.Second, 0},
		{"1m", 30, 10 * time.Second, 20 * time.Second}, // the grace period ends it
		{"3s", 0, 0, 0}, // no grace: at once
	}
	for _, tc := range cases {
		got, err := stopWait(pod(tc.delay, tc.grace), asked.Add(tc.now))
		if err != nil || got != tc.want {
			t.Errorf("delay %q, grace %ds, %v after: wait %v (%v); want %v", tc.delay, tc.grace, tc.now, got, err, tc.want)
		}
	}
	if _, err := stopWait(pod("soon", 30), asked); err == nil {
		t.Errorf("a delay that is no duration: no error")
	}
	if got, err := stopWait(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{
		Annotations: map[string]string{AnnStopDelay: "3s"}}}, asked); got != 0 || err != nil {
		t.Errorf("a pod not being deleted: wait %v (%v)", got, err)
	}
}

func TestIPAllocator(t *testing.T) {
	a := newIPAllocator()
	ip1, _ := a.allocate("ns/a", &a.loopback)
	ip2, _ := a.allocate("ns/b", &a.loopback)
	if ip1 != "127.1.0.1" || ip2 != "127.1.0.2" {
		t.Fatalf("got %s %s", ip1, ip2)
	}
	if again, _ := a.allocate("ns/a", &a.loopback); again != ip1 {
		t.Fatalf("same pod, new IP %s", again)
	}
	a.claim("ns/c", "127.1.0.3") // e.g. asked for by annotation
	ip4, _ := a.allocate("ns/d", &a.loopback)
	if ip4 != "127.1.0.4" {
		t.Fatalf("claimed address handed out again: %s", ip4)
	}
	if ep, _ := a.allocate("ns/e", &a.endpoints); !strings.HasPrefix(ep, "198.18.") {
		t.Fatalf("endpoints pool gave %s", ep)
	}
	// Host parts .0 and .255 are skipped.
	a.loopback.next = ip4Addr(127, 1, 0, 255)
	if ip, _ := a.allocate("ns/f", &a.loopback); ip != "127.1.1.1" {
		t.Fatalf("got %s, want 127.1.1.1", ip)
	}
	a.release("ns/a")
	a.loopback.next = ip4Addr(127, 1, 0, 1)
	if ip, _ := a.allocate("ns/g", &a.loopback); ip != ip1 {
		t.Fatalf("released address not reused: %s", ip)
	}
}

func ip4Addr(a, b, c, d byte) uint32 { return ip4(a, b, c, d) }

func TestPinnedNode(t *testing.T) {
	ds := &corev1.Pod{Spec: corev1.PodSpec{Affinity: &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{
		RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{
			MatchFields: []corev1.NodeSelectorRequirement{{Key: "metadata.name", Operator: corev1.NodeSelectorOpIn, Values: []string{"n1"}}},
		}}}}}}}
	if got := pinnedNode(ds); got != "n1" {
		t.Errorf("DaemonSet-style pin: %q", got)
	}
	sel := &corev1.Pod{Spec: corev1.PodSpec{NodeSelector: map[string]string{"kubernetes.io/hostname": "n2"}}}
	if got := pinnedNode(sel); got != "n2" {
		t.Errorf("hostname selector: %q", got)
	}
	if got := pinnedNode(&corev1.Pod{}); got != "" {
		t.Errorf("free pod pinned to %q", got)
	}
}

func TestDesiredStatusIsStable(t *testing.T) {
	s := newSim(config{nodes: 1, nodePrefix: "n", crashBackoff: 10 * time.Second}, nil)
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "p", UID: "u1", Generation: 1},
		Spec: corev1.PodSpec{NodeName: "n0",
			InitContainers: []corev1.Container{{Name: "init", Image: "i:1"}},
			Containers:     []corev1.Container{{Name: "app", Image: "a:1"}}},
	}
	st, _, err := s.desiredStatus(pod)
	if err != nil {
		t.Fatal(err)
	}
	if st.Phase != corev1.PodRunning || !strings.HasPrefix(st.PodIP, "127.1.") ||
		!st.ContainerStatuses[0].Ready || st.ContainerStatuses[0].State.Running == nil {
		t.Fatalf("unexpected status %+v", st)
	}
	// A second pass over the written status must change nothing, or the
	// simulator would write forever.
	pod.Status = *st
	time.Sleep(1100 * time.Millisecond)
	again, _, _ := s.desiredStatus(pod)
	if !equalStatus(&pod.Status, again) {
		t.Fatalf("status changed on a second pass:\n%+v\n%+v", pod.Status, *again)
	}
	// Crash loop: not ready, waiting CrashLoopBackOff, restarts counted.
	s.crash["ns/p"] = &crashLoop{start: time.Now(), base: 0}
	cl, requeue, _ := s.desiredStatus(pod)
	c := cl.ContainerStatuses[0]
	if c.Ready || c.State.Waiting == nil || c.State.Waiting.Reason != "CrashLoopBackOff" || c.RestartCount != 1 || requeue <= 0 {
		t.Fatalf("crash loop status %+v (requeue %v)", c, requeue)
	}
}

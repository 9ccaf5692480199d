package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
)

const (
	// AnnPodIP asks for a given pod IP (IPv4; use 127.0.0.0/8), so that a
	// probe of the pod reaches a test server listening there.
	AnnPodIP = "kubesim.kubemedic.io/pod-ip"
	// AnnCrashLoop makes a pod crash-loop from its start (handy in a
	// ReplicaSet's template); "kubesim recover pod-crashloop" ends it.
	AnnCrashLoop = "kubesim.kubemedic.io/crashloop"
	// AnnIPPool picks where the pod's IP comes from: "loopback" (default,
	// 127.1.0.1 upward: reachable by probes) or "endpoints" (198.18.0.1
	// upward, the RFC 2544 benchmarking range: never reachable, never probe
	// it). The API server refuses loopback addresses in EndpointSlices, so
	// pods behind a Service need the "endpoints" pool for the EndpointSlice
	// controller to publish them.
	AnnIPPool = "kubesim.kubemedic.io/pod-ip-pool"
	// AnnStopDelay is how long the pod's containers take to stop once its
	// deletion is asked for (a Go duration: "3s"), as an application that
	// ignores SIGTERM does: until then the pod stays, its status as it
	// was. Never past the grace period; none (the default): at once.
	AnnStopDelay = "kubesim.kubemedic.io/stop-delay"
)

// syncPod does for one pod what the scheduler and the kubelet would: bind it
// if it waits for a node, finish its deletion, and keep its status what the
// scenarios in force say it is. It returns when to look again (crash loops
// advance with time).
func (s *Sim) syncPod(ctx context.Context, key string) (time.Duration, error) {
	ns, name, _ := strings.Cut(key, "/")
	pod, err := s.podLister.Pods(ns).Get(name)
	if apierrors.IsNotFound(err) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	if pod.Spec.NodeName == "" {
		node, err := s.bind(ctx, pod)
		if err != nil || node == "" {
			return 0, err
		}
		// Go straight on to start it, rather than wait for the binding's
		// watch event to come round the queue again.
		pod = pod.DeepCopy()
		pod.Spec.NodeName = node
	}
	if s.nodes[pod.Spec.NodeName] == nil {
		return 0, nil
	}
	st := s.nodeState(pod.Spec.NodeName)
	if st.heartbeatStopped {
		return 0, nil // the kubelet is gone: nothing on this node moves
	}
	if pod.DeletionTimestamp != nil {
		wait, err := stopWait(pod, time.Now())
		if err != nil || wait > 0 {
			return wait, err // still stopping
		}
		// The kubelet's last word: containers stopped, remove the object.
		err = s.cs.CoreV1().Pods(ns).Delete(ctx, name, metav1.DeleteOptions{
			GracePeriodSeconds: ptr.To(int64(0)),
			Preconditions:      &metav1.Preconditions{UID: &pod.UID},
		})
		if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
			return 0, nil
		}
		return 0, err
	}
	if st.notReady {
		return 0, nil // a NotReady kubelet reports no pod changes
	}
	if pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
		return 0, nil
	}
	status, requeue, err := s.desiredStatus(pod)
	if err != nil {
		return 0, err
	}
	if equalStatus(&pod.Status, status) {
		return requeue, nil
	}
	// A merge patch of the whole status, as the kubelet's status manager
	// sends: no resourceVersion to conflict on, but the uid pins it to this
	// pod and not to a successor of the same name.
	body, err := json.Marshal(map[string]any{
		"metadata": map[string]any{"uid": pod.UID},
		"status":   status,
	})
	if err != nil {
		return 0, err
	}
	_, err = s.cs.CoreV1().Pods(ns).Patch(ctx, name, types.MergePatchType, body, metav1.PatchOptions{}, "status")
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		return 0, nil // gone, or replaced by a namesake: its own events requeue it
	}
	return requeue, err
}

// stopWait is how much longer a pod being deleted takes to stop: its
// AnnStopDelay from when its deletion was asked for (the deletionTimestamp
// less the grace period), but never past the deletionTimestamp.
func stopWait(pod *corev1.Pod, now time.Time) (time.Duration, error) {
	v := pod.Annotations[AnnStopDelay]
	if v == "" || pod.DeletionTimestamp == nil {
		return 0, nil
	}
	delay, err := time.ParseDuration(v)
	if err != nil || delay < 0 {
		return 0, fmt.Errorf("annotation %s=%q: want a duration such as 3s", AnnStopDelay, v)
	}
	end := pod.DeletionTimestamp.Time
	if g := pod.DeletionGracePeriodSeconds; g != nil {
		if at := end.Add(-time.Duration(*g) * time.Second).Add(delay); at.Before(end) {
			end = at
		}
	}
	return max(end.Sub(now), 0), nil
}

func equalStatus(a, b *corev1.PodStatus) bool { return apiequality.Semantic.DeepEqual(a, b) }

// bind plays the scheduler: round-robin over our usable nodes (Ready, not
// cordoned), honouring a
// pin to one node (nodeName-style affinity as DaemonSets use, or a hostname
// nodeSelector). Pods for another scheduler are left alone.
// It returns the node, or "" when the pod is not ours to bind.
func (s *Sim) bind(ctx context.Context, pod *corev1.Pod) (string, error) {
	if pod.DeletionTimestamp != nil {
		return "", nil
	}
	if sn := pod.Spec.SchedulerName; sn != "" && sn != corev1.DefaultSchedulerName && sn != "kubesim" {
		return "", nil
	}
	node := pinnedNode(pod)
	if node != "" {
		if s.nodes[node] == nil {
			return "", nil
		}
	} else {
		for range len(s.nodeNames) {
			cand := s.nodeNames[s.rr.Add(1)%uint64(len(s.nodeNames))]
			if n, err := s.nodeLister.Get(cand); err == nil && n.Spec.Unschedulable {
				continue // cordoned
			}
			if st := s.nodeState(cand); !st.notReady && !st.heartbeatStopped {
				node = cand
				break
			}
		}
		if node == "" {
			return "", fmt.Errorf("no ready node to bind to")
		}
	}
	err := s.cs.CoreV1().Pods(pod.Namespace).Bind(ctx, &corev1.Binding{
		ObjectMeta: metav1.ObjectMeta{Name: pod.Name, Namespace: pod.Namespace, UID: pod.UID},
		Target:     corev1.ObjectReference{Kind: "Node", Name: node},
	}, metav1.CreateOptions{})
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		return "", nil // gone, or bound meanwhile
	}
	if err != nil {
		return "", err
	}
	return node, nil
}

func pinnedNode(pod *corev1.Pod) string {
	if h := pod.Spec.NodeSelector["kubernetes.io/hostname"]; h != "" {
		return h
	}
	a := pod.Spec.Affinity
	if a == nil || a.NodeAffinity == nil || a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution == nil {
		return ""
	}
	for _, term := range a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms {
		for _, r := range append(term.MatchFields, term.MatchExpressions...) {
			if (r.Key == "metadata.name" || r.Key == "kubernetes.io/hostname") &&
				r.Operator == corev1.NodeSelectorOpIn && len(r.Values) == 1 {
				return r.Values[0]
			}
		}
	}
	return ""
}

// crashLoop is one pod's crash loop: the first crash at start, then restarts
// after the kubelet's doubling back-off (base, 2×base, … capped at 5 min).
type crashLoop struct {
	start time.Time
	base  int32 // restartCount before the loop began
}

const maxBackoff = 5 * time.Minute

// crashes returns how many crashes happened by now, when the last one was,
// the back-off now in force, and when the next crash is due.
func (c *crashLoop) crashes(now time.Time, base time.Duration) (n int32, last time.Time, backoff time.Duration, next time.Time) {
	t := c.start
	backoff = base
	for n = 1; ; n++ {
		nt := t.Add(backoff)
		if nt.After(now) {
			return n, t, backoff, nt
		}
		t = nt
		backoff = min(2*backoff, maxBackoff)
	}
}

func (s *Sim) desiredStatus(pod *corev1.Pod) (*corev1.PodStatus, time.Duration, error) {
	key := podKey(pod)
	now := metav1.Now().Rfc3339Copy()
	old := &pod.Status

	ip, err := s.podIP(pod)
	if err != nil {
		return nil, 0, err
	}
	s.mu.Lock()
	loop := s.crash[key]
	if loop == nil && pod.Annotations[AnnCrashLoop] == "true" && !s.crashDone[key] {
		loop = &crashLoop{start: time.Now(), base: maxRestarts(old)}
		s.crash[key] = loop
	}
	s.mu.Unlock()
	dropped := s.endpointsDropped(pod)

	var requeue time.Duration
	st := &corev1.PodStatus{
		Phase:    corev1.PodRunning,
		HostIP:   s.nodes[pod.Spec.NodeName].ip,
		HostIPs:  []corev1.HostIP{{IP: s.nodes[pod.Spec.NodeName].ip}},
		PodIP:    ip,
		PodIPs:   []corev1.PodIP{{IP: ip}},
		QOSClass: old.QOSClass,
		// The generation of the spec this status answers to (GA since 1.35).
		ObservedGeneration: pod.Generation,
		StartTime: func() *metav1.Time {
			if old.StartTime != nil {
				return old.StartTime
			}
			return &now
		}(),
	}
	for _, c := range pod.Spec.InitContainers {
		prev := findStatus(old.InitContainerStatuses, c.Name)
		cs := corev1.ContainerStatus{Name: c.Name, Image: c.Image, ImageID: imageID(c.Image),
			ContainerID: containerID(pod, c.Name, 0), Ready: true, Started: ptr.To(false),
			State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
				ExitCode: 0, Reason: "Completed", StartedAt: now, FinishedAt: now,
				ContainerID: containerID(pod, c.Name, 0)}}}
		if prev != nil && prev.State.Terminated != nil {
			cs.State.Terminated = prev.State.Terminated
		}
		st.InitContainerStatuses = append(st.InitContainerStatuses, cs)
	}
	var unready []string
	for _, c := range pod.Spec.Containers {
		prev := findStatus(old.ContainerStatuses, c.Name)
		cs := corev1.ContainerStatus{Name: c.Name, Image: c.Image, ImageID: imageID(c.Image)}
		if prev != nil {
			cs.RestartCount = prev.RestartCount
			cs.LastTerminationState = prev.LastTerminationState
		}
		if loop != nil {
			n, last, backoff, next := loop.crashes(time.Now(), s.cfg.crashBackoff)
			cs.RestartCount = loop.base + n
			lastT := metav1.NewTime(last).Rfc3339Copy()
			cs.LastTerminationState = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
				ExitCode: 1, Reason: "Error", StartedAt: lastT, FinishedAt: lastT,
				ContainerID: containerID(pod, c.Name, cs.RestartCount)}}
			cs.State = corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{
				Reason: "CrashLoopBackOff",
				Message: fmt.Sprintf("back-off %s restarting failed container=%s pod=%s_%s(%s)",
					backoff, c.Name, pod.Name, pod.Namespace, pod.UID)}}
			cs.Started = ptr.To(false)
			requeue = time.Until(next) + 100*time.Millisecond
		} else {
			cs.ContainerID = containerID(pod, c.Name, cs.RestartCount)
			started := now
			if prev != nil && prev.State.Running != nil && prev.ContainerID == cs.ContainerID {
				started = prev.State.Running.StartedAt
			}
			cs.State = corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: started}}
			cs.Started = ptr.To(true)
			cs.Ready = !dropped
		}
		if !cs.Ready {
			unready = append(unready, c.Name)
		}
		st.ContainerStatuses = append(st.ContainerStatuses, cs)
	}

	ready := corev1.ConditionTrue
	reason, msg := "", ""
	if len(unready) > 0 {
		ready, reason = corev1.ConditionFalse, "ContainersNotReady"
		msg = fmt.Sprintf("containers with unready status: [%s]", strings.Join(unready, " "))
	}
	cond := func(t corev1.PodConditionType, s corev1.ConditionStatus, reason, msg string) corev1.PodCondition {
		c := corev1.PodCondition{Type: t, Status: s, Reason: reason, Message: msg, LastTransitionTime: now,
			ObservedGeneration: pod.Generation}
		for _, o := range old.Conditions {
			if o.Type == t && o.Status == s {
				c.LastTransitionTime = o.LastTransitionTime
			}
		}
		return c
	}
	st.Conditions = []corev1.PodCondition{
		cond(corev1.PodReadyToStartContainers, corev1.ConditionTrue, "", ""),
		cond(corev1.PodInitialized, corev1.ConditionTrue, "", ""),
		cond(corev1.PodReady, ready, reason, msg),
		cond(corev1.ContainersReady, ready, reason, msg),
		cond(corev1.PodScheduled, corev1.ConditionTrue, "", ""),
	}
	return st, requeue, nil
}

func findStatus(list []corev1.ContainerStatus, name string) *corev1.ContainerStatus {
	for i := range list {
		if list[i].Name == name {
			return &list[i]
		}
	}
	return nil
}

func maxRestarts(st *corev1.PodStatus) int32 {
	var m int32
	for _, c := range st.ContainerStatuses {
		m = max(m, c.RestartCount)
	}
	return m
}

func imageID(image string) string {
	sum := sha256.Sum256([]byte(image))
	repo, _, _ := strings.Cut(image, ":")
	return repo + "@sha256:" + hex.EncodeToString(sum[:])
}

// containerID changes with every restart, as a real runtime's does.
func containerID(pod *corev1.Pod, name string, restart int32) string {
	sum := sha256.Sum256(fmt.Appendf(nil, "%s/%s/%d", pod.UID, name, restart))
	return "kubesim://" + hex.EncodeToString(sum[:])
}

func (s *Sim) endpointsDropped(pod *corev1.Pod) bool {
	s.mu.Lock()
	var drops []string
	for k := range s.svcDrop {
		if ns, _, _ := strings.Cut(k, "/"); ns == pod.Namespace {
			drops = append(drops, k)
		}
	}
	s.mu.Unlock()
	for _, k := range drops {
		_, name, _ := strings.Cut(k, "/")
		svc, err := s.svcLister.Services(pod.Namespace).Get(name)
		if err != nil || len(svc.Spec.Selector) == 0 {
			continue
		}
		if labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(pod.Labels)) {
			return true
		}
	}
	return false
}

// podIP: the address asked for by annotation, else the one already given,
// else the next free one of the pod's pool (loopback by default).
func (s *Sim) podIP(pod *corev1.Pod) (string, error) {
	key := podKey(pod)
	if want := pod.Annotations[AnnPodIP]; want != "" {
		a, err := netip.ParseAddr(want)
		if err != nil || !a.Is4() || a.IsUnspecified() {
			return "", fmt.Errorf("annotation %s=%q: want an IPv4 address", AnnPodIP, want)
		}
		s.ips.claim(key, want)
		return want, nil
	}
	if pod.Status.PodIP != "" {
		s.ips.claim(key, pod.Status.PodIP)
		return pod.Status.PodIP, nil
	}
	switch pool := pod.Annotations[AnnIPPool]; pool {
	case "", "loopback":
		return s.ips.allocate(key, &s.ips.loopback)
	case "endpoints":
		return s.ips.allocate(key, &s.ips.endpoints)
	default:
		return "", fmt.Errorf("annotation %s=%q: want loopback or endpoints", AnnIPPool, pool)
	}
}

type ipAllocator struct {
	mu        sync.Mutex
	byKey     map[string]string
	used      map[string]string // ip -> key
	loopback  ipPool
	endpoints ipPool
}

// ipPool hands out addresses from first up to (not including) end, wrapping.
type ipPool struct{ first, end, next uint32 }

func newIPAllocator() *ipAllocator {
	return &ipAllocator{
		byKey:     map[string]string{},
		used:      map[string]string{},
		loopback:  ipPool{first: ip4(127, 1, 0, 1), end: ip4(128, 0, 0, 0), next: ip4(127, 1, 0, 1)},
		endpoints: ipPool{first: ip4(198, 18, 0, 1), end: ip4(198, 20, 0, 0), next: ip4(198, 18, 0, 1)},
	}
}

func ip4(a, b, c, d byte) uint32 { return uint32(a)<<24 | uint32(b)<<16 | uint32(c)<<8 | uint32(d) }

func (a *ipAllocator) claim(key, ip string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if old, ok := a.byKey[key]; ok && old != ip && a.used[old] == key {
		delete(a.used, old)
	}
	a.byKey[key] = ip
	a.used[ip] = key
}

func (a *ipAllocator) release(key string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if ip, ok := a.byKey[key]; ok {
		if a.used[ip] == key {
			delete(a.used, ip)
		}
		delete(a.byKey, key)
	}
}

func (a *ipAllocator) allocate(key string, p *ipPool) (string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if ip, ok := a.byKey[key]; ok {
		return ip, nil
	}
	for range p.end - p.first {
		n := p.next
		if p.next++; p.next >= p.end {
			p.next = p.first
		}
		if b := byte(n); b == 0 || b == 255 {
			continue
		}
		ip := netip.AddrFrom4([4]byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)}).String()
		if _, taken := a.used[ip]; !taken {
			a.byKey[key] = ip
			a.used[ip] = key
			return ip, nil
		}
	}
	return "", fmt.Errorf("pod IP pool exhausted")
}

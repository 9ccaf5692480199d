package suite

import (
	"fmt"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// Each kubesim scenario, switched on and then recovered, checked by what the
// real control plane reports.

func lastNode() string {
	var n int
	fmt.Sscan(env["KM_E2E_NODES"], &n)
	return fmt.Sprintf("%s%d", env["KM_E2E_NODE_PREFIX"], n-1)
}

func hasTaint(n *corev1.Node, key string) bool {
	for _, t := range n.Spec.Taints {
		if t.Key == key {
			return true
		}
	}
	return false
}

func waitNode(t *testing.T, cs kubernetes.Interface, name, what string, timeout time.Duration, cond func(*corev1.Node) bool) {
	t.Helper()
	waitFor(t, timeout, "node "+name+" "+what, func() (bool, string, error) {
		n, err := cs.CoreV1().Nodes().Get(ctx(t), name, metav1.GetOptions{})
		if err != nil {
			return false, "", err
		}
		var taints []string
		for _, tn := range n.Spec.Taints {
			taints = append(taints, tn.Key+":"+string(tn.Effect))
		}
		return cond(n), fmt.Sprintf("Ready=%s taints=%v", nodeCondition(n, corev1.NodeReady), taints), nil
	})
}

func TestScenarioNodeNotReady(t *testing.T) {
	km := kubemedic(t)
	node := lastNode()
	kubesim(t, "scenario", "node-notready", node)
	t.Cleanup(func() { kubesim(t, "recover", "node-notready", node) })
	waitNode(t, km, node, "Ready=False and tainted not-ready", 90*time.Second, func(n *corev1.Node) bool {
		return nodeCondition(n, corev1.NodeReady) == corev1.ConditionFalse &&
			hasTaint(n, "node.kubernetes.io/not-ready")
	})
	kubesim(t, "recover", "node-notready", node)
	waitNode(t, km, node, "Ready again, taint gone", 90*time.Second, func(n *corev1.Node) bool {
		return nodeCondition(n, corev1.NodeReady) == corev1.ConditionTrue &&
			!hasTaint(n, "node.kubernetes.io/not-ready")
	})
}

func TestScenarioNodeHeartbeatStop(t *testing.T) {
	km := kubemedic(t)
	node := lastNode()
	grace, _ := time.ParseDuration(env["KM_E2E_NODE_MONITOR_GRACE_PERIOD"])
	kubesim(t, "scenario", "node-heartbeat-stop", node)
	t.Cleanup(func() { kubesim(t, "recover", "node-heartbeat-stop", node) })
	// The node lifecycle controller notices the Lease is no longer renewed
	// only after its grace period.
	waitNode(t, km, node, "Ready=Unknown and unreachable", grace+60*time.Second, func(n *corev1.Node) bool {
		return nodeCondition(n, corev1.NodeReady) == corev1.ConditionUnknown &&
			hasTaint(n, "node.kubernetes.io/unreachable")
	})
	kubesim(t, "recover", "node-heartbeat-stop", node)
	waitNode(t, km, node, "Ready again, taint gone", 90*time.Second, func(n *corev1.Node) bool {
		return nodeCondition(n, corev1.NodeReady) == corev1.ConditionTrue &&
			!hasTaint(n, "node.kubernetes.io/unreachable")
	})
}

func TestScenarioPodCrashLoop(t *testing.T) {
	adm := admin(t)
	ns := namespace(t, adm)
	replicaSet(t, adm, ns, "crashy", 1, nil)
	pod := runningPods(t, adm, ns, "crashy", 1)[0]
	target := ns + "/" + pod.Name
	kubesim(t, "scenario", "pod-crashloop", target)
	var restarts int32
	waitFor(t, 60*time.Second, "pod in CrashLoopBackOff", func() (bool, string, error) {
		p, err := adm.CoreV1().Pods(ns).Get(ctx(t), pod.Name, metav1.GetOptions{})
		if err != nil {
			return false, "", err
		}
		cs := p.Status.ContainerStatuses[0]
		w := cs.State.Waiting
		restarts = cs.RestartCount
		seen := fmt.Sprintf("ready=%v restarts=%d waiting=%+v", podReady(p), cs.RestartCount, w)
		return !podReady(p) && w != nil && w.Reason == "CrashLoopBackOff" && cs.RestartCount >= 1 &&
			cs.LastTerminationState.Terminated != nil, seen, nil
	})
	kubesim(t, "recover", "pod-crashloop", target)
	waitFor(t, 60*time.Second, "pod running again", func() (bool, string, error) {
		p, err := adm.CoreV1().Pods(ns).Get(ctx(t), pod.Name, metav1.GetOptions{})
		if err != nil {
			return false, "", err
		}
		cs := p.Status.ContainerStatuses[0]
		return podReady(p) && cs.State.Running != nil && cs.RestartCount >= restarts,
			fmt.Sprintf("ready=%v restarts=%d", podReady(p), cs.RestartCount), nil
	})
}

func TestScenarioServiceEndpointsDrop(t *testing.T) {
	adm, km := admin(t), kubemedic(t)
	ns := namespace(t, adm)
	// EndpointSlices refuse loopback addresses: these pods take theirs from
	// kubesim's "endpoints" pool (198.18.0.0/15, never reachable).
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
	readyEndpoints := func(want int) func() (bool, string, error) {
		return func() (bool, string, error) {
			list, err := km.DiscoveryV1().EndpointSlices(ns).List(ctx(t), metav1.ListOptions{
				LabelSelector: discoveryv1.LabelServiceName + "=api"})
			if err != nil {
				return false, "", err
			}
			ready, total := 0, 0
			for _, s := range list.Items {
				for _, e := range s.Endpoints {
					total++
					if e.Conditions.Ready != nil && *e.Conditions.Ready {
						ready++
					}
				}
			}
			return ready == want && total == 2, fmt.Sprintf("%d of %d endpoints ready", ready, total), nil
		}
	}
	waitFor(t, 60*time.Second, "2 ready endpoints", readyEndpoints(2))
	kubesim(t, "scenario", "service-endpoints-drop", ns+"/api")
	waitFor(t, 60*time.Second, "no ready endpoints", readyEndpoints(0))
	kubesim(t, "recover", "service-endpoints-drop", ns+"/api")
	waitFor(t, 60*time.Second, "2 ready endpoints again", readyEndpoints(2))
}

// Eviction through the real API, as kubemedic's gentlest recovery does.
func TestEvictionAPI(t *testing.T) {
	adm, km := admin(t), kubemedic(t)
	ns := namespace(t, adm)
	replicaSet(t, adm, ns, "evictee", 1, nil)
	pod := runningPods(t, adm, ns, "evictee", 1)[0]
	err := km.PolicyV1().Evictions(ns).Evict(ctx(t), &policyv1.Eviction{
		ObjectMeta: metav1.ObjectMeta{Name: pod.Name, Namespace: ns}})
	if err != nil {
		t.Fatalf("kubemedic evicting a pod: %v", err)
	}
	waitFor(t, 60*time.Second, "evicted pod gone and replaced", func() (bool, string, error) {
		list, err := adm.CoreV1().Pods(ns).List(ctx(t), metav1.ListOptions{})
		if err != nil {
			return false, "", err
		}
		var seen []string
		ok := len(list.Items) == 1
		for _, p := range list.Items {
			seen = append(seen, p.Name)
			ok = ok && p.UID != pod.UID && podReady(&p)
		}
		return ok, strings.Join(seen, " "), nil
	})
}

// A DaemonSet puts one pod on every node: kubesim honours the node pin the
// DaemonSet controller writes into each pod's affinity.
func TestDaemonSetOnEveryNode(t *testing.T) {
	adm := admin(t)
	ns := namespace(t, adm)
	lbl := map[string]string{"app": "agent"}
	ds := &appsv1.DaemonSet{
		ObjectMeta: metav1.ObjectMeta{Name: "agent"},
		Spec: appsv1.DaemonSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: lbl},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: lbl},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "agent", Image: "registry.example/agent:1"}}},
			},
		},
	}
	if _, err := adm.AppsV1().DaemonSets(ns).Create(ctx(t), ds, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var n int32
	fmt.Sscan(env["KM_E2E_NODES"], &n)
	waitFor(t, 60*time.Second, "DaemonSet ready on every node", func() (bool, string, error) {
		d, err := adm.AppsV1().DaemonSets(ns).Get(ctx(t), "agent", metav1.GetOptions{})
		if err != nil {
			return false, "", err
		}
		st := d.Status
		return st.DesiredNumberScheduled == n && st.NumberReady == n,
			fmt.Sprintf("desired=%d ready=%d", st.DesiredNumberScheduled, st.NumberReady), nil
	})
}

package suite

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
)

// The smoke test of issue 4: the kubemedic identity can list nodes, cannot
// delete a namespace (RBAC is real), and a deleted ReplicaSet pod is replaced
// by the real controller manager.

func TestSmokeKubemedicListsNodes(t *testing.T) {
	km := kubemedic(t)
	nodes, err := km.CoreV1().Nodes().List(ctx(t), metav1.ListOptions{})
	if err != nil {
		t.Fatalf("kubemedic cannot list nodes: %v", err)
	}
	want := env["KM_E2E_NODES"]
	if fmt.Sprint(len(nodes.Items)) != want {
		t.Fatalf("listed %d nodes, want %s", len(nodes.Items), want)
	}
	for _, n := range nodes.Items {
		if nodeCondition(&n, corev1.NodeReady) != corev1.ConditionTrue {
			t.Errorf("node %s is not Ready", n.Name)
		}
	}
}

func TestSmokeRBACIsReal(t *testing.T) {
	km := kubemedic(t)
	c := ctx(t)
	err := km.CoreV1().Namespaces().Delete(c, "default", metav1.DeleteOptions{DryRun: []string{metav1.DryRunAll}})
	if !apierrors.IsForbidden(err) {
		t.Fatalf("deleting a namespace as kubemedic: got %v, want Forbidden", err)
	}
	if !strings.Contains(err.Error(), env["KM_E2E_SA"]) {
		t.Errorf("Forbidden does not name the ServiceAccount %s: %v", env["KM_E2E_SA"], err)
	}
	_, err = km.CoreV1().Secrets("kube-system").List(c, metav1.ListOptions{})
	if !apierrors.IsForbidden(err) {
		t.Fatalf("listing secrets as kubemedic: got %v, want Forbidden", err)
	}
	_, err = km.AppsV1().ReplicaSets("default").Patch(c, "x", types.MergePatchType, []byte(`{}`), metav1.PatchOptions{})
	if !apierrors.IsForbidden(err) {
		t.Fatalf("patching a ReplicaSet as kubemedic: got %v, want Forbidden", err)
	}
}

func replicaSet(t *testing.T, cs kubernetes.Interface, ns, name string, replicas int32, annotations map[string]string) {
	t.Helper()
	lbl := map[string]string{"app": name}
	rs := &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.ReplicaSetSpec{
			Replicas: ptr.To(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: lbl},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: lbl, Annotations: annotations},
				Spec: corev1.PodSpec{Containers: []corev1.Container{
					{Name: "app", Image: "registry.example/app:1"},
					{Name: "sidecar", Image: "registry.example/sidecar:1"},
				}},
			},
		},
	}
	if _, err := cs.AppsV1().ReplicaSets(ns).Create(ctx(t), rs, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// runningPods waits until exactly n pods with the label app=name are Running
// and Ready, and returns them.
func runningPods(t *testing.T, cs kubernetes.Interface, ns, name string, n int) []corev1.Pod {
	t.Helper()
	var pods []corev1.Pod
	waitFor(t, 60*time.Second, fmt.Sprintf("%d running pods of %s/%s", n, ns, name), func() (bool, string, error) {
		list, err := cs.CoreV1().Pods(ns).List(ctx(t), metav1.ListOptions{LabelSelector: "app=" + name})
		if err != nil {
			return false, "", err
		}
		pods = pods[:0]
		var seen []string
		for _, p := range list.Items {
			seen = append(seen, fmt.Sprintf("%s:%s/ready=%v/node=%q", p.Name, p.Status.Phase, podReady(&p), p.Spec.NodeName))
			if p.Status.Phase == corev1.PodRunning && podReady(&p) && p.DeletionTimestamp == nil {
				pods = append(pods, p)
			}
		}
		return len(pods) == n && len(list.Items) == n, strings.Join(seen, " "), nil
	})
	return pods
}

func TestSmokeReplicaSetPodIsReplaced(t *testing.T) {
	adm, km := admin(t), kubemedic(t)
	ns := namespace(t, adm)
	replicaSet(t, adm, ns, "web", 2, nil)
	pods := runningPods(t, adm, ns, "web", 2)
	for _, p := range pods {
		ip, err := netip.ParseAddr(p.Status.PodIP)
		if err != nil || !netip.MustParsePrefix("127.0.0.0/8").Contains(ip) {
			t.Errorf("pod %s has IP %q, want one in 127.0.0.0/8", p.Name, p.Status.PodIP)
		}
		if len(p.Status.ContainerStatuses) != 2 || !p.Status.ContainerStatuses[0].Ready ||
			p.Status.ContainerStatuses[0].State.Running == nil {
			t.Errorf("pod %s: container statuses %+v", p.Name, p.Status.ContainerStatuses)
		}
	}
	victim := pods[0]
	// As kubemedic would: delete by name with the uid as precondition.
	err := km.CoreV1().Pods(ns).Delete(ctx(t), victim.Name, metav1.DeleteOptions{
		Preconditions: &metav1.Preconditions{UID: &victim.UID}})
	if err != nil {
		t.Fatalf("kubemedic deleting a pod: %v", err)
	}
	waitFor(t, 60*time.Second, "replacement pod", func() (bool, string, error) {
		list, err := adm.CoreV1().Pods(ns).List(ctx(t), metav1.ListOptions{LabelSelector: "app=web"})
		if err != nil {
			return false, "", err
		}
		running, seen := 0, []string{}
		for _, p := range list.Items {
			if p.UID == victim.UID {
				return false, "old pod still there", nil
			}
			if p.Status.Phase == corev1.PodRunning && podReady(&p) {
				running++
			}
			seen = append(seen, p.Name+":"+string(p.Status.Phase))
		}
		return running == 2 && len(list.Items) == 2, strings.Join(seen, " "), nil
	})
}

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"time"

	coordv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"
)

// simNode plays one kubelet's node-side duties: register the Node, renew its
// Lease in kube-node-lease, and post node conditions. The Lease is what the
// node lifecycle controller watches for liveness; conditions are re-posted
// rarely (as the kubelet does since node leases exist) and at once on change.
type simNode struct {
	name string
	ip   string
	kick chan struct{} // scenario changed: post status now

	lease          *coordv1.Lease
	lastStatus     time.Time
	readyStatus    corev1.ConditionStatus // what we last posted for Ready
	readyChangedAt metav1.Time
	registered     bool
}

func nodeIP(i int) string { return fmt.Sprintf("127.0.%d.%d", 1+i/250, 1+i%250) }

func (s *Sim) runNode(ctx context.Context, n *simNode) {
	// Spread the fleet over the renew interval so 1,000 nodes do not all
	// write in the same instant.
	jitter := func() time.Duration {
		return time.Duration(rand.Int64N(int64(s.cfg.leaseRenew) / 5))
	}
	timer := time.NewTimer(time.Duration(rand.Int64N(int64(s.cfg.leaseRenew))) / 10)
	defer timer.Stop()
	for {
		force := false
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		case <-n.kick:
			force = true
			if !timer.Stop() {
				select {
				case <-timer.C:
				default:
				}
			}
		}
		next := s.cfg.leaseRenew + jitter()
		if err := s.heartbeat(ctx, n, force); err != nil {
			if ctx.Err() != nil {
				return
			}
			klog.Warningf("node %s: %v", n.name, err)
			next = time.Second + jitter()/5
		}
		timer.Reset(next)
	}
}

// heartbeat is one kubelet tick: register if needed, renew the Lease, post the
// conditions when they changed or are due. A node whose heartbeat is stopped
// does none of it: to the control plane its kubelet is simply gone.
func (s *Sim) heartbeat(ctx context.Context, n *simNode, force bool) error {
	st := s.nodeState(n.name)
	if st.heartbeatStopped {
		return nil
	}
	if !n.registered {
		if err := s.registerNode(ctx, n); err != nil {
			return fmt.Errorf("register: %w", err)
		}
	}
	if err := s.renewLease(ctx, n); err != nil {
		return fmt.Errorf("lease: %w", err)
	}
	want := corev1.ConditionTrue
	if st.notReady {
		want = corev1.ConditionFalse
	}
	if force || want != n.readyStatus || time.Since(n.lastStatus) >= s.cfg.nodeStatusEvery {
		if err := s.postNodeStatus(ctx, n, want, st.recoveredFromHeartbeatStop); err != nil {
			return fmt.Errorf("status: %w", err)
		}
		if !n.registered {
			n.registered = true
			s.nodeRegistered()
		}
	}
	return nil
}

func (s *Sim) registerNode(ctx context.Context, n *simNode) error {
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name: n.name,
			Labels: map[string]string{
				"kubernetes.io/hostname":           n.name,
				"kubernetes.io/os":                 "linux",
				"kubernetes.io/arch":               "amd64",
				"type":                             "kubesim",
				"node.kubernetes.io/instance-type": "kubesim",
			},
			Annotations: map[string]string{"kubesim.kubemedic.io/managed": "true"},
		},
	}
	_, err := s.cs.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	return nil
}

func (s *Sim) renewLease(ctx context.Context, n *simNode) error {
	leases := s.cs.CoordinationV1().Leases(corev1.NamespaceNodeLease)
	now := metav1.NewMicroTime(time.Now())
	if n.lease == nil {
		l, err := leases.Get(ctx, n.name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			node, err := s.cs.CoreV1().Nodes().Get(ctx, n.name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			l = &coordv1.Lease{
				ObjectMeta: metav1.ObjectMeta{
					Name: n.name, Namespace: corev1.NamespaceNodeLease,
					OwnerReferences: []metav1.OwnerReference{{APIVersion: "v1", Kind: "Node",
						Name: n.name, UID: node.UID}},
				},
				Spec: coordv1.LeaseSpec{
					HolderIdentity:       ptr.To(n.name),
					LeaseDurationSeconds: ptr.To(int32(s.cfg.leaseDuration.Seconds())),
					RenewTime:            &now,
				},
			}
			l, err = leases.Create(ctx, l, metav1.CreateOptions{})
			if err != nil {
				return err
			}
			n.lease = l
			return nil
		}
		if err != nil {
			return err
		}
		n.lease = l
	}
	l := n.lease.DeepCopy()
	l.Spec.RenewTime = &now
	l.Spec.HolderIdentity = ptr.To(n.name)
	l.Spec.LeaseDurationSeconds = ptr.To(int32(s.cfg.leaseDuration.Seconds()))
	updated, err := leases.Update(ctx, l, metav1.UpdateOptions{})
	if err != nil {
		n.lease = nil // re-read on the next try (conflict, or deleted)
		return err
	}
	n.lease = updated
	return nil
}

func (s *Sim) postNodeStatus(ctx context.Context, n *simNode, ready corev1.ConditionStatus, resetTransition bool) error {
	now := metav1.Now().Rfc3339Copy()
	if ready != n.readyStatus || resetTransition || n.readyChangedAt.IsZero() {
		n.readyChangedAt = now
	}
	readyCond := corev1.NodeCondition{Type: corev1.NodeReady, Status: ready,
		Reason: "KubeletReady", Message: "kubelet is posting ready status",
		LastHeartbeatTime: now, LastTransitionTime: n.readyChangedAt}
	if ready != corev1.ConditionTrue {
		readyCond.Reason = "KubeletNotReady"
		readyCond.Message = "container runtime network not ready: NetworkReady=false reason:NetworkPluginNotReady message:kubesim scenario node-notready"
	}
	since := n.readyChangedAt
	if !n.registered {
		since = now
	}
	cond := func(t corev1.NodeConditionType, reason, msg string) corev1.NodeCondition {
		return corev1.NodeCondition{Type: t, Status: corev1.ConditionFalse, Reason: reason, Message: msg,
			LastHeartbeatTime: now, LastTransitionTime: since}
	}
	status := corev1.NodeStatus{
		Conditions: []corev1.NodeCondition{
			cond(corev1.NodeMemoryPressure, "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
			cond(corev1.NodeDiskPressure, "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
			cond(corev1.NodePIDPressure, "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
			readyCond,
		},
	}
	if !n.registered {
		res := corev1.ResourceList{
			corev1.ResourceCPU:              resource.MustParse("32"),
			corev1.ResourceMemory:           resource.MustParse("256Gi"),
			corev1.ResourcePods:             resource.MustParse("110"),
			corev1.ResourceEphemeralStorage: resource.MustParse("1Ti"),
		}
		status.Capacity = res
		status.Allocatable = res
		status.Addresses = []corev1.NodeAddress{
			{Type: corev1.NodeInternalIP, Address: n.ip},
			{Type: corev1.NodeHostName, Address: n.name},
		}
		status.DaemonEndpoints = corev1.NodeDaemonEndpoints{KubeletEndpoint: corev1.DaemonEndpoint{Port: 10250}}
		status.NodeInfo = corev1.NodeSystemInfo{
			MachineID: n.name, SystemUUID: n.name, BootID: s.bootID,
			KernelVersion: "6.1.0-kubesim", OSImage: "kubesim", ContainerRuntimeVersion: "kubesim://1.0.0",
			KubeletVersion: s.cfg.kubeletVersion, OperatingSystem: "linux", Architecture: "amd64",
		}
	}
	body, err := json.Marshal(map[string]any{"status": status})
	if err != nil {
		return err
	}
	// A strategic merge patch merges conditions by type, as the kubelet's does.
	_, err = s.cs.CoreV1().Nodes().Patch(ctx, n.name, types.StrategicMergePatchType, body,
		metav1.PatchOptions{}, "status")
	if err != nil {
		return err
	}
	n.readyStatus = ready
	n.lastStatus = time.Now()
	s.clearRecovered(n.name)
	return nil
}

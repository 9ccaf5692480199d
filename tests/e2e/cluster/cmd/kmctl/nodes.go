package main

import (
	"context"
	"flag"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// nodes reports fleet health as the control plane sees it: how many nodes
// are Ready True/False/Unknown, how old the stalest node Lease is, and how
// many pods are Running. The benchmark uses it to show that the simulated
// kubelets kept up (a Lease older than its 40 s duration means a node the
// lifecycle controller will call Unknown).
func cmdNodes(args []string) error {
	fs := flag.NewFlagSet("nodes", flag.ContinueOnError)
	kubeconfig := fs.String("kubeconfig", "", "admin kubeconfig")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
	if err != nil {
		return err
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	nodes, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{ResourceVersion: "0"})
	if err != nil {
		return err
	}
	ready := map[corev1.ConditionStatus]int{}
	for _, n := range nodes.Items {
		st := corev1.ConditionUnknown
		for _, c := range n.Status.Conditions {
			if c.Type == corev1.NodeReady {
				st = c.Status
			}
		}
		ready[st]++
	}
	leases, err := cs.CoordinationV1().Leases(corev1.NamespaceNodeLease).List(ctx, metav1.ListOptions{ResourceVersion: "0"})
	if err != nil {
		return err
	}
	var stalest time.Duration
	for _, l := range leases.Items {
		if l.Spec.RenewTime != nil {
			stalest = max(stalest, time.Since(l.Spec.RenewTime.Time))
		}
	}
	pods, err := cs.CoreV1().Pods("").List(ctx, metav1.ListOptions{ResourceVersion: "0"})
	if err != nil {
		return err
	}
	running := 0
	for _, p := range pods.Items {
		if p.Status.Phase == corev1.PodRunning {
			running++
		}
	}
	fmt.Printf("nodes: %d (Ready: %d True, %d False, %d Unknown); stalest node Lease renewed %s ago; pods: %d (%d Running)\n",
		len(nodes.Items), ready[corev1.ConditionTrue], ready[corev1.ConditionFalse], ready[corev1.ConditionUnknown],
		stalest.Round(time.Second), len(pods.Items), running)
	return nil
}

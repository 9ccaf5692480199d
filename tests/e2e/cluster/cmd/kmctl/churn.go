package main

import (
	"context"
	"flag"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// churn deletes the namespace's pods at a steady rate for a while, as a
// rolling update or a failing node would: each deletion is followed by the
// ReplicaSet's replacement, kubesim's binding and status updates, and the
// EndpointSlice, ReplicaSet and Deployment status changes they cause — the
// watch traffic whose CPU cost bench/kube_scale.sh measures. It deletes the
// pods of one list in order, so no pod is asked for twice, and stops by
// itself after --duration (or when the list runs out).
func cmdChurn(args []string) error {
	fs := flag.NewFlagSet("churn", flag.ContinueOnError)
	kubeconfig := fs.String("kubeconfig", "", "admin kubeconfig")
	ns := fs.String("namespace", "bench", "namespace of the pods")
	rate := fs.Float64("rate", 20, "deletions a second")
	duration := fs.Duration("duration", 30*time.Second, "how long")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *rate <= 0 || *rate > 1000 {
		return fmt.Errorf("--rate %g: want 0 < rate <= 1000", *rate)
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
	if err != nil {
		return err
	}
	cfg.QPS, cfg.Burst = float32(*rate*2), int(*rate*2)+10
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), *duration+30*time.Second)
	defer cancel()
	var names []string
	opts := metav1.ListOptions{Limit: 500}
	for {
		l, err := cs.CoreV1().Pods(*ns).List(ctx, opts)
		if err != nil {
			return err
		}
		for _, p := range l.Items {
			if p.DeletionTimestamp == nil {
				names = append(names, p.Name)
			}
		}
		if opts.Continue = l.Continue; opts.Continue == "" {
			break
		}
	}
	tick := time.NewTicker(time.Duration(float64(time.Second) / *rate))
	defer tick.Stop()
	end := time.Now().Add(*duration)
	deleted, failed := 0, 0
	for _, name := range names {
		if time.Now().After(end) {
			break
		}
		<-tick.C
		err := cs.CoreV1().Pods(*ns).Delete(ctx, name, metav1.DeleteOptions{})
		switch {
		case err == nil:
			deleted++
		case apierrors.IsNotFound(err):
		default:
			failed++
		}
	}
	fmt.Printf("churn deleted=%d failed=%d rate=%g duration=%s\n", deleted, failed, *rate, *duration)
	if failed > deleted/10 {
		return fmt.Errorf("%d of %d deletions failed", failed, deleted+failed)
	}
	return nil
}

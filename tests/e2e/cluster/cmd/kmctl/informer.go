package main

// kmctl informer: what a Go user would write to watch what kubemedic
// watches — client-go shared informers for nodes, node Leases, pods,
// services, EndpointSlices, Deployments, StatefulSets, DaemonSets and
// ReplicaSets, every object kept whole in the informers' caches (client-go's
// default) — as the baseline of bench/kube_scale.sh. It prints one line when
// every cache has synced, with the time from start and the objects held,
// then keeps watching until SIGTERM.

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
)

func cmdInformer(args []string) error {
	fs := flag.NewFlagSet("informer", flag.ContinueOnError)
	kubeconfig := fs.String("kubeconfig", "", "kubeconfig")
	if err := fs.Parse(args); err != nil {
		return err
	}
	t0 := time.Now()
	cfg, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
	if err != nil {
		return err
	}
	// client-go's defaults are 5 qps; kubemedic's client allows 20.
	cfg.QPS, cfg.Burst = 20, 40
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	f := informers.NewSharedInformerFactory(cs, 0)
	leases := informers.NewSharedInformerFactoryWithOptions(cs, 0,
		informers.WithNamespace("kube-node-lease"))
	var synced []cache.InformerSynced
	var stores []cache.Store
	for _, inf := range []cache.SharedIndexInformer{
		f.Core().V1().Nodes().Informer(),
		f.Core().V1().Pods().Informer(),
		f.Core().V1().Services().Informer(),
		f.Discovery().V1().EndpointSlices().Informer(),
		f.Apps().V1().Deployments().Informer(),
		f.Apps().V1().StatefulSets().Informer(),
		f.Apps().V1().DaemonSets().Informer(),
		f.Apps().V1().ReplicaSets().Informer(),
		leases.Coordination().V1().Leases().Informer(),
	} {
		// A handler, as a program judging health would have one.
		inf.AddEventHandler(cache.ResourceEventHandlerFuncs{})
		synced = append(synced, inf.HasSynced)
		stores = append(stores, inf.GetStore())
	}
	f.Start(ctx.Done())
	leases.Start(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), synced...) {
		return fmt.Errorf("caches did not sync")
	}
	n := 0
	for _, s := range stores {
		n += len(s.List())
	}
	fmt.Printf("informer synced objects=%d ms=%d\n", n, time.Since(t0).Milliseconds())
	<-ctx.Done()
	return nil
}

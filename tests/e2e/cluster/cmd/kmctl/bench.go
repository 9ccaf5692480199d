package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"
)

// scale creates D Deployments of R replicas in one namespace and waits until
// D×R pods are Running and Ready: the controllers (deployment, replicaset) and
// kubesim (binding, status) do all the work, as they would in a cluster.
func cmdScale(args []string) error {
	fs := flag.NewFlagSet("scale", flag.ContinueOnError)
	kubeconfig := fs.String("kubeconfig", "", "admin kubeconfig")
	ns := fs.String("namespace", "bench", "namespace for the workloads")
	deployments := fs.Int("deployments", 30, "number of Deployments")
	replicas := fs.Int("replicas", 1000, "replicas each")
	timeout := fs.Duration("timeout", 30*time.Minute, "give up after")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
	if err != nil {
		return err
	}
	cfg.QPS, cfg.Burst = 100, 200
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	want := int64(*deployments * *replicas)

	var running atomic.Int64
	isRunning := func(obj any) bool {
		p, ok := obj.(*corev1.Pod)
		if !ok || p.Status.Phase != corev1.PodRunning {
			return false
		}
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodReady {
				return c.Status == corev1.ConditionTrue
			}
		}
		return false
	}
	f := informers.NewSharedInformerFactoryWithOptions(cs, 0, informers.WithNamespace(*ns))
	inf := f.Core().V1().Pods().Informer()
	inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(o any) {
			if isRunning(o) {
				running.Add(1)
			}
		},
		UpdateFunc: func(o, n any) {
			a, b := isRunning(o), isRunning(n)
			if !a && b {
				running.Add(1)
			} else if a && !b {
				running.Add(-1)
			}
		},
		DeleteFunc: func(o any) {
			if t, ok := o.(cache.DeletedFinalStateUnknown); ok {
				o = t.Obj
			}
			if isRunning(o) {
				running.Add(-1)
			}
		},
	})

	_, err = cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: *ns}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	// Pods need the namespace's default ServiceAccount (made by the controller manager).
	for {
		if _, err := cs.CoreV1().ServiceAccounts(*ns).Get(ctx, "default", metav1.GetOptions{}); err == nil {
			break
		}
		select {
		case <-ctx.Done():
			return errors.New("no default ServiceAccount: is kube-controller-manager running?")
		case <-time.After(200 * time.Millisecond):
		}
	}
	f.Start(ctx.Done())
	f.WaitForCacheSync(ctx.Done())

	start := time.Now()
	for i := 0; i < *deployments; i++ {
		name := fmt.Sprintf("bench-%d", i)
		lbl := map[string]string{"app": name}
		d := &appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: appsv1.DeploymentSpec{
				Replicas: ptr.To(int32(*replicas)),
				Selector: &metav1.LabelSelector{MatchLabels: lbl},
				Template: corev1.PodTemplateSpec{
					ObjectMeta: metav1.ObjectMeta{Labels: lbl},
					Spec: corev1.PodSpec{
						AutomountServiceAccountToken: ptr.To(false),
						Containers:                   []corev1.Container{{Name: "app", Image: "registry.example/bench:1"}},
					},
				},
			},
		}
		_, err := cs.AppsV1().Deployments(*ns).Create(ctx, d, metav1.CreateOptions{})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			return err
		}
	}
	fmt.Printf("scale: %d deployments × %d replicas created in %s\n", *deployments, *replicas, time.Since(start).Round(time.Millisecond))
	last := time.Now()
	for running.Load() < want {
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d of %d pods running after %v", running.Load(), want, *timeout)
		case <-time.After(250 * time.Millisecond):
		}
		if time.Since(last) >= 15*time.Second {
			last = time.Now()
			load, _ := os.ReadFile("/proc/loadavg")
			fmt.Printf("scale: %6.0fs %d/%d pods running (load %s)\n", time.Since(start).Seconds(), running.Load(), want,
				strings.Join(strings.Fields(string(load))[:1], ""))
		}
	}
	el := time.Since(start)
	fmt.Printf("scale: all %d pods running in %s (%.0f pods/s)\n", want, el.Round(time.Second), float64(want)/el.Seconds())
	return nil
}

// procstat samples CPU time and memory of named processes (NAME=PID) over a
// window: CPU as a share of one core, RSS now and the peak (VmHWM).
func cmdProcstat(args []string) error {
	fs := flag.NewFlagSet("procstat", flag.ContinueOnError)
	window := fs.Duration("window", 60*time.Second, "sampling window")
	if err := fs.Parse(args); err != nil {
		return err
	}
	type proc struct {
		name string
		pid  int
		cpu0 float64
	}
	var procs []*proc
	for _, a := range fs.Args() {
		name, p, ok := strings.Cut(a, "=")
		pid, err := strconv.Atoi(p)
		if !ok || err != nil {
			return fmt.Errorf("bad %q: want NAME=PID", a)
		}
		cpu, err := cpuSeconds(pid)
		if err != nil {
			return err
		}
		procs = append(procs, &proc{name: name, pid: pid, cpu0: cpu})
	}
	t0 := time.Now()
	time.Sleep(*window)
	el := time.Since(t0).Seconds()
	fmt.Printf("%-26s %9s %10s %10s\n", "process", "cpu(core)", "rss(MiB)", "peak(MiB)")
	var tc, tr, tp float64
	for _, p := range procs {
		cpu, err := cpuSeconds(p.pid)
		if err != nil {
			return err
		}
		rss, peak := memKiB(p.pid)
		c := (cpu - p.cpu0) / el
		tc, tr, tp = tc+c, tr+rss/1024, tp+peak/1024
		fmt.Printf("%-26s %9.2f %10.0f %10.0f\n", p.name, c, rss/1024, peak/1024)
	}
	fmt.Printf("%-26s %9.2f %10.0f %10.0f\n", "total", tc, tr, tp)
	return nil
}

func cpuSeconds(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// Fields after the ")" that ends the command name: utime is the 12th, stime the 13th.
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / 100, nil // USER_HZ is 100 on Linux
}

func memKiB(pid int) (rss, peak float64) {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		v, _ := strconv.ParseFloat(f[1], 64)
		switch f[0] {
		case "VmRSS:":
			rss = v
		case "VmHWM:":
			peak = v
		}
	}
	return
}

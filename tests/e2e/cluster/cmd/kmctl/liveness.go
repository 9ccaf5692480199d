package main

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"sort"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	kwatch "k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"
)

// liveness is bench/recovery_latency.sh's side in the cluster (issue 11,
// item 10). It serves /healthz for every pod of its namespace on one port
// (kubesim gives each pod an address of 127.0.0.0/8; the answer depends on
// the address asked), makes WORKLOADS one-replica Deployments whose pods'
// liveness probe kubemedicd mirrors (annotation kubemedic.io/probe), waits
// until every pod's probe has been answered 200, then injects failures:
//
//	--mode latency  one workload a round: its pod's address answers 500,
//	                and the round ends when the pod's deletion reaches a
//	                watch of the namespace's pods (deletionTimestamp set, or
//	                DELETED); one line a round
//	--mode storm    every pod's address answers 500 at once; for --window
//	                the deletions seen, with their time since the failure
//
// Times are this process's clock: the failure is the moment the address
// starts answering 500; "failed" is when the threshold-th 500 was answered
// to that address (the prober's verdict follows that answer); "deleted" is
// when the watch event arrived (the e2e API server keeps no audit log).
// Lines start with "round", "deleted" or "#" (a summary). Stop kubemedicd
// as soon as it exits: the pods' addresses answer nothing from then on.
func cmdLiveness(args []string) error {
	fs := flag.NewFlagSet("liveness", flag.ContinueOnError)
	kubeconfig := fs.String("kubeconfig", "", "admin kubeconfig")
	ns := fs.String("namespace", "bench-liveness", "namespace (made, and deleted at the end)")
	mode := fs.String("mode", "latency", "latency or storm")
	workloads := fs.Int("workloads", 10, "one-replica Deployments")
	rounds := fs.Int("rounds", 10, "latency: rounds (at most --workloads)")
	period := fs.Int("period", 1, "the liveness probe's periodSeconds")
	threshold := fs.Int("threshold", 3, "the liveness probe's failureThreshold")
	window := fs.Duration("window", 60*time.Second, "storm: how long to watch deletions")
	keep := fs.Bool("keep", false, "leave the namespace")
	linger := fs.Duration("linger", 3*time.Second, "latency: serve this long after the last round (its verification)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *mode != "latency" && *mode != "storm" {
		return fmt.Errorf("--mode %q: want latency or storm", *mode)
	}
	if *rounds > *workloads {
		*rounds = *workloads
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
	if err != nil {
		return err
	}
	cfg.QPS, cfg.Burst = 200, 400
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	ctx := context.Background()

	srv, err := newPodServer()
	if err != nil {
		return err
	}
	defer srv.close()
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: *ns}},
		metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	if !*keep {
		defer cs.CoreV1().Namespaces().Delete(context.Background(), *ns, metav1.DeleteOptions{})
	}
	// Pods are refused until the namespace's default ServiceAccount exists.
	for i := 0; ; i++ {
		if _, err := cs.CoreV1().ServiceAccounts(*ns).Get(ctx, "default", metav1.GetOptions{}); err == nil {
			break
		} else if i > 300 {
			return err
		}
		time.Sleep(100 * time.Millisecond)
	}
	t0 := time.Now()
	for i := 0; i < *workloads; i++ {
		if err := probedWorkload(ctx, cs, *ns, fmt.Sprintf("w-%04d", i), srv.port, *period, *threshold); err != nil {
			return err
		}
	}
	pods, err := awaitPods(ctx, cs, *ns, *workloads, srv, 10*time.Minute)
	if err != nil {
		return err
	}
	fmt.Printf("# %d pods running, each probe answered 200 twice: %.1f s\n", len(pods), time.Since(t0).Seconds())

	// Deletions as the API server's watch tells them.
	w, err := cs.CoreV1().Pods(*ns).Watch(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	defer w.Stop()
	var mu sync.Mutex
	deleted := map[string]time.Time{}
	gotOne := make(chan string, 100000)
	go func() {
		for ev := range w.ResultChan() {
			p, ok := ev.Object.(*corev1.Pod)
			if !ok || (ev.Type != kwatch.Deleted && p.DeletionTimestamp == nil) {
				continue
			}
			at := time.Now()
			mu.Lock()
			if _, seen := deleted[string(p.UID)]; !seen {
				deleted[string(p.UID)] = at
				gotOne <- string(p.UID)
			}
			mu.Unlock()
		}
	}()

	if *mode == "latency" {
		err := latencyRounds(pods[:*rounds], srv, *period, *threshold, gotOne, &mu, deleted)
		time.Sleep(*linger)
		return err
	}
	return storm(pods, srv, *threshold, *window, gotOne, &mu, deleted)
}

func latencyRounds(pods []corev1.Pod, srv *podServer, period, threshold int, gotOne <-chan string,
	mu *sync.Mutex, deleted map[string]time.Time) error {
	var total, probe, react []float64
	fmt.Printf("%-6s %-14s %12s %12s %12s\n", "round", "pod", "to_failed_ms", "to_delete_ms", "total_ms")
	for r, p := range pods {
		// At a random phase of the probe's period.
		time.Sleep(2*time.Second + time.Duration(rand.Int64N(int64(period)*int64(time.Second))))
		at := srv.fail(p.Status.PodIP)
		timeout := time.After(time.Duration(period*threshold)*time.Second + 30*time.Second)
	wait:
		for {
			select {
			case uid := <-gotOne:
				if uid == string(p.UID) {
					break wait
				}
			case <-timeout:
				return fmt.Errorf("round %d: pod %s not deleted within %v of its failure", r+1, p.Name,
					time.Duration(period*threshold)*time.Second+30*time.Second)
			}
		}
		mu.Lock()
		del := deleted[string(p.UID)]
		mu.Unlock()
		failed := srv.nthFailure(p.Status.PodIP, threshold)
		tot := del.Sub(at).Seconds() * 1000
		total = append(total, tot)
		line := fmt.Sprintf("round  %-14s %12s %12s %12.1f", p.Name, "-", "-", tot)
		if !failed.IsZero() {
			probe = append(probe, failed.Sub(at).Seconds()*1000)
			react = append(react, del.Sub(failed).Seconds()*1000)
			line = fmt.Sprintf("round  %-14s %12.1f %12.1f %12.1f", p.Name, failed.Sub(at).Seconds()*1000,
				del.Sub(failed).Seconds()*1000, tot)
		}
		fmt.Println(line)
	}
	summary("failure -> DELETE seen (ms)", total)
	summary("failure -> threshold-th 500 answered (ms)", probe)
	summary("threshold-th 500 -> DELETE seen (ms)", react)
	return nil
}

func storm(pods []corev1.Pod, srv *podServer, threshold int, window time.Duration, gotOne <-chan string,
	mu *sync.Mutex, deleted map[string]time.Time) error {
	ours := map[string]bool{}
	for _, p := range pods {
		ours[string(p.UID)] = true
	}
	var at time.Time
	for i, p := range pods {
		t := srv.fail(p.Status.PodIP)
		if i == 0 {
			at = t
		}
	}
	fmt.Printf("# storm: %d pods' addresses answer 500 from now (injected in %.1f ms)\n", len(pods),
		time.Since(at).Seconds()*1000)
	end := time.After(window)
	var since []float64
	for {
		select {
		case uid := <-gotOne:
			if !ours[uid] {
				continue
			}
			mu.Lock()
			d := deleted[uid].Sub(at).Seconds()
			mu.Unlock()
			since = append(since, d*1000)
			fmt.Printf("deleted %d %.3f\n", len(since), d)
		case <-end:
			var failed int
			for _, p := range pods {
				if !srv.nthFailure(p.Status.PodIP, threshold).IsZero() {
					failed++
				}
			}
			fmt.Printf("# storm: %d of %d pods' probes failed %d times within %v; %d deletions seen\n",
				failed, len(pods), threshold, window, len(since))
			summary("failure -> DELETE seen (ms)", since)
			return nil
		}
	}
}

func summary(what string, v []float64) {
	if len(v) == 0 {
		fmt.Printf("# %s: none\n", what)
		return
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	q := func(p float64) float64 { return s[int(p*float64(len(s)-1)+0.5)] }
	fmt.Printf("# %s: n=%d min=%.1f p50=%.1f p90=%.1f p99=%.1f max=%.1f\n", what, len(s), s[0], q(0.5), q(0.9),
		q(0.99), s[len(s)-1])
}

// probedWorkload: a one-replica Deployment whose pod's liveness probe
// (httpGet /healthz on the server's port) kubemedicd mirrors.
func probedWorkload(ctx context.Context, cs kubernetes.Interface, ns, name string, port, period, threshold int) error {
	lbl := map[string]string{"app": name, "bench": "liveness"}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(int32(1)),
			Selector: &metav1.LabelSelector{MatchLabels: lbl},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: lbl,
					Annotations: map[string]string{"kubemedic.io/probe": "true"}},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name:  "app",
					Image: "registry.example/app:1",
					Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: int32(port)}},
					LivenessProbe: &corev1.Probe{
						ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
							Path: "/healthz", Port: intstr.FromString("http")}},
						PeriodSeconds: int32(period), TimeoutSeconds: 1, FailureThreshold: int32(threshold),
					},
				}}},
			},
		},
	}
	_, err := cs.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{})
	return err
}

// awaitPods: n running pods with an address, each asked (and answered 200)
// at least twice by kubemedicd's prober.
func awaitPods(ctx context.Context, cs kubernetes.Interface, ns string, n int, srv *podServer,
	timeout time.Duration) ([]corev1.Pod, error) {
	deadline := time.Now().Add(timeout)
	last := ""
	for time.Now().Before(deadline) {
		var pods []corev1.Pod
		opts := metav1.ListOptions{Limit: 500}
		for {
			l, err := cs.CoreV1().Pods(ns).List(ctx, opts)
			if err != nil {
				return nil, err
			}
			for _, p := range l.Items {
				if p.Status.Phase == corev1.PodRunning && p.Status.PodIP != "" && p.DeletionTimestamp == nil {
					pods = append(pods, p)
				}
			}
			if opts.Continue = l.Continue; opts.Continue == "" {
				break
			}
		}
		asked := 0
		for _, p := range pods {
			if srv.asked(p.Status.PodIP) >= 2 {
				asked++
			}
		}
		if len(pods) == n && asked == n {
			sort.Slice(pods, func(i, j int) bool { return pods[i].Name < pods[j].Name })
			return pods, nil
		}
		if s := fmt.Sprintf("%d of %d pods running, %d probed", len(pods), n, asked); s != last {
			fmt.Fprintf(os.Stderr, "liveness: %s\n", s)
			last = s
		}
		time.Sleep(500 * time.Millisecond)
	}
	return nil, fmt.Errorf("not every pod running and probed within %v (last: %s)", timeout, last)
}

// podServer answers /healthz on one port of every loopback address: 200,
// or 500 for the addresses failed, remembering when it answered each 500.
type podServer struct {
	port  int
	srv   *http.Server
	mu    sync.Mutex
	fails map[string]bool
	count map[string]int
	bad   map[string][]time.Time
}

func newPodServer() (*podServer, error) {
	ln, err := net.Listen("tcp4", "0.0.0.0:0")
	if err != nil {
		return nil, err
	}
	s := &podServer{port: ln.Addr().(*net.TCPAddr).Port, fails: map[string]bool{}, count: map[string]int{},
		bad: map[string][]time.Time{}}
	s.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		local, _ := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
		remote, _, _ := net.SplitHostPort(r.RemoteAddr)
		if ip := net.ParseIP(remote); local == nil || ip == nil || !ip.IsLoopback() || r.URL.Path != "/healthz" {
			http.Error(w, "no", http.StatusForbidden)
			return
		}
		host, _, _ := net.SplitHostPort(local.String())
		s.mu.Lock()
		s.count[host]++
		bad := s.fails[host]
		s.mu.Unlock()
		if !bad {
			w.WriteHeader(http.StatusOK)
			return
		}
		http.Error(w, "injected failure", http.StatusInternalServerError)
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
		s.mu.Lock()
		s.bad[host] = append(s.bad[host], time.Now())
		s.mu.Unlock()
	})}
	go s.srv.Serve(ln)
	return s, nil
}

func (s *podServer) close() { s.srv.Close() }

func (s *podServer) fail(ip string) time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fails[ip] = true
	return time.Now()
}

func (s *podServer) asked(ip string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.count[ip]
}

// nthFailure: when the n-th 500 was answered to ip (zero: not yet).
func (s *podServer) nthFailure(ip string, n int) time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	if b := s.bad[ip]; len(b) >= n {
		return b[n-1]
	}
	return time.Time{}
}

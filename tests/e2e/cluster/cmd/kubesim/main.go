// kubesim simulates kubelets (and the scheduler's binding step) for the e2e
// control plane: it registers N nodes, renews their Leases, posts node
// conditions, binds pending pods round-robin and moves pods on its nodes to
// Running with realistic statuses and pod IPs in 127.0.0.0/8. Scenarios
// (a NotReady node, a dead kubelet, a crash-looping pod, a service without
// ready endpoints) are switched on and off through a loopback HTTP API, which
// "kubesim scenario" and "kubesim recover" call.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"
)

const usage = `usage:
  kubesim run --kubeconfig FILE [--nodes N] [--listen 127.0.0.1:0] [--addr-file FILE] ...
  kubesim scenario NAME TARGET     start a scenario
  kubesim recover  NAME TARGET     end it
  kubesim scenarios                list what is in force
  kubesim wait-ready [--timeout D] wait until every node has registered

scenarios:
  node-notready NODE               the node's Ready condition turns False (kubelet alive)
  node-heartbeat-stop NODE         the kubelet goes silent: no Lease renewal, no status;
                                   the node lifecycle controller marks it Unknown
  pod-crashloop NAMESPACE/POD      containers crash: CrashLoopBackOff, restartCount grows
  service-endpoints-drop NS/SVC    the service's pods turn unready: no ready endpoints

The client commands find the daemon through --addr, else $KUBESIM_ADDR, else
the KM_E2E_KUBESIM line of the env file named by $KM_E2E_ENV.
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	var err error
	switch cmd, args := os.Args[1], os.Args[2:]; cmd {
	case "run":
		err = cmdRun(args)
	case "scenario", "recover":
		err = cmdChange(cmd, args)
	case "scenarios":
		err = cmdList(args)
	case "wait-ready":
		err = cmdWaitReady(args)
	default:
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "kubesim: %v\n", err)
		os.Exit(1)
	}
}

func cmdRun(args []string) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	klog.InitFlags(fs)
	kubeconfig := fs.String("kubeconfig", "", "kubeconfig (needs rights to write nodes, leases, pods)")
	listen := fs.String("listen", "127.0.0.1:0", "control API address (loopback)")
	addrFile := fs.String("addr-file", "", "write the control API URL here once listening")
	qps := fs.Float64("qps", 500, "client QPS to the API server")
	burst := fs.Int("burst", 1000, "client burst")
	var cfg config
	fs.IntVar(&cfg.nodes, "nodes", 3, "number of nodes")
	fs.StringVar(&cfg.nodePrefix, "node-prefix", "kubesim-node-", "node name prefix (then 0..N-1)")
	fs.IntVar(&cfg.workers, "workers", 32, "pod workers")
	fs.DurationVar(&cfg.leaseRenew, "lease-renew", 10*time.Second, "Lease renew interval (kubelet: 10s)")
	fs.DurationVar(&cfg.leaseDuration, "lease-duration", 40*time.Second, "Lease duration (kubelet: 40s)")
	fs.DurationVar(&cfg.nodeStatusEvery, "node-status-interval", 5*time.Minute, "re-post unchanged node status this often (kubelet: 5m)")
	fs.DurationVar(&cfg.crashBackoff, "crashloop-backoff", 10*time.Second, "first crash-loop back-off, doubling to 5m (kubelet: 10s)")
	fs.StringVar(&cfg.kubeletVersion, "kubelet-version", "v1.37.2", "reported kubelet version")
	if err := fs.Parse(args); err != nil {
		return err
	}
	rc, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
	if err != nil {
		return err
	}
	rc.QPS, rc.Burst = float32(*qps), *burst
	rc.UserAgent = "kubesim"
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	sim := newSim(cfg, cs)
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: sim.handler(), ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	addr := "http://" + ln.Addr().String()
	if *addrFile != "" {
		tmp := *addrFile + ".tmp"
		if err := os.WriteFile(tmp, []byte(addr+"\n"), 0o644); err != nil {
			return err
		}
		if err := os.Rename(tmp, *addrFile); err != nil {
			return err
		}
	}
	klog.Infof("kubesim: %d nodes, control API %s", cfg.nodes, addr)
	err = sim.run(ctx)
	srv.Close()
	return err
}

// controlAddr finds the daemon: --addr, $KUBESIM_ADDR, or the env file.
func controlAddr(flagAddr string) (string, error) {
	if flagAddr != "" {
		return flagAddr, nil
	}
	if a := os.Getenv("KUBESIM_ADDR"); a != "" {
		return a, nil
	}
	if envFile := os.Getenv("KM_E2E_ENV"); envFile != "" {
		f, err := os.Open(envFile)
		if err != nil {
			return "", err
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), "KM_E2E_KUBESIM="); ok {
				return v, nil
			}
		}
	}
	return "", errors.New("no control address: use --addr, KUBESIM_ADDR or KM_E2E_ENV")
}

func call(method, addr, path string, q url.Values) (string, error) {
	req, err := http.NewRequest(method, addr+path+"?"+q.Encode(), nil)
	if err != nil {
		return "", err
	}
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(string(body)))
	}
	return string(body), nil
}

func cmdChange(cmd string, args []string) error {
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	addrFlag := fs.String("addr", "", "control API URL")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 2 {
		return fmt.Errorf("usage: kubesim %s NAME TARGET", cmd)
	}
	addr, err := controlAddr(*addrFlag)
	if err != nil {
		return err
	}
	_, err = call(http.MethodPost, addr, "/"+cmd, url.Values{"name": {fs.Arg(0)}, "target": {fs.Arg(1)}})
	return err
}

func cmdList(args []string) error {
	fs := flag.NewFlagSet("scenarios", flag.ContinueOnError)
	addrFlag := fs.String("addr", "", "control API URL")
	if err := fs.Parse(args); err != nil {
		return err
	}
	addr, err := controlAddr(*addrFlag)
	if err != nil {
		return err
	}
	out, err := call(http.MethodGet, addr, "/scenarios", nil)
	fmt.Print(out)
	return err
}

func cmdWaitReady(args []string) error {
	fs := flag.NewFlagSet("wait-ready", flag.ContinueOnError)
	addrFlag := fs.String("addr", "", "control API URL")
	timeout := fs.Duration("timeout", 60*time.Second, "give up after")
	if err := fs.Parse(args); err != nil {
		return err
	}
	addr, err := controlAddr(*addrFlag)
	if err != nil {
		return err
	}
	deadline := time.Now().Add(*timeout)
	for {
		_, err := call(http.MethodGet, addr, "/readyz", nil)
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not ready after %v: %v", *timeout, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// kmctl is the harness's helper for bringing the control plane up: it makes
// the PKI, writes kubeconfigs, waits for health endpoints, picks free ports and
// installs the kubemedic ServiceAccount with its least-privilege ClusterRole.
//
// Every subcommand is small and does one step of tests/e2e/cluster/up, so the
// shell script stays the one place that shows the whole sequence.
package main

import (
	"fmt"
	"os"
)

const usage = `usage: kmctl COMMAND [flags]

commands:
  ports N                 print N free loopback TCP ports, one a line
  pki DIR                 write the CA, serving and client certificates and the
                          service-account key into DIR
  kubeconfig FLAGS        write a kubeconfig (client certificate or token)
  wait-url URL            poll URL (TLS, --ca) until it answers 200 "ok"
  bootstrap FLAGS         create the kubemedic ServiceAccount, ClusterRole,
                          binding and a token; write its kubeconfig
  scale FLAGS             create workloads and wait until all pods Run (bench)
  procstat FLAGS          CPU and memory of processes over a window (bench)
  nodes --kubeconfig F    node readiness, stalest Lease, running pods (bench)
  podlist FLAGS           a PodList and watch streams as the API server encodes
                          them, JSON and protobuf (bench/kube_decode.sh)
  informer --kubeconfig F client-go informers on what kubemedic watches: the
                          baseline of bench/kube_scale.sh
  churn FLAGS             delete pods at a steady rate for a while (bench)
  liveness FLAGS          pods whose mirrored liveness probe fails, and when
                          each is deleted (bench/recovery_latency.sh)
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	cmd, args := os.Args[1], os.Args[2:]
	var err error
	switch cmd {
	case "ports":
		err = cmdPorts(args)
	case "pki":
		err = cmdPKI(args)
	case "kubeconfig":
		err = cmdKubeconfig(args)
	case "wait-url":
		err = cmdWaitURL(args)
	case "bootstrap":
		err = cmdBootstrap(args)
	case "scale":
		err = cmdScale(args)
	case "procstat":
		err = cmdProcstat(args)
	case "nodes":
		err = cmdNodes(args)
	case "podlist":
		err = cmdPodlist(args)
	case "informer":
		err = cmdInformer(args)
	case "churn":
		err = cmdChurn(args)
	case "liveness":
		err = cmdLiveness(args)
	default:
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "kmctl %s: %v\n", cmd, err)
		os.Exit(1)
	}
}

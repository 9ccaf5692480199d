package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// ports: bind N listeners on 127.0.0.1:0 at once (so the N ports differ), print
// them, close them. The kernel does not hand a just-closed ephemeral port out
// again at once, which makes the small window before the server binds it safe
// enough for tests (envtest does the same).
func cmdPorts(args []string) error {
	if len(args) != 1 {
		return errors.New("usage: kmctl ports N")
	}
	n, err := strconv.Atoi(args[0])
	if err != nil || n < 1 {
		return fmt.Errorf("bad count %q", args[0])
	}
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for i := 0; i < n; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		ls = append(ls, l)
		fmt.Println(l.Addr().(*net.TCPAddr).Port)
	}
	return nil
}

func cmdKubeconfig(args []string) error {
	fs := flag.NewFlagSet("kubeconfig", flag.ContinueOnError)
	out := fs.String("out", "", "kubeconfig file to write")
	server := fs.String("server", "", "API server URL")
	ca := fs.String("ca", "", "CA certificate file")
	cert := fs.String("cert", "", "client certificate file")
	key := fs.String("key", "", "client key file")
	tokenFile := fs.String("token-file", "", "bearer token file")
	user := fs.String("user", "user", "user entry name")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *out == "" || *server == "" || *ca == "" {
		return errors.New("--out, --server and --ca are required")
	}
	return writeKubeconfig(*out, *server, *ca, *user, &clientcmdapi.AuthInfo{
		ClientCertificate: *cert, ClientKey: *key, TokenFile: *tokenFile,
	})
}

func writeKubeconfig(out, server, ca, user string, auth *clientcmdapi.AuthInfo) error {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["e2e"] = &clientcmdapi.Cluster{Server: server, CertificateAuthority: ca}
	cfg.AuthInfos[user] = auth
	cfg.Contexts["e2e"] = &clientcmdapi.Context{Cluster: "e2e", AuthInfo: user}
	cfg.CurrentContext = "e2e"
	return clientcmd.WriteToFile(*cfg, out)
}

// wait-url: poll an HTTPS health endpoint until it says "ok". A process that
// died meanwhile is noticed through --pid so that we fail fast, not at timeout.
func cmdWaitURL(args []string) error {
	fs := flag.NewFlagSet("wait-url", flag.ContinueOnError)
	ca := fs.String("ca", "", "CA certificate file")
	cert := fs.String("cert", "", "client certificate file")
	key := fs.String("key", "", "client key file")
	timeout := fs.Duration("timeout", 60*time.Second, "give up after")
	pid := fs.Int("pid", 0, "fail as soon as this process is gone")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New("usage: kmctl wait-url [flags] URL")
	}
	url := fs.Arg(0)
	tlsCfg := &tls.Config{}
	if *ca != "" {
		pem, err := os.ReadFile(*ca)
		if err != nil {
			return err
		}
		tlsCfg.RootCAs = x509.NewCertPool()
		tlsCfg.RootCAs.AppendCertsFromPEM(pem)
	}
	if *cert != "" {
		kp, err := tls.LoadX509KeyPair(*cert, *key)
		if err != nil {
			return err
		}
		tlsCfg.Certificates = []tls.Certificate{kp}
	}
	client := &http.Client{Timeout: 5 * time.Second,
		Transport: &http.Transport{TLSClientConfig: tlsCfg}}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	last := "no answer"
	for {
		if *pid > 0 {
			if _, err := os.Stat(fmt.Sprintf("/proc/%d", *pid)); err != nil {
				return fmt.Errorf("%s: process %d exited (last: %s)", url, *pid, last)
			}
		}
		resp, err := client.Get(url)
		if err == nil {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
			last = fmt.Sprintf("%d %s", resp.StatusCode, strings.TrimSpace(string(body)))
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s not ready after %v: %s", url, *timeout, last)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

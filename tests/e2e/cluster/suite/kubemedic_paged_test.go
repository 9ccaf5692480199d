package suite

// kubemedicd streams every list as a watch's initial events
// (sendInitialEvents); an API server that refuses that (before 1.27, or with
// its WatchList feature off) or ignores it (a plain watch that never says
// the list is over) gets lists in pages instead. v1.37 does neither on
// demand, so an HTTP proxy in front of it plays those servers: the one fault
// the real thing cannot produce here.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// oldServer is a TLS reverse proxy to the API server (with the API server's
// own certificate, so the harness's CA trusts it) that either refuses
// sendInitialEvents as an old server does (422) or drops it from the query
// as a server that does not know it would.
type oldServer struct {
	url      string
	streamed atomic.Int64 // requests that asked for sendInitialEvents
	paged    atomic.Int64 // list requests with limit=
}

func startOldServer(t *testing.T, refuse bool) *oldServer {
	t.Helper()
	pki := filepath.Join(env["KM_E2E_STATE"], "pki")
	cert, err := tls.LoadX509KeyPair(filepath.Join(pki, "apiserver.crt"), filepath.Join(pki, "apiserver.key"))
	if err != nil {
		t.Fatal(err)
	}
	caPEM, err := os.ReadFile(env["KM_E2E_CA"])
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(caPEM)
	target, err := url.Parse(env["KM_E2E_APISERVER"])
	if err != nil {
		t.Fatal(err)
	}
	o := &oldServer{}
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.FlushInterval = -1 // a watch's lines as they come
	rp.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}, ForceAttemptHTTP2: true}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if q.Get("limit") != "" {
			o.paged.Add(1)
		}
		if q.Get("sendInitialEvents") == "true" {
			o.streamed.Add(1)
			if refuse {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusUnprocessableEntity)
				w.Write([]byte(`{"kind":"Status","apiVersion":"v1","status":"Failure",` +
					`"message":"ListOptions.meta.k8s.io \"\" is invalid: sendInitialEvents: Forbidden: ` +
					`sendInitialEvents is forbidden for watch unless the WatchList feature gate is enabled",` +
					`"reason":"Invalid","code":422}`))
				return
			}
			// A server before 1.27 takes the watch as a plain one:
			// v1.37 sends the existing objects then too, and an end
			// bookmark with them, which such a server never does.
			q.Del("sendInitialEvents")
			q.Del("resourceVersionMatch")
			r.URL.RawQuery = q.Encode()
			// Its lines filtered below: in JSON (pods are asked for
			// in protobuf, whose frames are no lines). The informer
			// reads the JSON it is answered, and asks for JSON after.
			r.Header.Set("Accept", "application/json")
			r = r.WithContext(context.WithValue(r.Context(), dropEnd{}, true))
		}
		rp.ServeHTTP(w, r)
	})
	rp.ModifyResponse = func(resp *http.Response) error {
		if resp.Request.Context().Value(dropEnd{}) != nil {
			resp.Body = &lineFilter{r: bufio.NewReader(resp.Body), c: resp.Body,
				drop: []byte("k8s.io/initial-events-end")}
		}
		return nil
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"h2", "http/1.1"}}}
	go srv.ServeTLS(ln, "", "")
	t.Cleanup(func() { srv.Close() })
	o.url = "https://" + ln.Addr().String()
	return o
}

type dropEnd struct{}

// lineFilter passes a watch's lines on as they come, but those holding drop.
type lineFilter struct {
	r    *bufio.Reader
	c    io.Closer
	drop []byte
	buf  []byte
}

func (f *lineFilter) Read(p []byte) (int, error) {
	for len(f.buf) == 0 {
		line, err := f.r.ReadBytes('\n')
		if !bytes.Contains(line, f.drop) {
			f.buf = line
		}
		if err != nil {
			if len(f.buf) == 0 {
				return 0, err
			}
			break
		}
	}
	n := copy(p, f.buf)
	f.buf = f.buf[n:]
	return n, nil
}

func (f *lineFilter) Close() error { return f.c.Close() }

func TestKubemedicListsInPagesWhenNotStreamed(t *testing.T) {
	for _, c := range []struct {
		name   string
		refuse bool
		why    string
	}{
		{"refused", true, `HTTP 422 Invalid: .*sendInitialEvents is forbidden`},
		// Leases change every 10 s here: a change before the list's end
		// gives a plain watch away.
		{"ignored", false, `sendInitialEvents ignored|no end of the initial events`},
	} {
		t.Run(c.name, func(t *testing.T) {
			if !c.refuse {
				// A pod, so that the pods' stream (answered in JSON
				// below) has a line to read.
				adm := admin(t)
				ns := namespace(t, adm)
				pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "json"},
					Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "example/app:1"}}}}
				if _, err := adm.CoreV1().Pods(ns).Create(ctx(t), pod, metav1.CreateOptions{}); err != nil {
					t.Fatal(err)
				}
			}
			old := startOldServer(t, c.refuse)
			tokenFile := filepath.Join(env["KM_E2E_STATE"], "kubemedic.token")
			d := startDaemonWith(t, kubeconfigFile(t, old.url, &clientcmdapi.AuthInfo{TokenFile: tokenFile}), defaultConfig)
			ch := d.watchHealth(t)
			// Every node judged, its list paged, the fallback said.
			awaitAll(t, ch, 90*time.Second, healthy, nodeTargets())
			line := d.awaitLog(t, 60*time.Second, regexp.MustCompile(
				`msg="kube: the API server streams no list; listing in pages" cluster=\(default\) resource=nodes why=.*`))
			if !regexp.MustCompile(c.why).MatchString(line) {
				t.Errorf("fallback %q, want a why matching %q", line, c.why)
			}
			d.awaitLog(t, 60*time.Second, regexp.MustCompile(
				`msg="kube: listed" cluster=\(default\) resource=nodes objects=\d+ pages=1 how=pages`))
			if !c.refuse {
				// Pods asked for in protobuf, answered in JSON.
				d.awaitLog(t, 60*time.Second, regexp.MustCompile(
					`msg="kube: the API server answers no protobuf; watching in JSON" cluster=\(default\) resource=pods`))
			}
			if old.streamed.Load() == 0 || old.paged.Load() == 0 {
				t.Errorf("requests: %d streamed, %d paged; want both", old.streamed.Load(), old.paged.Load())
			}
			// Once paged, a resource is not streamed again: the watch
			// after the list goes on from the list's version, and sees
			// a change. (Every resource listed first: the quiet ones
			// of a server that ignores the parameter wait out the
			// 15 s without an end.)
			waitFor(t, 60*time.Second, "all nine resources listed", func() (bool, string, error) {
				n := strings.Count(d.logText(), `msg="kube: listed"`)
				return n >= 9, fmt.Sprintf("%d listed", n), nil
			})
			streamed := old.streamed.Load()
			node := nodeTargets()[0]
			kubesim(t, "scenario", "node-notready", strings.TrimPrefix(node, "node//"))
			await(t, ch, 60*time.Second, node+" UNHEALTHY", func(tr *transition) bool {
				return tr.Target == node && tr.ToState == unhealthy
			})
			kubesim(t, "recover", "node-notready", strings.TrimPrefix(node, "node//"))
			await(t, ch, 60*time.Second, node+" HEALTHY again", func(tr *transition) bool {
				return tr.Target == node && tr.ToState == healthy
			})
			if n := old.streamed.Load(); n != streamed {
				t.Errorf("%d more streamed lists after the fallback", n-streamed)
			}
		})
	}
}

package suite

// Recovery when the API server answers badly (issue 11): the recovery's
// write is throttled (429 with Retry-After), fails (500) and loses its
// connection (a reset) before it goes through; kubemedicd is SIGKILLed
// while its write is in flight and takes the recovery back when it starts
// again; a recovery waiting for its target is cancelled before it is
// dispatched; and a write the ServiceAccount may not make fails at once.
// Each test counts what reached the real API server through a fault
// proxy: one effective action, never two.

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// ---- the fault proxy ------------------------------------------------------------

// A fault the proxy answers a matched write with.
const (
	fault429   = "429"   // Too Many Requests, Retry-After: 1
	fault500   = "500"   // an InternalError Status
	faultReset = "reset" // the connection dropped (RST), no answer
	faultHold  = "hold"  // no answer until release
)

// hit is one write the proxy's rule matched: what it did with it and, when
// it was forwarded, the API server's status.
type hit struct {
	At     time.Time
	Method string
	Path   string
	Body   string
	Did    string // a fault, or "forwarded"
	Status int    // the API server's, when forwarded (a held one too)
}

// faultProxy is an HTTPS reverse proxy in front of the API server. It
// serves with the API server's own certificate (it names 127.0.0.1), so a
// kubeconfig with the cluster's CA trusts it, and passes every request on
// as it came, the caller's bearer token included: the API server sees the
// caller's identity. Writes its rule matches get the planned faults, one
// per request, then are forwarded; every one is recorded.
type faultProxy struct {
	t    *testing.T
	srv  *http.Server
	ln   net.Listener
	rp   *httputil.ReverseProxy
	hc   *http.Client
	base *url.URL

	mu      sync.Mutex
	match   func(*http.Request) bool
	faults  []string
	hits    []hit
	held    chan int    // the index of a held hit
	release chan string // "forward" or "drop", for the held one
}

func startFaultProxy(t *testing.T) *faultProxy {
	t.Helper()
	base, err := url.Parse(env["KM_E2E_APISERVER"])
	if err != nil {
		t.Fatal(err)
	}
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
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}, MaxIdleConnsPerHost: 16}
	p := &faultProxy{t: t, base: base, held: make(chan int, 16), release: make(chan string, 16),
		hc: &http.Client{Transport: tr, Timeout: 30 * time.Second}}
	p.rp = httputil.NewSingleHostReverseProxy(base)
	p.rp.Transport = tr
	p.rp.FlushInterval = -1 // watches: every event at once
	p.rp.ErrorLog = log.New(io.Discard, "", 0)
	p.ln, err = net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.srv = &http.Server{
		Handler:   p,
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}},
		// HTTP/1.1 only: a connection is one request at a time, and
		// can be dropped under it.
		TLSNextProto: map[string]func(*http.Server, *tls.Conn, http.Handler){},
		ErrorLog:     log.New(io.Discard, "", 0),
	}
	go p.srv.ServeTLS(p.ln, "", "")
	t.Cleanup(func() {
		close(p.release) // a held request still waiting is dropped
		p.srv.Close()
		tr.CloseIdleConnections()
	})
	return p
}

func (p *faultProxy) url() string { return "https://" + p.ln.Addr().String() }

// kubeconfig is a kubeconfig for the proxy with the kubemedic
// ServiceAccount's token (or the user given).
func (p *faultProxy) kubeconfig(t *testing.T, auth *clientcmdapi.AuthInfo) string {
	if auth == nil {
		auth = &clientcmdapi.AuthInfo{TokenFile: env["KM_E2E_TOKEN_FILE"]}
	}
	return kubeconfigFile(t, p.url(), auth)
}

// plan: the next writes match matches answer these faults, one each, in
// order; the ones after them are forwarded.
func (p *faultProxy) plan(match func(*http.Request) bool, faults ...string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.match, p.faults = match, faults
}

// matched is a copy of the writes the rule matched so far.
func (p *faultProxy) matched() []hit {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]hit(nil), p.hits...)
}

// effective counts the matched writes the API server answered 2xx.
func effective(hits []hit) int {
	n := 0
	for _, h := range hits {
		if h.Status >= 200 && h.Status < 300 {
			n++
		}
	}
	return n
}

// awaitHeld waits until a matched write is held, and returns it.
func (p *faultProxy) awaitHeld(t *testing.T, timeout time.Duration) hit {
	t.Helper()
	select {
	case i := <-p.held:
		return p.matched()[i]
	case <-time.After(timeout):
		t.Fatalf("no write held within %v (matched: %+v)", timeout, p.matched())
	}
	return hit{}
}

func (p *faultProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	if r.Method == http.MethodGet || p.match == nil || !p.match(r) {
		p.mu.Unlock()
		p.rp.ServeHTTP(w, r)
		return
	}
	body, _ := io.ReadAll(r.Body)
	h := hit{At: time.Now(), Method: r.Method, Path: r.URL.Path, Body: string(body), Did: "forwarded"}
	if len(p.faults) > 0 {
		h.Did, p.faults = p.faults[0], p.faults[1:]
	}
	i := len(p.hits)
	p.hits = append(p.hits, h)
	p.mu.Unlock()

	status := func(code int, reason, msg string) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		fmt.Fprintf(w, `{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",`+
			`"message":%q,"reason":%q,"code":%d}`, msg, reason, code)
	}
	switch h.Did {
	case fault429:
		// As API Priority and Fairness throttles: the wait in the
		// header only.
		w.Header().Set("Retry-After", "1")
		status(http.StatusTooManyRequests, "TooManyRequests", "e2e proxy: too many requests, please try again later")
		return
	case fault500:
		status(http.StatusInternalServerError, "InternalError", "e2e proxy: an internal error")
		return
	case faultReset:
		p.reset(w)
		return
	case faultHold:
		p.held <- i
		if what, ok := <-p.release; !ok || what != "forward" {
			p.reset(w)
			return
		}
	}
	// Forwarded, whether or not its caller is still there to hear.
	code, hdr, out, err := p.forward(r, body)
	p.mu.Lock()
	p.hits[i].Status = code
	p.mu.Unlock()
	if err != nil {
		p.reset(w)
		return
	}
	for k, v := range hdr {
		w.Header()[k] = v
	}
	w.WriteHeader(code)
	w.Write(out)
}

// forward sends the write to the API server on a context of its own: a
// write the proxy held is delivered even after its caller died.
func (p *faultProxy) forward(r *http.Request, body []byte) (int, http.Header, []byte, error) {
	u := *p.base
	u.Path, u.RawQuery = r.URL.Path, r.URL.RawQuery
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	q, err := http.NewRequestWithContext(c, r.Method, u.String(), bytes.NewReader(body))
	if err != nil {
		return 0, nil, nil, err
	}
	for _, k := range []string{"Authorization", "Content-Type", "Accept", "User-Agent"} {
		if v := r.Header.Get(k); v != "" {
			q.Header.Set(k, v)
		}
	}
	resp, err := p.hc.Do(q)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, out, err
}

// reset drops the request's connection with a TCP RST: no answer at all.
func (p *faultProxy) reset(w http.ResponseWriter) {
	c, _, err := w.(http.Hijacker).Hijack()
	if err != nil {
		p.t.Errorf("fault proxy: cannot take the connection: %v", err)
		return
	}
	if tc, ok := c.(*tls.Conn); ok {
		if raw, ok := tc.NetConn().(*net.TCPConn); ok {
			raw.SetLinger(0)
			raw.Close()
			return
		}
	}
	c.Close()
}

func isPodDelete(ns, name string) func(*http.Request) bool {
	path := "/api/v1/namespaces/" + ns + "/pods/" + name
	return func(r *http.Request) bool { return r.Method == http.MethodDelete && r.URL.Path == path }
}

func isNodePatch(name string) func(*http.Request) bool {
	path := "/api/v1/nodes/" + name
	return func(r *http.Request) bool { return r.Method == http.MethodPatch && r.URL.Path == path }
}

// ---- following a recovery --------------------------------------------------------

// followRecovery polls the recovery (GetRecovery, through the CLI) every
// 100 ms until it is in phase, failing if it ends in another final one; it
// returns it and every state it was seen in (phase, attempts, answer),
// each once, in order.
func (d *daemon) followRecovery(t *testing.T, id, phase string, timeout time.Duration) (recovery, []recovery) {
	t.Helper()
	final := map[string]bool{"RECOVERY_PHASE_FAILED": true, "RECOVERY_PHASE_VERIFIED": true,
		"RECOVERY_PHASE_NOT_RECOVERED": true, "RECOVERY_PHASE_CANCELLED": true}
	var trail []recovery
	deadline := time.Now().Add(timeout)
	for {
		out, errs, err := d.cli(t, "-o", "json", "recovery", id)
		if err != nil {
			t.Fatalf("kubemedic recovery %s: %v: %s", id, err, errs)
		}
		var r recovery
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			t.Fatalf("kubemedic recovery %s: %v: %s", id, err, out)
		}
		if n := len(trail); n == 0 || trail[n-1].Phase != r.Phase || trail[n-1].Attempts != r.Attempts ||
			trail[n-1].LastError != r.LastError {
			trail = append(trail, r)
		}
		if r.Phase == phase {
			return r, trail
		}
		if final[r.Phase] {
			t.Fatalf("recovery %s ended %s, not %s: %s", id, r.Phase, phase, showTrail(trail))
		}
		if time.Now().After(deadline) {
			t.Fatalf("recovery %s not %s within %v: %s", id, phase, timeout, showTrail(trail))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func showTrail(trail []recovery) string {
	var b strings.Builder
	for _, r := range trail {
		fmt.Fprintf(&b, "\n  %s attempts=%d %q", strings.TrimPrefix(r.Phase, "RECOVERY_PHASE_"), r.Attempts, r.LastError)
	}
	return b.String()
}

// seenAnswer says whether the trail shows, after attempt n, an answer
// holding all of want.
func seenAnswer(trail []recovery, n int, want ...string) bool {
	for _, r := range trail {
		if r.Attempts != n {
			continue
		}
		ok := true
		for _, w := range want {
			ok = ok && strings.Contains(r.LastError, w)
		}
		if ok {
			return true
		}
	}
	return false
}

// historyRow is one event of a recovery's history: the recovery as the
// change left it.
type historyRow struct {
	Phase    int
	Attempts int
	HTTP     int
	Message  string
}

// history reads the recovery's n first events through WatchRecoveries,
// replayed from the oldest (what the database keeps, in order).
func (d *daemon) history(t *testing.T, id string, n int) []historyRow {
	t.Helper()
	var rows []historyRow
	ch := d.watchRecoveries(t, "--from-oldest")
	timeout := time.After(30 * time.Second)
	for len(rows) < n {
		select {
		case ev, ok := <-ch:
			if !ok {
				t.Fatalf("the watch ended after %d events of recovery %s", len(rows), id)
			}
			if ev.Recovery.ID != id {
				continue
			}
			rows = append(rows, historyRow{Phase: phaseNumber[ev.Recovery.Phase],
				Attempts: ev.Recovery.Attempts, HTTP: ev.Recovery.HTTPStatus, Message: ev.Recovery.LastError})
		case <-timeout:
			t.Fatalf("recovery %s: %d events, want %d:%s", id, len(rows), n, showHistory(rows))
		}
	}
	return rows
}

var phaseNumber = map[string]int{
	"RECOVERY_PHASE_REQUESTED": 1, "RECOVERY_PHASE_QUEUED": 2, "RECOVERY_PHASE_DISPATCHED": 3,
	"RECOVERY_PHASE_SUCCEEDED": 4, "RECOVERY_PHASE_FAILED": 5, "RECOVERY_PHASE_VERIFIED": 6,
	"RECOVERY_PHASE_NOT_RECOVERED": 7, "RECOVERY_PHASE_CANCELLED": 8, "RECOVERY_PHASE_SKIPPED": 9,
	"RECOVERY_PHASE_DRY_RUN": 10,
}

// Phase numbers in the database (kubemedic.v1.RecoveryPhase).
const (
	phRequested  = 1
	phQueued     = 2
	phDispatched = 3
	phSucceeded  = 4
	phFailed     = 5
	phVerified   = 6
	phCancelled  = 8
)

func showHistory(rows []historyRow) string {
	var b strings.Builder
	for _, r := range rows {
		fmt.Fprintf(&b, "\n  phase=%d attempts=%d http=%d %q", r.Phase, r.Attempts, r.HTTP, r.Message)
	}
	return b.String()
}

// expectHistory checks the recovery's stored history, event by event:
// phase, attempts and HTTP status (-1: any), and a piece of the message.
// (An event is the row as the change left it: a DISPATCHED one still
// shows the answer to the attempt before, a VERIFIED one the SUCCEEDED's
// status.)
func (d *daemon) expectHistory(t *testing.T, id string, want [][4]any) {
	t.Helper()
	rows := d.history(t, id, len(want))
	ok := len(rows) == len(want)
	for i := 0; ok && i < len(rows); i++ {
		w := want[i]
		ok = rows[i].Phase == w[0].(int) && rows[i].Attempts == w[1].(int) &&
			(w[2].(int) < 0 || rows[i].HTTP == w[2].(int)) && strings.Contains(rows[i].Message, w[3].(string))
	}
	if !ok {
		t.Errorf("recovery %s's history:%s\nwant %v", id, showHistory(rows), want)
	} else {
		t.Logf("recovery %s's history:%s", id, showHistory(rows))
	}
}

// uncordonAtEnd makes the node schedulable when the test ends. A patch, not
// a read and an update: the node changes under a test that made it NotReady
// (its status, the controller manager's taints), and an update's conflict
// left it cordoned for the tests that followed.
func uncordonAtEnd(t *testing.T, cs kubernetes.Interface, node string) {
	t.Cleanup(func() {
		_, err := cs.CoreV1().Nodes().Patch(context.Background(), node, types.MergePatchType,
			[]byte(`{"spec":{"unschedulable":false}}`), metav1.PatchOptions{})
		if err != nil {
			t.Errorf("uncordon %s: %v", node, err)
		}
	})
}

// podGone waits until the pod of that uid is no more (deleted, or another
// of its name).
func podGone(t *testing.T, cs kubernetes.Interface, ns string, pod corev1.Pod, timeout time.Duration) {
	t.Helper()
	waitFor(t, timeout, "pod "+pod.Name+" (uid "+string(pod.UID)+") gone", func() (bool, string, error) {
		p, err := cs.CoreV1().Pods(ns).Get(ctx(t), pod.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return true, "", nil
		}
		if err != nil {
			return false, "", err
		}
		return p.UID != pod.UID, fmt.Sprintf("there, deletionTimestamp %v", p.DeletionTimestamp), nil
	})
}

// expectReplaced checks the Deployment's pods after victim's restart: n
// running, victim's uid not among them, the others of before still there
// (same uid), and none being deleted.
func expectReplaced(t *testing.T, cs kubernetes.Interface, ns, app string, before []corev1.Pod, victim corev1.Pod) {
	t.Helper()
	pods := runningPods(t, cs, ns, app, len(before))
	now := map[string]bool{}
	for _, p := range pods {
		now[string(p.UID)] = true
		if p.DeletionTimestamp != nil {
			t.Errorf("pod %s (uid %s) is being deleted", p.Name, p.UID)
		}
	}
	if now[string(victim.UID)] {
		t.Errorf("pod %s (uid %s) still runs", victim.Name, victim.UID)
	}
	for _, p := range before {
		if p.UID != victim.UID && !now[string(p.UID)] {
			t.Errorf("pod %s (uid %s), not the one restarted, is gone", p.Name, p.UID)
		}
	}
}

const operatorConfig = "auth: {localRole: operator}\n"

// ---- the tests -----------------------------------------------------------------

// A Deployment's pod restarted through 429 (Retry-After 1 s), 500 and a
// dropped connection: four attempts, the answers in its history, one
// DELETE that reached the API server, the replacement left alone.
func TestKubemedicRecoveryFaultsRetriedRestart(t *testing.T) {
	adm := admin(t)
	ns := namespace(t, adm)
	deployment(t, adm, ns, "web", 2)
	pods := runningPods(t, adm, ns, "web", 2)
	victim := pods[0]
	fp := startFaultProxy(t)
	d := startDaemonWith(t, fp.kubeconfig(t, nil), operatorConfig)
	target := "pod/" + ns + "/" + victim.Name
	d.awaitTarget(t, target)
	d.awaitTarget(t, "deployment/"+ns+"/web")

	fp.plan(isPodDelete(ns, victim.Name), fault429, fault500, faultReset)
	asked := time.Now()
	r := d.recover(t, target, "--action", "restart_pod", "--reason", "e2e: faults")
	done, trail := d.followRecovery(t, r.ID, "RECOVERY_PHASE_VERIFIED", 120*time.Second)
	took := time.Since(asked)
	hits := fp.matched()
	t.Logf("recovery %s VERIFIED %v after it was asked for, %d attempts: %q; seen:%s", r.ID,
		took.Round(10*time.Millisecond), done.Attempts, done.LastError, showTrail(trail))
	for i, h := range hits {
		gap := h.At.Sub(asked)
		if i > 0 {
			gap = h.At.Sub(hits[i-1].At)
		}
		t.Logf("write %d: %s %s -> %s %d (+%v)", i+1, h.Method, h.Path, h.Did, h.Status, gap.Round(time.Millisecond))
	}
	if done.Attempts != 4 {
		t.Errorf("attempts %d, want 4 (3 faults + 1)", done.Attempts)
	}
	if len(hits) != 4 || hits[0].Did != fault429 || hits[1].Did != fault500 || hits[2].Did != faultReset ||
		hits[3].Did != "forwarded" || hits[3].Status != http.StatusOK {
		t.Errorf("writes through the proxy: %+v, want 429, 500, reset, then one forwarded (200)", hits)
	} else if gap := hits[1].At.Sub(hits[0].At); gap < 950*time.Millisecond {
		t.Errorf("the retry after the 429 came %v after it, before its Retry-After (1 s)", gap)
	}
	if n := effective(hits); n != 1 {
		t.Errorf("%d writes took effect, want 1", n)
	}
	for _, h := range hits {
		if !strings.Contains(h.Body, string(victim.UID)) {
			t.Errorf("a DELETE without the pod's uid as precondition: %s", h.Body)
		}
	}
	// The answers, as GetRecovery showed them between the attempts.
	if !seenAnswer(trail, 1, "throttling", "e2e proxy: too many requests") ||
		!seenAnswer(trail, 2, "HTTP 500", "e2e proxy: an internal error") ||
		!seenAnswer(trail, 3, "no answer") {
		t.Errorf("the answers are not in what GetRecovery showed:%s", showTrail(trail))
	}
	if !strings.Contains(done.LastError, "deployment/"+ns+"/web has a new pod") {
		t.Errorf("verified with %q", done.LastError)
	}
	d.expectHistory(t, r.ID, [][4]any{
		{phRequested, 0, 0, ""},
		{phQueued, 0, 0, ""},
		{phDispatched, 1, 0, ""},
		{phQueued, 1, 429, "throttling"},
		{phDispatched, 2, -1, ""},
		{phQueued, 2, 500, "HTTP 500"},
		{phDispatched, 3, -1, ""},
		{phQueued, 3, 0, "no answer"},
		{phDispatched, 4, -1, ""},
		{phSucceeded, 4, 200, "done (HTTP 200)"},
		{phVerified, 4, -1, "has a new pod"},
	})
	// Listed as it ended.
	out, errs, err := d.cli(t, "-o", "json", "recoveries", target)
	var list []recovery
	if err != nil || json.Unmarshal([]byte(out), &list) != nil || len(list) != 1 ||
		list[0].Phase != "RECOVERY_PHASE_VERIFIED" || list[0].Attempts != 4 {
		t.Errorf("recoveries %s: %v %s %s", target, err, errs, out)
	}
	podGone(t, adm, ns, victim, 30*time.Second)
	expectReplaced(t, adm, ns, "web", pods, victim)
	if n := len(fp.matched()); n != len(hits) {
		t.Errorf("%d more DELETEs after the recovery was verified", n-len(hits))
	}
}

// A node cordoned through the same faults: four attempts, one PATCH that
// reached the API server.
func TestKubemedicRecoveryFaultsRetriedCordon(t *testing.T) {
	adm := admin(t)
	node := lastNode()
	target := "node//" + node
	uncordonAtEnd(t, adm, node)
	fp := startFaultProxy(t)
	d := startDaemonWith(t, fp.kubeconfig(t, nil), operatorConfig)
	d.awaitTarget(t, target)

	fp.plan(isNodePatch(node), fault429, fault500, faultReset)
	asked := time.Now()
	r := d.recover(t, target, "--action", "cordon", "--reason", "e2e: faults")
	done, trail := d.followRecovery(t, r.ID, "RECOVERY_PHASE_VERIFIED", 90*time.Second)
	hits := fp.matched()
	t.Logf("recovery %s VERIFIED %v after it was asked for, %d attempts: %q; seen:%s", r.ID,
		time.Since(asked).Round(10*time.Millisecond), done.Attempts, done.LastError, showTrail(trail))
	if done.Attempts != 4 {
		t.Errorf("attempts %d, want 4 (3 faults + 1)", done.Attempts)
	}
	if len(hits) != 4 || hits[3].Did != "forwarded" || hits[3].Status != http.StatusOK {
		t.Errorf("writes through the proxy: %+v, want 429, 500, reset, then one forwarded (200)", hits)
	}
	if n := effective(hits); n != 1 {
		t.Errorf("%d writes took effect, want 1", n)
	}
	if !seenAnswer(trail, 1, "throttling") || !seenAnswer(trail, 2, "HTTP 500") || !seenAnswer(trail, 3, "no answer") {
		t.Errorf("the answers are not in what GetRecovery showed:%s", showTrail(trail))
	}
	d.expectHistory(t, r.ID, [][4]any{
		{phRequested, 0, 0, ""},
		{phQueued, 0, 0, ""},
		{phDispatched, 1, 0, ""},
		{phQueued, 1, 429, "throttling"},
		{phDispatched, 2, -1, ""},
		{phQueued, 2, 500, "HTTP 500"},
		{phDispatched, 3, -1, ""},
		{phQueued, 3, 0, "no answer"},
		{phDispatched, 4, -1, ""},
		{phSucceeded, 4, 200, "done (HTTP 200)"},
		{phVerified, 4, -1, "node is unschedulable"},
	})
	if n, err := adm.CoreV1().Nodes().Get(ctx(t), node, metav1.GetOptions{}); err != nil || !n.Spec.Unschedulable {
		t.Errorf("node %s not cordoned: %v", node, err)
	}
}

// kubemedicd is SIGKILLed while its DELETE is in flight (DISPATCHED is
// committed; the proxy holds the request). The DELETE then reaches the
// API server after all, with nobody to hear the answer. Started again on
// the same database, kubemedicd takes the recovery back and sends it again:
// the pod of that uid is gone, the second DELETE is answered 404 (GONE),
// and the Deployment's new pod verifies it. One DELETE took effect.
func TestKubemedicRecoveryFaultsKilledWhileDispatched(t *testing.T) {
	adm := admin(t)
	ns := namespace(t, adm)
	deployment(t, adm, ns, "web", 2)
	pods := runningPods(t, adm, ns, "web", 2)
	victim := pods[0]
	fp := startFaultProxy(t)
	kc := fp.kubeconfig(t, nil)
	dir := t.TempDir()
	d := startDaemonIn(t, dir, kc, operatorConfig)
	target := "pod/" + ns + "/" + victim.Name
	d.awaitTarget(t, target)
	d.awaitTarget(t, "deployment/"+ns+"/web")

	fp.plan(isPodDelete(ns, victim.Name), faultHold)
	r := d.recover(t, target, "--action", "restart_pod", "--reason", "e2e: killed")
	fp.awaitHeld(t, 30*time.Second)
	d.followRecovery(t, r.ID, "RECOVERY_PHASE_DISPATCHED", 10*time.Second)
	d.kill(t)
	killed := time.Now()
	fp.release <- "forward"
	podGone(t, adm, ns, victim, 60*time.Second)

	d2 := startDaemonIn(t, dir, kc, operatorConfig)
	done, trail := d2.followRecovery(t, r.ID, "RECOVERY_PHASE_VERIFIED", 150*time.Second)
	hits := fp.matched()
	t.Logf("recovery %s VERIFIED %v after kubemedicd was killed, %d attempts: %q; seen:%s", r.ID,
		time.Since(killed).Round(10*time.Millisecond), done.Attempts, done.LastError, showTrail(trail))
	for i, h := range hits {
		t.Logf("write %d: %s %s -> %s %d", i+1, h.Method, h.Path, h.Did, h.Status)
	}
	// The attempt that was in flight is the one sent again: one attempt.
	if done.Attempts != 1 {
		t.Errorf("attempts %d, want 1 (the one in flight, sent again)", done.Attempts)
	}
	if len(hits) != 2 || hits[0].Did != faultHold || hits[0].Status != http.StatusOK ||
		hits[1].Did != "forwarded" || hits[1].Status != http.StatusNotFound {
		t.Errorf("writes through the proxy: %+v, want the held one (200) and the one sent again (404)", hits)
	}
	if n := effective(hits); n != 1 {
		t.Errorf("%d writes took effect, want 1", n)
	}
	if !seenAnswer(trail, 1, "already gone") && !seenAnswer(trail, 1, "has a new pod") {
		t.Errorf("the answer is not in what GetRecovery showed:%s", showTrail(trail))
	}
	d2.expectHistory(t, r.ID, [][4]any{
		{phRequested, 0, 0, ""},
		{phQueued, 0, 0, ""},
		{phDispatched, 1, 0, ""},
		{phSucceeded, 1, 404, "already gone"},
		{phVerified, 1, -1, "has a new pod"},
	})
	expectReplaced(t, adm, ns, "web", pods, victim)
}

// With the proxy holding recovery A's PATCH (DISPATCHED), a second
// recovery of the same node waits (QUEUED: one at a time per target) and
// is cancelled: CANCELLED, no attempt, and its PATCH never sent. A, being
// dispatched, cannot be cancelled: FAILED_PRECONDITION naming its phase.
func TestKubemedicRecoveryFaultsCancelBeforeDispatch(t *testing.T) {
	adm := admin(t)
	node := lastNode()
	target := "node//" + node
	uncordonAtEnd(t, adm, node)
	fp := startFaultProxy(t)
	d := startDaemonWith(t, fp.kubeconfig(t, nil), operatorConfig)
	d.awaitTarget(t, target)

	fp.plan(isNodePatch(node), faultHold)
	a := d.recover(t, target, "--action", "cordon", "--reason", "e2e: first")
	fp.awaitHeld(t, 30*time.Second)
	d.followRecovery(t, a.ID, "RECOVERY_PHASE_DISPATCHED", 10*time.Second)

	b := d.recover(t, target, "--action", "cordon", "--reason", "e2e: second")
	d.followRecovery(t, b.ID, "RECOVERY_PHASE_QUEUED", 10*time.Second)
	out, errs, err := d.cli(t, "-o", "json", "cancel", b.ID, "--reason", "e2e: not needed")
	if err != nil {
		t.Fatalf("cancel %s: %v: %s", b.ID, err, errs)
	}
	var c recovery
	if err := json.Unmarshal([]byte(out), &c); err != nil {
		t.Fatal(err)
	}
	if c.Phase != "RECOVERY_PHASE_CANCELLED" || c.Attempts != 0 || !strings.Contains(c.LastError, "e2e: not needed") {
		t.Errorf("cancelled: %+v", c)
	}
	_, errs, err = d.cli(t, "cancel", a.ID, "--reason", "e2e: too late")
	if err == nil || !strings.Contains(errs, "FAILED_PRECONDITION") || !strings.Contains(strings.ToLower(errs), "is dispatched") {
		t.Errorf("cancel of a dispatched recovery: %v: %s", err, errs)
	}

	fp.release <- "forward"
	d.followRecovery(t, a.ID, "RECOVERY_PHASE_VERIFIED", 60*time.Second)
	// Recoveries of a target run in order: one asked for now runs after
	// whatever the engine still held of the cancelled one.
	u := d.recover(t, target, "--action", "uncordon", "--reason", "e2e: undo")
	d.followRecovery(t, u.ID, "RECOVERY_PHASE_VERIFIED", 60*time.Second)

	c, _ = d.followRecovery(t, b.ID, "RECOVERY_PHASE_CANCELLED", time.Second)
	if c.Attempts != 0 {
		t.Errorf("the cancelled recovery has %d attempts", c.Attempts)
	}
	d.expectHistory(t, b.ID, [][4]any{{phRequested, 0, 0, ""}, {phQueued, 0, 0, ""}, {phCancelled, 0, 0, "e2e: not needed"}})
	hits := fp.matched()
	cordons := 0
	for _, h := range hits {
		t.Logf("write: %s %s %s -> %s %d", h.Method, h.Path, h.Body, h.Did, h.Status)
		if strings.Contains(h.Body, `"unschedulable":true`) {
			cordons++
		}
	}
	if cordons != 1 || len(hits) != 2 {
		t.Errorf("%d cordon PATCHes of %d writes, want 1 of 2 (the first recovery's, then the uncordon)", cordons, len(hits))
	}
}

// The ServiceAccount may read nodes but not patch them: the cordon is
// refused 403, FAILED after one attempt with the API server's message, and
// not tried again.
func TestKubemedicRecoveryFaultsForbidden(t *testing.T) {
	adm := admin(t)
	node := lastNode()
	target := "node//" + node
	uncordonAtEnd(t, adm, node)
	kc := serviceAccount(t, adm, "kubemedic-nopatch", kubemedicReadRules)
	// The same identity, through the proxy, to count its writes.
	sa, err := os.ReadFile(kc)
	if err != nil {
		t.Fatal(err)
	}
	fp := startFaultProxy(t)
	kc2 := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(kc2, []byte(strings.Replace(string(sa), env["KM_E2E_APISERVER"], fp.url(), 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	d := startDaemonWith(t, kc2, operatorConfig)
	d.awaitTarget(t, target)

	fp.plan(isNodePatch(node))
	r := d.recover(t, target, "--action", "cordon", "--reason", "e2e: forbidden")
	done, trail := d.followRecovery(t, r.ID, "RECOVERY_PHASE_FAILED", 30*time.Second)
	t.Logf("recovery %s FAILED, %d attempts: %q; seen:%s", r.ID, done.Attempts, done.LastError, showTrail(trail))
	if done.Attempts != 1 {
		t.Errorf("attempts %d, want 1: a 403 is not retried", done.Attempts)
	}
	if !strings.Contains(done.LastError, "HTTP 403") || !strings.Contains(done.LastError, "cannot patch resource \"nodes\"") ||
		!strings.Contains(done.LastError, "kubemedic-nopatch") {
		t.Errorf("the failure does not carry the 403's message: %q", done.LastError)
	}
	hits := fp.matched()
	if len(hits) != 1 || hits[0].Status != http.StatusForbidden {
		t.Errorf("writes through the proxy: %+v, want one, answered 403", hits)
	}
	d.expectHistory(t, r.ID, [][4]any{
		{phRequested, 0, 0, ""},
		{phQueued, 0, 0, ""},
		{phDispatched, 1, 0, ""},
		{phFailed, 1, 403, "HTTP 403"},
	})
	if n, err := adm.CoreV1().Nodes().Get(ctx(t), node, metav1.GetOptions{}); err != nil || n.Spec.Unschedulable {
		t.Errorf("node %s cordoned: %v", node, err)
	}
}

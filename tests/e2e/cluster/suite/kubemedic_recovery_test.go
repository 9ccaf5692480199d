package suite

// Recovery on the real control plane: kubemedic restarts a Deployment's
// pod (its uid as precondition) and sees the Deployment healthy again,
// cordons and uncordons a node, records a dry run without touching the
// cluster, answers a repeated idempotency key with the recovery it made
// first, and refuses a viewer and a request that does not fit its target.

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
)

type recovery struct {
	ID         string `json:"id"`
	Target     string `json:"target"`
	TargetUID  string `json:"targetUid"`
	Action     string `json:"action"`
	Reason     string `json:"reason"`
	Phase      string `json:"phase"`
	Attempts   int    `json:"attempts"`
	LastError  string `json:"lastError"`
	HTTPStatus int    `json:"httpStatus"`
	Requester  string `json:"requester"`
	DryRun     bool   `json:"dryRun"`
	// When it was recorded, and when its phase last changed (for a
	// final one: when it ended).
	CreateTime time.Time `json:"createTime"`
	UpdateTime time.Time `json:"updateTime"`
}

// kubemedic runs the CLI against d; its stdout, stderr and error.
func (d *daemon) cli(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	cmd := exec.Command(binary(t, "KM_KUBEMEDIC"), append([]string{"-s", d.addr}, args...)...)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	return out.String(), errb.String(), err
}

func (d *daemon) recover(t *testing.T, args ...string) recovery {
	t.Helper()
	out, errs, err := d.cli(t, append([]string{"-o", "json", "recover"}, args...)...)
	if err != nil {
		t.Fatalf("kubemedic recover %v: %v: %s", args, err, errs)
	}
	var r recovery
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("kubemedic recover %v: %v: %s", args, err, out)
	}
	return r
}

// awaitPhase polls the recovery until it is in phase (failing at once if it
// ends in another final one).
func (d *daemon) awaitPhase(t *testing.T, id, phase string, timeout time.Duration) recovery {
	t.Helper()
	var r recovery
	final := map[string]bool{"RECOVERY_PHASE_FAILED": true, "RECOVERY_PHASE_VERIFIED": true,
		"RECOVERY_PHASE_NOT_RECOVERED": true, "RECOVERY_PHASE_CANCELLED": true,
		"RECOVERY_PHASE_SKIPPED": true, "RECOVERY_PHASE_DRY_RUN": true}
	waitFor(t, timeout, "recovery "+id+" "+phase, func() (bool, string, error) {
		out, errs, err := d.cli(t, "-o", "json", "recovery", id)
		if err != nil {
			return false, "", fmt.Errorf("%v: %s", err, errs)
		}
		r = recovery{}
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			return false, "", err
		}
		if r.Phase != phase && final[r.Phase] {
			return false, "", fmt.Errorf("ended %s: %s", r.Phase, r.LastError)
		}
		return r.Phase == phase, fmt.Sprintf("%s (%d attempts, %q)", r.Phase, r.Attempts, r.LastError), nil
	})
	return r
}

type recoveryEvent struct {
	Sequence string   `json:"sequence"`
	Recovery recovery `json:"recovery"`
}

// watchRecoveries follows `kubemedic recoveries -w ARGS...`.
func (d *daemon) watchRecoveries(t *testing.T, args ...string) <-chan recoveryEvent {
	t.Helper()
	args = append([]string{"-s", d.addr, "-o", "json", "recoveries", "-w"}, args...)
	cmd := exec.Command(binary(t, "KM_KUBEMEDIC"), args...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	ch := make(chan recoveryEvent, 256)
	go func() {
		defer close(ch)
		dec := json.NewDecoder(out)
		for {
			var ev recoveryEvent
			if err := dec.Decode(&ev); err != nil {
				return
			}
			ch <- ev
		}
	}()
	return ch
}

// phasesOf reads events of recovery id until it reaches last, and returns
// their phases in order (and the first one's sequence).
func phasesOf(t *testing.T, ch <-chan recoveryEvent, id, last string) ([]string, string) {
	t.Helper()
	var phases []string
	first := ""
	timeout := time.After(60 * time.Second)
	for {
		select {
		case ev, ok := <-ch:
			if !ok {
				t.Fatalf("the watch ended; phases so far %v", phases)
			}
			if ev.Recovery.ID != id {
				continue
			}
			if first == "" {
				first = ev.Sequence
			}
			phases = append(phases, ev.Recovery.Phase)
			if ev.Recovery.Phase == last {
				return phases, first
			}
		case <-timeout:
			t.Fatalf("recovery %s: phases %v, not %s", id, phases, last)
		}
	}
}

func deployment(t *testing.T, cs kubernetes.Interface, ns, name string, replicas int32) {
	t.Helper()
	deploymentWith(t, cs, ns, name, replicas, nil)
}

// deploymentWith is deployment with annotations on its pod template (so on
// every pod it makes, replacements and rollouts too).
func deploymentWith(t *testing.T, cs kubernetes.Interface, ns, name string, replicas int32, annotations map[string]string) {
	t.Helper()
	lbl := map[string]string{"app": name}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: lbl},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: lbl, Annotations: annotations},
				Spec: corev1.PodSpec{Containers: []corev1.Container{
					{Name: "app", Image: "registry.example/app:1"},
				}},
			},
		},
	}
	if _, err := cs.AppsV1().Deployments(ns).Create(ctx(t), d, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// awaitTarget waits until kubemedicd has made the target.
func (d *daemon) awaitTarget(t *testing.T, name string) {
	t.Helper()
	waitFor(t, 30*time.Second, "target "+name, func() (bool, string, error) {
		out, _, err := d.cli(t, "status", name)
		return err == nil, out, nil
	})
}

func TestKubemedicRecoveryRestartsAPod(t *testing.T) {
	adm := admin(t)
	ns := namespace(t, adm)
	deployment(t, adm, ns, "web", 2)
	pods := runningPods(t, adm, ns, "web", 2)
	d := startDaemonWith(t, env["KM_E2E_KUBECONFIG"], "auth: {localRole: operator}\n")
	victim := pods[0]
	target := "pod/" + ns + "/" + victim.Name
	d.awaitTarget(t, target)
	d.awaitTarget(t, "deployment/"+ns+"/web")

	// A dry run first: it checks everything and changes nothing. In this
	// fresh database its event is sequence 1, so a watch resumed from 1
	// misses nothing that follows, however late it is established.
	other := pods[1]
	dry := d.recover(t, "pod/"+ns+"/"+other.Name, "--action", "restart_pod", "--reason", "e2e: dry", "--dry-run")
	if dry.Phase != "RECOVERY_PHASE_DRY_RUN" || !dry.DryRun {
		t.Errorf("dry run: %+v", dry)
	}
	live := d.watchRecoveries(t, "--since-sequence", "1")
	r := d.recover(t, target, "--action", "restart_pod", "--reason", "e2e: stuck", "--idempotency-key", "k-"+ns)
	if r.TargetUID != string(victim.UID) || r.Action != "RECOVERY_ACTION_RESTART_POD" {
		t.Fatalf("recovery %+v: want uid %s", r, victim.UID)
	}
	again := d.recover(t, target, "--action", "restart_pod", "--reason", "e2e: stuck", "--idempotency-key", "k-"+ns)
	if again.ID != r.ID {
		t.Errorf("the same idempotency key made recovery %s, then %s", r.ID, again.ID)
	}
	asked := time.Now()
	done := d.awaitPhase(t, r.ID, "RECOVERY_PHASE_VERIFIED", 90*time.Second)
	if done.Attempts != 1 {
		t.Errorf("attempts %d, want 1", done.Attempts)
	}
	t.Logf("recovery %s VERIFIED %v after it was asked for: %q", r.ID,
		time.Since(asked).Round(10*time.Millisecond), done.LastError)
	// The pod of that uid is gone; its Deployment has two running again.
	p, err := adm.CoreV1().Pods(ns).Get(ctx(t), victim.Name, metav1.GetOptions{})
	if err == nil && p.UID == victim.UID && p.DeletionTimestamp == nil {
		t.Errorf("pod %s (uid %s) still there", victim.Name, victim.UID)
	} else if err != nil && !apierrors.IsNotFound(err) {
		t.Fatal(err)
	}
	runningPods(t, adm, ns, "web", 2)
	// Neither the restart nor the dry run touched the other pod.
	if p, err := adm.CoreV1().Pods(ns).Get(ctx(t), other.Name, metav1.GetOptions{}); err != nil ||
		p.UID != other.UID || p.DeletionTimestamp != nil {
		t.Errorf("pod %s was touched: %v", other.Name, err)
	}

	if !strings.Contains(done.LastError, "deployment/"+ns+"/web has a new pod") {
		t.Errorf("verified with %q", done.LastError)
	}
	// Every step, live, in order; and again replayed from the first.
	want := []string{"RECOVERY_PHASE_REQUESTED", "RECOVERY_PHASE_QUEUED", "RECOVERY_PHASE_DISPATCHED",
		"RECOVERY_PHASE_SUCCEEDED", "RECOVERY_PHASE_VERIFIED"}
	phases, first := phasesOf(t, live, r.ID, "RECOVERY_PHASE_VERIFIED")
	if strings.Join(phases, " ") != strings.Join(want, " ") {
		t.Errorf("live phases %v, want %v", phases, want)
	}
	replayed, _ := phasesOf(t, d.watchRecoveries(t, target, "--since-sequence", first), r.ID,
		"RECOVERY_PHASE_VERIFIED")
	if strings.Join(replayed, " ") != strings.Join(want[1:], " ") {
		t.Errorf("replayed after %s: %v, want %v", first, replayed, want[1:])
	}

	// A rollout restart, as kubectl does it: every pod replaced.
	rr := d.recover(t, "deployment/"+ns+"/web", "--action", "rollout_restart", "--reason", "e2e: roll")
	d.awaitPhase(t, rr.ID, "RECOVERY_PHASE_VERIFIED", 90*time.Second)
	dep, err := adm.AppsV1().Deployments(ns).Get(ctx(t), "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if at := dep.Spec.Template.Annotations["kubectl.kubernetes.io/restartedAt"]; at == "" {
		t.Errorf("no restartedAt on the template: %v", dep.Spec.Template.Annotations)
	} else if _, err := time.Parse(time.RFC3339, at); err != nil {
		t.Errorf("restartedAt %q: %v", at, err)
	}
	for _, p := range runningPods(t, adm, ns, "web", 2) {
		if p.UID == other.UID {
			t.Errorf("pod %s outlived the rollout restart", p.Name)
		}
	}

	// Listed, newest first, with the requester.
	out, errs, err := d.cli(t, "-o", "json", "recoveries", target)
	if err != nil {
		t.Fatalf("recoveries: %v: %s", err, errs)
	}
	var list []recovery
	if err := json.Unmarshal([]byte(out), &list); err != nil || len(list) != 1 || list[0].ID != r.ID ||
		list[0].Requester == "" {
		t.Errorf("recoveries of %s: %v %s", target, err, out)
	}

	// What does not fit is refused, and says why.
	_, errs, err = d.cli(t, "recover", target, "--action", "cordon", "--reason", "wrong")
	if err == nil || !strings.Contains(errs, "INVALID_ARGUMENT") || !strings.Contains(errs, "applies to nodes") {
		t.Errorf("cordon of a pod: %v: %s", err, errs)
	}
	_, errs, err = d.cli(t, "recover", "pod/"+ns+"/nope", "--action", "restart_pod", "--reason", "gone")
	if err == nil || !strings.Contains(errs, "NOT_FOUND") {
		t.Errorf("restart of a pod that is not there: %v: %s", err, errs)
	}
	_, errs, err = d.cli(t, "recover", target, "--action", "restart_pod")
	if err == nil || !strings.Contains(errs, "--reason") {
		t.Errorf("no reason: %v: %s", err, errs)
	}
}

func TestKubemedicRecoveryCordonsANode(t *testing.T) {
	adm := admin(t)
	d := startDaemonWith(t, env["KM_E2E_KUBECONFIG"], "auth: {localRole: operator}\n")
	node := "kubesim-node-2"
	target := "node//" + node
	d.awaitTarget(t, target)
	t.Cleanup(func() {
		n, err := adm.CoreV1().Nodes().Get(ctx(t), node, metav1.GetOptions{})
		if err == nil && n.Spec.Unschedulable {
			n.Spec.Unschedulable = false
			adm.CoreV1().Nodes().Update(ctx(t), n, metav1.UpdateOptions{})
		}
	})
	r := d.recover(t, target, "--action", "cordon", "--reason", "e2e: cordon")
	d.awaitPhase(t, r.ID, "RECOVERY_PHASE_VERIFIED", 60*time.Second)
	n, err := adm.CoreV1().Nodes().Get(ctx(t), node, metav1.GetOptions{})
	if err != nil || !n.Spec.Unschedulable {
		t.Fatalf("node %s not cordoned: %v", node, err)
	}
	r = d.recover(t, target, "--action", "uncordon", "--reason", "e2e: uncordon")
	d.awaitPhase(t, r.ID, "RECOVERY_PHASE_VERIFIED", 60*time.Second)
	if n, err = adm.CoreV1().Nodes().Get(ctx(t), node, metav1.GetOptions{}); err != nil || n.Spec.Unschedulable {
		t.Fatalf("node %s still cordoned: %v", node, err)
	}
}

func TestKubemedicRecoveryRefusesAViewer(t *testing.T) {
	d := startDaemon(t) // the local caller is a viewer
	_, errs, err := d.cli(t, "recover", "node//kubesim-node-1", "--action", "cordon", "--reason", "not mine")
	if err == nil || !strings.Contains(errs, "PERMISSION_DENIED") {
		t.Errorf("a viewer's recovery: %v: %s", err, errs)
	}
	out, _, err := d.cli(t, "-o", "json", "recoveries")
	if err != nil || strings.TrimSpace(out) != "[]" {
		t.Errorf("a refused request made a recovery: %v %s", err, out)
	}
}

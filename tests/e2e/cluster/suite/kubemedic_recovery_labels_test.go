package suite

// A policy's label selector matches a Kubernetes object's own labels
// (metadata.labels, as the cluster's cache keeps them): of two crash-looping
// Deployments' pods, only the one the selector names is restarted. The
// policies are readable through the API as configured.

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

type policy struct {
	Name          string   `json:"name"`
	Kinds         []string `json:"kinds"`
	Namespaces    []string `json:"namespaces"`
	LabelSelector string   `json:"labelSelector"`
	Reasons       []string `json:"reasons"`
	Ladder        []string `json:"ladder"`
	EscalateAfter int      `json:"escalateAfter"`
	MaxAttempts   int      `json:"maxAttempts"`
}

func TestKubemedicRecoveryPolicyMatchesObjectLabels(t *testing.T) {
	adm := admin(t)
	ns := namespace(t, adm)
	deployment(t, adm, ns, "web", 1)
	deployment(t, adm, ns, "api", 1)
	web := runningPods(t, adm, ns, "web", 1)[0]
	api := runningPods(t, adm, ns, "api", 1)[0]
	d := startDaemonWith(t, env["KM_E2E_KUBECONFIG"], "auth: {localRole: operator}\n"+
		"recovery:\n  policies:\n    - name: web-crashloop\n"+
		"      match: {kinds: [pod], namespaces: ["+ns+"], labelSelector: app=web}\n"+
		"      trigger: {reasons: [CrashLoopBackOff]}\n"+
		"      action: restart_pod\n")

	out, errs, err := d.cli(t, "-o", "json", "policies")
	if err != nil {
		t.Fatalf("policies: %v: %s", err, errs)
	}
	var got struct {
		Policies []policy `json:"policies"`
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("policies: %v: %s", err, out)
	}
	if len(got.Policies) != 1 || got.Policies[0].Name != "web-crashloop" ||
		got.Policies[0].LabelSelector != "app=web" ||
		strings.Join(got.Policies[0].Kinds, ",") != "TARGET_KIND_POD" ||
		strings.Join(got.Policies[0].Ladder, ",") != "RECOVERY_ACTION_RESTART_POD" ||
		strings.Join(got.Policies[0].Namespaces, ",") != ns {
		t.Errorf("policies as served: %s", out)
	}

	webT, apiT := "pod/"+ns+"/"+web.Name, "pod/"+ns+"/"+api.Name
	d.awaitTarget(t, webT)
	d.awaitTarget(t, apiT)
	for _, p := range []string{api.Name, web.Name} {
		crashLoop(t, ns, p)
	}
	// Both crash-loop; the policy's trigger holds for both at once. The
	// web pod's recovery runs its course; by its end the api pod, had
	// the selector matched it, would have had one too.
	r := d.awaitRecoveryOf(t, webT, 60*time.Second)
	if r.Requester != "policy:web-crashloop" || r.Action != "RECOVERY_ACTION_RESTART_POD" {
		t.Errorf("the policy's recovery: %+v", r)
	}
	d.awaitPhase(t, r.ID, "RECOVERY_PHASE_VERIFIED", 90*time.Second)
	if list := d.recoveriesOf(t, apiT); len(list) != 0 {
		t.Errorf("a pod the selector does not match was acted on: %+v", list)
	}
	st, _, _ := d.cli(t, "status", apiT)
	if !strings.Contains(st, "CrashLoopBackOff") {
		t.Errorf("the api pod is not crash-looping (the absence proves nothing): %s", st)
	}
}

package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"math/rand"
	"os"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/utils/ptr"
)

// podlist writes a PodList of N pods, and optionally a watch stream of M
// events, encoded as the API server encodes them: JSON (application/json)
// and Kubernetes protobuf (application/vnd.kubernetes.protobuf: "k8s\0" and
// a runtime.Unknown around the object). The encoders are apimachinery's own,
// from client-go's scheme, so the bytes are those a real list or watch
// returns. The pods look like a Deployment's after the scheduler and the
// kubelet have seen them, managedFields included (bench/kube_decode.sh).
// The same seed gives the same bytes.
func cmdPodlist(args []string) error {
	fs := flag.NewFlagSet("podlist", flag.ContinueOnError)
	n := fs.Int("pods", 30000, "pods in the list")
	jsonOut := fs.String("json", "", "write the list as JSON to FILE")
	protoOut := fs.String("proto", "", "write the list as protobuf to FILE")
	events := fs.Int("watch-events", 1000, "events in the watch streams")
	watchJSON := fs.String("watch-json", "", "write a watch stream (newline-delimited JSON) to FILE")
	watchProto := fs.String("watch-proto", "", "write a watch stream (length-prefixed protobuf frames) to FILE")
	seed := fs.Int64("seed", 1, "random seed")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *n < 1 || *events < 1 {
		return errors.New("--pods and --watch-events must be at least 1")
	}
	g := &podGen{rnd: rand.New(rand.NewSource(*seed)),
		now: time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)}
	list := &corev1.PodList{ListMeta: metav1.ListMeta{ResourceVersion: "48213377"}}
	for i := 0; i < *n; i++ {
		list.Items = append(list.Items, g.pod(i))
	}
	gv := corev1.SchemeGroupVersion
	for _, out := range []struct{ path, media string }{
		{*jsonOut, "application/json"},
		{*protoOut, "application/vnd.kubernetes.protobuf"},
	} {
		if out.path == "" {
			continue
		}
		info, ok := runtime.SerializerInfoForMediaType(scheme.Codecs.SupportedMediaTypes(), out.media)
		if !ok {
			return fmt.Errorf("no serializer for %s", out.media)
		}
		var b bytes.Buffer
		if err := scheme.Codecs.EncoderForVersion(info.Serializer, gv).Encode(list, &b); err != nil {
			return err
		}
		if err := os.WriteFile(out.path, b.Bytes(), 0o644); err != nil {
			return err
		}
	}
	// A watch stream as the API server's watch handler writes it: each
	// event a metav1.WatchEvent whose object is encoded by the media type's
	// own serializer, the events framed by its stream serializer.
	for _, out := range []struct{ path, media string }{
		{*watchJSON, "application/json"},
		{*watchProto, "application/vnd.kubernetes.protobuf"},
	} {
		if out.path == "" {
			continue
		}
		info, ok := runtime.SerializerInfoForMediaType(scheme.Codecs.SupportedMediaTypes(), out.media)
		if !ok || info.StreamSerializer == nil {
			return fmt.Errorf("no stream serializer for %s", out.media)
		}
		embedded := scheme.Codecs.EncoderForVersion(info.Serializer, gv)
		// As the watch handler does: the event is not converted, and
		// carries no kind of its own.
		stream := info.StreamSerializer.Serializer
		var b bytes.Buffer
		w := info.StreamSerializer.Framer.NewFrameWriter(&b)
		for i := 0; i < *events; i++ {
			p := list.Items[i%len(list.Items)].DeepCopy()
			p.ResourceVersion = fmt.Sprint(48213378 + i)
			var obj bytes.Buffer
			if err := embedded.Encode(p, &obj); err != nil {
				return err
			}
			ev := &metav1.WatchEvent{Type: "MODIFIED", Object: runtime.RawExtension{Raw: obj.Bytes()}}
			if err := stream.Encode(ev, w); err != nil {
				return err
			}
		}
		if err := os.WriteFile(out.path, b.Bytes(), 0o644); err != nil {
			return err
		}
	}
	return nil
}

type podGen struct {
	rnd *rand.Rand
	now time.Time
}

const alnum = "bcdfghjklmnpqrstvwxz2456789"

func (g *podGen) word(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = alnum[g.rnd.Intn(len(alnum))]
	}
	return string(b)
}

func (g *podGen) uid() types.UID {
	const hex = "0123456789abcdef"
	b := []byte("xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx")
	for i, c := range b {
		if c == 'x' || c == 'y' {
			b[i] = hex[g.rnd.Intn(16)]
		}
	}
	return types.UID(b)
}

var (
	podNamespaces = []string{"shop", "payments", "search", "monitoring", "default", "ingress"}
	podApps       = []string{"cart", "checkout", "catalog", "frontend", "api", "worker", "indexer", "auth"}
	podImages     = []string{"registry.example.com/shop/%s:v1.%d.3", "ghcr.io/example/%s:2026.%d", "docker.io/library/%s:1.%d-alpine"}
	sidecars      = []string{"envoy", "log-shipper"}
)

// pod i: deployment i/1000 of namespace (i/1000)%6, replica i%1000.
func (g *podGen) pod(i int) corev1.Pod {
	r := g.rnd
	dep := i / 1000
	ns := podNamespaces[dep%len(podNamespaces)]
	app := fmt.Sprintf("%s-%d", podApps[dep%len(podApps)], dep)
	hash := fmt.Sprintf("%010x", 0x5d4c3b2a1+dep*7919)
	rsName := app + "-" + hash
	name := rsName + "-" + g.word(5)
	created := g.now.Add(-time.Duration(r.Intn(86400*30)) * time.Second)
	started := created.Add(time.Duration(1+r.Intn(5)) * time.Second)
	node := fmt.Sprintf("worker-%04d", r.Intn(1000))
	podIP := fmt.Sprintf("10.%d.%d.%d", 64+r.Intn(64), r.Intn(256), 1+r.Intn(254))
	hostIP := fmt.Sprintf("192.168.%d.%d", r.Intn(4), 1+r.Intn(254))
	labels := map[string]string{
		"app":                       app,
		"app.kubernetes.io/name":    podApps[dep%len(podApps)],
		"app.kubernetes.io/part-of": ns,
		"app.kubernetes.io/version": fmt.Sprintf("1.%d.3", dep%20),
		"pod-template-hash":         hash,
		"tier":                      []string{"frontend", "backend", "batch"}[dep%3],
	}
	ncont := 1 + r.Intn(2)
	if r.Intn(6) == 0 {
		ncont = 3
	}
	var containers []corev1.Container
	var statuses []corev1.ContainerStatus
	allReady := true
	crash := r.Intn(50) == 0 // about 2% crash-looping
	for c := 0; c < ncont; c++ {
		cname := "app"
		if c > 0 {
			cname = sidecars[c-1]
		}
		image := fmt.Sprintf(podImages[(dep+c)%len(podImages)], cname, dep%20)
		port := int32(8080 + c)
		var env []corev1.EnvVar
		nenv := 2 + r.Intn(3)
		if c > 0 { // sidecars: little configuration, no liveness probe
			nenv = r.Intn(2)
		}
		for e := 0; e < nenv; e++ {
			env = append(env, corev1.EnvVar{Name: fmt.Sprintf("%s_SETTING_%d", strings.ToUpper(strings.ReplaceAll(cname, "-", "_")), e),
				Value: g.word(8 + r.Intn(24))})
		}
		env = append(env, corev1.EnvVar{Name: "POD_NAME", ValueFrom: &corev1.EnvVarSource{
			FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.name"}}})
		probe := func(path string, delay int32) *corev1.Probe {
			return &corev1.Probe{
				ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
					Path: path, Port: intstr.FromInt32(port), Scheme: corev1.URISchemeHTTP}},
				InitialDelaySeconds: delay, TimeoutSeconds: 1, PeriodSeconds: 10,
				SuccessThreshold: 1, FailureThreshold: 3}
		}
		liveness := probe("/healthz", 10)
		if c > 0 {
			liveness = nil
		}
		containers = append(containers, corev1.Container{
			Name: cname, Image: image,
			Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: port, Protocol: corev1.ProtocolTCP}},
			Env:   env,
			Resources: corev1.ResourceRequirements{
				Requests: corev1.ResourceList{
					corev1.ResourceCPU:    resource.MustParse(fmt.Sprintf("%dm", 50*(1+r.Intn(10)))),
					corev1.ResourceMemory: resource.MustParse(fmt.Sprintf("%dMi", 64*(1+r.Intn(8))))},
				Limits: corev1.ResourceList{
					corev1.ResourceCPU:    resource.MustParse("1"),
					corev1.ResourceMemory: resource.MustParse(fmt.Sprintf("%dMi", 512*(1+r.Intn(4))))},
			},
			LivenessProbe:  liveness,
			ReadinessProbe: probe("/ready", 5),
			VolumeMounts: []corev1.VolumeMount{
				{Name: "config", MountPath: "/etc/" + cname, ReadOnly: true},
				{Name: "kube-api-access-" + g.word(5), MountPath: "/var/run/secrets/kubernetes.io/serviceaccount", ReadOnly: true},
			},
			TerminationMessagePath:   "/dev/termination-log",
			TerminationMessagePolicy: corev1.TerminationMessageReadFile,
			ImagePullPolicy:          corev1.PullIfNotPresent,
		})
		st := corev1.ContainerStatus{
			Name: cname, Image: image, Ready: true, Started: ptr.To(true),
			ImageID:     "docker-pullable://" + strings.SplitN(image, ":", 2)[0] + "@sha256:" + strings.Repeat(g.word(8), 8),
			ContainerID: "containerd://" + strings.Repeat(g.word(16), 4),
			State:       corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.NewTime(started)}},
		}
		if r.Intn(10) == 0 {
			st.RestartCount = int32(1 + r.Intn(5))
			st.LastTerminationState = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
				ExitCode: 137, Reason: []string{"OOMKilled", "Error"}[r.Intn(2)],
				StartedAt:   metav1.NewTime(created.Add(time.Second)),
				FinishedAt:  metav1.NewTime(started.Add(-time.Second)),
				ContainerID: "containerd://" + strings.Repeat(g.word(16), 4)}}
		}
		if crash && c == 0 {
			st.Ready, st.Started = false, ptr.To(false)
			st.RestartCount = int32(5 + r.Intn(50))
			st.State = corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{
				Reason:  "CrashLoopBackOff",
				Message: fmt.Sprintf("back-off 5m0s restarting failed container=%s pod=%s_%s(%s)", cname, name, ns, "uid")}}
			st.LastTerminationState = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
				ExitCode: 1, Reason: "Error", StartedAt: metav1.NewTime(started), FinishedAt: metav1.NewTime(started.Add(3 * time.Second)),
				ContainerID: "containerd://" + strings.Repeat(g.word(16), 4)}}
			allReady = false
		}
		statuses = append(statuses, st)
	}
	readyStatus := corev1.ConditionTrue
	if !allReady {
		readyStatus = corev1.ConditionFalse
	}
	cond := func(t corev1.PodConditionType, s corev1.ConditionStatus) corev1.PodCondition {
		c := corev1.PodCondition{Type: t, Status: s, LastTransitionTime: metav1.NewTime(started)}
		if s == corev1.ConditionFalse {
			c.Reason = "ContainersNotReady"
			c.Message = "containers with unready status: [app]"
		}
		return c
	}
	uid := g.uid()
	p := corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: name, GenerateName: rsName + "-", Namespace: ns, UID: uid,
			ResourceVersion:   fmt.Sprint(40000000 + r.Intn(8000000)),
			Generation:        1,
			CreationTimestamp: metav1.NewTime(created),
			Labels:            labels,
			Annotations: map[string]string{
				"kubectl.kubernetes.io/restartedAt": created.Add(-time.Hour).Format(time.RFC3339),
			},
			OwnerReferences: []metav1.OwnerReference{{
				APIVersion: "apps/v1", Kind: "ReplicaSet", Name: rsName,
				UID: types.UID(fmt.Sprintf("7b1f%04x-0c2d-4e5f-8a9b-%012x", dep, dep*104729)), Controller: ptr.To(true),
				BlockOwnerDeletion: ptr.To(true)}},
		},
		Spec: corev1.PodSpec{
			Containers: containers,
			Volumes: []corev1.Volume{
				{Name: "config", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
					LocalObjectReference: corev1.LocalObjectReference{Name: app + "-config"}, DefaultMode: ptr.To(int32(420))}}},
				{Name: "kube-api-access-" + g.word(5), VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
					DefaultMode: ptr.To(int32(420)),
					Sources: []corev1.VolumeProjection{
						{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{ExpirationSeconds: ptr.To(int64(3607)), Path: "token"}},
						{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "kube-root-ca.crt"},
							Items: []corev1.KeyToPath{{Key: "ca.crt", Path: "ca.crt"}}}},
						{DownwardAPI: &corev1.DownwardAPIProjection{Items: []corev1.DownwardAPIVolumeFile{{Path: "namespace",
							FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.namespace"}}}}},
					}}}},
			},
			RestartPolicy:                 corev1.RestartPolicyAlways,
			TerminationGracePeriodSeconds: ptr.To(int64(30)),
			DNSPolicy:                     corev1.DNSClusterFirst,
			ServiceAccountName:            "default",
			DeprecatedServiceAccount:      "default",
			NodeName:                      node,
			SecurityContext:               &corev1.PodSecurityContext{},
			SchedulerName:                 corev1.DefaultSchedulerName,
			Tolerations: []corev1.Toleration{
				{Key: "node.kubernetes.io/not-ready", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: ptr.To(int64(300))},
				{Key: "node.kubernetes.io/unreachable", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: ptr.To(int64(300))},
			},
			Priority:           ptr.To(int32(0)),
			EnableServiceLinks: ptr.To(true),
			PreemptionPolicy:   ptr.To(corev1.PreemptLowerPriority),
		},
		Status: corev1.PodStatus{
			Phase: corev1.PodRunning,
			Conditions: []corev1.PodCondition{
				cond("PodReadyToStartContainers", corev1.ConditionTrue),
				cond(corev1.PodInitialized, corev1.ConditionTrue),
				cond(corev1.PodReady, readyStatus),
				cond(corev1.ContainersReady, readyStatus),
				cond(corev1.PodScheduled, corev1.ConditionTrue),
			},
			HostIP: hostIP, HostIPs: []corev1.HostIP{{IP: hostIP}},
			PodIP: podIP, PodIPs: []corev1.PodIP{{IP: podIP}},
			StartTime:         ptr.To(metav1.NewTime(created)),
			ContainerStatuses: statuses,
			QOSClass:          corev1.PodQOSBurstable,
		},
	}
	if r.Intn(200) == 0 { // being deleted
		p.DeletionTimestamp = ptr.To(metav1.NewTime(g.now.Add(-10 * time.Second)))
		p.DeletionGracePeriodSeconds = ptr.To(int64(30))
	}
	p.ManagedFields = g.managedFields(&p, created, started)
	return p
}

// managedFields as server-side apply tracks them for a Deployment's pod:
// the controller manager owns what it created, the kubelet owns the status.
// The field sets are built from the pod, so they grow with it as real ones do.
func (g *podGen) managedFields(p *corev1.Pod, created, started time.Time) []metav1.ManagedFieldsEntry {
	set := func(names ...string) string {
		var parts []string
		for _, n := range names {
			parts = append(parts, fmt.Sprintf("%q:{}", n))
		}
		return strings.Join(parts, ",")
	}
	var labels []string
	for k := range p.Labels {
		labels = append(labels, "f:"+k)
	}
	var cont []string
	for _, c := range p.Spec.Containers {
		var env []string
		for _, e := range c.Env {
			if e.ValueFrom != nil {
				env = append(env, fmt.Sprintf(`"k:{\"name\":\"%s\"}":{".":{},"f:name":{},"f:valueFrom":{".":{},"f:fieldRef":{}}}`, e.Name))
			} else {
				env = append(env, fmt.Sprintf(`"k:{\"name\":\"%s\"}":{".":{},"f:name":{},"f:value":{}}`, e.Name))
			}
		}
		var mounts []string
		for _, m := range c.VolumeMounts {
			mounts = append(mounts, fmt.Sprintf(`"k:{\"mountPath\":\"%s\"}":{".":{},"f:mountPath":{},"f:name":{},"f:readOnly":{}}`, m.MountPath))
		}
		probe := `{".":{},"f:failureThreshold":{},"f:httpGet":{".":{},"f:path":{},"f:port":{},"f:scheme":{}},"f:initialDelaySeconds":{},"f:periodSeconds":{},"f:successThreshold":{},"f:timeoutSeconds":{}}`
		live := ""
		if c.LivenessProbe != nil {
			live = `"f:livenessProbe":` + probe + ","
		}
		envSet := ""
		if len(env) > 0 {
			envSet = `"f:env":{".":{},` + strings.Join(env, ",") + "},"
		}
		cont = append(cont, fmt.Sprintf(`"k:{\"name\":\"%s\"}":{".":{},%s"f:image":{},"f:imagePullPolicy":{},%s"f:name":{},"f:ports":{".":{},"k:{\"containerPort\":%d,\"protocol\":\"TCP\"}":{".":{},"f:containerPort":{},"f:name":{},"f:protocol":{}}},"f:readinessProbe":%s,"f:resources":{".":{},"f:limits":{".":{},"f:cpu":{},"f:memory":{}},"f:requests":{".":{},"f:cpu":{},"f:memory":{}}},"f:terminationMessagePath":{},"f:terminationMessagePolicy":{},"f:volumeMounts":{".":{},%s}}`,
			c.Name, envSet, live, c.Ports[0].ContainerPort, probe, strings.Join(mounts, ",")))
	}
	spec := fmt.Sprintf(`{"f:metadata":{"f:annotations":{".":{},"f:kubectl.kubernetes.io/restartedAt":{}},"f:generateName":{},"f:labels":{".":{},%s},"f:ownerReferences":{".":{},"k:{\"uid\":\"%s\"}":{}}},"f:spec":{"f:containers":{%s},"f:dnsPolicy":{},"f:enableServiceLinks":{},"f:restartPolicy":{},"f:schedulerName":{},"f:securityContext":{},"f:terminationGracePeriodSeconds":{},"f:volumes":{".":{},"k:{\"name\":\"config\"}":{".":{},"f:configMap":{".":{},"f:defaultMode":{},"f:name":{}},"f:name":{}}}}}`,
		set(labels...), p.OwnerReferences[0].UID, strings.Join(cont, ","))
	status := fmt.Sprintf(`{"f:status":{"f:conditions":{"k:{\"type\":\"ContainersReady\"}":{".":{},"f:lastProbeTime":{},"f:lastTransitionTime":{},"f:status":{},"f:type":{}},"k:{\"type\":\"Initialized\"}":{".":{},"f:lastProbeTime":{},"f:lastTransitionTime":{},"f:status":{},"f:type":{}},"k:{\"type\":\"PodReadyToStartContainers\"}":{".":{},"f:lastProbeTime":{},"f:lastTransitionTime":{},"f:status":{},"f:type":{}},"k:{\"type\":\"Ready\"}":{".":{},"f:lastProbeTime":{},"f:lastTransitionTime":{},"f:status":{},"f:type":{}}},"f:containerStatuses":{},"f:hostIP":{},"f:hostIPs":{},"f:phase":{},"f:podIP":{},"f:podIPs":{".":{},"k:{\"ip\":\"%s\"}":{".":{},"f:ip":{}}},"f:startTime":{}}}`,
		p.Status.PodIP)
	return []metav1.ManagedFieldsEntry{
		{Manager: "kube-controller-manager", Operation: metav1.ManagedFieldsOperationUpdate, APIVersion: "v1",
			Time: ptr.To(metav1.NewTime(created)), FieldsType: "FieldsV1", FieldsV1: &metav1.FieldsV1{Raw: []byte(spec)}},
		{Manager: "kubelet", Operation: metav1.ManagedFieldsOperationUpdate, APIVersion: "v1",
			Time: ptr.To(metav1.NewTime(started)), FieldsType: "FieldsV1", FieldsV1: &metav1.FieldsV1{Raw: []byte(status)},
			Subresource: "status"},
	}
}

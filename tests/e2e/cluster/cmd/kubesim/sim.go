package main

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/uuid"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"
)

type config struct {
	nodes           int
	nodePrefix      string
	workers         int
	leaseRenew      time.Duration
	leaseDuration   time.Duration
	nodeStatusEvery time.Duration
	crashBackoff    time.Duration
	kubeletVersion  string
}

// Sim is the whole simulated fleet: its nodes, the pods bound to them, and
// the scenarios in force. Scenario state lives only here, in memory; the
// control plane sees its effects, never the scenario itself.
type Sim struct {
	cfg    config
	cs     kubernetes.Interface
	bootID string

	nodes     map[string]*simNode
	nodeNames []string // sorted, for round-robin binding
	rr        atomic.Uint64
	regCount  atomic.Int64

	factory    informers.SharedInformerFactory
	podLister  corelisters.PodLister
	svcLister  corelisters.ServiceLister
	nodeLister corelisters.NodeLister
	queue      workqueue.TypedRateLimitingInterface[string]

	mu        sync.Mutex
	notReady  map[string]bool
	hbStopped map[string]bool
	hbResumed map[string]bool       // node whose next status must start a new Ready transition
	crash     map[string]*crashLoop // by namespace/pod
	crashDone map[string]bool       // recovered: its crash-loop annotation no longer applies
	svcDrop   map[string]bool       // namespace/service
	ips       *ipAllocator
}

type nodeState struct {
	notReady, heartbeatStopped, recoveredFromHeartbeatStop bool
}

func newSim(cfg config, cs kubernetes.Interface) *Sim {
	s := &Sim{
		cfg: cfg, cs: cs, bootID: string(uuid.NewUUID()),
		nodes:     map[string]*simNode{},
		notReady:  map[string]bool{},
		hbStopped: map[string]bool{},
		hbResumed: map[string]bool{},
		crash:     map[string]*crashLoop{},
		crashDone: map[string]bool{},
		svcDrop:   map[string]bool{},
		ips:       newIPAllocator(),
	}
	for i := 0; i < cfg.nodes; i++ {
		name := fmt.Sprintf("%s%d", cfg.nodePrefix, i)
		s.nodes[name] = &simNode{name: name, ip: nodeIP(i), kick: make(chan struct{}, 1)}
		s.nodeNames = append(s.nodeNames, name)
	}
	sort.Strings(s.nodeNames)
	s.factory = informers.NewSharedInformerFactory(cs, 0)
	s.podLister = s.factory.Core().V1().Pods().Lister()
	s.svcLister = s.factory.Core().V1().Services().Lister()
	// Cordons, for binding as the scheduler does (never to an
	// unschedulable node).
	s.nodeLister = s.factory.Core().V1().Nodes().Lister()
	s.queue = workqueue.NewTypedRateLimitingQueueWithConfig(
		workqueue.DefaultTypedControllerRateLimiter[string](),
		workqueue.TypedRateLimitingQueueConfig[string]{Name: "pods"})
	return s
}

func (s *Sim) run(ctx context.Context) error {
	podInformer := s.factory.Core().V1().Pods().Informer()
	_, err := podInformer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			pod := obj.(*corev1.Pod)
			if pod.Status.PodIP != "" {
				s.ips.claim(podKey(pod), pod.Status.PodIP)
			}
			s.enqueue(pod)
		},
		UpdateFunc: func(_, obj any) { s.enqueue(obj.(*corev1.Pod)) },
		DeleteFunc: func(obj any) {
			if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = t.Obj
			}
			if pod, ok := obj.(*corev1.Pod); ok {
				key := podKey(pod)
				s.ips.release(key)
				s.mu.Lock()
				delete(s.crash, key)
				delete(s.crashDone, key)
				s.mu.Unlock()
			}
		},
	})
	if err != nil {
		return err
	}
	s.factory.Core().V1().Services().Informer()
	s.factory.Start(ctx.Done())
	for typ, ok := range s.factory.WaitForCacheSync(ctx.Done()) {
		if !ok {
			return fmt.Errorf("cache for %v did not sync", typ)
		}
	}
	for _, name := range s.nodeNames {
		go s.runNode(ctx, s.nodes[name])
	}
	for i := 0; i < s.cfg.workers; i++ {
		go func() {
			for s.processNext(ctx) {
			}
		}()
	}
	<-ctx.Done()
	s.queue.ShutDown()
	return nil
}

func podKey(pod *corev1.Pod) string { return pod.Namespace + "/" + pod.Name }

// enqueue only what a kubelet or a scheduler of ours would look at: pods
// waiting for a node, and pods on our nodes.
func (s *Sim) enqueue(pod *corev1.Pod) {
	if pod.Spec.NodeName == "" || s.nodes[pod.Spec.NodeName] != nil {
		s.queue.Add(podKey(pod))
	}
}

func (s *Sim) processNext(ctx context.Context) bool {
	key, quit := s.queue.Get()
	if quit {
		return false
	}
	defer s.queue.Done(key)
	requeueAfter, err := s.syncPod(ctx, key)
	if err != nil {
		klog.V(2).Infof("pod %s: %v", key, err)
		s.queue.AddRateLimited(key)
		return true
	}
	s.queue.Forget(key)
	if requeueAfter > 0 {
		s.queue.AddAfter(key, requeueAfter)
	}
	return true
}

func (s *Sim) nodeState(name string) nodeState {
	s.mu.Lock()
	defer s.mu.Unlock()
	return nodeState{notReady: s.notReady[name], heartbeatStopped: s.hbStopped[name],
		recoveredFromHeartbeatStop: s.hbResumed[name]}
}

func (s *Sim) clearRecovered(name string) {
	s.mu.Lock()
	delete(s.hbResumed, name)
	s.mu.Unlock()
}

func (s *Sim) nodeRegistered() { s.regCount.Add(1) }

func (s *Sim) ready() (int, int) { return int(s.regCount.Load()), len(s.nodes) }

// enqueuePods requeues every pod that matches: after a scenario changes, the
// pods it touches get their status recomputed.
func (s *Sim) enqueuePods(match func(*corev1.Pod) bool) {
	pods, err := s.podLister.List(labels.Everything())
	if err != nil {
		return
	}
	for _, p := range pods {
		if match(p) {
			s.queue.Add(podKey(p))
		}
	}
}

func (s *Sim) kickNode(name string) {
	select {
	case s.nodes[name].kick <- struct{}{}:
	default:
	}
}

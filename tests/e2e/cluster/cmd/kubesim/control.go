package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/labels"
)

// The control channel: a small HTTP server on loopback.
//
//	POST /scenario?name=NAME&target=TARGET   start a scenario
//	POST /recover?name=NAME&target=TARGET    end it
//	GET  /scenarios                          what is in force (JSON)
//	GET  /healthz                            the process is up
//	GET  /readyz                             every node has registered
//
// Answers are plain text ("ok" or an error) with 200, 400 (bad request),
// 404 (unknown target) or 503 (not ready).
var scenarios = map[string]string{
	"node-notready":          "NODE",
	"node-heartbeat-stop":    "NODE",
	"pod-crashloop":          "NAMESPACE/POD",
	"service-endpoints-drop": "NAMESPACE/SERVICE",
}

var errNotFound = errors.New("not found")

func (s *Sim) apply(name, target string, on bool) error {
	switch name {
	case "node-notready", "node-heartbeat-stop":
		if s.nodes[target] == nil {
			return fmt.Errorf("node %q is not a kubesim node: %w", target, errNotFound)
		}
		s.mu.Lock()
		if name == "node-notready" {
			setOrDelete(s.notReady, target, on)
		} else {
			if s.hbStopped[target] && !on {
				s.hbResumed[target] = true
			}
			setOrDelete(s.hbStopped, target, on)
		}
		s.mu.Unlock()
		s.kickNode(target)
		s.enqueuePods(func(p *corev1.Pod) bool { return p.Spec.NodeName == target })
	case "pod-crashloop":
		ns, pod, ok := strings.Cut(target, "/")
		if !ok {
			return fmt.Errorf("target %q: want NAMESPACE/POD", target)
		}
		p, err := s.podLister.Pods(ns).Get(pod)
		if apierrors.IsNotFound(err) {
			return fmt.Errorf("pod %s: %w", target, errNotFound)
		} else if err != nil {
			return err
		}
		s.mu.Lock()
		if on {
			if s.crash[target] == nil {
				s.crash[target] = &crashLoop{start: time.Now(), base: maxRestarts(&p.Status)}
			}
			delete(s.crashDone, target)
		} else {
			delete(s.crash, target)
			s.crashDone[target] = true
		}
		s.mu.Unlock()
		s.queue.Add(target)
	case "service-endpoints-drop":
		ns, svcName, ok := strings.Cut(target, "/")
		if !ok {
			return fmt.Errorf("target %q: want NAMESPACE/SERVICE", target)
		}
		svc, err := s.svcLister.Services(ns).Get(svcName)
		if apierrors.IsNotFound(err) {
			return fmt.Errorf("service %s: %w", target, errNotFound)
		} else if err != nil {
			return err
		}
		s.mu.Lock()
		setOrDelete(s.svcDrop, target, on)
		s.mu.Unlock()
		sel := labels.SelectorFromSet(svc.Spec.Selector)
		s.enqueuePods(func(p *corev1.Pod) bool {
			return p.Namespace == ns && len(svc.Spec.Selector) > 0 && sel.Matches(labels.Set(p.Labels))
		})
	default:
		return fmt.Errorf("unknown scenario %q (know: %s)", name, strings.Join(scenarioNames(), ", "))
	}
	return nil
}

func setOrDelete(m map[string]bool, k string, on bool) {
	if on {
		m[k] = true
	} else {
		delete(m, k)
	}
}

func scenarioNames() []string {
	var names []string
	for n := range scenarios {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func (s *Sim) active() map[string][]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	keys := func(m map[string]bool) []string {
		out := []string{}
		for k := range m {
			out = append(out, k)
		}
		sort.Strings(out)
		return out
	}
	crash := map[string]bool{}
	for k := range s.crash {
		crash[k] = true
	}
	return map[string][]string{
		"node-notready":          keys(s.notReady),
		"node-heartbeat-stop":    keys(s.hbStopped),
		"pod-crashloop":          keys(crash),
		"service-endpoints-drop": keys(s.svcDrop),
	}
}

func (s *Sim) handler() http.Handler {
	mux := http.NewServeMux()
	change := func(on bool) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodPost {
				http.Error(w, "use POST", http.StatusMethodNotAllowed)
				return
			}
			name, target := r.FormValue("name"), r.FormValue("target")
			if name == "" || target == "" {
				http.Error(w, "need name and target", http.StatusBadRequest)
				return
			}
			if err := s.apply(name, target, on); err != nil {
				code := http.StatusBadRequest
				if errors.Is(err, errNotFound) {
					code = http.StatusNotFound
				}
				http.Error(w, err.Error(), code)
				return
			}
			fmt.Fprintln(w, "ok")
		}
	}
	mux.HandleFunc("/scenario", change(true))
	mux.HandleFunc("/recover", change(false))
	mux.HandleFunc("/scenarios", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(s.active())
	})
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) {
		got, want := s.ready()
		if got < want {
			http.Error(w, fmt.Sprintf("%d of %d nodes registered", got, want), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	return mux
}

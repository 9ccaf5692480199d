package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	authv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// The kubemedic identity: a ServiceAccount in its own namespace, bound to a
// ClusterRole that grants exactly what the daemon needs to watch health and
// act on it, and nothing else (so a test can check that anything else is
// Forbidden).
const (
	saNamespace = "kubemedic"
	saName      = "kubemedic"
)

var watch = []string{"get", "list", "watch"}

var kubemedicRules = []rbacv1.PolicyRule{
	{APIGroups: []string{""}, Resources: []string{"nodes", "pods", "services"}, Verbs: watch},
	{APIGroups: []string{"discovery.k8s.io"}, Resources: []string{"endpointslices"}, Verbs: watch},
	{APIGroups: []string{"apps"}, Resources: []string{"deployments", "statefulsets", "daemonsets", "replicasets"}, Verbs: watch},
	{APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"}, Verbs: watch},
	{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"delete"}},
	{APIGroups: []string{""}, Resources: []string{"nodes"}, Verbs: []string{"patch"}},
	{APIGroups: []string{"apps"}, Resources: []string{"deployments", "statefulsets", "daemonsets"}, Verbs: []string{"patch"}},
	{APIGroups: []string{""}, Resources: []string{"pods/eviction"}, Verbs: []string{"create"}},
}

func cmdBootstrap(args []string) error {
	fs := flag.NewFlagSet("bootstrap", flag.ContinueOnError)
	admin := fs.String("admin-kubeconfig", "", "admin kubeconfig")
	out := fs.String("out", "", "kubeconfig to write for the kubemedic ServiceAccount")
	ttl := fs.Duration("token-ttl", 24*time.Hour, "token lifetime (TokenRequest)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *admin == "" || *out == "" {
		return errors.New("--admin-kubeconfig and --out are required")
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", *admin)
	if err != nil {
		return err
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	create := func(what string, err error) error {
		if err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create %s: %w", what, err)
		}
		return nil
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: saNamespace}}
	_, err = cs.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{})
	if err := create("namespace", err); err != nil {
		return err
	}
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: saName, Namespace: saNamespace}}
	_, err = cs.CoreV1().ServiceAccounts(saNamespace).Create(ctx, sa, metav1.CreateOptions{})
	if err := create("serviceaccount", err); err != nil {
		return err
	}
	role := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "kubemedic"}, Rules: kubemedicRules}
	_, err = cs.RbacV1().ClusterRoles().Create(ctx, role, metav1.CreateOptions{})
	if err := create("clusterrole", err); err != nil {
		return err
	}
	binding := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "kubemedic"},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "kubemedic"},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: saName, Namespace: saNamespace}},
	}
	_, err = cs.RbacV1().ClusterRoleBindings().Create(ctx, binding, metav1.CreateOptions{})
	if err := create("clusterrolebinding", err); err != nil {
		return err
	}

	// A bound token from the TokenRequest API, as a projected volume would
	// give the daemon in a pod.
	secs := int64(ttl.Seconds())
	var tr *authv1.TokenRequest
	err = wait.PollUntilContextCancel(ctx, 200*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		tr, err = cs.CoreV1().ServiceAccounts(saNamespace).CreateToken(ctx, saName,
			&authv1.TokenRequest{Spec: authv1.TokenRequestSpec{ExpirationSeconds: &secs}}, metav1.CreateOptions{})
		return err == nil, nil
	})
	if err != nil {
		return fmt.Errorf("token request: %w", err)
	}
	tokenFile := filepath.Join(filepath.Dir(*out), "kubemedic.token")
	if err := os.WriteFile(tokenFile, []byte(tr.Status.Token), 0o600); err != nil {
		return err
	}
	return writeKubeconfig(*out, cfg.Host, cfg.TLSClientConfig.CAFile, "kubemedic",
		&clientcmdapi.AuthInfo{TokenFile: tokenFile})
}

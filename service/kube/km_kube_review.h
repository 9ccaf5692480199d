/*
 * km_kube_review — "is this bearer token one of the cluster's?", asked of
 * the API server with a TokenReview (authentication.k8s.io/v1), so that a
 * pod's ServiceAccount token is a kubemedic credential, as kube-rbac-proxy
 * makes it one. The answer's username and groups become the caller's
 * identity ("system:serviceaccount:NS:NAME", groups such as
 * "system:serviceaccounts"), bound to kubemedic's roles by the config's
 * auth.bindings; km_auth caches answers (km_auth.h, review).
 *
 * kubemedicd's own credentials make the review (it needs create on
 * tokenreviews: the ClusterRole system:auth-delegator, or the rule in
 * deploy/kubemedic.yaml). Each review is one blocking POST on the calling
 * thread — the API's worker, which waits for nothing else — with a 5 s
 * timeout; the answer is read up to 64 KiB.
 *
 * Threads: any, concurrently. Memory: the reviewer holds copies of the
 * credentials; answers go into the caller's arena.
 */
#ifndef KM_KUBE_REVIEW_H
#define KM_KUBE_REVIEW_H

#include <stddef.h>

#include "km_arena.h"
#include "km_error.h"
#include "km_kube_client.h"

struct km_kube_reviewer;

/* The server and credentials as for the client (name, qps and timeouts
 * are not used). KM_EINVAL, KM_ENOMEM. */
int km_kube_reviewer_new(const struct km_kube_client_options *o,
			 struct km_kube_reviewer **out, struct km_error *err);
void km_kube_reviewer_free(struct km_kube_reviewer *r);

/* km_auth's review: 0 with the user and its groups (in ar); KM_EAUTH
 * when the API server says the token is not valid (its reason in err);
 * KM_EUNAVAIL when it could not be asked or did not answer as it should. */
int km_kube_token_review(void *reviewer, const char *token, struct km_arena *ar,
			 const char **user, const char ***groups,
			 size_t *n_groups, struct km_error *err);

#endif

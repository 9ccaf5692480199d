/*
 * km_kube_review — the cluster's word on a caller, for km_auth:
 *
 *  - TokenReview (authentication.k8s.io/v1): "is this bearer token one of
 *    the cluster's, and whose?", so that a pod's ServiceAccount token is a
 *    kubemedic credential, as kube-rbac-proxy makes it one. The answer's
 *    user ("system:serviceaccount:NS:NAME"), uid, groups
 *    ("system:serviceaccounts", ...) and extra (the pod's name, ...) are
 *    the caller's identity, bound to kubemedic's roles by auth.bindings;
 *  - SubjectAccessReview (authorization.k8s.io/v1): "may that user do this
 *    verb on this resource?", asked with exactly what the TokenReview
 *    said, so the cluster's RBAC gives the role (auth.kubernetesAccessReview).
 * km_auth caches the answers (km_auth.h).
 *
 * kubemedicd's own credentials make the reviews (it needs create on
 * tokenreviews and subjectaccessreviews: the ClusterRole
 * system:auth-delegator, or the rules in deploy/kubemedic.yaml). Each is
 * one blocking POST on the calling thread — the API's worker, never the
 * event loop, which waits for nothing else — with a 5 s timeout; an answer
 * is read up to 64 KiB.
 *
 * The request bodies and the decoding of answers are functions of their
 * own, for the tests (tests/unit/test_kube_review.c, with answers a real
 * API server gave in tests/unit/kube_fixtures).
 *
 * Threads: any, concurrently. Memory: the reviewer holds copies of the
 * credentials; answers go into the caller's arena.
 */
#ifndef KM_KUBE_REVIEW_H
#define KM_KUBE_REVIEW_H

#include <stddef.h>

#include "km_arena.h"
#include "km_auth.h"
#include "km_error.h"
#include "km_kube_client.h"

struct km_kube_reviewer;

/* The server and credentials as for the client (name, qps and timeouts
 * are not used). KM_EINVAL, KM_ENOMEM. */
int km_kube_reviewer_new(const struct km_kube_client_options *o,
			 struct km_kube_reviewer **out, struct km_error *err);
void km_kube_reviewer_free(struct km_kube_reviewer *r);

/* km_auth's review (km_auth_options.review): 0 with who the token is (in
 * ar); KM_EAUTH when the API server says the token is not valid (its
 * reason in err); KM_EUNAVAIL when it could not be asked or did not
 * answer as it should. */
int km_kube_token_review(void *reviewer, const char *token, struct km_arena *ar,
			 struct km_auth_subject *out, struct km_error *err);

/* km_auth's access review (km_auth_options.access_review): 0 when the
 * API server allows who what; KM_EPERM when it does not (its reason, if
 * it gave one, in err); KM_EUNAVAIL when it could not be asked or did not
 * answer as it should. */
int km_kube_access_review(void *reviewer, const struct km_auth_subject *who,
			  const struct km_auth_access *what,
			  struct km_error *err);

/* ---- the pieces, pure functions -------------------------------------------- */

/* The TokenReview for token, as JSON (malloc'd). KM_ENOMEM. */
int km_kube_token_review_body(const char *token, char **out,
			      struct km_error *err);
/* An answer to it (a TokenReview with status), as km_kube_token_review
 * says; anything else (not JSON, another kind, no status, authenticated
 * without a username, a uid, group or extra of another shape than the
 * API's, a string that is not UTF-8) is KM_EUNAVAIL: what is sent on in
 * an access review must be what the API server said, not a part of it. */
int km_kube_token_review_decode(const char *json, size_t len,
				struct km_arena *ar,
				struct km_auth_subject *out,
				struct km_error *err);

/* The SubjectAccessReview of who and what, as JSON (malloc'd): spec.user,
 * spec.uid (when not ""), spec.groups, spec.extra, spec.resourceAttributes
 * {namespace, verb, group, resource, subresource, name} (the empty ones
 * left out but verb, resource and group). KM_ENOMEM. */
int km_kube_access_review_body(const struct km_auth_subject *who,
			       const struct km_auth_access *what, char **out,
			       struct km_error *err);
/* An answer to it, as km_kube_access_review says; anything else (not
 * JSON, another kind, no status.allowed, allowed and denied both) is
 * KM_EUNAVAIL. */
int km_kube_access_review_decode(const char *json, size_t len,
				 struct km_error *err);

#endif

/*
 * bench/kube_decode.h — what bench_kube_decode's candidates share: the
 * result (what the pod rule reads, in an arena the result owns) and the one
 * extractor over a JSON library's tree. json-c's candidate lives in a file
 * of its own because json-c and jansson declare functions of the same names
 * (json_object_get, json_object_iter_next): their headers cannot meet in one
 * file, and in one program the calls bind by symbol version.
 */
#ifndef KUBE_DECODE_H
#define KUBE_DECODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct kd_chunk {
	struct kd_chunk *next;
	char data[];
};

struct kd_arena {
	struct kd_chunk *head;
	char *p;
	size_t left;
};

struct kd_kv {
	const char *key, *value;
};

struct kd_cond {
	const char *type, *status;
};

struct kd_cstat {
	const char *name;
	bool ready;
	int32_t restarts;
	const char *waiting_reason;
	const char *last_terminated_reason;
};

struct kd_pod {
	const char *ns, *name, *uid, *resource_version;
	const char *owner_kind, *owner_name, *owner_uid; /* the controller */
	int64_t deleted_at;                              /* 0: not deleted */
	struct kd_kv *labels;
	size_t n_labels;
	const char *node;
	const char *phase;
	struct kd_cond *conds;
	size_t n_conds;
	struct kd_cstat *cstats;
	size_t n_cstats;
	const char *pod_ip;
	int64_t start_time; /* Unix seconds, 0: none */
};

struct kd_result {
	struct kd_arena arena;
	struct kd_pod *pods;
	size_t n;
	const char *event_type; /* for a watch event */
};

/* What the extractor needs of a tree: member lookup, scalars, and iteration
 * over an array's elements or an object's members (cJSON's arrays are
 * lists, so no indexing). A node is the library's own pointer. */
struct kd_it {
	void *node;
	size_t i, n;
	void *cur;
};

struct kd_json {
	void *(*get)(void *obj, const char *key);
	const char *(*str)(void *node, size_t *len);
	int (*boolean)(void *node); /* -1: not a boolean */
	bool (*integer)(void *node, int64_t *v);
	size_t (*count)(void *arr_or_obj);
	void (*begin)(void *node, struct kd_it *it);
	bool (*next)(struct kd_it *it, const char **key, void **val);
};

void *kd_alloc(struct kd_arena *a, size_t n);
char *kd_strndup(struct kd_arena *a, const char *s, size_t n);
void kd_arena_free(struct kd_arena *a);

/* The items of a PodList, or a watch event's type and object, into r: 0,
 * or -1 if it is not one. */
int kd_json_list(const struct kd_json *j, void *root, struct kd_result *r);
int kd_json_event(const struct kd_json *j, void *root, struct kd_result *r);

/* Called by a candidate with its tree and the result both alive. */
void kd_peak(void);

int cand_jsonc(const char *buf, size_t len, struct kd_result *r, bool event);

#endif

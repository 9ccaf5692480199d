/*
 * km_list — an intrusive, circular, doubly linked list.
 *
 * The caller embeds a struct km_list in its own object and links it into
 * a list head; nothing is allocated and unlinking is O(1) without walking
 * the list (the reason every hand-written "find the pointer to me, then
 * unlink" loop in the daemon became this). A node that is not on a list
 * points at itself, so km_list_del of an unlinked node is harmless.
 *
 * Not thread-safe: the owner of the list serialises access (its lock).
 */
#ifndef KM_LIST_H
#define KM_LIST_H

#include <assert.h>
#include <stdbool.h>
#include <stddef.h>

struct km_list {
	struct km_list *prev, *next;
};

/* clang-format off */
#define KM_LIST_INIT(name) { &(name), &(name) }
/* clang-format on */

static inline void km_list_init(struct km_list *l)
{
	l->prev = l->next = l;
}

static inline bool km_list_empty(const struct km_list *head)
{
	return head->next == head;
}

/* Links n before head, i.e. at the tail of the list. n must not be on a
 * list; it need not be initialised. Debug builds check that head's
 * neighbours point back at it. */
static inline void km_list_add_tail(struct km_list *head, struct km_list *n)
{
	assert(head->prev->next == head);
	n->prev = head->prev;
	n->next = head;
	head->prev->next = n;
	head->prev = n;
}

/* Links n right after head, at the front of the list. */
static inline void km_list_add_head(struct km_list *head, struct km_list *n)
{
	assert(head->next->prev == head);
	n->next = head->next;
	n->prev = head;
	head->next->prev = n;
	head->next = n;
}

/* Unlinks n and leaves it pointing at itself. */
static inline void km_list_del(struct km_list *n)
{
	/* Its neighbours point back at it: n is on a list (or alone). */
	assert(n->prev->next == n && n->next->prev == n);
	n->prev->next = n->next;
	n->next->prev = n->prev;
	n->prev = n->next = n;
}

/* The object a node is embedded in. */
#define km_list_entry(node, type, member) \
	((type *)(void *)((char *)(node)-offsetof(type, member)))

#define km_list_first(head, type, member) \
	(km_list_empty(head) ? NULL : km_list_entry((head)->next, type, member))

/* Walks the nodes of head; the _safe form allows km_list_del(pos). */
#define km_list_for_each(pos, head) \
	for ((pos) = (head)->next; (pos) != (head); (pos) = (pos)->next)
#define km_list_for_each_safe(pos, tmp, head)                            \
	for ((pos) = (head)->next, (tmp) = (pos)->next; (pos) != (head); \
	     (pos) = (tmp), (tmp) = (pos)->next)

#endif

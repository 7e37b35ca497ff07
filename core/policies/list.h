/* list.h: an intrusive doubly linked list over dense keys, stored in two
 * arrays, used by the recency- and insertion-ordered policies. head is the
 * newest end, tail the oldest. No per-key allocation. */
#ifndef MOE_POLICY_LIST_H
#define MOE_POLICY_LIST_H

#include <stdint.h>
#include <stdlib.h>

#define MOE_LIST_NIL UINT32_MAX

typedef struct moe_list {
    uint32_t *prev, *next;
    uint32_t head, tail;
} moe_list;

static inline int moe_list_init(moe_list *l, uint32_t n) {
    l->prev = malloc((n ? n : 1) * sizeof(uint32_t));
    l->next = malloc((n ? n : 1) * sizeof(uint32_t));
    l->head = l->tail = MOE_LIST_NIL;
    return l->prev && l->next ? 0 : -1;
}
static inline void moe_list_free(moe_list *l) {
    free(l->prev);
    free(l->next);
}
static inline void moe_list_push_head(moe_list *l, uint32_t k) {
    l->prev[k] = MOE_LIST_NIL;
    l->next[k] = l->head;
    if (l->head != MOE_LIST_NIL) l->prev[l->head] = k;
    else l->tail = k;
    l->head = k;
}
static inline void moe_list_remove(moe_list *l, uint32_t k) {
    uint32_t p = l->prev[k], n = l->next[k];
    if (p != MOE_LIST_NIL) l->next[p] = n;
    else l->head = n;
    if (n != MOE_LIST_NIL) l->prev[n] = p;
    else l->tail = p;
}
/* k must be on the list. If it is not the head it has a predecessor and the
 * list is not empty, which saves two of the tests remove + push_head make. */
static inline void moe_list_move_to_head(moe_list *l, uint32_t k) {
    uint32_t h = l->head;
    if (h == k) return;
    uint32_t p = l->prev[k], n = l->next[k];
    l->next[p] = n;
    if (n != MOE_LIST_NIL) l->prev[n] = p;
    else l->tail = p;
    l->prev[k] = MOE_LIST_NIL;
    l->next[k] = h;
    l->prev[h] = k;
    l->head = k;
}

#endif

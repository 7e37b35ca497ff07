/* sieve: SIEVE (Zhang et al., NSDI 2024).
 *
 * State: a FIFO queue (new keys enter at the head), one visited bit per key,
 * and a hand that points into the queue (initially nowhere).
 * Rule:
 *  - hit: visited = 1 (nothing moves);
 *  - insertion: at the head, visited = 0;
 *  - eviction: start at the hand, or at the tail (oldest) if the hand is
 *    nowhere; while the key under the hand has visited = 1, clear the bit and
 *    move the hand one step toward the head (newer), wrapping from the head
 *    back to the tail; evict the first key with visited = 0, and leave the
 *    hand on the next newer key (nowhere if the victim was the head).
 * Protected keys (needed by the current (step, layer)) are passed over
 * without touching their visited bit. If every resident is protected the key
 * is bypassed and nothing changes; otherwise the loop ends within two sweeps.
 * Parameters: none. */
#include <stdlib.h>

#include "../cache.h"
#include "../params.h"
#include "list.h"

typedef struct sieve {
    moe_list q;
    uint8_t *visited;
    uint32_t hand;
} sieve;

static void sieve_destroy(void *st) {
    sieve *s = st;
    moe_list_free(&s->q);
    free(s->visited);
    free(s);
}

static void *sieve_create(const char *args, const moe_policy_env *env, char *canonical, size_t cap,
                          moe_error *err) {
    if (moe_params_parse("sieve", args, NULL, 0, canonical, cap, err)) return NULL;
    sieve *s = calloc(1, sizeof *s);
    if (!s) return moe_fail(err, "sieve: out of memory"), NULL;
    int bad = moe_list_init(&s->q, env->n_keys);
    s->visited = calloc(env->n_keys ? env->n_keys : 1, 1);
    if (bad || !s->visited) {
        sieve_destroy(s);
        return moe_fail(err, "sieve: out of memory"), NULL;
    }
    s->hand = MOE_LIST_NIL;
    return s;
}

static void sieve_on_hit(void *st, uint32_t key, const moe_access *a) {
    (void)a;
    ((sieve *)st)->visited[key] = 1;
}

static void sieve_on_insert(void *st, uint32_t key, const moe_access *a) {
    (void)a;
    sieve *s = st;
    s->visited[key] = 0;
    moe_list_push_head(&s->q, key);
}

static int64_t sieve_choose_victim(void *st, const moe_cache *c, const moe_access *a) {
    (void)a;
    sieve *s = st;
    int any = 0;
    for (uint32_t k = s->q.tail; k != MOE_LIST_NIL && !any; k = s->q.prev[k])
        any = !moe_cache_protected(c, k);
    if (!any) return -1;
    uint32_t h = s->hand == MOE_LIST_NIL ? s->q.tail : s->hand;
    for (;;) {
        if (!moe_cache_protected(c, h)) {
            if (!s->visited[h]) break;
            s->visited[h] = 0;
        }
        h = s->q.prev[h] == MOE_LIST_NIL ? s->q.tail : s->q.prev[h];
    }
    s->hand = s->q.prev[h]; /* next newer, or nowhere */
    return h;
}

static void sieve_on_evict(void *st, uint32_t key) {
    sieve *s = st;
    if (s->hand == key) s->hand = s->q.prev[key]; /* defensive: never true after choose_victim */
    moe_list_remove(&s->q, key);
}

const moe_policy_ops moe_policy_sieve = {
    .name = "sieve",
    .summary = "SIEVE: FIFO queue, visited bit, hand moving from old to new",
    .description =
        "A FIFO queue with one visited bit per expert: a hit sets the bit, an insertion enters at "
        "the head with the bit clear. To evict, a hand moves from the oldest toward the newest "
        "(wrapping), clearing set bits, and evicts the first expert whose bit is clear; experts "
        "of the current set are passed over untouched.",
    .reference =
        "Y. Zhang et al., SIEVE is simpler than LRU, NSDI 2024",
    .create = sieve_create,
    .on_hit = sieve_on_hit,
    .on_insert = sieve_on_insert,
    .choose_victim = sieve_choose_victim,
    .on_evict = sieve_on_evict,
    .destroy = sieve_destroy,
};

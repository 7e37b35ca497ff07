/* mrc.h: LRU miss-ratio curve in one pass (stack distances, Mattson 1970).
 *
 * Accounting is the replay's (sim/replay.h): unique (step, layer, expert)
 * accesses; per-layer scope keeps one LRU stack per layer, global scope one
 * stack over (layer, expert) keys; a (step, layer) group is served in
 * ascending expert order; cold_per_seq empties every stack when the
 * sequence id of a step's first token changes.
 *
 * Group stack distance. For an access of key x in group G, its distance is
 * the number of distinct keys of the same stack whose last access is more
 * recent than x's last access, measured at the START of G (keys of G served
 * before x in G do not count). Infinite (compulsory) if x was never accessed
 * since the stack was last empty.
 *
 * Why the start of the group, and when the curve is exact. The replay never
 * evicts a key of the current group to make room for another of the same
 * group (protection), and it evicts the least recent *unprotected* key.
 * Consider a cache of capacity C >= |G| for every group G. By induction the
 * cache holds exactly the top C keys of the LRU stack updated group by group
 * (G's keys moved to the top in ascending id order): a miss evicts the least
 * recent key outside G, so after G the cache is G plus the C - |G| most
 * recent keys outside G, which is the new top C. Hence an access of G is a
 * hit iff its group stack distance is < C, and
 *     hits(C) = #{accesses with distance < C}      exactly, for C >= S,
 * where S = the largest group (set) size in the trace (exact_from).
 * Note that plain per-access stack distances (counting the keys of G served
 * before x) would NOT match the replay even for C >= S: with cache [a, b]
 * (a least recent) and group {c, a} where id c < id a, pure LRU evicts a
 * when inserting c, while the replay protects a and evicts b.
 *
 * For C < S the replay bypasses misses once every resident key is
 * protected, so its cache is no longer the top C of any stack; hits(C) for
 * C < exact_from are the stack model's numbers and are marked approximate.
 * (Usually S is the batch's union, e.g. k for batch-1 decode, so only
 * capacities below top-k are affected.) */
#ifndef MOE_MRC_H
#define MOE_MRC_H

#include <stdint.h>

#include "error.h"
#include "trace.h"

typedef struct moe_mrc {
    int scope;               /* 0 per-layer, 1 global (same values as enum moe_scope) */
    int cold_per_seq;
    uint32_t n_layers;
    uint32_t max_capacity;   /* E (per-layer) or L*E (global): the curve covers 0..max_capacity */
    uint32_t exact_from;     /* hits[c] is exact for c >= exact_from (largest set size) */
    uint64_t accesses;       /* unique (step, layer, expert) accesses */
    uint64_t compulsory;     /* accesses with infinite distance */
    uint64_t *hits;          /* max_capacity + 1 entries: LRU hits at capacity c */
    /* per layer: dist[l * max_capacity + d] = accesses of layer l at group
     * stack distance d (d < max_capacity); cold[l] = compulsory accesses */
    uint64_t *layer_dist;
    uint64_t *layer_cold;
} moe_mrc;

/* scope: MOE_SCOPE_PER_LAYER (0) or MOE_SCOPE_GLOBAL (1). */
int moe_mrc_compute(const moe_trace *t, int scope, int cold_per_seq, moe_mrc *out, moe_error *err);
/* The same, calling progress(ctx, steps done, steps) every 4096 steps (for a
 * progress line; progress may be NULL). */
int moe_mrc_compute_progress(const moe_trace *t, int scope, int cold_per_seq,
                             void (*progress)(void *ctx, uint64_t done, uint64_t total), void *ctx, moe_mrc *out,
                             moe_error *err);
void moe_mrc_free(moe_mrc *m);

/* ---- the stack-distance engine, shared with core/trace_stats.c --------- */

/* Distances over n_keys keys in O(log n_keys) amortised per access and
 * O(n_keys) memory: a Fenwick tree over a window of 2*n_keys+64 timestamps
 * marks each key's last access; when the window fills, live timestamps are
 * renumbered in order (compaction). */
typedef struct moe_sd {
    uint32_t n_keys;
    uint32_t win;        /* Fenwick positions 1..win */
    uint32_t next;       /* next timestamp to hand out (1-based) */
    uint32_t live;       /* keys with a mark */
    uint32_t *last;      /* n_keys: timestamp of the last access, 0 = never */
    uint32_t *fen;       /* win + 1 */
    uint32_t *who;       /* win + 1: key marked at a timestamp, UINT32_MAX = none */
} moe_sd;

#define MOE_SD_INF UINT32_MAX

int moe_sd_init(moe_sd *s, uint32_t n_keys, moe_error *err);
void moe_sd_free(moe_sd *s);
void moe_sd_reset(moe_sd *s);
/* Distance of key (number of keys accessed more recently), or MOE_SD_INF. */
uint32_t moe_sd_query(const moe_sd *s, uint32_t key);
/* Make room for n accesses in a row without compaction between them. */
void moe_sd_reserve(moe_sd *s, uint32_t n);
/* Record an access of key (it becomes the most recent). Call
 * moe_sd_reserve first for a group. */
void moe_sd_touch(moe_sd *s, uint32_t key);

#endif

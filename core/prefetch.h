/* prefetch.h: the one interface every prefetcher implements.
 *
 * The replay engine (and the backend) calls, for every (step, layer) in
 * replay order, observe() with the router's actual set (ascending expert ids,
 * with how many of the step's tokens chose each), then predict(), which may
 * name experts of one later layer of the same step (target > layer) to read
 * ahead. Predictions never cross a step boundary (a stated limit).
 *
 * Each prefetcher is one file core/prefetch_<name>.c with a const ops struct
 * and one line in core/prefetch_registry.def. Parameters are declared as a
 * moe_param template; moe_prefetcher_new parses "name:k=v,..." into a copy,
 * so the canonical name (config key) comes out of the same parser as the
 * eviction policies'. A parameter named "ahead" or "hops" is the distance in
 * layers between the observed layer and the predicted one. */
#ifndef MOE_PREFETCH_H
#define MOE_PREFETCH_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "params.h"
#include "trace.h"

#define MOE_PREFETCH_MAX_PARAMS 8

typedef struct moe_prefetch_env {
    const moe_trace *trace; /* the replayed trace (gate reads its lookahead, oracle its future) */
    uint32_t n_layers, n_experts, top_k;
    uint64_t seed;
} moe_prefetch_env;

typedef struct moe_prefetch_ops {
    const char *name;
    const char *summary;
    const moe_param *params; /* template: keys, defaults, ranges */
    size_t n_params;
    /* params are parsed (defaults filled, user values applied) */
    void *(*create)(const moe_param *params, const moe_prefetch_env *env, moe_error *err);
    void (*observe)(void *st, uint64_t step, uint32_t layer, const uint16_t *set, const uint32_t *n_tok,
                    uint32_t n);
    /* Write up to n_experts predicted experts (ascending) for layer *target
     * into out; return how many (0 = no prediction). */
    uint32_t (*predict)(void *st, uint64_t step, uint32_t layer, uint32_t *target, uint16_t *out);
    void (*destroy)(void *st);
} moe_prefetch_ops;

typedef struct moe_prefetcher {
    const moe_prefetch_ops *ops;
    void *st;
    uint32_t ahead; /* distance of its predictions (0 for none) */
    char canonical[256];
} moe_prefetcher;

moe_prefetcher *moe_prefetcher_new(const char *spec, const moe_prefetch_env *env, moe_error *err);
void moe_prefetcher_free(moe_prefetcher *p);
/* The distance of a spec's predictions in layers (its "ahead" or "hops"
 * parameter; 0 for none), without creating it. */
int moe_prefetch_ahead(const char *spec, uint32_t *ahead, moe_error *err);
/* Canonical name of a spec without creating it (no trace needed). */
int moe_prefetch_canonical(const char *spec, char *canonical, size_t cap, moe_error *err);

const moe_prefetch_ops *moe_prefetch_find(const char *name);
const moe_prefetch_ops *const *moe_prefetch_list(void); /* NULL-terminated */

/* Helpers for implementations. */
/* Top-n of score[0..n_experts) with score > 0, ties to the lower id, written
 * ascending to out; returns the count. */
uint32_t moe_prefetch_top_n(const double *score, uint32_t n_experts, uint32_t n, uint16_t *out);

#endif

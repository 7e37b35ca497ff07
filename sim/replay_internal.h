/* replay_internal.h: what the replay's two loops share, inside sim/ only.
 *
 * moe_replay (sim/replay.c) is the one entry point. It runs the demand-only
 * fast path itself (replay.c: decode steps specialised, key sequences) and
 * hands every config that uses prefetch, speculation, skipping, precision,
 * byte capacities, cache state or the timing model to the general loop
 * (sim/replay_engine.c). Neither loop reaches into the other: both build
 * their caches, and decide which tokens count, with the helpers below
 * (sim/replay_setup.c). On a demand-only config both loops give the same
 * result, bit for bit (tests/unit/test_replay_engine.c). */
#ifndef MOE_REPLAY_INTERNAL_H
#define MOE_REPLAY_INTERNAL_H

#include <stdint.h>

#include "../core/cache.h"
#include "../core/error.h"
#include "../core/trace.h"
#include "replay.h"

/* The caches of a replay: one per layer (per-layer scope; capacities from
 * cfg->split when it is not uniform) or one over all (layer, expert) keys
 * (global scope). Cache i's seed is seed * 1000003 + i, so each layer's
 * cache has its own stream. Checks that global keys fit the key space and
 * that a split has per-layer scope and a capacity in experts. *caches has
 * n entries; free with moe_replay_caches_free (NULL-safe). */
int moe_replay_caches_new(const moe_trace *t, const moe_replay_config *cfg, moe_cache ***caches, uint32_t *n,
                          moe_error *err);
void moe_replay_caches_free(moe_cache **caches, uint32_t n);

/* True when step s starts another sequence than step s - 1 (the sequence of
 * a step is its first token's): where cold_per_seq empties the caches. */
static inline int moe_replay_seq_changes(const moe_trace *t, uint64_t s) {
    return s > 0 && t->token_seq[t->step_first_token[s]] != t->token_seq[t->step_first_token[s - 1]];
}

/* The general loop (sim/replay_engine.c): every option, any config. */
int moe_replay_engine_run(const moe_trace *t, const moe_replay_config *cfg, moe_replay_result *res,
                          moe_error *err);

#endif

/* replay.h: the replay engine. Semantics (README "Replay semantics"):
 *
 *  - steps in order, and within a step layers in ascending order;
 *  - at (step, layer) the needed set is the union of the experts chosen by the
 *    step's tokens; each is counted once (a unique (step, layer, expert)
 *    activation), as a hit iff it was resident before this (step, layer);
 *  - the set is served in ascending expert id: a hit touches the expert, a
 *    miss inserts it, evicting a resident expert outside the set; if every
 *    resident expert is in the set, the new one is not cached (still a miss);
 *  - per-layer scope: one cache of `capacity` experts per layer; global scope:
 *    one cache of `capacity` (layer, expert) keys;
 *  - cold_per_seq: every cache restarts empty when the sequence id of a
 *    step's first token differs from the previous step's;
 *  - a compulsory miss is a miss of a key not accessed since its cache was
 *    last empty. */
#ifndef MOE_REPLAY_H
#define MOE_REPLAY_H

#include <stdint.h>

#include "../core/error.h"
#include "../core/trace.h"

enum moe_scope { MOE_SCOPE_PER_LAYER = 0, MOE_SCOPE_GLOBAL = 1 };

typedef struct moe_replay_config {
    const char *policy;     /* "name" or "name:k=v,..." */
    uint32_t capacity;      /* experts per layer (per-layer) or in all (global) */
    int scope;              /* enum moe_scope */
    int cold_per_seq;
    uint64_t seed;
    uint32_t curve_windows; /* number of warm-up curve windows (0 = 100) */
} moe_replay_config;

typedef struct moe_replay_result {
    char policy[256];       /* canonical policy name */
    uint64_t accesses;      /* unique (step, layer, expert) activations */
    uint64_t hits;
    uint64_t compulsory_misses;
    uint64_t bypasses;      /* misses not cached because the whole cache was protected */
    uint64_t evictions;
    uint64_t restarts;      /* cold restarts (cold_per_seq) */
    uint64_t token_slots;   /* per-token-slot accounting: every (token, layer, slot) */
    uint64_t token_slot_hits;
    uint32_t n_layers;
    uint64_t *layer_accesses, *layer_hits; /* n_layers each */
    uint32_t n_windows;     /* warm-up curve: window w covers steps [w*win_steps, ...) */
    uint64_t win_steps;
    uint64_t *win_accesses, *win_hits;
    double seconds;         /* wall time of the replay proper */
} moe_replay_result;

int moe_replay(const moe_trace *t, const moe_replay_config *cfg, moe_replay_result *res,
               moe_error *err);
void moe_replay_result_free(moe_replay_result *r);

const char *moe_scope_name(int scope);
int moe_scope_parse(const char *s, int *scope, moe_error *err);

#endif

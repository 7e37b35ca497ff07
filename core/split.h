/* split.h: how a per-layer-scope budget of capacity x layers experts is
 * divided among the layers' caches (`--split`).
 *
 *   uniform                every layer gets `capacity` (the default; NULL
 *                          means the same and leaves run identities as before)
 *   adapmoe:profile=P      AdapMoE-style: dynamic programming over per-layer
 *                          LRU hit curves (core/mrc.h) maximising the total
 *                          hits subject to sum of capacities = budget (each
 *                          layer 0..E). P = "oracle" (the replayed trace
 *                          itself: the split knows the future, an upper
 *                          bound) or a path to another trace of the same
 *                          geometry. Among optimal splits the one giving the
 *                          smallest capacity to the deepest layer, then the
 *                          next deepest, ... is taken (shallow layers win ties).
 *   fate:shallow=S         FATE-style shallow-favouring split: layer l of L
 *                          gets weight w_l = 1 + (S-1)(L-1-l)/(L-1) (layer 0
 *                          S times layer L-1, linear in between; 1 when L=1),
 *                          capacities proportional to w_l by largest
 *                          remainder (floors, then one more to the largest
 *                          fractional parts, ties to the shallower layer),
 *                          a layer never above E (its excess is re-divided
 *                          among the others the same way).
 * The budget is capacity x L, clipped to L x E. Global scope has one cache,
 * so only uniform applies there. */
#ifndef MOE_SPLIT_H
#define MOE_SPLIT_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "trace.h"

/* Canonical name of a split spec ("fate:shallow=1.5"). */
int moe_split_canonical(const char *spec, char *canonical, size_t cap, moe_error *err);
/* 1 if spec is NULL or names the uniform split (any spelling), else 0
 * (also 0 for a malformed spec, which moe_split_canonical rejects). */
int moe_split_is_uniform(const char *spec);
/* Per-layer capacities caps[0..L) of trace t for the spec. */
int moe_split_compute(const char *spec, const moe_trace *t, uint32_t capacity, int cold_per_seq,
                      uint32_t *caps, moe_error *err);

/* The cores, exposed for tests. hits[l * (E + 1) + c] = hits of layer l at
 * capacity c (c = 0..E). Fills caps with an optimal split of
 * min(budget, L*E) and returns its total hits. */
uint64_t moe_split_dp(const uint64_t *hits, uint32_t L, uint32_t E, uint64_t budget, uint32_t *caps);
void moe_split_fate(uint32_t L, uint32_t E, uint64_t budget, double shallow, uint32_t *caps);

#endif

/* cache_state.h: a saved expert-cache state (`--save-state` / `--load-state`),
 * shared by the simulator and the offloaded backend so a state saved by one
 * loads in the other.
 *
 * File (text): the line "# moesim cache state v1", a line
 * "geometry LAYERS EXPERTS", then one "LAYER EXPERT" line per resident
 * expert, least recently used first (so inserting them in file order leaves
 * a recency policy in the saved order). Lines starting with '#' are
 * comments. Loading inserts each key into its cache with moe_cache_insert
 * (the normal eviction rule), so a state larger than the cache keeps what
 * the policy keeps. Like flash-moe's saved routing state, it lets a launch
 * skip the warm-up that discovered the hot experts. */
#ifndef MOE_CACHE_STATE_H
#define MOE_CACHE_STATE_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

/* keys: global keys layer * n_experts + expert, in file order (malloc'ed). */
int moe_cache_state_load(const char *path, uint32_t n_layers, uint32_t n_experts, uint32_t **keys,
                         size_t *n, moe_error *err);
/* Write keys (global, least recently used first) atomically. */
int moe_cache_state_save(const char *path, uint32_t n_layers, uint32_t n_experts, const uint32_t *keys,
                         size_t n, moe_error *err);
/* Order the resident keys (resident[k] != 0) by last_use ascending, ties by
 * key; returns the count written to keys (capacity n_keys). */
size_t moe_cache_state_order(const uint8_t *resident, const uint64_t *last_use, uint32_t n_keys,
                             uint32_t *keys);

#endif

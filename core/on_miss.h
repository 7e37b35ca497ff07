/* on_miss.h: what a token does when an expert it chose is not resident
 * (`--on-miss`), the one rule the replay (sim/replay_engine.c) and the
 * offloaded backend (backend/offload.c) both apply, so both serve the same
 * experts and their hit counts stay equal.
 *
 *   wait        load the expert and wait for it (the plain replay)
 *   skip        drop the slot; the backend rescales the token's remaining
 *               gate weights to the sum of all its chosen weights (MLX-Flash's
 *               skip fallback); a token whose every slot missed gets no
 *               expert output at that layer
 *   substitute  run instead the resident expert of that layer with the
 *               highest router logit for the token, among those the token did
 *               not choose and not already substituting in another of its
 *               slots (ties: the lower id), at the missing slot's weight
 *               (flash-moe's filler slots); with none left, dropped as in skip
 *   lowbit[:bits=B]
 *               run the missing expert's resident low-precision copy (HOBBIT's
 *               fallback: every expert is also held in RAM at B bits, loaded
 *               whole at start), at the slot's own weight; nothing is dropped.
 *               The simulator needs B (it prices the low copy's compute); the
 *               backend takes it from its packs (the quantized pack with B
 *               bits, or with fewest bits when B is not given)
 *
 * Residency is the cache's state before the (step, layer) is served. A slot
 * dropped or substituted reads nothing: its expert is not accessed, not
 * inserted and not read (so with an empty cache and no prefetch or loaded
 * state nothing ever becomes resident). A substitute or a low copy is
 * computed, not accessed: it does not count as a hit or move in the
 * policy's order.
 *
 * A mode value is the mode in its low byte and lowbit's B above it
 * (mode | B << 8, B = 0 when not given), so one int carries it through
 * every configuration. */
#ifndef MOE_ON_MISS_H
#define MOE_ON_MISS_H

#include <stdint.h>

#include "cache.h"
#include "error.h"

enum moe_on_miss { MOE_ON_MISS_WAIT = 0, MOE_ON_MISS_SKIP, MOE_ON_MISS_SUBSTITUTE, MOE_ON_MISS_LOWBIT };

static inline int moe_on_miss_mode(int v) { return v & 0xFF; }
static inline int moe_on_miss_bits(int v) { return v >> 8; } /* lowbit's B, 0 = not given */
static inline int moe_on_miss_with_bits(int v, int bits) { return moe_on_miss_mode(v) | bits << 8; }

int moe_on_miss_parse(const char *s, int *mode, moe_error *err);
/* "wait", ..., "lowbit", "lowbit:bits=2" */
const char *moe_on_miss_name(int mode);

/* One token's n chosen experts (rank order) at one layer: out[k] = the
 * expert slot k computes, or MOE_NO_EXPERT when dropped (lowbit: when its
 * low copy runs; the caller knows the mode). Residency: key
 * base + expert in c. logits: the token's E router logits (substitute
 * only). Returns how many slots were substituted. */
uint32_t moe_on_miss_token(int mode, const uint16_t *experts, uint32_t n, const moe_cache *c, uint32_t base,
                           const float *logits, uint32_t E, uint16_t *out);

/* `--skip cum=C,topk_frac=F` (adaptive top-k and skip-on-miss), the rule
 * the replay and the backend share. A token's slots in rank order; slot 0
 * is never dropped. Slot k > 0 with gate weight w is dropped when
 * w < F x w0 (w0: slot 0's weight), or when C > 0, the normalised weight of
 * the slots before it (dropped ones included) is >= C and its expert is not
 * resident. A dropped slot's output is left out (no renormalisation: its
 * weight is the skipped gate mass). */
static inline int moe_skip_by_frac(double topk_frac, uint32_t k, float w, float w0) {
    return topk_frac > 0 && k > 0 && w < topk_frac * w0;
}
static inline int moe_skip_by_cum(double cum_threshold, uint32_t k, double cum_before, int resident) {
    return cum_threshold > 0 && k > 0 && cum_before >= cum_threshold && !resident;
}

#endif

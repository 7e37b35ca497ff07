/* synth.h: a model of a given geometry with seeded random weights
 * (`moesim model synth`), for measuring what compute and I/O cost at real
 * expert sizes: both depend on shapes and bytes, not on the values.
 *
 * The directory gets config.json (the architecture's Hugging Face fields),
 * model.safetensors with every weight except the routed experts (bf16), and
 * experts.pack with the routed experts (backend/pack.h), streamed to disk
 * one expert at a time so memory stays at one expert plus the dense part.
 * The model loads offloaded only (its experts are in the pack alone).
 *
 * Values: each tensor from its own xorshift stream seeded by (seed, name);
 * matrices uniform bf16 of magnitude 2^-7 .. 2^-4 and random sign (sums of
 * thousands of such products stay finite through every layer), norms 1. */
#ifndef MOE_BACKEND_SYNTH_H
#define MOE_BACKEND_SYNTH_H

#include <stdint.h>

#include "../core/error.h"
#include "config.h"

typedef struct moe_synth_spec {
    moe_arch arch;
    int layers, experts, top_k, hidden, inter, shared_inter;
    int heads, kv_heads, head_dim, vocab;
    int pack_dtype;        /* enum moe_pack_dtype: bf16, or quantized q8..q2 */
    uint64_t seed;
    char name[64];         /* recorded in config.json ("moesim_synth") */
    int truncated_from;    /* layers of the full geometry when truncated, else 0 */
} moe_synth_spec;

/* Check the spec (the backend can run it; sizes fit). */
int moe_synth_check(const moe_synth_spec *s, moe_error *err);
/* Bytes the directory will take: dense safetensors and expert pack. */
uint64_t moe_synth_dense_bytes(const moe_synth_spec *s);
uint64_t moe_synth_pack_bytes(const moe_synth_spec *s);
/* Write DIR/config.json, DIR/model.safetensors and DIR/experts.pack (each
 * atomically). progress (may be NULL) is called after each MoE layer of the
 * pack with the bytes written so far and in all. */
int moe_synth_write(const moe_synth_spec *s, const char *dir,
                    void (*progress)(void *ctx, uint64_t done, uint64_t total), void *ctx, moe_error *err);

#endif

/* engine.h: run a loaded model: KV cache, scratch buffers, thread pool.
 *
 * moe_engine_forward(e, tokens, n, ...) appends n tokens at positions
 * pos..pos+n-1 (pos = tokens already in the KV cache) and computes their
 * logits and routing. A prefill is one call with the whole prompt; each
 * decoded token is one call with n = 1. Results are bit-identical whether a
 * token is computed in a batch or alone, and for any thread count. */
#ifndef MOE_BACKEND_ENGINE_H
#define MOE_BACKEND_ENGINE_H

#include <stdint.h>

#include "../core/error.h"
#include "model.h"

/* Routing of the n tokens of one forward call; every array is indexed
 * [token][moe_layer][...] with moe_layer the ordinal among sparse layers.
 * Any pointer may be NULL (not wanted). */
typedef struct moe_routing {
    int *experts;        /* [n][L][k] expert ids, rank order (slot 0 = highest gate weight) */
    float *weights;      /* [n][L][k] applied routing weights (renormalised iff norm_topk_prob) */
    float *logits;       /* [n][L][E] router logits (before softmax) */
    int lookahead_depth; /* D */
    uint16_t *lookahead; /* [n][L][D][k]: top-k of MoE layer (m+d)'s router applied to the
                            input of MoE layer m's block (its post-attention-norm hidden
                            state); 0xFFFF where m+d is past the last MoE layer */
} moe_routing;

typedef struct moe_engine moe_engine;

/* ctx: KV-cache capacity in tokens. threads >= 1. */
moe_engine *moe_engine_new(const moe_model *m, int threads, int ctx, moe_error *err);
void moe_engine_free(moe_engine *e);
/* Forget the sequence (KV cache emptied). */
void moe_engine_reset(moe_engine *e);
int moe_engine_pos(const moe_engine *e);
const moe_model *moe_engine_model(const moe_engine *e);

/* logits: if all_logits, [n][vocab] for every token, else [vocab] for the last
 * one; may be NULL. route may be NULL. Fails if pos + n > ctx. */
int moe_engine_forward(moe_engine *e, const int *tokens, int n, float *logits, int all_logits, moe_routing *route,
                       moe_error *err);

#endif

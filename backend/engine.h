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

/* Where the routed experts' weights come from when they are not in RAM
 * (offloaded mode, backend/offload.h). With a source set, a forward call is
 * one step of at most MOE_ENGINE_MAX_STEP tokens, and for every MoE layer the
 * engine calls, in this order:
 *   layer(ctx, m, T, sel, selw, logits, la, order, &n, err)
 *       the router chose sel/selw [T][k] (rank order) for MoE layer m from
 *       logits [T][E]; la is [T][D][k] lookahead (top-k of layer m+d's router
 *       on this layer's input, 0xFFFF past the last layer) when
 *       lookahead_depth D > 0, else NULL. The source serves the layer's set
 *       to its cache, issues reads and writes the experts to compute into
 *       order[0..n) (the order their data arrives in, each once). It may
 *       rewrite a token's slots (a miss handled without waiting,
 *       core/on_miss.h): sel -1 drops a slot, another id runs that expert at
 *       selw's weight; order then lists exactly the experts sel names;
 *   get(ctx, m, x, err) for each x of order: x's weights, once its data is in.
 * The outputs are summed in ascending expert id whatever the order, so an
 * offloaded run computes exactly the numbers of a resident one.
 *   dense(ctx, l, err), when set (--stream-dense), at the start of every
 *       decoder layer l, before its first norm: layer l's weights (norms,
 *       attention, shared expert, from the block the source read; router
 *       and experts as in the model), valid until the layer ends; NULL on
 *       error. Unset: the model's resident weights. */
typedef struct moe_expert_source {
    void *ctx;
    int lookahead_depth;
    int (*layer)(void *ctx, int m, int T, int *sel, float *selw, const float *logits, const uint16_t *la,
                 int *order, int *n, moe_error *err);
    const moe_mlp_w *(*get)(void *ctx, int m, int x, moe_error *err);
    const moe_layer_w *(*dense)(void *ctx, int l, moe_error *err);
} moe_expert_source;

/* Tokens of one forward call when a source is set (one step, one chunk). */
#define MOE_ENGINE_MAX_STEP 32

/* Wall time the engine spent, by part, since the last moe_engine_times_reset
 * (measured only after moe_engine_set_timing(e, 1)): dense = embedding,
 * norms, attention, router and lookahead of every layer; expert = routed
 * (and shared) expert MLPs and their weighted sum; head = final norm + LM
 * head; source = time inside the source's layer() and get() calls (cache
 * bookkeeping, issuing reads, waiting for data). */
typedef struct moe_engine_times {
    double dense_s, expert_s, head_s, source_s;
    uint64_t experts_run;
} moe_engine_times;

/* ctx: KV-cache capacity in tokens. threads >= 1. */
moe_engine *moe_engine_new(const moe_model *m, int threads, int ctx, moe_error *err);
void moe_engine_free(moe_engine *e);
/* Forget the sequence (KV cache emptied). */
void moe_engine_reset(moe_engine *e);
int moe_engine_pos(const moe_engine *e);
const moe_model *moe_engine_model(const moe_engine *e);

/* Attach (or with NULL detach) an expert source; the model may then have
 * been loaded without experts (and, with a dense() source, without dense
 * weights). Fails if what the model lacks is not given by src. */
int moe_engine_set_expert_source(moe_engine *e, moe_expert_source *src, moe_error *err);
/* Compute the resident experts that q quantizes from their packed weights
 * (backend/expert_quant.h); NULL = every expert at the model's precision.
 * q must match the engine's model and outlive its use. */
struct moe_qexperts;
int moe_engine_set_quantized(moe_engine *e, const struct moe_qexperts *q, moe_error *err);
void moe_engine_set_timing(moe_engine *e, int on);
/* The monotonic clock every backend measurement uses, in seconds. */
double moe_engine_now(void);
moe_engine_times moe_engine_times_get(const moe_engine *e);
void moe_engine_times_reset(moe_engine *e);
/* Compute samples for calibration: when on, every MoE layer's expert block
 * appends (experts run, token slots served, seconds), read by
 * moe_engine_expert_samples; the dense part, see below. */
void moe_engine_record_experts(moe_engine *e, int on);
size_t moe_engine_expert_samples(const moe_engine *e, const int **experts, const double **tokens,
                                 const double **seconds);
/* The same for each layer's dense part: (tokens in the call, summed context
 * positions of those tokens + 1, seconds). */
size_t moe_engine_dense_samples(const moe_engine *e, const int **tokens, const double **ctx, const double **seconds);

/* Routing given from outside (`--route-from TRACE`: a real routing trace
 * executed on a model of its geometry, whose own router would route
 * otherwise). For the next moe_engine_forward call only: every MoE layer
 * still computes its router and lookahead (their cost is paid), then uses
 * experts [n][L][k] (rank order, no empty slot) with weights [n][L][k]
 * (NULL: 1/k each) and, when lookahead is set, lookahead [n][L][D][k] for
 * the depths d <= D it holds. The arrays stay the caller's (a trace's step,
 * moe_trace_rec layout) and must hold n tokens. */
typedef struct moe_forced_routing {
    const uint16_t *experts;
    const float *weights;
    const uint16_t *lookahead;
    int lookahead_depth;
} moe_forced_routing;
void moe_engine_force_routing(moe_engine *e, const moe_forced_routing *r);

/* logits: if all_logits, [n][vocab] for every token, else [vocab] for the last
 * one; may be NULL. route may be NULL. Fails if pos + n > ctx. */
int moe_engine_forward(moe_engine *e, const int *tokens, int n, float *logits, int all_logits, moe_routing *route,
                       moe_error *err);

#endif

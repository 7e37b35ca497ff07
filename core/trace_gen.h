/* trace_gen.h: seeded synthetic routing traces (GSL mt19937).
 *
 * Model, per token and layer (top_k distinct experts, slot order):
 *  - popularity: a Zipf(s) law over ranks 1..E; each layer has its own
 *    random permutation of ranks to expert ids;
 *  - topics: at each token, with probability 1/topic_every, and at the start
 *    of every sequence, each layer's permutation is reshuffled (a new topic
 *    moves popularity around);
 *  - temporal locality: with probability `locality` a slot reuses one of
 *    the experts the previous token of the sequence chose at this layer;
 *  - cross-layer correlation: otherwise, with probability `cross_layer`
 *    (layers >= 1) the slot takes map_l(expert of the same slot at layer
 *    l-1), map_l being a fixed random permutation per layer;
 *  - otherwise a Zipf draw. A draw that repeats an expert already chosen
 *    for this token and layer is redrawn from Zipf (then the most popular
 *    unused expert after 16 tries);
 *  - sequences of seq_len tokens: one prefill step of min(prefill, seq_len)
 *    tokens, then one decode step per remaining token; phases follow
 *    moe_infer_phase() so they survive a CSV round trip;
 *  - gate weights: top_k Gamma(alpha) draws normalised to sum 1 and sorted
 *    descending (a Dirichlet(alpha) draw over the chosen experts);
 *  - lookahead (depth D): the prediction for layer l+d is the true expert
 *    of layer l+d in each slot with probability lookahead_acc, else a
 *    uniformly random expert; absent past the last layer.
 * The same parameters and seed give the same trace, bit for bit. */
#ifndef MOE_TRACE_GEN_H
#define MOE_TRACE_GEN_H

#include <stdint.h>

#include "trace.h"

typedef struct moe_gen_params {
    uint64_t steps;         /* forward passes to generate */
    uint32_t layers, experts, top_k;
    double zipf_s;          /* Zipf exponent (0 = uniform) */
    double locality;        /* P(reuse an expert of the previous token) */
    double cross_layer;     /* P(follow the previous layer's choice) */
    uint64_t topic_every;   /* mean tokens between topic switches (0 = never) */
    uint32_t seq_len;       /* tokens per sequence (prefill + decodes) */
    uint32_t prefill;       /* tokens in the prefill step */
    uint32_t lookahead;     /* lookahead depth D (0 = none) */
    double lookahead_acc;   /* P(prediction is right) per slot */
    double alpha;           /* Dirichlet concentration of gate weights */
    int with_weights;
    uint64_t seed;
    char model[64];
} moe_gen_params;

/* Mixtral-like defaults: 32 layers, 8 experts, top-2, 1000 steps, Zipf 1.0,
 * locality 0.3, cross-layer 0.3, topic every 64 tokens, sequences of 256
 * tokens with a 32-token prefill, no lookahead (accuracy 0.8), alpha 1,
 * weights on, seed 1. */
void moe_gen_defaults(moe_gen_params *p);

/* Check ranges; the message names the parameter. */
int moe_gen_check(const moe_gen_params *p, moe_error *err);

/* The parameters as "key=value" lines (stored in the trace's meta). */
void moe_gen_describe(const moe_gen_params *p, char *buf, size_t n);

moe_trace *moe_trace_generate(const moe_gen_params *p, moe_error *err);

#endif

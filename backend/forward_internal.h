/* forward_internal.h: state shared by the pieces of the forward pass
 * (engine.c, attention.c, moe_block.c); not part of the backend API. */
#ifndef MOE_BACKEND_FORWARD_INTERNAL_H
#define MOE_BACKEND_FORWARD_INTERNAL_H

#include "engine.h"
#include "pool.h"

/* Tokens computed together inside one forward call: bounds scratch memory;
 * chunking does not change any result. Larger than an offloaded step
 * (MOE_ENGINE_MAX_STEP) so a resident prefill gives each expert more tokens
 * per weight load (128: about 16 each in tinymix, top-4 of 32). */
#define MOE_CHUNK 128

struct moe_engine {
    const moe_model *m;
    moe_pool *pool;
    int ctx, pos;
    int q_dim, kv_dim, max_inter;
    float *k_cache;           /* transposed: [layers][kv_dim][ctx + 16] */
    float *v_cache;           /* [layers][ctx][kv_dim] */
    /* scratch, [MOE_CHUNK][...] */
    float *x, *xn, *q, *k, *v, *att, *tmp;
    float *att_sc;             /* attention scores: [threads][ctx + 16] (attention.c) */
    float *rlog, *rprob;       /* [CH][E] */
    float *gu, *act, *ey, *eo; /* expert work: [CH][2*max_inter], [CH][max_inter], [CH][H], [CH][H] */
    float *xe;                 /* gathered expert inputs [CH][H] */
    float *rope_cos, *rope_sin;/* [CH][head_dim/2] */
    int *sel;                  /* [CH][k] chosen experts of the current layer */
    uint8_t *slot_class;       /* [CH][k] MOE_HOBBIT_* of each slot (core/precision.h) */
    float *selw;               /* [CH][k] their weights */
    int *tok_of;               /* [CH*k] token rows of one expert (offloaded: of all, by expert) */
    float *w_of;               /* [CH*k] their gate weights */
    const struct moe_qexperts *qx; /* quantized experts (moe_engine_set_quantized), NULL = none */
    /* offloaded mode (moe_engine_set_expert_source) */
    moe_expert_source *src;
    float *xe_all, *ey_all;    /* [CH*k][H]: every chosen (token, expert) pair's input / output */
    int *first_of, *count_of;  /* [E]: the expert's rows in xe_all / ey_all */
    int *order;                /* [E] compute order given by the source */
    uint16_t *la;              /* [CH][D][k] lookahead for the source */
    moe_forced_routing force;  /* moe_engine_force_routing: experts NULL = the router's own */
    const moe_layer_w *lw;     /* the current layer's weights: the model's, or a streamed block's (src->dense) */
    /* timing (moe_engine_set_timing) */
    int timing;
    double t_layer;            /* start of the current layer (timing) */
    moe_engine_times times;
    int record;                /* moe_engine_record_experts */
    size_t n_ex, cap_ex, n_dn, cap_dn;
    int *ex_n, *dn_tok;
    double *ex_tok, *ex_s, *dn_ctx, *dn_s;
};

/* Append a sample (record mode). */
void moe_engine_add_expert_sample(moe_engine *e, int experts, int tokens, double seconds);
void moe_engine_add_dense_sample(moe_engine *e, int tokens, double seconds);

/* Self-attention of chunk tokens [0, T) at positions pos0.. for layer l
 * (its weights: e->lw): reads e->xn, writes e->tmp (the attention block's
 * output, before the residual). */
void moe_attention(moe_engine *e, int l, int pos0, int T);
/* Feed-forward (MoE or dense) of layer l (norms and shared expert from
 * e->lw, the router from the model): reads e->xn, writes e->eo; records
 * routing of tokens [t0, t0+T) of the call into route. */
int moe_ffn(moe_engine *e, int l, int T, moe_routing *route, int t0, moe_error *err);

#endif

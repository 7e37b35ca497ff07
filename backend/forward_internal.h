/* forward_internal.h: state shared by the pieces of the forward pass
 * (engine.c, attention.c, moe_block.c); not part of the backend API. */
#ifndef MOE_BACKEND_FORWARD_INTERNAL_H
#define MOE_BACKEND_FORWARD_INTERNAL_H

#include "engine.h"
#include "pool.h"

/* Tokens computed together inside one forward call: bounds scratch memory;
 * chunking does not change any result. */
#define MOE_CHUNK 32

struct moe_engine {
    const moe_model *m;
    moe_pool *pool;
    int ctx, pos;
    int q_dim, kv_dim, max_inter;
    float *k_cache, *v_cache; /* [layers][ctx][kv_dim] */
    /* scratch, [MOE_CHUNK][...] */
    float *x, *xn, *q, *k, *v, *att, *tmp;
    float *rlog, *rprob;       /* [CH][E] */
    float *gu, *act, *ey, *eo; /* expert work: [CH][2*max_inter], [CH][max_inter], [CH][H], [CH][H] */
    float *xe;                 /* gathered expert inputs [CH][H] */
    float *rope_cos, *rope_sin;/* [CH][head_dim/2] */
    int *sel;                  /* [CH][k] chosen experts of the current layer */
    float *selw;               /* [CH][k] their weights */
    int *tok_of;               /* [CH] token list of one expert */
    float *w_of;               /* [CH] */
};

/* Self-attention of chunk tokens [0, T) at positions pos0.. for layer l:
 * reads e->xn, writes e->tmp (the attention block's output, before the residual). */
void moe_attention(moe_engine *e, int l, int pos0, int T);
/* Feed-forward (MoE or dense) of layer l: reads e->xn, writes e->eo; records
 * routing of tokens [t0, t0+T) of the call into route. */
void moe_ffn(moe_engine *e, int l, int T, moe_routing *route, int t0);

#endif

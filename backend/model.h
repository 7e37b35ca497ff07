/* model.h: a loaded model: config plus every weight, bound by name.
 *
 * Matrices (experts, attention, routers, shared and dense MLPs, embeddings,
 * LM head) stay in the file's 16-bit dtype (bf16 or f16): the kernels widen
 * them in registers (backend/matmul.h), which is exact, so the numbers are
 * those of an f32 copy at half the memory and none of the conversion at
 * start-up. Vectors (norms, biases, the shared-expert gate) are converted to
 * f32 once at load. */
#ifndef MOE_BACKEND_MODEL_H
#define MOE_BACKEND_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "../core/error.h"
#include "config.h"

/* One SwiGLU MLP: out = down(silu(gate(x)) * up(x)). gate_up holds the gate
 * rows [0, inter) then the up rows [inter, 2*inter), each row `hidden` long
 * (the same order as transformers 5's fused gate_up_proj). */
typedef struct moe_mlp_w {
    int inter;
    float *gate_up; /* [2*inter][hidden] */
    float *down;    /* [hidden][inter] */
    /* the same in 16 bits, kept as the file has them (gate_up, down NULL):
     * bf16, or f16 when f16 is set */
    const uint16_t *gate_up16, *down16;
    int f16;
    /* quantized (an offloaded expert read from a quantized pack): when set,
     * the engine computes from these (backend/quant.h), not the floats */
    const struct moe_qmat *q_gate_up, *q_down;
} moe_mlp_w;

/* A weight matrix as loaded: f32, or 16 bits kept as the file holds them
 * (bf16, or f16 when f16 is set; the kernels widen them in registers,
 * moe_matmul_mat). One of f32 and h16 is set. */
typedef struct moe_mat {
    const float *f32;
    const uint16_t *h16;
    int f16;
} moe_mat;

typedef struct moe_layer_w {
    float *attn_norm, *ffn_norm;  /* input_layernorm, post_attention_layernorm [hidden] */
    moe_mat wq, wk, wv, wo;       /* [q_dim][hidden], [kv_dim][hidden] x2, [hidden][q_dim] */
    float *bq, *bk, *bv, *bo;     /* optional biases (qwen2_moe qkv_bias, attention_bias) */
    float *q_norm, *k_norm;       /* qwen3_moe: [head_dim]; olmoe: [q_dim] / [kv_dim] */
    /* sparse block (is_moe) */
    moe_mat router;               /* [n_experts][hidden] */
    moe_mlp_w *experts;           /* [n_experts] */
    moe_mlp_w shared;             /* qwen2_moe shared expert (inter 0 = none) */
    float *shared_gate;           /* [hidden]: sigmoid gate of the shared expert */
    /* dense block (!is_moe) */
    moe_mlp_w dense;
} moe_layer_w;

typedef struct moe_model {
    moe_model_config cfg;
    char name[64];        /* directory's base name */
    char dtype[8];        /* dtype of the expert weights in the file */
    int fused_experts;    /* 1: fused gate_up_proj/down_proj tensors, 0: per-expert */
    int experts_loaded;   /* 0: routed experts not in RAM (MOE_LOAD_NO_EXPERTS) */
    /* 1: each layer's dense weights (norms, attention, shared expert) are not
     * in RAM (MOE_LOAD_NO_DENSE): a source streams them from a dense pack
     * (backend/dense_pack.h). layers[l] then holds only its router and its
     * experts array, and `identity` was computed while loading, one layer at
     * a time (the weights are gone afterwards). */
    int dense_streamed;
    uint8_t identity[32];
    moe_mat embed;        /* [vocab][hidden] */
    float *final_norm;    /* [hidden] */
    moe_mat lm_head;      /* [vocab][hidden]; == embed when tied */
    moe_layer_w *layers;
    size_t n_params;
    void **allocs;        /* every weight buffer, freed by moe_model_free */
    size_t n_allocs, cap_allocs;
} moe_model;

/* Load DIR/config.json and the weights: DIR/model.safetensors, or the shards
 * DIR/model.safetensors.index.json lists (backend/checkpoint.h). */
moe_model *moe_model_load(const char *dir, moe_error *err);
/* flags for moe_model_load_ex */
enum { MOE_LOAD_NO_EXPERTS = 1, /* routed experts' weights are left NULL (offloaded
                                    mode streams them from a pack); their
                                    tensors' shapes are still checked */
       MOE_LOAD_NO_DENSE = 2 };  /* each layer's dense weights are read, hashed into
                                    the identity and dropped (--stream-dense);
                                    routers, embeddings, final norm, LM head stay */
moe_model *moe_model_load_ex(const char *dir, unsigned flags, moe_error *err);
/* SHA-256 identity of a model: its geometry and every weight that is not a
 * routed expert (embeddings, norms, attention, routers, shared experts, LM
 * head), as loaded. An expert pack records it (backend/pack.h). */
void moe_model_identity(const moe_model *m, uint8_t out[32]);
void moe_model_free(moe_model *m);
/* An MLP's weights as f32 (gate_up [2I][H], down [H][I]): pointers into w
 * when it holds f32, else widened into gu_buf / dn_buf (2IH and HI floats). */
void moe_mlp_f32(const moe_mlp_w *w, int hidden, float *gu_buf, float *dn_buf, const float **gu, const float **dn);
/* Row r of a [rows][n] matrix as f32 (widened into out when 16-bit). */
void moe_mat_row(moe_mat w, size_t r, int n, float *out);
/* Whether an MLP's weights are loaded (in either form). */
static inline int moe_mlp_loaded(const moe_mlp_w *w) { return (w->gate_up && w->down) || (w->gate_up16 && w->down16); }
/* An MLP's two matrices as moe_mat. */
static inline moe_mat moe_mlp_gate_up(const moe_mlp_w *w) { return (moe_mat){w->gate_up, w->gate_up16, w->f16}; }
static inline moe_mat moe_mlp_down(const moe_mlp_w *w) { return (moe_mat){w->down, w->down16, w->f16}; }
/* Parameters of one routed expert (gate + up + down). */
size_t moe_expert_params(const moe_model *m);

#endif

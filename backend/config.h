/* config.h: the Hugging Face config.json of a supported MoE model. */
#ifndef MOE_BACKEND_CONFIG_H
#define MOE_BACKEND_CONFIG_H

#include <stdint.h>

#include "../core/error.h"

#define MOE_CFG_MAX_LAYERS 1024

typedef enum { MOE_ARCH_MIXTRAL = 0, MOE_ARCH_QWEN2_MOE, MOE_ARCH_QWEN3_MOE, MOE_ARCH_OLMOE } moe_arch;

/* How q and k are normalised after their projection (before RoPE). */
typedef enum {
    MOE_QKNORM_NONE = 0,
    MOE_QKNORM_HEAD,  /* qwen3_moe: RMSNorm over each head's head_dim values */
    MOE_QKNORM_FULL,  /* olmoe: RMSNorm over the whole q (heads*head_dim) / k projection */
} moe_qknorm;

typedef struct moe_model_config {
    moe_arch arch;
    char model_type[32];
    int hidden;            /* hidden_size */
    int n_layers;          /* num_hidden_layers */
    int n_heads, n_kv_heads, head_dim;
    int vocab;
    int max_pos;           /* max_position_embeddings */
    int n_experts;         /* routed experts per MoE layer */
    int top_k;             /* num_experts_per_tok */
    int expert_inter;      /* intermediate size of one routed expert */
    int shared_inter;      /* qwen2_moe shared expert; 0 = none */
    int dense_inter;       /* intermediate_size of dense-MLP layers (qwen mlp_only_layers) */
    int norm_topk_prob;    /* renormalise the top-k softmax weights to sum 1 */
    int tie_embeddings;
    int sliding_window;    /* 0 = full causal attention */
    float rms_eps;
    double rope_theta;
    double clip_qkv;       /* olmoe: clamp q,k,v to [-c, c]; 0 = off */
    moe_qknorm qk_norm;
    int n_eos, eos[8];     /* eos_token_id (int or list); generation stops there, as generate() does */
    int n_moe_layers;
    uint8_t is_moe[MOE_CFG_MAX_LAYERS]; /* per decoder layer: sparse MoE block or dense MLP */
    int moe_index[MOE_CFG_MAX_LAYERS];  /* decoder layer -> MoE layer ordinal, -1 if dense */
} moe_model_config;

/* Parse path (a config.json). Unknown architectures are refused by name;
 * missing geometry fields are named. */
int moe_config_load(moe_model_config *c, const char *path, moe_error *err);

#endif

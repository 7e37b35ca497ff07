/* config.c: config.json -> moe_model_config, with the defaults transformers
 * uses for fields a config may omit (stated per architecture below). */
#include "config.h"

#include <cjson/cJSON.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *read_file(const char *path, moe_error *err) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        moe_fail(err, "%s: cannot open: %m", path);
        return NULL;
    }
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    size_t r;
    while (buf && (r = fread(buf + n, 1, cap - n - 1, f)) > 0) {
        n += r;
        if (n + 1 == cap) {
            if (cap > (64u << 20)) { free(buf); buf = NULL; break; }
            char *nb = realloc(buf, cap * 2);
            if (!nb) { free(buf); buf = NULL; break; }
            buf = nb;
            cap *= 2;
        }
    }
    fclose(f);
    if (!buf) {
        moe_fail(err, "%s: too large or out of memory", path);
        return NULL;
    }
    buf[n] = 0;
    return buf;
}

/* The number of routed experts: transformers names it num_local_experts
 * (Mixtral, and Qwen3-MoE as 5.x writes it) or num_experts (Qwen2-MoE, OLMoE);
 * either spelling is accepted for every architecture, the usual one first. */
static int get_int(const cJSON *root, const char *path, const char *key, long def, long lo, long hi, int *out,
                   moe_error *err);
static int get_n_experts(const cJSON *r, const char *p, const char *first, const char *second, int *out,
                         moe_error *err) {
    if (cJSON_GetObjectItemCaseSensitive(r, first) || !cJSON_GetObjectItemCaseSensitive(r, second))
        return get_int(r, p, first, -1, 1, 65534, out, err);
    return get_int(r, p, second, -1, 1, 65534, out, err);
}

/* An integer field; `def` < 0 means required. */
static int get_int(const cJSON *root, const char *path, const char *key, long def, long lo, long hi, int *out,
                   moe_error *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!v || cJSON_IsNull(v)) {
        if (def < 0) return moe_fail(err, "%s: field '%s': missing", path, key);
        *out = (int)def;
        return 0;
    }
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) || v->valuedouble < lo || v->valuedouble > hi)
        return moe_fail(err, "%s: field '%s': expected an integer in [%ld, %ld]", path, key, lo, hi);
    *out = (int)v->valuedouble;
    return 0;
}

static int get_num(const cJSON *root, const char *path, const char *key, double def, double *out, moe_error *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!v || cJSON_IsNull(v)) { *out = def; return 0; }
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble))
        return moe_fail(err, "%s: field '%s': expected a number", path, key);
    *out = v->valuedouble;
    return 0;
}

static int get_bool(const cJSON *root, const char *path, const char *key, int def, int *out, moe_error *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!v || cJSON_IsNull(v)) { *out = def; return 0; }
    if (!cJSON_IsBool(v)) return moe_fail(err, "%s: field '%s': expected true or false", path, key);
    *out = cJSON_IsTrue(v);
    return 0;
}

static const struct {
    const char *model_type, *class_name;
    moe_arch arch;
} archs[] = {
    {"mixtral", "MixtralForCausalLM", MOE_ARCH_MIXTRAL},
    {"qwen2_moe", "Qwen2MoeForCausalLM", MOE_ARCH_QWEN2_MOE},
    {"qwen3_moe", "Qwen3MoeForCausalLM", MOE_ARCH_QWEN3_MOE},
    {"olmoe", "OlmoeForCausalLM", MOE_ARCH_OLMOE},
};
#define N_ARCHS (sizeof archs / sizeof *archs)

static int pick_arch(moe_model_config *c, const cJSON *root, const char *path, moe_error *err) {
    const cJSON *mt = cJSON_GetObjectItemCaseSensitive(root, "model_type");
    const cJSON *ar = cJSON_GetObjectItemCaseSensitive(root, "architectures");
    const char *cls = NULL;
    if (cJSON_IsArray(ar) && cJSON_GetArraySize(ar) > 0 && cJSON_IsString(cJSON_GetArrayItem(ar, 0)))
        cls = cJSON_GetArrayItem(ar, 0)->valuestring;
    int by_type = -1, by_class = -1;
    for (size_t i = 0; i < N_ARCHS; i++) {
        if (cJSON_IsString(mt) && !strcmp(mt->valuestring, archs[i].model_type)) by_type = (int)i;
        if (cls && !strcmp(cls, archs[i].class_name)) by_class = (int)i;
    }
    if (cJSON_IsString(mt) && by_type < 0)
        return moe_fail(err, "%s: field 'model_type': architecture '%s' not supported (mixtral, qwen2_moe, qwen3_moe, olmoe)",
                        path, mt->valuestring);
    if (!cJSON_IsString(mt) && cls && by_class < 0)
        return moe_fail(err, "%s: field 'architectures': '%s' not supported (MixtralForCausalLM, Qwen2MoeForCausalLM, "
                             "Qwen3MoeForCausalLM, OlmoeForCausalLM)", path, cls);
    if (by_type < 0 && by_class < 0)
        return moe_fail(err, "%s: field 'model_type': missing (and no 'architectures')", path);
    if (by_type >= 0 && by_class >= 0 && by_type != by_class)
        return moe_fail(err, "%s: field 'architectures': '%s' disagrees with model_type '%s'", path, cls, mt->valuestring);
    int i = by_type >= 0 ? by_type : by_class;
    c->arch = archs[i].arch;
    snprintf(c->model_type, sizeof c->model_type, "%s", archs[i].model_type);
    return 0;
}

/* RoPE base: transformers 4 writes rope_theta at top level, transformers 5
 * moves it into rope_parameters {"rope_type": "default", "rope_theta": x};
 * only the default (unscaled) RoPE is implemented. */
static int get_rope(moe_model_config *c, const cJSON *root, const char *path, double def, moe_error *err) {
    if (get_num(root, path, "rope_theta", def, &c->rope_theta, err)) return -1;
    const char *keys[] = {"rope_parameters", "rope_scaling"};
    for (int k = 0; k < 2; k++) {
        const cJSON *rp = cJSON_GetObjectItemCaseSensitive(root, keys[k]);
        if (!rp || cJSON_IsNull(rp)) continue;
        if (!cJSON_IsObject(rp)) return moe_fail(err, "%s: field '%s': expected an object", path, keys[k]);
        const cJSON *ty = cJSON_GetObjectItemCaseSensitive(rp, "rope_type");
        if (!ty) ty = cJSON_GetObjectItemCaseSensitive(rp, "type");
        if (ty && (!cJSON_IsString(ty) || strcmp(ty->valuestring, "default")))
            return moe_fail(err, "%s: field '%s.rope_type': '%s' not supported (only default RoPE)", path, keys[k],
                            cJSON_IsString(ty) ? ty->valuestring : "?");
        if (get_num(rp, path, "rope_theta", c->rope_theta, &c->rope_theta, err)) return -1;
    }
    if (!(c->rope_theta > 0)) return moe_fail(err, "%s: field 'rope_theta': must be > 0", path);
    return 0;
}

/* Which decoder layers hold a sparse MoE block (qwen: decoder_sparse_step and
 * mlp_only_layers, as in Qwen2MoeDecoderLayer; the others: every layer). */
static int sparse_layers(moe_model_config *c, const cJSON *root, const char *path, moe_error *err) {
    int step = 1;
    memset(c->is_moe, 1, sizeof c->is_moe);
    if (c->arch == MOE_ARCH_QWEN2_MOE || c->arch == MOE_ARCH_QWEN3_MOE) {
        if (get_int(root, path, "decoder_sparse_step", 1, 1, 1 << 20, &step, err)) return -1;
        for (int l = 0; l < c->n_layers; l++) c->is_moe[l] = (l + 1) % step == 0;
        const cJSON *mo = cJSON_GetObjectItemCaseSensitive(root, "mlp_only_layers");
        if (mo && !cJSON_IsNull(mo)) {
            if (!cJSON_IsArray(mo)) return moe_fail(err, "%s: field 'mlp_only_layers': expected a list", path);
            int i = 0;
            for (const cJSON *e = mo->child; e; e = e->next, i++) {
                if (!cJSON_IsNumber(e) || e->valuedouble < 0 || e->valuedouble >= c->n_layers ||
                    e->valuedouble != floor(e->valuedouble))
                    return moe_fail(err, "%s: field 'mlp_only_layers[%d]': not a layer index below %d", path, i,
                                    c->n_layers);
                c->is_moe[(int)e->valuedouble] = 0;
            }
        }
    }
    c->n_moe_layers = 0;
    for (int l = 0; l < c->n_layers; l++) c->moe_index[l] = c->is_moe[l] ? c->n_moe_layers++ : -1;
    if (!c->n_moe_layers) return moe_fail(err, "%s: no layer has a sparse MoE block", path);
    return 0;
}

static int parse(moe_model_config *c, const cJSON *r, const char *p, moe_error *err) {
    if (pick_arch(c, r, p, err)) return -1;
    const long BIG = 1L << 24;
    if (get_int(r, p, "hidden_size", -1, 1, BIG, &c->hidden, err) ||
        get_int(r, p, "num_hidden_layers", -1, 1, MOE_CFG_MAX_LAYERS, &c->n_layers, err) ||
        get_int(r, p, "num_attention_heads", -1, 1, 4096, &c->n_heads, err) ||
        get_int(r, p, "num_key_value_heads", c->n_heads, 1, 4096, &c->n_kv_heads, err) ||
        get_int(r, p, "vocab_size", -1, 1, BIG, &c->vocab, err) ||
        get_int(r, p, "max_position_embeddings", 4096, 1, BIG, &c->max_pos, err))
        return -1;
    /* head_dim defaults to hidden_size / num_attention_heads (integer
     * division, as transformers does); given or derived it must be in
     * [2, 65536] and even (RoPE rotates pairs). */
    const cJSON *hd = cJSON_GetObjectItemCaseSensitive(r, "head_dim");
    if (hd && !cJSON_IsNull(hd)) {
        if (get_int(r, p, "head_dim", -1, 2, 65536, &c->head_dim, err)) return -1;
    } else {
        c->head_dim = c->hidden / c->n_heads;
        if (c->head_dim < 2 || c->head_dim > 65536)
            return moe_fail(err, "%s: field 'head_dim': missing, and hidden_size / num_attention_heads = %d / %d = %d "
                                 "is not in [2, 65536]", p, c->hidden, c->n_heads, c->head_dim);
    }
    if (c->head_dim % 2)
        return moe_fail(err, "%s: field 'head_dim': %d is odd (RoPE needs pairs)%s", p, c->head_dim,
                        hd && !cJSON_IsNull(hd) ? "" : " (derived as hidden_size / num_attention_heads)");
    if (c->n_heads % c->n_kv_heads)
        return moe_fail(err, "%s: field 'num_key_value_heads': %d does not divide num_attention_heads %d", p,
                        c->n_kv_heads, c->n_heads);
    const cJSON *act = cJSON_GetObjectItemCaseSensitive(r, "hidden_act");
    if (act && (!cJSON_IsString(act) || (strcmp(act->valuestring, "silu") && strcmp(act->valuestring, "swish"))))
        return moe_fail(err, "%s: field 'hidden_act': only silu is supported", p);
    double eps = 1e-5, rope = 1e4;
    int norm_def = 0;
    switch (c->arch) {
    case MOE_ARCH_MIXTRAL:
        /* MixtralConfig: rope_theta 1e6, eps 1e-5; the router always renormalises. */
        rope = 1e6;
        if (get_n_experts(r, p, "num_local_experts", "num_experts", &c->n_experts, err) ||
            get_int(r, p, "intermediate_size", -1, 1, BIG, &c->expert_inter, err))
            return -1;
        norm_def = 1;
        break;
    case MOE_ARCH_QWEN2_MOE:
    case MOE_ARCH_QWEN3_MOE:
        /* Qwen2MoeConfig / Qwen3MoeConfig: eps 1e-6, rope_theta 1e4, norm_topk_prob false. */
        eps = 1e-6;
        if (c->arch == MOE_ARCH_QWEN2_MOE &&
            get_int(r, p, "shared_expert_intermediate_size", -1, 1, BIG, &c->shared_inter, err))
            return -1;
        if (get_n_experts(r, p, "num_experts", "num_local_experts", &c->n_experts, err) ||
            get_int(r, p, "moe_intermediate_size", -1, 1, BIG, &c->expert_inter, err) ||
            get_int(r, p, "intermediate_size", 0, 0, BIG, &c->dense_inter, err))
            return -1;
        {
            int sw = 0;
            if (get_bool(r, p, "use_sliding_window", 0, &sw, err)) return -1;
            if (sw) return moe_fail(err, "%s: field 'use_sliding_window': true is not supported", p);
        }
        break;
    case MOE_ARCH_OLMOE:
        if (get_n_experts(r, p, "num_experts", "num_local_experts", &c->n_experts, err) ||
            get_int(r, p, "intermediate_size", -1, 1, BIG, &c->expert_inter, err) ||
            get_num(r, p, "clip_qkv", 0, &c->clip_qkv, err))
            return -1;
        break;
    }
    c->qk_norm = c->arch == MOE_ARCH_QWEN3_MOE ? MOE_QKNORM_HEAD : c->arch == MOE_ARCH_OLMOE ? MOE_QKNORM_FULL : MOE_QKNORM_NONE;
    if (get_int(r, p, "num_experts_per_tok", -1, 1, c->n_experts, &c->top_k, err)) return -1;
    if (get_num(r, p, "rms_norm_eps", eps, &eps, err) || get_rope(c, r, p, rope, err)) return -1;
    /* RMSNorm divides by sqrt(mean(x^2) + eps): eps <= 0 gives NaN or inf
     * on a zero row; it is applied as a float, so it must stay > 0 there. */
    if (!(eps > 0 && eps <= 1) || !((float)eps >= FLT_MIN))
        return moe_fail(err, "%s: field 'rms_norm_eps': %g is not in (0, 1] (as a float, at least %g)", p, eps,
                        (double)FLT_MIN);
    c->rms_eps = (float)eps;
    if (c->clip_qkv < 0)
        return moe_fail(err, "%s: field 'clip_qkv': %g is negative (0 or null turns clipping off)", p, c->clip_qkv);
    if (c->arch == MOE_ARCH_MIXTRAL) {
        c->norm_topk_prob = 1; /* MixtralSparseMoeBlock ignores any norm_topk_prob field */
        if (get_int(r, p, "sliding_window", 0, 0, 1L << 30, &c->sliding_window, err)) return -1;
    } else if (get_bool(r, p, "norm_topk_prob", norm_def, &c->norm_topk_prob, err)) {
        return -1;
    }
    if (get_bool(r, p, "tie_word_embeddings", 0, &c->tie_embeddings, err)) return -1;
    if (sparse_layers(c, r, p, err)) return -1;
    /* eos_token_id: a token id or a list of them, each in [0, vocab_size). */
    const cJSON *eos = cJSON_GetObjectItemCaseSensitive(r, "eos_token_id");
    if (eos && !cJSON_IsNull(eos)) {
        if (!cJSON_IsNumber(eos) && !cJSON_IsArray(eos))
            return moe_fail(err, "%s: field 'eos_token_id': expected a token id or a list of them", p);
        int i = 0;
        for (const cJSON *x = cJSON_IsArray(eos) ? eos->child : eos; x; x = cJSON_IsArray(eos) ? x->next : NULL, i++) {
            if (!cJSON_IsNumber(x) || x->valuedouble != floor(x->valuedouble) || x->valuedouble < 0 ||
                x->valuedouble >= c->vocab) {
                if (cJSON_IsArray(eos))
                    return moe_fail(err, "%s: field 'eos_token_id[%d]': not a token id in [0, %d)", p, i, c->vocab);
                return moe_fail(err, "%s: field 'eos_token_id': not a token id in [0, %d)", p, c->vocab);
            }
            if (c->n_eos < 8) c->eos[c->n_eos++] = (int)x->valuedouble;
        }
    }
    for (int l = 0; l < c->n_layers; l++)
        if (!c->is_moe[l] && c->dense_inter <= 0)
            return moe_fail(err, "%s: field 'intermediate_size': needed by dense layer %d", p, l);
    return 0;
}

int moe_config_load(moe_model_config *c, const char *path, moe_error *err) {
    memset(c, 0, sizeof *c);
    char *text = read_file(path, err);
    if (!text) return -1;
    cJSON *root = cJSON_Parse(text);
    if (!root) {
        const char *at = cJSON_GetErrorPtr();
        long line = 1;
        for (const char *q = text; at && q < at && *q; q++) line += *q == '\n';
        free(text);
        return moe_fail(err, "%s:%ld: malformed JSON", path, line);
    }
    int rc = cJSON_IsObject(root) ? parse(c, root, path, err) : moe_fail(err, "%s: not a JSON object", path);
    cJSON_Delete(root);
    free(text);
    return rc;
}

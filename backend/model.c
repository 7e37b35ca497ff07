/* model.c: bind safetensors tensors to the weights of moe_model.
 *
 * Tensor names (transformers conventions, checked against its conversion
 * mapping): per layer L under "model.layers.L.":
 *   input_layernorm.weight, post_attention_layernorm.weight
 *   self_attn.{q,k,v,o}_proj.weight (+ .bias if present), self_attn.{q,k}_norm.weight
 *   MoE block prefix "mlp." (transformers 5, all archs) or "block_sparse_moe." (Mixtral checkpoints):
 *     gate.weight [E, H]
 *     fused (transformers 5): experts.gate_up_proj [E, 2I, H] (gate rows first: the
 *       checkpoint converter concatenates w1 then w3, the forward chunks gate, up),
 *       experts.down_proj [E, H, I]
 *     per expert: experts.E.{w1,w3,w2}.weight (Mixtral) or experts.E.{gate,up,down}_proj.weight
 *     qwen2_moe: shared_expert.{gate,up,down}_proj.weight, shared_expert_gate.weight [1, H]
 *   dense layers (qwen mlp_only_layers): mlp.{gate,up,down}_proj.weight
 * plus model.embed_tokens.weight, model.norm.weight, lm_head.weight (absent when tied). */
#include "model.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/sha256.h"
#include "checkpoint.h"
#include "simd.h"

typedef struct binder {
    moe_model *m;
    moe_checkpoint ck;      /* model.safetensors or its shards */
    const char *want_dtype; /* from config.json "dtype"/"torch_dtype", or NULL */
    int no_experts;         /* MOE_LOAD_NO_EXPERTS: check expert tensors, keep no weights */
    moe_error *err;
} binder;

/* Record p as owned by the model (freed by moe_model_free); p on success. */
static void *model_own(moe_model *m, void *p) {
    if (!p) return NULL;
    if (m->n_allocs == m->cap_allocs) {
        size_t cap = m->cap_allocs ? m->cap_allocs * 2 : 64;
        void **a = realloc(m->allocs, cap * sizeof *a);
        if (!a) { free(p); return NULL; }
        m->allocs = a;
        m->cap_allocs = cap;
    }
    m->allocs[m->n_allocs++] = p;
    return p;
}

static float *model_alloc(moe_model *m, size_t n) { return model_own(m, malloc((n ? n : 1) * sizeof(float))); }
static uint16_t *model_alloc16(moe_model *m, size_t n) { return model_own(m, malloc((n ? n : 1) * sizeof(uint16_t))); }

static const st_tensor *lookup(binder *b, const char *name) { return moe_checkpoint_find(&b->ck, name); }
/* The file to name in a message about t: its shard when sharded; the
 * checkpoint (model.safetensors or the index) when t is missing. */
static const char *where(const binder *b, const st_tensor *t) { return moe_checkpoint_file_of(&b->ck, t); }

/* Check tensor `t` has exactly the dims given (n_dims of them). */
static int check_shape(binder *b, const st_tensor *t, int n_dims, const int64_t *dims) {
    int ok = t->n_dims == n_dims;
    for (int i = 0; ok && i < n_dims; i++) ok = t->shape[i] == dims[i];
    if (!ok) {
        char got[128], want[128] = "[";
        size_t o = 1;
        for (int i = 0; i < n_dims; i++)
            o += (size_t)snprintf(want + o, sizeof want - o, "%s%" PRId64, i ? ", " : "", dims[i]);
        snprintf(want + o, sizeof want - o, "]");
        return moe_fail(b->err, "%s: tensor '%s': shape %s, config.json implies %s", where(b, t), t->name,
                        st_shape_str(t, got, sizeof got), want);
    }
    if (b->want_dtype && strcmp(st_dtype_name(t->dtype), b->want_dtype))
        return moe_fail(b->err, "%s: tensor '%s': dtype %s, config.json says %s", where(b, t), t->name,
                        st_dtype_name(t->dtype), b->want_dtype);
    return 0;
}

/* Bind a required tensor of the given shape into a fresh f32 buffer. */
static float *bind(binder *b, int n_dims, const int64_t *dims, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static float *bind_v(binder *b, float *dst, int optional, int n_dims, const int64_t *dims, const char *fmt, va_list ap) {
    char name[256];
    vsnprintf(name, sizeof name, fmt, ap);
    const st_tensor *t = lookup(b, name);
    if (!t) {
        if (!optional) moe_fail(b->err, "%s: tensor '%s': missing", where(b, NULL), name);
        return NULL;
    }
    if (check_shape(b, t, n_dims, dims)) return NULL;
    float *p = dst ? dst : model_alloc(b->m, t->n_elems);
    if (!p) {
        moe_fail(b->err, "%s: tensor '%s': out of memory", where(b, t), name);
        return NULL;
    }
    st_to_f32(t, 0, t->n_elems, p);
    b->m->n_params += t->n_elems;
    return p;
}
static float *bind(binder *b, int n_dims, const int64_t *dims, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    float *p = bind_v(b, NULL, 0, n_dims, dims, fmt, ap);
    va_end(ap);
    return p;
}
/* Optional tensor: NULL without error if absent (err set only on a bad shape). */
static float *bind_opt(binder *b, int *failed, int n_dims, const int64_t *dims, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static float *bind_opt(binder *b, int *failed, int n_dims, const int64_t *dims, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    b->err->msg[0] = 0;
    float *p = bind_v(b, NULL, 1, n_dims, dims, fmt, ap);
    va_end(ap);
    if (!p && b->err->msg[0]) *failed = 1;
    return p;
}

/* Bind a required tensor into dst (already allocated). */
static int bind_into(binder *b, float *dst, int n_dims, const int64_t *dims, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static int bind_into(binder *b, float *dst, int n_dims, const int64_t *dims, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    float *p = bind_v(b, dst, 0, n_dims, dims, fmt, ap);
    va_end(ap);
    return p ? 0 : -1;
}

/* Bind a required matrix: bf16 kept as the file holds it, else f32. */
static int bind_mat(binder *b, moe_mat *out, int n_dims, const int64_t *dims, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static int bind_mat(binder *b, moe_mat *out, int n_dims, const int64_t *dims, const char *fmt, ...) {
    char name[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    const st_tensor *t = lookup(b, name);
    *out = (moe_mat){0};
    if (t && (t->dtype == ST_BF16 || t->dtype == ST_F16)) {
        if (check_shape(b, t, n_dims, dims)) return -1;
        uint16_t *p = model_own(b->m, malloc((t->n_elems ? t->n_elems : 1) * sizeof(uint16_t)));
        if (!p) return moe_fail(b->err, "%s: tensor '%s': out of memory", where(b, t), name);
        st_copy16(t, 0, t->n_elems, p);
        b->m->n_params += t->n_elems;
        out->h16 = p, out->f16 = t->dtype == ST_F16;
        return 0;
    }
    out->f32 = bind(b, n_dims, dims, "%s", name);
    return out->f32 ? 0 : -1;
}

#define D1(a) 1, (const int64_t[]){(a)}
#define D2(a, b) 2, (const int64_t[]){(a), (b)}
#define D3(a, b, c) 3, (const int64_t[]){(a), (b), (c)}

/* A SwiGLU MLP from three separate [I,H],[I,H],[H,I] tensors named pfx + {g,u,d}. */
static int bind_mlp3_f32(binder *b, moe_mlp_w *w, int inter, const char *pfx, const char *g, const char *u, const char *d) {
    int64_t H = b->m->cfg.hidden, I = inter;
    w->inter = inter;
    w->gate_up = model_alloc(b->m, (size_t)(2 * I * H));
    if (!w->gate_up) return moe_fail(b->err, "out of memory");
    if (bind_into(b, w->gate_up, D2(I, H), "%s%s", pfx, g) || bind_into(b, w->gate_up + I * H, D2(I, H), "%s%s", pfx, u))
        return -1;
    w->down = bind(b, D2(H, I), "%s%s", pfx, d);
    return w->down ? 0 : -1;
}

/* A SwiGLU MLP from three tensors: kept in bf16 when all three are bf16
 * (model.h), else as bind_mlp3_f32. */
static int bind_mlp3(binder *b, moe_mlp_w *w, int inter, const char *pfx, const char *g, const char *u, const char *d) {
    int64_t H = b->m->cfg.hidden, I = inter;
    const st_tensor *t[3];
    const char *names[3] = {g, u, d};
    for (int i = 0; i < 3; i++) {
        char name[256];
        snprintf(name, sizeof name, "%s%s", pfx, names[i]);
        if (!(t[i] = lookup(b, name)) || (t[i]->dtype != ST_BF16 && t[i]->dtype != ST_F16) ||
            (i && t[i]->dtype != t[0]->dtype))
            return bind_mlp3_f32(b, w, inter, pfx, g, u, d);
        if (i < 2 ? check_shape(b, t[i], D2(I, H)) : check_shape(b, t[i], D2(H, I))) return -1;
    }
    uint16_t *gu = model_alloc16(b->m, (size_t)(2 * I * H)), *dn = model_alloc16(b->m, (size_t)(H * I));
    if (!gu || !dn) return moe_fail(b->err, "out of memory");
    st_copy16(t[0], 0, (uint64_t)(I * H), gu);
    st_copy16(t[1], 0, (uint64_t)(I * H), gu + I * H);
    st_copy16(t[2], 0, (uint64_t)(H * I), dn);
    w->inter = inter, w->gate_up16 = gu, w->down16 = dn, w->f16 = t[0]->dtype == ST_F16;
    b->m->n_params += (size_t)(3 * I * H);
    return 0;
}

/* The shape checks of bind_mlp3 without reading the weights (MOE_LOAD_NO_EXPERTS). */
static int check_mlp3(binder *b, int inter, const char *pfx, const char *g, const char *u, const char *d) {
    int64_t H = b->m->cfg.hidden, I = inter;
    const char *names[3] = {g, u, d};
    for (int i = 0; i < 3; i++) {
        char name[256];
        snprintf(name, sizeof name, "%s%s", pfx, names[i]);
        const st_tensor *t = lookup(b, name);
        if (!t) return moe_fail(b->err, "%s: tensor '%s': missing", where(b, NULL), name);
        if (i < 2 ? check_shape(b, t, D2(I, H)) : check_shape(b, t, D2(H, I))) return -1;
    }
    return 0;
}

static int bind_experts(binder *b, moe_layer_w *lw, int l, const char *blk) {
    const moe_model_config *c = &b->m->cfg;
    int64_t E = c->n_experts, I = c->expert_inter, H = c->hidden;
    lw->experts = model_own(b->m, calloc((size_t)E, sizeof *lw->experts));
    if (!lw->experts) return moe_fail(b->err, "out of memory");
    char name[256];
    snprintf(name, sizeof name, "model.layers.%d.%s.experts.gate_up_proj", l, blk);
    const st_tensor *gu = lookup(b, name);
    if (gu) {
        b->m->fused_experts = 1;
        if (check_shape(b, gu, D3(E, 2 * I, H))) return -1;
        snprintf(name, sizeof name, "model.layers.%d.%s.experts.down_proj", l, blk);
        const st_tensor *dn = lookup(b, name);
        if (!dn) return moe_fail(b->err, "%s: tensor '%s': missing", where(b, NULL), name);
        if (check_shape(b, dn, D3(E, H, I))) return -1;
        snprintf(b->m->dtype, sizeof b->m->dtype, "%s", st_dtype_name(gu->dtype));
        for (int64_t e = 0; e < E; e++) {
            moe_mlp_w *w = &lw->experts[e];
            w->inter = (int)I;
            if (b->no_experts) continue;
            if ((gu->dtype == ST_BF16 || gu->dtype == ST_F16) && dn->dtype == gu->dtype) { /* kept as stored (model.h) */
                uint16_t *g16 = model_alloc16(b->m, (size_t)(2 * I * H)), *d16 = model_alloc16(b->m, (size_t)(H * I));
                if (!g16 || !d16) return moe_fail(b->err, "out of memory");
                st_copy16(gu, (uint64_t)(e * 2 * I * H), (uint64_t)(2 * I * H), g16);
                st_copy16(dn, (uint64_t)(e * H * I), (uint64_t)(H * I), d16);
                w->gate_up16 = g16, w->down16 = d16, w->f16 = gu->dtype == ST_F16;
                continue;
            }
            w->gate_up = model_alloc(b->m, (size_t)(2 * I * H));
            w->down = model_alloc(b->m, (size_t)(H * I));
            if (!w->gate_up || !w->down) return moe_fail(b->err, "out of memory");
            st_to_f32(gu, (uint64_t)(e * 2 * I * H), (uint64_t)(2 * I * H), w->gate_up);
            st_to_f32(dn, (uint64_t)(e * H * I), (uint64_t)(H * I), w->down);
        }
        b->m->n_params += gu->n_elems + dn->n_elems;
        return 0;
    }
    /* Per-expert names: Mixtral's w1 (gate) / w3 (up) / w2 (down), else Qwen/OLMoE's. */
    snprintf(name, sizeof name, "model.layers.%d.%s.experts.0.w1.weight", l, blk);
    int mixtral_names = lookup(b, name) != NULL;
    snprintf(name, sizeof name, "model.layers.%d.%s.experts.0.gate_proj.weight", l, blk);
    if (!mixtral_names && !lookup(b, name)) {
        if (b->no_experts) { /* experts kept only in an expert pack (`moesim model synth`) */
            for (int64_t e = 0; e < E; e++) lw->experts[e].inter = (int)I;
            b->m->n_params += (size_t)(E * 3 * I * H);
            snprintf(b->m->dtype, sizeof b->m->dtype, "pack");
            return 0;
        }
        return moe_fail(b->err, "%s: tensor 'model.layers.%d.%s.experts.gate_up_proj': missing (nor per-expert "
                                "experts.0.w1.weight / experts.0.gate_proj.weight); a model whose experts are only "
                                "in an expert pack (`moesim model synth`) runs offloaded: --offload PACK",
                        where(b, NULL), l, blk);
    }
    for (int64_t e = 0; e < E; e++) {
        char pfx[160];
        snprintf(pfx, sizeof pfx, "model.layers.%d.%s.experts.%" PRId64 ".", l, blk, e);
        if (b->no_experts) {
            int rc = mixtral_names ? check_mlp3(b, (int)I, pfx, "w1.weight", "w3.weight", "w2.weight")
                                   : check_mlp3(b, (int)I, pfx, "gate_proj.weight", "up_proj.weight", "down_proj.weight");
            if (rc) return -1;
            lw->experts[e].inter = (int)I;
            b->m->n_params += (size_t)(3 * I * H);
            continue;
        }
        int rc = mixtral_names ? bind_mlp3(b, &lw->experts[e], (int)I, pfx, "w1.weight", "w3.weight", "w2.weight")
                               : bind_mlp3(b, &lw->experts[e], (int)I, pfx, "gate_proj.weight", "up_proj.weight",
                                              "down_proj.weight");
        if (rc) return -1;
    }
    snprintf(name, sizeof name, "model.layers.%d.%s.experts.0.%s", l, blk, mixtral_names ? "w1.weight" : "gate_proj.weight");
    snprintf(b->m->dtype, sizeof b->m->dtype, "%s", st_dtype_name(lookup(b, name)->dtype));
    return 0;
}

static int bind_layer(binder *b, int l) {
    const moe_model_config *c = &b->m->cfg;
    moe_layer_w *lw = &b->m->layers[l];
    int64_t H = c->hidden, Q = (int64_t)c->n_heads * c->head_dim, KV = (int64_t)c->n_kv_heads * c->head_dim;
    char p[64];
    snprintf(p, sizeof p, "model.layers.%d.", l);
    int bad = 0;
    if (!(lw->attn_norm = bind(b, D1(H), "%sinput_layernorm.weight", p)) ||
        !(lw->ffn_norm = bind(b, D1(H), "%spost_attention_layernorm.weight", p)) ||
        bind_mat(b, &lw->wq, D2(Q, H), "%sself_attn.q_proj.weight", p) ||
        bind_mat(b, &lw->wk, D2(KV, H), "%sself_attn.k_proj.weight", p) ||
        bind_mat(b, &lw->wv, D2(KV, H), "%sself_attn.v_proj.weight", p) ||
        bind_mat(b, &lw->wo, D2(H, Q), "%sself_attn.o_proj.weight", p))
        return -1;
    /* Biases are bound when present: qwen2_moe's q/k/v carry them (qkv_bias), others
     * only with attention_bias; their absence means zero. */
    lw->bq = bind_opt(b, &bad, D1(Q), "%sself_attn.q_proj.bias", p);
    if (!bad) lw->bk = bind_opt(b, &bad, D1(KV), "%sself_attn.k_proj.bias", p);
    if (!bad) lw->bv = bind_opt(b, &bad, D1(KV), "%sself_attn.v_proj.bias", p);
    if (!bad) lw->bo = bind_opt(b, &bad, D1(H), "%sself_attn.o_proj.bias", p);
    if (bad) return -1;
    if (c->qk_norm == MOE_QKNORM_HEAD) {
        if (!(lw->q_norm = bind(b, D1(c->head_dim), "%sself_attn.q_norm.weight", p)) ||
            !(lw->k_norm = bind(b, D1(c->head_dim), "%sself_attn.k_norm.weight", p)))
            return -1;
    } else if (c->qk_norm == MOE_QKNORM_FULL) {
        if (!(lw->q_norm = bind(b, D1(Q), "%sself_attn.q_norm.weight", p)) ||
            !(lw->k_norm = bind(b, D1(KV), "%sself_attn.k_norm.weight", p)))
            return -1;
    }
    if (!c->is_moe[l]) {
        snprintf(p, sizeof p, "model.layers.%d.mlp.", l);
        return bind_mlp3(b, &lw->dense, c->dense_inter, p, "gate_proj.weight", "up_proj.weight", "down_proj.weight");
    }
    /* Mixtral checkpoints before transformers 5 use block_sparse_moe, 5 renames it mlp. */
    const char *blk = "mlp";
    char name[128];
    snprintf(name, sizeof name, "model.layers.%d.block_sparse_moe.gate.weight", l);
    if (c->arch == MOE_ARCH_MIXTRAL && lookup(b, name)) blk = "block_sparse_moe";
    if (bind_mat(b, &lw->router, D2(c->n_experts, H), "model.layers.%d.%s.gate.weight", l, blk)) return -1;
    if (bind_experts(b, lw, l, blk)) return -1;
    if (c->shared_inter) {
        snprintf(p, sizeof p, "model.layers.%d.mlp.shared_expert.", l);
        if (bind_mlp3(b, &lw->shared, c->shared_inter, p, "gate_proj.weight", "up_proj.weight", "down_proj.weight") ||
            !(lw->shared_gate = bind(b, D2(1, H), "model.layers.%d.mlp.shared_expert_gate.weight", l)))
            return -1;
    }
    return 0;
}

static void hash_mat(moe_sha256 *s, moe_mat w, size_t rows, size_t cols);
static void identity_head(moe_sha256 *s, const moe_model *m);
static void identity_layer(moe_sha256 *s, const moe_model *m, int l);

/* MOE_LOAD_NO_DENSE: free layer lw's dense weights (those of its
 * allocations, from index n0 on, that hold them; its router, experts array
 * and expert weights stay) and clear its dense fields. */
static const void *mat_data(moe_mat w) { return w.f32 ? (const void *)w.f32 : (const void *)w.h16; }
static void drop_dense(moe_model *m, moe_layer_w *lw, size_t n0) {
    const void *dense[] = {lw->attn_norm, lw->ffn_norm, mat_data(lw->wq), mat_data(lw->wk), mat_data(lw->wv),
                           mat_data(lw->wo), lw->bq, lw->bk, lw->bv, lw->bo, lw->q_norm, lw->k_norm,
                           lw->shared.gate_up, lw->shared.down, lw->shared.gate_up16, lw->shared.down16,
                           lw->shared_gate, lw->dense.gate_up, lw->dense.down, lw->dense.gate_up16, lw->dense.down16};
    size_t kept = n0;
    for (size_t i = n0; i < m->n_allocs; i++) {
        int is_dense = 0;
        for (size_t k = 0; k < sizeof dense / sizeof *dense && !is_dense; k++) is_dense = dense[k] && m->allocs[i] == dense[k];
        if (is_dense) free(m->allocs[i]);
        else m->allocs[kept++] = m->allocs[i];
    }
    m->n_allocs = kept;
    *lw = (moe_layer_w){.router = lw->router, .experts = lw->experts};
}

/* config.json's "dtype" (transformers 5) or "torch_dtype" (4) as a safetensors dtype name. */
static const char *config_dtype(const char *cfg_path) {
    FILE *f = fopen(cfg_path, "rb");
    if (!f) return NULL;
    char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    cJSON *r = cJSON_Parse(buf);
    const char *out = NULL;
    const cJSON *d = r ? cJSON_GetObjectItemCaseSensitive(r, "dtype") : NULL;
    if (r && !cJSON_IsString(d)) d = cJSON_GetObjectItemCaseSensitive(r, "torch_dtype");
    if (cJSON_IsString(d)) {
        if (!strcmp(d->valuestring, "float32")) out = "F32";
        else if (!strcmp(d->valuestring, "float16")) out = "F16";
        else if (!strcmp(d->valuestring, "bfloat16")) out = "BF16";
    }
    cJSON_Delete(r);
    return out;
}

moe_model *moe_model_load(const char *dir, moe_error *err) { return moe_model_load_ex(dir, 0, err); }

moe_model *moe_model_load_ex(const char *dir, unsigned flags, moe_error *err) {
    moe_model *m = calloc(1, sizeof *m);
    if (!m) { moe_fail(err, "out of memory"); return NULL; }
    char path[1024];
    snprintf(path, sizeof path, "%s/config.json", dir);
    if (moe_config_load(&m->cfg, path, err)) {
        free(m);
        return NULL;
    }
    const char *want = config_dtype(path);
    /* model name = base name of the directory, trailing slashes ignored */
    size_t len = strlen(dir);
    while (len > 1 && dir[len - 1] == '/') len--;
    size_t s = len;
    while (s > 0 && dir[s - 1] != '/') s--;
    snprintf(m->name, sizeof m->name, "%.*s", (int)(len - s), dir + s);
    binder b = {.m = m, .want_dtype = want, .no_experts = (flags & MOE_LOAD_NO_EXPERTS) != 0, .err = err};
    m->experts_loaded = !b.no_experts;
    if (moe_checkpoint_open(&b.ck, dir, err)) {
        moe_model_free(m);
        return NULL;
    }
    const moe_model_config *c = &m->cfg;
    int64_t V = c->vocab, H = c->hidden;
    int rc = -1;
    m->layers = calloc((size_t)c->n_layers, sizeof *m->layers);
    if (!m->layers) { moe_fail(err, "out of memory"); goto out; }
    /* the LM head before the layers: the identity hashes it first */
    if (bind_mat(&b, &m->embed, D2(V, H), "model.embed_tokens.weight") ||
        !(m->final_norm = bind(&b, D1(H), "model.norm.weight")))
        goto out;
    if (c->tie_embeddings) m->lm_head = m->embed; /* a stored lm_head.weight would be an identical copy */
    else if (bind_mat(&b, &m->lm_head, D2(V, H), "lm_head.weight")) goto out;
    moe_sha256 id;
    if (flags & MOE_LOAD_NO_DENSE) identity_head(&id, m);
    for (int l = 0; l < c->n_layers; l++) {
        size_t n0 = m->n_allocs;
        if (bind_layer(&b, l)) goto out;
        if (!(flags & MOE_LOAD_NO_DENSE)) continue;
        /* hashed, then dropped: a streamed model never holds more than one
         * layer's dense weights, even while loading */
        identity_layer(&id, m, l);
        drop_dense(m, &m->layers[l], n0);
    }
    if (flags & MOE_LOAD_NO_DENSE) {
        moe_sha256_final(&id, m->identity);
        m->dense_streamed = 1;
    }
    rc = 0;
out:
    moe_checkpoint_close(&b.ck);
    if (rc) {
        moe_model_free(m);
        return NULL;
    }
    return m;
}

void moe_model_free(moe_model *m) {
    if (!m) return;
    for (size_t i = 0; i < m->n_allocs; i++) free(m->allocs[i]);
    free(m->allocs);
    free(m->layers);
    free(m);
}

void moe_mlp_f32(const moe_mlp_w *w, int hidden, float *gu_buf, float *dn_buf, const float **gu, const float **dn) {
    if (w->gate_up) {
        *gu = w->gate_up, *dn = w->down;
        return;
    }
    size_t n_gu = 2 * (size_t)w->inter * (size_t)hidden, n_dn = (size_t)hidden * (size_t)w->inter;
    for (size_t i = 0; i < n_gu; i++) gu_buf[i] = moe_h16_f32(w->gate_up16[i], w->f16);
    for (size_t i = 0; i < n_dn; i++) dn_buf[i] = moe_h16_f32(w->down16[i], w->f16);
    *gu = gu_buf, *dn = dn_buf;
}

size_t moe_expert_params(const moe_model *m) { return (size_t)3 * m->cfg.expert_inter * m->cfg.hidden; }

/* A matrix's f32 values (16-bit ones widened row by row), so an identity does not
 * depend on the form the weights were kept in. */
static void hash_mat(moe_sha256 *s, moe_mat w, size_t rows, size_t cols) {
    if (w.f32) {
        moe_sha256_update(s, w.f32, rows * cols * sizeof(float));
        return;
    }
    if (!w.h16) return;
    float row[4096];
    for (size_t r = 0; r < rows; r++)
        for (size_t c0 = 0; c0 < cols; c0 += 4096) {
            size_t n = cols - c0 < 4096 ? cols - c0 : 4096;
            for (size_t i = 0; i < n; i++) {
                row[i] = moe_h16_f32(w.h16[r * cols + c0 + i], w.f16);
            }
            moe_sha256_update(s, row, n * sizeof(float));
        }
}

void moe_mat_row(moe_mat w, size_t r, int n, float *out) {
    if (w.f32) {
        memcpy(out, w.f32 + r * (size_t)n, (size_t)n * sizeof(float));
        return;
    }
    for (int i = 0; i < n; i++) out[i] = moe_h16_f32(w.h16[r * (size_t)n + (size_t)i], w.f16);
}

/* Identity: geometry, then every non-expert weight in a fixed order. Floats
 * are hashed as f32 values, so the same weights stored as bf16 or f32 give
 * the same identity. identity_head: geometry, embeddings, final norm, LM
 * head; identity_layer: one decoder layer's weights. */
#define HASH(p, n) do { if (p) moe_sha256_update(s, (p), (n) * sizeof(float)); } while (0)
#define HASH_MAT(w, rows, cols) hash_mat(s, (w), (rows), (cols))
static void identity_head(moe_sha256 *s, const moe_model *m) {
    const moe_model_config *c = &m->cfg;
    moe_sha256_init(s);
    int geo[] = {(int)c->arch, c->hidden, c->n_layers, c->n_heads, c->n_kv_heads, c->head_dim, c->vocab,
                 c->n_experts, c->top_k, c->expert_inter, c->shared_inter, c->dense_inter, c->norm_topk_prob,
                 c->tie_embeddings};
    moe_sha256_update(s, geo, sizeof geo);
    size_t H = (size_t)c->hidden;
    HASH_MAT(m->embed, (size_t)c->vocab, H);
    HASH(m->final_norm, H);
    if (m->lm_head.f32 != m->embed.f32 || m->lm_head.h16 != m->embed.h16) HASH_MAT(m->lm_head, (size_t)c->vocab, H);
}

static void identity_layer(moe_sha256 *s, const moe_model *m, int l) {
    const moe_model_config *c = &m->cfg;
    size_t H = (size_t)c->hidden, Q = (size_t)c->n_heads * c->head_dim, KV = (size_t)c->n_kv_heads * c->head_dim;
    const moe_layer_w *w = &m->layers[l];
    HASH(w->attn_norm, H);
    HASH(w->ffn_norm, H);
    HASH_MAT(w->wq, Q, H);
    HASH_MAT(w->wk, KV, H);
    HASH_MAT(w->wv, KV, H);
    HASH_MAT(w->wo, H, Q);
    HASH(w->bq, Q);
    HASH(w->bk, KV);
    HASH(w->bv, KV);
    HASH(w->bo, H);
    size_t qn = c->qk_norm == MOE_QKNORM_HEAD ? (size_t)c->head_dim : Q;
    size_t kn = c->qk_norm == MOE_QKNORM_HEAD ? (size_t)c->head_dim : KV;
    HASH(w->q_norm, qn);
    HASH(w->k_norm, kn);
    HASH_MAT(w->router, (size_t)c->n_experts, H);
    const moe_mlp_w *mlps[2] = {&w->shared, &w->dense};
    for (int i = 0; i < 2; i++) {
        size_t I = (size_t)mlps[i]->inter;
        HASH_MAT(moe_mlp_gate_up(mlps[i]), 2 * I, H);
        HASH_MAT(moe_mlp_down(mlps[i]), H, I);
    }
    HASH(w->shared_gate, H);
}
#undef HASH
#undef HASH_MAT

void moe_model_identity(const moe_model *m, uint8_t out[32]) {
    if (m->dense_streamed) { /* computed while loading (the weights are not here) */
        memcpy(out, m->identity, 32);
        return;
    }
    moe_sha256 s;
    identity_head(&s, m);
    for (int l = 0; l < m->cfg.n_layers; l++) identity_layer(&s, m, l);
    moe_sha256_final(&s, out);
}

/* synth.c: write a random-weight model of a given geometry (see synth.h). */
#include "synth.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../core/trace_formats.h"
#include "model.h"
#include "pack.h"

static const struct {
    moe_arch arch;
    const char *type, *cls;
} arch_names[] = {
    {MOE_ARCH_MIXTRAL, "mixtral", "MixtralForCausalLM"},
    {MOE_ARCH_QWEN2_MOE, "qwen2_moe", "Qwen2MoeForCausalLM"},
    {MOE_ARCH_QWEN3_MOE, "qwen3_moe", "Qwen3MoeForCausalLM"},
    {MOE_ARCH_OLMOE, "olmoe", "OlmoeForCausalLM"},
};

/* ---- values ------------------------------------------------------------ */

static uint64_t splitmix(uint64_t x) {
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static uint64_t name_seed(uint64_t seed, const char *name) {
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *)name; *p; p++) h = (h ^ *p) * 1099511628211ull;
    return splitmix(seed ^ h) | 1;
}

/* n random bf16 values: sign and 7 mantissa bits random, exponent 2^-7..2^-4;
 * four values from each xorshift64* draw. */
static void fill_bf16(uint16_t *out, size_t n, uint64_t *state) {
    uint64_t x = *state;
    for (size_t i = 0; i < n; i += 4) {
        x ^= x >> 12, x ^= x << 25, x ^= x >> 27;
        uint64_t r = x * 0x2545f4914f6cdd1dull;
        for (size_t j = 0; j < 4 && i + j < n; j++, r >>= 16) {
            uint16_t v = (uint16_t)r;
            out[i + j] = (uint16_t)((v & 0x8000u) | ((120u + ((v >> 7) & 3u)) << 7) | (v & 0x7fu));
        }
    }
    *state = x;
}

/* ---- tensor list -------------------------------------------------------- */

typedef struct tensor {
    char name[128];
    int64_t rows, cols; /* cols 0: a vector of `rows` */
    int ones;           /* a norm: every value 1 */
} tensor;

typedef struct tlist {
    tensor *t;
    size_t n, cap;
} tlist;

/* Append a tensor: `tail` alone when layer < 0, else model.layers.<layer>.<tail>. */
static int add(tlist *l, int64_t rows, int64_t cols, int ones, int layer, const char *tail) {
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 64;
        tensor *t = realloc(l->t, cap * sizeof *t);
        if (!t) return -1;
        l->t = t, l->cap = cap;
    }
    tensor *t = &l->t[l->n++];
    if (layer < 0) snprintf(t->name, sizeof t->name, "%s", tail);
    else snprintf(t->name, sizeof t->name, "model.layers.%d.%s", layer, tail);
    t->rows = rows, t->cols = cols, t->ones = ones;
    return 0;
}

/* Every tensor the backend binds (backend/model.c) except routed experts. */
static int dense_tensors(const moe_synth_spec *s, tlist *l) {
    int64_t H = s->hidden, Q = (int64_t)s->heads * s->head_dim, KV = (int64_t)s->kv_heads * s->head_dim;
    int rc = add(l, s->vocab, H, 0, -1, "model.embed_tokens.weight") | add(l, H, 0, 1, -1, "model.norm.weight") |
             add(l, s->vocab, H, 0, -1, "lm_head.weight");
    for (int i = 0; i < s->layers; i++) {
        rc |= add(l, H, 0, 1, i, "input_layernorm.weight") | add(l, H, 0, 1, i, "post_attention_layernorm.weight") |
              add(l, Q, H, 0, i, "self_attn.q_proj.weight") | add(l, KV, H, 0, i, "self_attn.k_proj.weight") |
              add(l, KV, H, 0, i, "self_attn.v_proj.weight") | add(l, H, Q, 0, i, "self_attn.o_proj.weight") |
              add(l, s->experts, H, 0, i, "mlp.gate.weight");
        if (s->arch == MOE_ARCH_QWEN3_MOE)
            rc |= add(l, s->head_dim, 0, 1, i, "self_attn.q_norm.weight") |
                  add(l, s->head_dim, 0, 1, i, "self_attn.k_norm.weight");
        if (s->arch == MOE_ARCH_OLMOE)
            rc |= add(l, Q, 0, 1, i, "self_attn.q_norm.weight") | add(l, KV, 0, 1, i, "self_attn.k_norm.weight");
        if (s->shared_inter)
            rc |= add(l, s->shared_inter, H, 0, i, "mlp.shared_expert.gate_proj.weight") |
                  add(l, s->shared_inter, H, 0, i, "mlp.shared_expert.up_proj.weight") |
                  add(l, H, s->shared_inter, 0, i, "mlp.shared_expert.down_proj.weight") |
                  add(l, 1, H, 0, i, "mlp.shared_expert_gate.weight");
    }
    return rc ? -1 : 0;
}

static uint64_t elems(const tensor *t) { return (uint64_t)t->rows * (uint64_t)(t->cols ? t->cols : 1); }

/* ---- checks and sizes --------------------------------------------------- */

int moe_synth_check(const moe_synth_spec *s, moe_error *err) {
    if (s->layers < 1 || s->layers > MOE_CFG_MAX_LAYERS) return moe_fail(err, "layers: %d is not in 1..%d", s->layers, MOE_CFG_MAX_LAYERS);
    if (s->experts < 1 || s->experts > 65534) return moe_fail(err, "experts: %d is not in 1..65534", s->experts);
    if (s->top_k < 1 || s->top_k > s->experts) return moe_fail(err, "top-k: %d is not in 1..%d (experts)", s->top_k, s->experts);
    if (s->hidden < 2 || s->inter < 1 || s->heads < 1 || s->kv_heads < 1 || s->head_dim < 2 || s->vocab < 1)
        return moe_fail(err, "hidden, inter, heads, kv-heads, head-dim and vocab must all be positive");
    if (s->head_dim % 2) return moe_fail(err, "head-dim: %d is odd (RoPE rotates pairs)", s->head_dim);
    if (s->heads % s->kv_heads) return moe_fail(err, "kv-heads: %d does not divide heads %d", s->kv_heads, s->heads);
    if (s->shared_inter && s->arch != MOE_ARCH_QWEN2_MOE)
        return moe_fail(err, "shared experts: only the qwen2_moe architecture has them in this backend");
    if (s->arch == MOE_ARCH_QWEN2_MOE && !s->shared_inter)
        return moe_fail(err, "qwen2_moe needs a shared expert (--shared-inter)");
    if (!moe_synth_pack_bytes(s)) return moe_fail(err, "the expert pack of this geometry exceeds 64-bit sizes");
    return 0;
}

uint64_t moe_synth_dense_bytes(const moe_synth_spec *s) {
    tlist l = {0};
    uint64_t b = 0;
    if (dense_tensors(s, &l) == 0)
        for (size_t i = 0; i < l.n; i++) b += 2 * elems(&l.t[i]);
    free(l.t);
    return b + 65536; /* + the JSON header, generously */
}

uint64_t moe_synth_pack_bytes(const moe_synth_spec *s) {
    return moe_pack_file_bytes(s->pack_dtype, (uint32_t)s->layers, (uint32_t)s->experts, (uint32_t)s->hidden,
                               (uint32_t)s->inter);
}

/* ---- config.json -------------------------------------------------------- */

static int write_config(const moe_synth_spec *s, const char *path, moe_error *err) {
    const char *type = NULL, *cls = NULL;
    for (size_t i = 0; i < sizeof arch_names / sizeof *arch_names; i++)
        if (arch_names[i].arch == s->arch) type = arch_names[i].type, cls = arch_names[i].cls;
    if (!type) return moe_fail(err, "unknown architecture");
    moe_atomic_file af;
    if (moe_atomic_open(&af, path, err)) return -1;
    FILE *f = af.f;
    fprintf(f, "{\n  \"architectures\": [\"%s\"],\n  \"model_type\": \"%s\",\n", cls, type);
    fprintf(f, "  \"hidden_size\": %d,\n  \"num_hidden_layers\": %d,\n  \"num_attention_heads\": %d,\n"
               "  \"num_key_value_heads\": %d,\n  \"head_dim\": %d,\n  \"vocab_size\": %d,\n"
               "  \"max_position_embeddings\": 32768,\n  \"num_experts_per_tok\": %d,\n  \"rms_norm_eps\": 1e-06,\n"
               "  \"rope_theta\": 10000.0,\n  \"hidden_act\": \"silu\",\n  \"tie_word_embeddings\": false,\n"
               "  \"torch_dtype\": \"bfloat16\",\n",
            s->hidden, s->layers, s->heads, s->kv_heads, s->head_dim, s->vocab, s->top_k);
    switch (s->arch) {
    case MOE_ARCH_MIXTRAL:
        fprintf(f, "  \"num_local_experts\": %d,\n  \"intermediate_size\": %d,\n", s->experts, s->inter);
        break;
    case MOE_ARCH_QWEN2_MOE:
    case MOE_ARCH_QWEN3_MOE:
        fprintf(f, "  \"num_experts\": %d,\n  \"moe_intermediate_size\": %d,\n  \"intermediate_size\": %d,\n"
                   "  \"decoder_sparse_step\": 1,\n  \"mlp_only_layers\": [],\n  \"norm_topk_prob\": %s,\n",
                s->experts, s->inter, s->shared_inter ? s->shared_inter : s->inter,
                s->arch == MOE_ARCH_QWEN3_MOE ? "true" : "false");
        if (s->shared_inter) fprintf(f, "  \"shared_expert_intermediate_size\": %d,\n", s->shared_inter);
        break;
    case MOE_ARCH_OLMOE:
        fprintf(f, "  \"num_experts\": %d,\n  \"intermediate_size\": %d,\n  \"norm_topk_prob\": false,\n"
                   "  \"clip_qkv\": null,\n", s->experts, s->inter);
        break;
    }
    fprintf(f, "  \"moesim_synth\": {\"geometry\": \"%s\", \"seed\": %llu, \"truncated_from_layers\": %d, "
               "\"experts\": \"experts.pack\"}\n}\n",
            s->name, (unsigned long long)s->seed, s->truncated_from);
    if (ferror(f)) {
        moe_atomic_abort(&af);
        return moe_fail(err, "%s: write failed", path);
    }
    return moe_atomic_commit(&af, err);
}

/* ---- model.safetensors -------------------------------------------------- */

static int write_dense(const moe_synth_spec *s, const char *path, moe_error *err) {
    tlist l = {0};
    if (dense_tensors(s, &l)) return free(l.t), moe_fail(err, "out of memory");
    size_t hcap = 256 + l.n * 200, hn = 0;
    char *hdr = malloc(hcap);
    uint16_t *buf = malloc((1u << 20) * sizeof *buf);
    int rc = -1;
    moe_atomic_file af = {0};
    if (!hdr || !buf) {
        moe_fail(err, "out of memory");
        goto out;
    }
    uint64_t off = 0;
    hn += (size_t)snprintf(hdr + hn, hcap - hn, "{\"__metadata__\":{\"format\":\"pt\",\"producer\":\"moesim model synth\"}");
    for (size_t i = 0; i < l.n; i++) {
        const tensor *t = &l.t[i];
        uint64_t b = 2 * elems(t);
        if (t->cols)
            hn += (size_t)snprintf(hdr + hn, hcap - hn, ",\"%s\":{\"dtype\":\"BF16\",\"shape\":[%lld,%lld],\"data_offsets\":[%llu,%llu]}",
                                   t->name, (long long)t->rows, (long long)t->cols, (unsigned long long)off,
                                   (unsigned long long)(off + b));
        else
            hn += (size_t)snprintf(hdr + hn, hcap - hn, ",\"%s\":{\"dtype\":\"BF16\",\"shape\":[%lld],\"data_offsets\":[%llu,%llu]}",
                                   t->name, (long long)t->rows, (unsigned long long)off, (unsigned long long)(off + b));
        off += b;
    }
    hn += (size_t)snprintf(hdr + hn, hcap - hn, "}");
    while (hn % 8) hdr[hn++] = ' '; /* the data region starts 8-byte aligned */
    if (moe_atomic_open(&af, path, err)) goto out;
    unsigned char len[8];
    for (int i = 0; i < 8; i++) len[i] = (unsigned char)((uint64_t)hn >> (8 * i));
    int bad = fwrite(len, 1, 8, af.f) != 8 || fwrite(hdr, 1, hn, af.f) != hn;
    for (size_t i = 0; i < l.n && !bad; i++) {
        uint64_t st = name_seed(s->seed, l.t[i].name), n = elems(&l.t[i]);
        for (uint64_t done = 0; done < n && !bad; done += 1u << 20) {
            size_t k = n - done < (1u << 20) ? (size_t)(n - done) : (1u << 20);
            if (l.t[i].ones)
                for (size_t j = 0; j < k; j++) buf[j] = 0x3f80; /* bf16 1.0 */
            else fill_bf16(buf, k, &st);
            bad = fwrite(buf, 2, k, af.f) != k;
        }
    }
    if (bad || ferror(af.f)) {
        int e = errno;
        moe_atomic_abort(&af);
        moe_fail(err, "%s: write failed: %s", path, strerror(e ? e : EIO));
        goto out;
    }
    rc = moe_atomic_commit(&af, err);
out:
    free(l.t);
    free(hdr);
    free(buf);
    return rc;
}

/* ---- experts.pack ------------------------------------------------------- */

typedef struct fill_ctx {
    const moe_synth_spec *s;
    uint16_t *buf; /* one expert: gate and up rows [2I][H], then down [H][I] */
} fill_ctx;

static int fill_expert(void *vctx, uint32_t layer, uint32_t expert, moe_mlp_w *w, moe_error *err) {
    fill_ctx *c = vctx;
    (void)err;
    size_t I = (size_t)c->s->inter, H = (size_t)c->s->hidden;
    char name[64];
    snprintf(name, sizeof name, "expert %u %u", layer, expert);
    uint64_t st = name_seed(c->s->seed, name);
    fill_bf16(c->buf, 3 * I * H, &st);
    *w = (moe_mlp_w){.inter = (int)I, .gate_up16 = c->buf, .down16 = c->buf + 2 * I * H};
    return 0;
}

typedef struct prog {
    void (*fn)(void *, uint64_t, uint64_t);
    void *ctx;
    uint64_t total;
} prog;

static void layer_done(void *vctx, uint32_t done, uint32_t layers) {
    prog *p = vctx;
    if (p->fn) p->fn(p->ctx, p->total / layers * done, p->total);
}

int moe_synth_write(const moe_synth_spec *s, const char *dir,
                    void (*progress)(void *ctx, uint64_t done, uint64_t total), void *ctx, moe_error *err) {
    if (moe_synth_check(s, err)) return -1;
    char cfg[4096], st[4096], pk[4096];
    snprintf(cfg, sizeof cfg, "%s/config.json", dir);
    snprintf(st, sizeof st, "%s/model.safetensors", dir);
    snprintf(pk, sizeof pk, "%s/experts.pack", dir);
    if (write_config(s, cfg, err)) return -1;
    int rc = -1;
    moe_model *m = NULL;
    fill_ctx fc = {.s = s, .buf = malloc(3 * (size_t)s->inter * (size_t)s->hidden * sizeof(uint16_t))};
    prog p = {progress, ctx, moe_synth_pack_bytes(s)};
    if (!fc.buf) moe_fail(err, "out of memory");
    else if (write_dense(s, st, err) == 0 && (m = moe_model_load_ex(dir, MOE_LOAD_NO_EXPERTS, err)))
        rc = moe_pack_write_from(m, pk, s->pack_dtype, fill_expert, &fc, layer_done, &p, err);
    if (rc) { /* leave no half model behind: the files this call wrote go */
        unlink(cfg);
        unlink(st);
    }
    free(fc.buf);
    moe_model_free(m);
    return rc;
}

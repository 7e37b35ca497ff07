/* dense_pack.c: the dense pack (format in dense_pack.h, prose in
 * docs/pack-format.md): writer, validating opener, per-layer reads with
 * check values, and views of a block as layer weights.
 *
 * As for the expert pack, every header field is checked against what the
 * others imply and against the file's real size before anything is sized
 * by it, so a corrupt pack costs an error message, never a huge malloc. */
#include "dense_pack.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../core/trace_formats.h"
#include "pack.h"
#include "pack_io.h"

#define HDR_SIZE MOE_PACK_ALIGN
#define OFF_MODEL_ID 56
#define OFF_INDEX_CHECK 88
#define OFF_TABLE 128
#define ENTRY_SIZE 32
#define OFF_HDR_CHECK 4088
#define TENSOR_ALIGN 64 /* each tensor starts on a cache line: vector loads never straddle one needlessly */
static const char dense_magic[8] = {'M', 'O', 'E', 'D', 'E', 'N', 'S', 'E'};

enum { DT_F32 = 0, DT_F16 = 1, DT_BF16 = 2 }; /* safetensors codes (st_dtype) */

static const char *const kind_names[MOE_DENSE_KINDS] = {
    "input_layernorm", "post_attention_layernorm", "q_proj", "k_proj", "v_proj", "o_proj", "q_proj.bias",
    "k_proj.bias", "v_proj.bias", "o_proj.bias", "q_norm", "k_norm", "shared_expert.gate_up", "shared_expert.down",
    "shared_expert_gate"};

const char *moe_dense_kind_name(uint32_t kind) { return kind < MOE_DENSE_KINDS ? kind_names[kind] : "?"; }

static uint64_t dtype_size(uint32_t dtype) { return dtype == DT_F32 ? 4 : dtype == DT_F16 || dtype == DT_BF16 ? 2 : 0; }
static uint64_t round_up(uint64_t x, uint64_t a) { return (x + a - 1) / a * a; }

/* ---- a layer's tensors ------------------------------------------------------- */

/* One tensor of a layer as the model holds it: data, dtype, shape. */
typedef struct src_tensor {
    uint32_t kind, dtype, rows, cols;
    const void *data;
} src_tensor;

static int add_vec(src_tensor *t, int n, uint32_t kind, const float *v, int len) {
    if (v) t[n++] = (src_tensor){kind, DT_F32, (uint32_t)len, 1, v};
    return n;
}

static int add_mat(src_tensor *t, int n, uint32_t kind, moe_mat w, int rows, int cols) {
    if (w.f32) t[n++] = (src_tensor){kind, DT_F32, (uint32_t)rows, (uint32_t)cols, w.f32};
    else if (w.h16) t[n++] = (src_tensor){kind, w.f16 ? DT_F16 : DT_BF16, (uint32_t)rows, (uint32_t)cols, w.h16};
    return n;
}

/* The tensors of layer l in table order (the order of enum moe_dense_kind). */
static int layer_tensors(const moe_model *m, int l, src_tensor *t) {
    const moe_model_config *c = &m->cfg;
    const moe_layer_w *w = &m->layers[l];
    int H = c->hidden, Q = c->n_heads * c->head_dim, KV = c->n_kv_heads * c->head_dim, n = 0;
    int qn = c->qk_norm == MOE_QKNORM_HEAD ? c->head_dim : Q, kn = c->qk_norm == MOE_QKNORM_HEAD ? c->head_dim : KV;
    n = add_vec(t, n, MOE_DENSE_ATTN_NORM, w->attn_norm, H);
    n = add_vec(t, n, MOE_DENSE_FFN_NORM, w->ffn_norm, H);
    n = add_mat(t, n, MOE_DENSE_WQ, w->wq, Q, H);
    n = add_mat(t, n, MOE_DENSE_WK, w->wk, KV, H);
    n = add_mat(t, n, MOE_DENSE_WV, w->wv, KV, H);
    n = add_mat(t, n, MOE_DENSE_WO, w->wo, H, Q);
    n = add_vec(t, n, MOE_DENSE_BQ, w->bq, Q);
    n = add_vec(t, n, MOE_DENSE_BK, w->bk, KV);
    n = add_vec(t, n, MOE_DENSE_BV, w->bv, KV);
    n = add_vec(t, n, MOE_DENSE_BO, w->bo, H);
    n = add_vec(t, n, MOE_DENSE_Q_NORM, w->q_norm, qn);
    n = add_vec(t, n, MOE_DENSE_K_NORM, w->k_norm, kn);
    if (w->shared.inter) {
        n = add_mat(t, n, MOE_DENSE_SHARED_GATE_UP, moe_mlp_gate_up(&w->shared), 2 * w->shared.inter, H);
        n = add_mat(t, n, MOE_DENSE_SHARED_DOWN, moe_mlp_down(&w->shared), H, w->shared.inter);
        n = add_vec(t, n, MOE_DENSE_SHARED_GATE, w->shared_gate, H);
    }
    return n;
}

/* The shape config.json implies for a tensor kind (rows, cols). */
static void expected_shape(const moe_model_config *c, uint32_t kind, uint32_t *rows, uint32_t *cols) {
    uint32_t H = (uint32_t)c->hidden, Q = (uint32_t)(c->n_heads * c->head_dim), KV = (uint32_t)(c->n_kv_heads * c->head_dim);
    uint32_t S = (uint32_t)c->shared_inter, hd = (uint32_t)c->head_dim;
    uint32_t shape[MOE_DENSE_KINDS][2] = {
        {H, 1}, {H, 1}, {Q, H}, {KV, H}, {KV, H}, {H, Q}, {Q, 1}, {KV, 1}, {KV, 1}, {H, 1},
        {c->qk_norm == MOE_QKNORM_HEAD ? hd : Q, 1}, {c->qk_norm == MOE_QKNORM_HEAD ? hd : KV, 1},
        {2 * S, H}, {H, S}, {H, 1}};
    *rows = shape[kind][0], *cols = shape[kind][1];
}

/* ---- writer -------------------------------------------------------------------- */

static int fwrite_all(FILE *f, const void *p, size_t n) { return n && fwrite(p, 1, n, f) != n ? -1 : 0; }

static void header_build(unsigned char *h, const moe_dense_pack *g, uint64_t index_check) {
    memset(h, 0, HDR_SIZE);
    memcpy(h, dense_magic, 8);
    moe_put32(h + 8, MOE_DENSE_PACK_VERSION);
    moe_put32(h + 12, g->n_layers);
    moe_put32(h + 16, g->n_tensors);
    moe_put64(h + 24, g->block_bytes);
    moe_put64(h + 32, g->stride);
    moe_put64(h + 40, g->data_offset);
    moe_put64(h + 48, g->file_size);
    memcpy(h + OFF_MODEL_ID, g->model_id, 32);
    moe_put64(h + OFF_INDEX_CHECK, index_check);
    for (uint32_t i = 0; i < g->n_tensors; i++) {
        unsigned char *e = h + OFF_TABLE + i * ENTRY_SIZE;
        const moe_dense_tensor *t = &g->table[i];
        moe_put32(e, t->kind);
        moe_put32(e + 4, t->dtype);
        moe_put32(e + 8, t->rows);
        moe_put32(e + 12, t->cols);
        moe_put64(e + 16, t->offset);
        moe_put64(e + 24, t->bytes);
    }
    moe_put64(h + OFF_HDR_CHECK, moe_pack_check64(h, OFF_HDR_CHECK));
}

/* The table of layer 0, checked against every other layer. */
static int plan_layout(const moe_model *m, moe_dense_pack *g, moe_error *err) {
    const moe_model_config *c = &m->cfg;
    src_tensor t0[MOE_DENSE_MAX_TENSORS], t[MOE_DENSE_MAX_TENSORS];
    int n0 = layer_tensors(m, 0, t0);
    uint64_t at = 0;
    for (int i = 0; i < n0; i++) {
        uint64_t b = (uint64_t)t0[i].rows * t0[i].cols * dtype_size(t0[i].dtype);
        g->table[i] = (moe_dense_tensor){t0[i].kind, t0[i].dtype, t0[i].rows, t0[i].cols, at, b};
        at = round_up(at + b, TENSOR_ALIGN);
    }
    g->n_tensors = (uint32_t)n0;
    g->block_bytes = n0 ? g->table[n0 - 1].offset + g->table[n0 - 1].bytes : 0;
    for (int l = 1; l < c->n_layers; l++) {
        int n = layer_tensors(m, l, t);
        for (int i = 0; i < n || i < n0; i++)
            if (n != n0 || t[i].kind != t0[i].kind || t[i].dtype != t0[i].dtype || t[i].rows != t0[i].rows ||
                t[i].cols != t0[i].cols)
                return moe_fail(err, "model %s: layer %d holds other dense tensors than layer 0 (%s differs): a dense "
                                     "pack has one layout for all layers",
                                m->name, l, moe_dense_kind_name(i < n ? t[i].kind : t0[i].kind));
    }
    return 0;
}

int moe_dense_pack_write(const moe_model *m, const char *path, moe_error *err) {
    const moe_model_config *c = &m->cfg;
    if (!moe_host_is_le()) return moe_fail(err, "%s: dense packs are little-endian; this host is not", path);
    if (m->dense_streamed) return moe_fail(err, "%s: model %s was loaded without its dense weights", path, m->name);
    for (int l = 0; l < c->n_layers; l++)
        if (!c->is_moe[l])
            return moe_fail(err, "%s: model %s: layer %d is a dense-MLP layer; a dense pack holds models whose every "
                                 "layer is a MoE layer", path, m->name, l);
    moe_dense_pack g = {.n_layers = (uint32_t)c->n_layers};
    if (plan_layout(m, &g, err)) return moe_fail_prefix(err, "%s", path);
    if (!g.n_tensors || !g.n_layers) return moe_fail(err, "%s: model %s has no dense weights to pack", path, m->name);
    g.stride = round_up(g.block_bytes, MOE_PACK_ALIGN);
    g.data_offset = HDR_SIZE + round_up((uint64_t)g.n_layers * 8, MOE_PACK_ALIGN);
    g.file_size = g.data_offset + (uint64_t)g.n_layers * g.stride;
    moe_model_identity(m, g.model_id);
    unsigned char *blk = aligned_alloc(MOE_PACK_ALIGN, g.stride), *hdr = aligned_alloc(MOE_PACK_ALIGN, HDR_SIZE);
    unsigned char *index = calloc(1, g.data_offset - HDR_SIZE);
    moe_atomic_file af;
    int rc = -1;
    if (!blk || !hdr || !index) {
        moe_fail(err, "%s: out of memory", path);
        goto out;
    }
    if (moe_atomic_open(&af, path, err)) goto out;
    errno = 0;
    int bad = fwrite_all(af.f, index, HDR_SIZE) || fwrite_all(af.f, index, g.data_offset - HDR_SIZE);
    for (uint32_t l = 0; l < g.n_layers && !bad; l++) {
        src_tensor t[MOE_DENSE_MAX_TENSORS];
        layer_tensors(m, (int)l, t);
        memset(blk, 0, g.stride);
        for (uint32_t i = 0; i < g.n_tensors; i++) memcpy(blk + g.table[i].offset, t[i].data, g.table[i].bytes);
        moe_put64(index + 8 * l, moe_pack_check64(blk, g.block_bytes));
        bad = fwrite_all(af.f, blk, g.stride);
    }
    if (!bad) {
        header_build(hdr, &g, moe_pack_check64(index, (size_t)g.n_layers * 8));
        int fd = fileno(af.f);
        bad = fflush(af.f) != 0 || moe_pack_pwrite_all(fd, index, g.data_offset - HDR_SIZE, HDR_SIZE) ||
              moe_pack_pwrite_all(fd, hdr, HDR_SIZE, 0);
    }
    if (bad) {
        int e = errno ? errno : EIO;
        moe_atomic_abort(&af); /* removes the temporary file */
        moe_fail(err, "%s: write failed: %s", path, strerror(e));
    } else {
        rc = moe_atomic_commit(&af, err);
    }
out:
    free(blk);
    free(hdr);
    free(index);
    return rc;
}

/* ---- reader -------------------------------------------------------------------- */

/* Header fields and table into p; every size against what the others imply. */
static int parse_header(moe_dense_pack *p, const unsigned char *h, uint64_t actual, moe_error *err) {
    const char *f = p->path;
    if (memcmp(h, dense_magic, 8)) return moe_fail(err, "%s: not a dense pack (bad magic; expected \"MOEDENSE\")", f);
    uint32_t version = moe_get32(h + 8);
    if (version != MOE_DENSE_PACK_VERSION)
        return moe_fail(err, "%s: dense pack version %u; this moesim reads version %d", f, version, MOE_DENSE_PACK_VERSION);
    if (MOE_CHECK_MISMATCH(moe_get64(h + OFF_HDR_CHECK), moe_pack_check64(h, OFF_HDR_CHECK)))
        return moe_fail(err, "%s: header check value mismatch (pack corrupted?)", f);
    p->n_layers = moe_get32(h + 12);
    p->n_tensors = moe_get32(h + 16);
    p->block_bytes = moe_get64(h + 24);
    p->stride = moe_get64(h + 32);
    p->data_offset = moe_get64(h + 40);
    p->file_size = moe_get64(h + 48);
    memcpy(p->model_id, h + OFF_MODEL_ID, 32);
    if (!p->n_layers || p->n_layers > MOE_CFG_MAX_LAYERS)
        return moe_fail(err, "%s: %u layers, expected 1..%d", f, p->n_layers, MOE_CFG_MAX_LAYERS);
    if (!p->n_tensors || p->n_tensors > MOE_DENSE_MAX_TENSORS)
        return moe_fail(err, "%s: %u tensors per layer, expected 1..%d", f, p->n_tensors, MOE_DENSE_MAX_TENSORS);
    uint64_t at = 0;
    uint32_t seen = 0;
    for (uint32_t i = 0; i < p->n_tensors; i++) {
        const unsigned char *e = h + OFF_TABLE + i * ENTRY_SIZE;
        moe_dense_tensor *t = &p->table[i];
        *t = (moe_dense_tensor){moe_get32(e), moe_get32(e + 4), moe_get32(e + 8), moe_get32(e + 12), moe_get64(e + 16),
                                moe_get64(e + 24)};
        if (t->kind >= MOE_DENSE_KINDS || (seen >> t->kind) & 1)
            return moe_fail(err, "%s: tensor %u: kind %u unknown or repeated", f, i, t->kind);
        seen |= 1u << t->kind;
        if (!dtype_size(t->dtype)) return moe_fail(err, "%s: tensor %s: dtype code %u (0 = f32, 1 = f16, 2 = bf16)", f,
                                                   moe_dense_kind_name(t->kind), t->dtype);
        /* rows and cols are u32: their product fits 64 bits, times 4 too */
        if (t->bytes != (uint64_t)t->rows * t->cols * dtype_size(t->dtype) || !t->bytes)
            return moe_fail(err, "%s: tensor %s: %llu bytes, its shape %u x %u implies %llu", f, moe_dense_kind_name(t->kind),
                            (unsigned long long)t->bytes, t->rows, t->cols,
                            (unsigned long long)((uint64_t)t->rows * t->cols * dtype_size(t->dtype)));
        if (t->offset != at)
            return moe_fail(err, "%s: tensor %s: offset %llu, the layout implies %llu", f, moe_dense_kind_name(t->kind),
                            (unsigned long long)t->offset, (unsigned long long)at);
        at = round_up(t->offset + t->bytes, TENSOR_ALIGN);
    }
    const moe_dense_tensor *last = &p->table[p->n_tensors - 1];
    uint64_t block = last->offset + last->bytes, stride = round_up(block, MOE_PACK_ALIGN);
    uint64_t data = HDR_SIZE + round_up((uint64_t)p->n_layers * 8, MOE_PACK_ALIGN);
    if (p->block_bytes != block)
        return moe_fail(err, "%s: block_bytes %llu, the table implies %llu", f, (unsigned long long)p->block_bytes,
                        (unsigned long long)block);
    if (p->stride != stride)
        return moe_fail(err, "%s: stride %llu, expected %llu", f, (unsigned long long)p->stride, (unsigned long long)stride);
    if (p->data_offset != data)
        return moe_fail(err, "%s: data_offset %llu, expected %llu", f, (unsigned long long)p->data_offset,
                        (unsigned long long)data);
    if (__builtin_mul_overflow(stride, (uint64_t)p->n_layers, &block) || p->file_size != data + block)
        return moe_fail(err, "%s: header file_size %llu does not match %u layers of %llu bytes", f,
                        (unsigned long long)p->file_size, p->n_layers, (unsigned long long)stride);
    if (actual != p->file_size)
        return moe_fail(err, "%s: %s: %llu bytes, the header says %llu", f, actual < p->file_size ? "truncated" : "trailing bytes",
                        (unsigned long long)actual, (unsigned long long)p->file_size);
    return 0;
}

static int load_index(moe_dense_pack *p, const unsigned char *h, moe_error *err) {
    size_t region = (size_t)(p->data_offset - HDR_SIZE);
    unsigned char *buf = aligned_alloc(MOE_PACK_ALIGN, region);
    p->check = malloc(p->n_layers * sizeof *p->check);
    int rc = -1;
    if (!buf || !p->check) moe_fail(err, "%s: out of memory", p->path);
    else if (!moe_pack_pread(p->path, p->fd, p->io_mode, buf, region, HDR_SIZE, "index", err)) {
        size_t n = (size_t)p->n_layers * 8, z = n;
        while (z < region && !buf[z]) z++;
        if (MOE_CHECK_MISMATCH(moe_get64(h + OFF_INDEX_CHECK), moe_pack_check64(buf, n)))
            moe_fail(err, "%s: index check value mismatch (pack corrupted?)", p->path);
        else if (z < region) moe_fail(err, "%s: index padding at byte %zu is not zero (pack corrupted?)", p->path, HDR_SIZE + z);
        else {
            for (uint32_t l = 0; l < p->n_layers; l++) p->check[l] = moe_get64(buf + 8 * l);
            rc = 0;
        }
    }
    free(buf);
    return rc;
}

int moe_dense_pack_open(moe_dense_pack *p, const char *path, int mode, moe_error *err) {
    memset(p, 0, sizeof *p);
    p->fd = -1;
    p->io_mode = mode;
    if (moe_pack_file_begin(p->path, sizeof p->path, path, mode, "dense packs", &p->fd, err)) return -1;
    struct stat st;
    unsigned char *h = NULL;
    int rc = -1;
    if (fstat(p->fd, &st)) moe_fail(err, "%s: cannot stat: %s", path, strerror(errno));
    else if (!S_ISREG(st.st_mode)) moe_fail(err, "%s: not a regular file", path);
    else if ((uint64_t)st.st_size < HDR_SIZE)
        moe_fail(err, "%s: truncated or not a dense pack: %llu bytes, less than the %d-byte header", path,
                 (unsigned long long)st.st_size, HDR_SIZE);
    else if (!(h = aligned_alloc(MOE_PACK_ALIGN, HDR_SIZE))) moe_fail(err, "%s: out of memory", path);
    else if (!moe_pack_pread(path, p->fd, mode, h, HDR_SIZE, 0, "header", err) &&
             !parse_header(p, h, (uint64_t)st.st_size, err) && !load_index(p, h, err))
        rc = 0;
    free(h);
    if (!rc && mode == MOE_IO_MMAP) {
        p->map = mmap(NULL, (size_t)p->file_size, PROT_READ, MAP_SHARED, p->fd, 0);
        if (p->map == MAP_FAILED) {
            p->map = NULL;
            rc = moe_fail(err, "%s: cannot map: %s", path, strerror(errno));
        }
    }
    if (rc) moe_dense_pack_close(p);
    return rc;
}

void moe_dense_pack_close(moe_dense_pack *p) {
    if (p->map) munmap(p->map, (size_t)p->file_size);
    if (p->fd >= 0) close(p->fd);
    free(p->check);
    memset(p, 0, sizeof *p);
    p->fd = -1;
}

int moe_dense_pack_check_model(const moe_dense_pack *p, const moe_model *m, moe_error *err) {
    const moe_model_config *c = &m->cfg;
    if (p->n_layers != (uint32_t)c->n_layers)
        return moe_fail(err, "%s: dense pack of another model: %u layers in the pack, %d in %s; re-run moesim model pack "
                             "--dense", p->path, p->n_layers, c->n_layers, m->name);
    for (int l = 0; l < c->n_layers; l++)
        if (!c->is_moe[l])
            return moe_fail(err, "%s: model %s: layer %d is a dense-MLP layer; --stream-dense streams models whose every "
                                 "layer is a MoE layer", p->path, m->name, l);
    /* the tensors the forward pass reads unconditionally must be there */
    uint32_t need = 1u << MOE_DENSE_ATTN_NORM | 1u << MOE_DENSE_FFN_NORM | 1u << MOE_DENSE_WQ | 1u << MOE_DENSE_WK |
                    1u << MOE_DENSE_WV | 1u << MOE_DENSE_WO, have = 0;
    if (c->qk_norm != MOE_QKNORM_NONE) need |= 1u << MOE_DENSE_Q_NORM | 1u << MOE_DENSE_K_NORM;
    if (c->shared_inter) need |= 1u << MOE_DENSE_SHARED_GATE_UP | 1u << MOE_DENSE_SHARED_DOWN | 1u << MOE_DENSE_SHARED_GATE;
    for (uint32_t i = 0; i < p->n_tensors; i++) have |= 1u << p->table[i].kind;
    for (uint32_t k = 0; k < MOE_DENSE_KINDS; k++)
        if ((need & ~have) >> k & 1)
            return moe_fail(err, "%s: no %s tensor, which model %s needs (pack of another model)", p->path,
                            moe_dense_kind_name(k), m->name);
    for (uint32_t i = 0; i < p->n_tensors; i++) {
        const moe_dense_tensor *t = &p->table[i];
        uint32_t rows, cols;
        expected_shape(c, t->kind, &rows, &cols);
        if (t->rows != rows || t->cols != cols)
            return moe_fail(err, "%s: tensor %s is %u x %u, config.json of %s implies %u x %u (pack of another model)",
                            p->path, moe_dense_kind_name(t->kind), t->rows, t->cols, m->name, rows, cols);
    }
    uint8_t id[32];
    moe_model_identity(m, id);
    if (memcmp(id, p->model_id, 32))
        return moe_fail(err, "%s: dense pack of another model (model id differs from %s); re-run moesim model pack --dense",
                        p->path, m->name);
    return 0;
}

int moe_dense_pack_read(const moe_dense_pack *p, uint32_t layer, void *raw, moe_error *err) {
    if (layer >= p->n_layers) return moe_fail(err, "%s: layer %u out of range (%u layers)", p->path, layer, p->n_layers);
    uint64_t off = p->data_offset + (uint64_t)layer * p->stride;
    if (p->io_mode == MOE_IO_MMAP) memcpy(raw, (const unsigned char *)p->map + off, (size_t)p->stride);
    else {
        char what[32];
        snprintf(what, sizeof what, "layer %u", layer);
        if (moe_pack_pread(p->path, p->fd, p->io_mode, raw, (size_t)p->stride, off, what, err)) return -1;
    }
    if (MOE_CHECK_MISMATCH(p->check[layer], moe_pack_check64(raw, (size_t)p->block_bytes)))
        return moe_fail(err, "%s: layer %u: checksum mismatch (pack corrupted?)", p->path, layer);
    return 0;
}

void moe_dense_pack_bind(const moe_dense_pack *p, const void *raw, const moe_layer_w *resident, moe_layer_w *out) {
    *out = (moe_layer_w){.router = resident->router, .experts = resident->experts};
    for (uint32_t i = 0; i < p->n_tensors; i++) {
        const moe_dense_tensor *t = &p->table[i];
        /* views into the block: the engine only reads them (moe_layer_w's
         * vectors are not const because loading writes them) */
        float *v = (float *)(void *)((unsigned char *)(uintptr_t)raw + t->offset);
        moe_mat mat = {t->dtype == DT_F32 ? v : NULL, t->dtype == DT_F32 ? NULL : (const uint16_t *)v, t->dtype == DT_F16};
        switch (t->kind) {
        case MOE_DENSE_ATTN_NORM: out->attn_norm = v; break;
        case MOE_DENSE_FFN_NORM: out->ffn_norm = v; break;
        case MOE_DENSE_WQ: out->wq = mat; break;
        case MOE_DENSE_WK: out->wk = mat; break;
        case MOE_DENSE_WV: out->wv = mat; break;
        case MOE_DENSE_WO: out->wo = mat; break;
        case MOE_DENSE_BQ: out->bq = v; break;
        case MOE_DENSE_BK: out->bk = v; break;
        case MOE_DENSE_BV: out->bv = v; break;
        case MOE_DENSE_BO: out->bo = v; break;
        case MOE_DENSE_Q_NORM: out->q_norm = v; break;
        case MOE_DENSE_K_NORM: out->k_norm = v; break;
        case MOE_DENSE_SHARED_GATE_UP:
            out->shared.inter = (int)(t->rows / 2);
            out->shared.gate_up = mat.f32 ? v : NULL, out->shared.gate_up16 = mat.h16, out->shared.f16 = mat.f16;
            break;
        case MOE_DENSE_SHARED_DOWN: out->shared.down = mat.f32 ? v : NULL, out->shared.down16 = mat.h16; break;
        case MOE_DENSE_SHARED_GATE: out->shared_gate = v; break;
        default: break;
        }
    }
}

/* pack.c: the expert pack (format in pack.h, prose in docs/pack-format.md):
 * writer, validating opener, per-expert reads with check values, and the
 * bf16/f32 conversions.
 *
 * Every header field is checked against the geometry it implies and against
 * the file's real size before anything sized by a header field is allocated,
 * so a corrupt or hostile pack costs an error message, never a huge malloc
 * or a read outside the file. */
#include "pack.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../core/sha256.h"
#include "../core/trace_formats.h"
#include "pack_io.h"
#include "quant.h"

#define HDR_SIZE MOE_PACK_ALIGN
#define ENTRY_SIZE 32
#define OFF_MODEL_ID 72
#define OFF_INDEX_SHA 104
#define OFF_HDR_CHECK 4088
static const char pack_magic[8] = {'M', 'O', 'E', 'P', 'A', 'C', 'K', 0};

/* ---- check value ----------------------------------------------------------
 * Four independent lanes, each folding one 8-byte word per step, so the
 * multiplies of different lanes overlap in the pipeline (one lane alone is
 * latency-bound at about a third of the speed). A step is a bijection of the
 * lane state for a fixed word and of the word for a fixed state, so two
 * inputs of the same length that differ in a single word (any single-bit
 * error) always end with different lane states; the final combination and
 * avalanche are bijective per lane, so the check values differ too. The
 * length is folded in so trailing zero bytes count. Constants: odd 64-bit
 * words from the fractional parts of square roots of small primes. */
#define CK_M1 0xBB67AE8584CAA73Bull /* sqrt(3) */
#define CK_M2 0x3C6EF372FE94F82Bull /* sqrt(5) */
#define CK_M3 0xA54FF53A5F1D36F1ull /* sqrt(7) */
#define CK_M4 0x510E527FADE682D1ull /* sqrt(11) */

static inline uint64_t rotl64(uint64_t x, unsigned r) { return (x << r) | (x >> (64 - r)); }

static inline uint64_t ck_step(uint64_t h, uint64_t w) { return rotl64(h ^ (w * CK_M1), 29) * CK_M2; }

static inline uint64_t ck_load(const unsigned char *p) {
    uint64_t w;
    memcpy(&w, p, 8); /* unaligned-safe; the pack is little-endian-host only */
    return w;
}

static inline uint64_t ck_avalanche(uint64_t h) {
    h ^= h >> 31, h *= CK_M3;
    h ^= h >> 27, h *= CK_M4;
    return h ^ (h >> 33);
}

uint64_t moe_pack_check64(const void *data, size_t n) {
    const unsigned char *b = data;
    uint64_t lane[4] = {CK_M1, CK_M2, CK_M3, CK_M4};
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        lane[0] = ck_step(lane[0], ck_load(b + i));
        lane[1] = ck_step(lane[1], ck_load(b + i + 8));
        lane[2] = ck_step(lane[2], ck_load(b + i + 16));
        lane[3] = ck_step(lane[3], ck_load(b + i + 24));
    }
    int k = 0; /* up to three whole words left: lanes 0..2; a partial word: lane 3 */
    for (; i + 8 <= n; i += 8, k++) lane[k] = ck_step(lane[k], ck_load(b + i));
    if (i < n) {
        unsigned char tail[8] = {0};
        memcpy(tail, b + i, n - i);
        lane[3] = ck_step(lane[3], ck_load(tail));
    }
    uint64_t h = (uint64_t)n * CK_M3;
    for (int j = 0; j < 4; j++) h = rotl64(h ^ ck_avalanche(lane[j]), 23) * CK_M1;
    return ck_avalanche(h);
}

/* ---- io modes -------------------------------------------------------------- */

static const char *const io_names[] = {"direct", "buffered", "mmap"};

const char *moe_io_mode_name(int mode) {
    return mode >= 0 && mode < 3 ? io_names[mode] : "unknown";
}

int moe_io_mode_parse(const char *s, int *mode, moe_error *err) {
    for (int i = 0; i < 3; i++)
        if (s && !strcmp(s, io_names[i])) return *mode = i, 0;
    return moe_fail(err, "unknown I/O mode '%s': expected direct, buffered or mmap", s ? s : "");
}

/* ---- geometry ---------------------------------------------------------------- */

typedef struct geom {
    uint32_t dtype, L, E, H, I;
    uint64_t expert_bytes, stride, index_bytes, data_offset, file_size;
} geom;

static size_t dtype_size(uint32_t dtype) { return dtype == MOE_PACK_F32 ? 4 : dtype == MOE_PACK_BF16 ? 2 : 0; }

int moe_pack_dtype_bits(uint32_t dtype) {
    return dtype == MOE_PACK_Q8 ? 8 : dtype == MOE_PACK_Q4 ? 4 : dtype == MOE_PACK_Q3 ? 3 : dtype == MOE_PACK_Q2 ? 2 : 0;
}

const char *moe_pack_dtype_name(uint32_t dtype) {
    switch (dtype) {
    case MOE_PACK_F32: return "f32";
    case MOE_PACK_BF16: return "bf16";
    case MOE_PACK_Q8: return "q8";
    case MOE_PACK_Q4: return "q4";
    case MOE_PACK_Q3: return "q3";
    case MOE_PACK_Q2: return "q2";
    default: return "?";
    }
}

static int mul_ok(uint64_t a, uint64_t b, uint64_t *out) { return !__builtin_mul_overflow(a, b, out); }
static int add_ok(uint64_t a, uint64_t b, uint64_t *out) { return !__builtin_add_overflow(a, b, out); }
static int round_ok(uint64_t x, uint64_t *out) {
    if (!add_ok(x, MOE_PACK_ALIGN - 1, out)) return 0;
    *out &= ~(uint64_t)(MOE_PACK_ALIGN - 1);
    return 1;
}

/* Every derived size from (dtype, L, E, H, I); 0, or -1 if one overflows. */
static int geom_derive(geom *g) {
    uint64_t t, n_blocks, data_bytes, idx_padded;
    int bits = moe_pack_dtype_bits(g->dtype);
    if (bits) {
        uint64_t a = moe_qmat_bytes_checked(2 * (uint64_t)g->I, g->H, bits), b = moe_qmat_bytes_checked(g->H, g->I, bits);
        if (!a || !b || !add_ok(a, b, &g->expert_bytes)) return -1;
    } else if (!mul_ok(3, g->I, &t) || !mul_ok(t, g->H, &t) || !mul_ok(t, dtype_size(g->dtype), &g->expert_bytes)) {
        return -1;
    }
    if (!round_ok(g->expert_bytes, &g->stride) || !mul_ok(g->L, g->E, &n_blocks) ||
        !mul_ok(n_blocks, ENTRY_SIZE, &g->index_bytes) || !round_ok(g->index_bytes, &idx_padded) ||
        !add_ok(HDR_SIZE, idx_padded, &g->data_offset) || !mul_ok(n_blocks, g->stride, &data_bytes) ||
        !add_ok(g->data_offset, data_bytes, &g->file_size) || g->file_size > (uint64_t)SIZE_MAX)
        return -1;
    return 0;
}

uint64_t moe_pack_file_bytes(int dtype, uint32_t layers, uint32_t experts, uint32_t hidden, uint32_t inter) {
    geom g = {.dtype = (uint32_t)dtype, .L = layers, .E = experts, .H = hidden, .I = inter};
    return geom_derive(&g) ? 0 : g.file_size;
}

/* ---- bf16 ---------------------------------------------------------------- */

/* Round to nearest, ties to even: add 0x7fff plus the lowest kept bit, then
 * drop 16 bits. Exact for values that are already bf16 (their low 16 bits are
 * zero). NaN is handled apart because the addition could carry a NaN whose
 * payload sits in the low bits into infinity; the quiet bit keeps it NaN. */
static uint16_t f32_to_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x0040u);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

static void to_bf16(uint16_t *dst, const float *src, size_t n) {
    for (size_t i = 0; i < n; i++) dst[i] = f32_to_bf16(src[i]);
}

static void from_bf16(float *dst, const uint16_t *src, size_t n) {
    for (size_t i = 0; i < n; i++) {
        uint32_t u = (uint32_t)src[i] << 16;
        memcpy(&dst[i], &u, 4);
    }
}

/* ---- writer -------------------------------------------------------------- */

/* Payload of one expert in the pack's dtype: gate_up (gate rows then up
 * rows) then down. Padding bytes of blk are left as they are (zero). */
static int expert_payload(const geom *g, const moe_mlp_w *w, unsigned char *blk, moe_error *err) {
    size_t n_gu = 2 * (size_t)g->I * g->H, n_down = (size_t)g->H * g->I;
    int bits = moe_pack_dtype_bits(g->dtype);
    if (g->dtype == MOE_PACK_BF16 && w->gate_up16 && !w->f16) { /* kept as the file had it */
        memcpy(blk, w->gate_up16, n_gu * 2);
        memcpy(blk + n_gu * 2, w->down16, n_down * 2);
        return 0;
    }
    float *buf = w->gate_up ? NULL : malloc((n_gu + n_down) * sizeof(float));
    const float *fgu, *fdn;
    if (!w->gate_up && !buf) return moe_fail(err, "out of memory");
    moe_mlp_f32(w, (int)g->H, buf, buf + (buf ? n_gu : 0), &fgu, &fdn);
    int rc = 0;
    if (bits) { /* quantized here, one expert at a time */
        moe_qmat gu, dn;
        if (moe_qmat_quantize(&gu, fgu, 2 * (int)g->I, (int)g->H, bits, err)) rc = -1;
        else if (moe_qmat_quantize(&dn, fdn, (int)g->H, (int)g->I, bits, err)) rc = -1, moe_qmat_free(&gu);
        else {
            size_t a = moe_qmat_bytes(2 * (int)g->I, (int)g->H, bits), b = moe_qmat_bytes((int)g->H, (int)g->I, bits);
            memcpy(blk, gu.own, a);
            memcpy(blk + a, dn.own, b);
            moe_qmat_free(&gu), moe_qmat_free(&dn);
        }
    } else if (g->dtype == MOE_PACK_F32) {
        memcpy(blk, fgu, n_gu * sizeof(float));
        memcpy(blk + n_gu * sizeof(float), fdn, n_down * sizeof(float));
    } else {
        uint16_t *d = (uint16_t *)(void *)blk; /* blk is MOE_PACK_ALIGN-aligned */
        to_bf16(d, fgu, n_gu);
        to_bf16(d + n_gu, fdn, n_down);
    }
    free(buf);
    return rc;
}

static void header_build(unsigned char *h, const geom *g, const uint8_t model_id[32], const uint8_t index_sha[32]) {
    memset(h, 0, HDR_SIZE);
    memcpy(h, pack_magic, 8);
    moe_put32(h + 8, MOE_PACK_VERSION);
    moe_put32(h + 12, g->dtype);
    moe_put32(h + 16, g->L);
    moe_put32(h + 20, g->E);
    moe_put32(h + 24, g->H);
    moe_put32(h + 28, g->I);
    moe_put64(h + 32, g->expert_bytes);
    moe_put64(h + 40, g->stride);
    moe_put64(h + 48, HDR_SIZE);
    moe_put64(h + 56, g->data_offset);
    moe_put64(h + 64, g->file_size);
    memcpy(h + OFF_MODEL_ID, model_id, 32);
    memcpy(h + OFF_INDEX_SHA, index_sha, 32);
    moe_put64(h + OFF_HDR_CHECK, moe_pack_check64(h, OFF_HDR_CHECK));
}

static int fwrite_all(FILE *f, const void *p, size_t n) { return n && fwrite(p, 1, n, f) != n ? -1 : 0; }

/* The model's geometry as a pack geometry, after checking that its experts
 * are in RAM with the configured shape. */
static int model_geom(const moe_model *m, int dtype, int from_fill, geom *g, moe_error *err) {
    const moe_model_config *c = &m->cfg;
    if (dtype != MOE_PACK_F32 && dtype != MOE_PACK_BF16 && !moe_pack_dtype_bits((uint32_t)dtype))
        return moe_fail(err, "pack dtype code %d: expected %d (f32), %d (bf16) or %d/%d/%d/%d (8/4/3/2 bits)", dtype,
                        MOE_PACK_F32, MOE_PACK_BF16, MOE_PACK_Q8, MOE_PACK_Q4, MOE_PACK_Q3, MOE_PACK_Q2);
    if (c->n_moe_layers <= 0 || c->n_experts <= 0 || c->hidden <= 0 || c->expert_inter <= 0)
        return moe_fail(err, "model %s has no routed experts to pack", m->name);
    if (!m->experts_loaded && !from_fill) return moe_fail(err, "model %s was loaded without its experts", m->name);
    *g = (geom){.dtype = (uint32_t)dtype, .L = (uint32_t)c->n_moe_layers, .E = (uint32_t)c->n_experts,
                .H = (uint32_t)c->hidden, .I = (uint32_t)c->expert_inter};
    if (geom_derive(g)) return moe_fail(err, "model %s: pack would exceed 64-bit sizes", m->name);
    for (int l = 0; l < c->n_layers && !from_fill; l++) {
        if (!c->is_moe[l]) continue;
        const moe_layer_w *w = &m->layers[l];
        if (!w->experts) return moe_fail(err, "model %s: layer %d has no experts loaded", m->name, l);
        for (int e = 0; e < c->n_experts; e++)
            if (!moe_mlp_loaded(&w->experts[e]) || w->experts[e].inter != c->expert_inter)
                return moe_fail(err, "model %s: layer %d expert %d is not loaded with inter %d", m->name, l, e, c->expert_inter);
    }
    return 0;
}

typedef struct pack_writer {
    const moe_model *m;
    moe_pack_fill fill;   /* experts from fill (moe_pack_write_from), else from m */
    void *fill_ctx;
    geom g;
    moe_atomic_file af;
    unsigned char *blk;   /* one block, aligned, padding zero */
    unsigned char *index; /* the index region (entries + zero padding) */
} pack_writer;

/* Stream every block after a zero placeholder for header and index, filling
 * the index as we go; the layout is sequential, so FILE* writes suffice. */
static int write_blocks(pack_writer *w, void (*progress)(void *, uint32_t, uint32_t), void *ctx, moe_error *err) {
    static const unsigned char zero[HDR_SIZE];
    for (uint64_t at = 0; at < w->g.data_offset; at += HDR_SIZE)
        if (fwrite_all(w->af.f, zero, HDR_SIZE)) return -1;
    const moe_model_config *c = &w->m->cfg;
    uint32_t done = 0;
    for (int dl = 0; dl < c->n_layers; dl++) {
        if (!c->is_moe[dl]) continue;
        uint32_t l = (uint32_t)c->moe_index[dl];
        for (uint32_t e = 0; e < w->g.E; e++) {
            uint64_t k = (uint64_t)l * w->g.E + e;
            moe_mlp_w given = {0};
            const moe_mlp_w *src = &given;
            if (!w->fill) src = &w->m->layers[dl].experts[e];
            else if (w->fill(w->fill_ctx, l, e, &given, err)) return -2;
            if (expert_payload(&w->g, src, w->blk, err)) {
                moe_fail_prefix(err, "layer %u expert %u", l, e);
                return -2; /* err says why (not an I/O error) */
            }
            unsigned char *en = w->index + k * ENTRY_SIZE;
            moe_put64(en, w->g.data_offset + k * w->g.stride);
            moe_put64(en + 8, w->g.expert_bytes);
            moe_put64(en + 16, moe_pack_check64(w->blk, w->g.expert_bytes));
            moe_put32(en + 24, l);
            moe_put32(en + 28, e);
            if (fwrite_all(w->af.f, w->blk, w->g.stride)) return -1;
        }
        if (progress) progress(ctx, ++done, w->g.L);
    }
    return 0;
}

/* Header and index go into their placeholders once every check is known. */
static int write_head(pack_writer *w, unsigned char *hdr) {
    uint8_t id[32], sha[32];
    moe_model_identity(w->m, id);
    moe_sha256 s;
    moe_sha256_init(&s);
    moe_sha256_update(&s, w->index, w->g.index_bytes);
    moe_sha256_final(&s, sha);
    header_build(hdr, &w->g, id, sha);
    int fd = fileno(w->af.f);
    if (fflush(w->af.f) != 0) return -1;
    if (moe_pack_pwrite_all(fd, w->index, w->g.data_offset - HDR_SIZE, HDR_SIZE)) return -1;
    return moe_pack_pwrite_all(fd, hdr, HDR_SIZE, 0);
}

/* MoE ordinals must run 0..L-1 in decoder order for the layer-major layout. */
static int check_ordinals(const moe_model *m, moe_error *err) {
    int next = 0;
    for (int l = 0; l < m->cfg.n_layers; l++)
        if (m->cfg.is_moe[l] && m->cfg.moe_index[l] != next++)
            return moe_fail(err, "model %s: layer %d has MoE ordinal %d, expected %d", m->name, l, m->cfg.moe_index[l], next - 1);
    return next == m->cfg.n_moe_layers ? 0 : moe_fail(err, "model %s: %d sparse layers, config says %d", m->name, next, m->cfg.n_moe_layers);
}

int moe_pack_write(const moe_model *m, const char *path, int dtype,
                   void (*progress)(void *ctx, uint32_t layers_done, uint32_t layers), void *ctx,
                   moe_error *err) {
    return moe_pack_write_from(m, path, dtype, NULL, NULL, progress, ctx, err);
}

int moe_pack_write_from(const moe_model *m, const char *path, int dtype, moe_pack_fill fill, void *fill_ctx,
                        void (*progress)(void *ctx, uint32_t layers_done, uint32_t layers), void *ctx,
                        moe_error *err) {
    if (!moe_host_is_le()) return moe_fail(err, "%s: expert packs are little-endian; this host is not", path);
    pack_writer w = {.m = m, .fill = fill, .fill_ctx = fill_ctx};
    if (model_geom(m, dtype, fill != NULL, &w.g, err) || check_ordinals(m, err)) return moe_fail_prefix(err, "%s", path);
    w.blk = aligned_alloc(MOE_PACK_ALIGN, w.g.stride);
    w.index = calloc(1, w.g.data_offset - HDR_SIZE);
    unsigned char *hdr = aligned_alloc(MOE_PACK_ALIGN, HDR_SIZE);
    int rc = -1;
    if (!w.blk || !w.index || !hdr) moe_fail(err, "%s: out of memory", path);
    else if (moe_atomic_open(&w.af, path, err) == 0) {
        memset(w.blk, 0, w.g.stride);
        errno = 0;
        int wb = write_blocks(&w, progress, ctx, err);
        if (wb || write_head(&w, hdr)) {
            int e = errno ? errno : EIO;
            moe_atomic_abort(&w.af); /* removes the temporary file */
            if (wb == -2) moe_fail_prefix(err, "%s", path);
            else moe_fail(err, "%s: write failed: %s", path, strerror(e));
        } else rc = moe_atomic_commit(&w.af, err);
    }
    free(w.blk);
    free(w.index);
    free(hdr);
    return rc;
}

/* ---- reader ------------------------------------------------------------ */

/* Read [off, off+n) of the pack into buf (aligned for O_DIRECT); what names
 * the region in messages. */
static int read_region(const moe_pack *p, void *buf, size_t n, uint64_t off, const char *what, moe_error *err) {
    return moe_pack_pread(p->path, p->fd, p->io_mode, buf, n, off, what, err);
}

/* Header fields into p and g; checks magic, version, check value, dtype. */
static int parse_header(moe_pack *p, geom *g, const unsigned char *h, moe_error *err) {
    if (memcmp(h, pack_magic, 8)) return moe_fail(err, "%s: not an expert pack (bad magic; expected \"MOEPACK\")", p->path);
    uint32_t version = moe_get32(h + 8);
    if (version != MOE_PACK_VERSION)
        return moe_fail(err, "%s: expert pack version %u; this moesim reads version %d", p->path, version, MOE_PACK_VERSION);
    if (MOE_CHECK_MISMATCH(moe_get64(h + OFF_HDR_CHECK), moe_pack_check64(h, OFF_HDR_CHECK)))
        return moe_fail(err, "%s: header check value mismatch (pack corrupted?)", p->path);
    *g = (geom){.dtype = moe_get32(h + 12), .L = moe_get32(h + 16), .E = moe_get32(h + 20), .H = moe_get32(h + 24), .I = moe_get32(h + 28)};
    if (!dtype_size(g->dtype) && !moe_pack_dtype_bits(g->dtype))
        return moe_fail(err, "%s: unknown dtype code %u (0 = f32, 2 = bf16, 108/104/103/102 = 8/4/3/2 bits)", p->path,
                        g->dtype);
    if (!g->L || !g->E || !g->H || !g->I)
        return moe_fail(err, "%s: geometry has a zero: %u layers x %u experts, hidden %u, inter %u", p->path, g->L, g->E, g->H, g->I);
    /* quantized blocks are read through int-sized matrix views */
    if (moe_pack_dtype_bits(g->dtype) && (g->H > (1u << 28) || g->I > (1u << 28)))
        return moe_fail(err, "%s: hidden %u, inter %u: too large for a quantized pack (at most 2^28)", p->path, g->H, g->I);
    if (geom_derive(g))
        return moe_fail(err, "%s: geometry %u layers x %u experts, hidden %u, inter %u overflows 64-bit sizes", p->path, g->L,
                        g->E, g->H, g->I);
    p->dtype = g->dtype, p->n_layers = g->L, p->n_experts = g->E, p->hidden = g->H, p->inter = g->I;
    p->expert_bytes = moe_get64(h + 32), p->stride = moe_get64(h + 40), p->data_offset = moe_get64(h + 56), p->file_size = moe_get64(h + 64);
    memcpy(p->model_id, h + OFF_MODEL_ID, 32);
    return 0;
}

/* Every stored size against the one the geometry implies, then the real size. */
static int check_layout(const moe_pack *p, const geom *g, const unsigned char *h, uint64_t actual, moe_error *err) {
    const char *f = p->path;
    if (p->expert_bytes != g->expert_bytes)
        return moe_fail(err, "%s: expert_bytes %llu, geometry implies %llu (%s, inter %u, hidden %u)", f,
                        (unsigned long long)p->expert_bytes, (unsigned long long)g->expert_bytes,
                        moe_pack_dtype_name(g->dtype), g->I, g->H);
    if (p->stride != g->stride)
        return moe_fail(err, "%s: stride %llu, expected %llu (expert_bytes rounded up to %d)", f,
                        (unsigned long long)p->stride, (unsigned long long)g->stride, MOE_PACK_ALIGN);
    if (moe_get64(h + 48) != HDR_SIZE)
        return moe_fail(err, "%s: index_offset %llu, expected %d", f, (unsigned long long)moe_get64(h + 48), HDR_SIZE);
    if (p->data_offset != g->data_offset)
        return moe_fail(err, "%s: data_offset %llu, expected %llu", f, (unsigned long long)p->data_offset,
                        (unsigned long long)g->data_offset);
    if (p->file_size != g->file_size)
        return moe_fail(err, "%s: header file_size %llu, the layout implies %llu", f, (unsigned long long)p->file_size,
                        (unsigned long long)g->file_size);
    if (actual < p->file_size)
        return moe_fail(err, "%s: truncated: %llu bytes, the header says %llu", f, (unsigned long long)actual,
                        (unsigned long long)p->file_size);
    if (actual > p->file_size)
        return moe_fail(err, "%s: %llu bytes, the header says %llu (trailing bytes)", f, (unsigned long long)actual,
                        (unsigned long long)p->file_size);
    return 0;
}

/* One index entry against the layout; fills p->index[k]. */
static int check_entry(moe_pack *p, uint64_t k, const unsigned char *en, moe_error *err) {
    uint32_t l = (uint32_t)(k / p->n_experts), e = (uint32_t)(k % p->n_experts);
    uint64_t want = p->data_offset + k * p->stride;
    moe_pack_entry *x = &p->index[k];
    *x = (moe_pack_entry){.offset = moe_get64(en), .bytes = moe_get64(en + 8), .check = moe_get64(en + 16)};
    if (moe_get32(en + 24) != l || moe_get32(en + 28) != e)
        return moe_fail(err, "%s: index entry %llu (layer %u expert %u) says layer %u expert %u", p->path,
                        (unsigned long long)k, l, e, moe_get32(en + 24), moe_get32(en + 28));
    if (x->offset != want)
        return moe_fail(err, "%s: index: layer %u expert %u: offset %llu, expected %llu", p->path, l, e,
                        (unsigned long long)x->offset, (unsigned long long)want);
    if (x->bytes != p->expert_bytes)
        return moe_fail(err, "%s: index: layer %u expert %u: %llu bytes, expected %llu", p->path, l, e,
                        (unsigned long long)x->bytes, (unsigned long long)p->expert_bytes);
    return 0;
}

static int load_index(moe_pack *p, const geom *g, const unsigned char *h, moe_error *err) {
    size_t region = (size_t)(p->data_offset - HDR_SIZE), n = (size_t)g->L * g->E;
    unsigned char *buf = aligned_alloc(MOE_PACK_ALIGN, region);
    p->index = malloc(n * sizeof *p->index);
    int rc = -1;
    if (!buf || !p->index) moe_fail(err, "%s: out of memory for the index (%zu entries)", p->path, n);
    else if (read_region(p, buf, region, HDR_SIZE, "index", err) == 0) {
        uint8_t sha[32];
        moe_sha256 s;
        moe_sha256_init(&s);
        moe_sha256_update(&s, buf, (size_t)g->index_bytes);
        moe_sha256_final(&s, sha);
        size_t z = (size_t)g->index_bytes;
        while (z < region && !buf[z]) z++;
        if (MOE_CHECK_MISMATCH(memcmp(sha, h + OFF_INDEX_SHA, 32), 0)) moe_fail(err, "%s: index SHA-256 mismatch (pack corrupted?)", p->path);
        else if (z < region) moe_fail(err, "%s: index padding at byte %zu is not zero (pack corrupted?)", p->path, HDR_SIZE + z);
        else {
            rc = 0;
            for (size_t k = 0; k < n && !rc; k++) rc = check_entry(p, k, buf + k * ENTRY_SIZE, err);
        }
    }
    free(buf);
    return rc;
}

static int pack_load(moe_pack *p, moe_error *err) {
    struct stat st;
    if (fstat(p->fd, &st)) return moe_fail(err, "%s: cannot stat: %s", p->path, strerror(errno));
    if (!S_ISREG(st.st_mode)) return moe_fail(err, "%s: not a regular file", p->path);
    uint64_t actual = (uint64_t)st.st_size;
    if (actual < HDR_SIZE)
        return moe_fail(err, "%s: truncated or not an expert pack: %llu bytes, less than the %d-byte header", p->path,
                        (unsigned long long)actual, HDR_SIZE);
    unsigned char *h = aligned_alloc(MOE_PACK_ALIGN, HDR_SIZE);
    if (!h) return moe_fail(err, "%s: out of memory", p->path);
    geom g;
    int rc = read_region(p, h, HDR_SIZE, 0, "header", err) || parse_header(p, &g, h, err) ||
             check_layout(p, &g, h, actual, err) || load_index(p, &g, h, err) ? -1 : 0;
    free(h);
    if (rc || p->io_mode != MOE_IO_MMAP) return rc;
    p->map = mmap(NULL, (size_t)p->file_size, PROT_READ, MAP_SHARED, p->fd, 0);
    if (p->map == MAP_FAILED) {
        p->map = NULL;
        return moe_fail(err, "%s: cannot map: %s", p->path, strerror(errno));
    }
    return 0;
}

int moe_pack_open(moe_pack *p, const char *path, int mode, moe_error *err) {
    memset(p, 0, sizeof *p);
    p->fd = -1;
    p->io_mode = mode;
    if (moe_pack_file_begin(p->path, sizeof p->path, path, mode, "expert packs", &p->fd, err)) return -1;
    if (pack_load(p, err)) {
        moe_pack_close(p);
        return -1;
    }
    return 0;
}

void moe_pack_close(moe_pack *p) {
    if (p->map) munmap(p->map, (size_t)p->file_size);
    if (p->fd >= 0) close(p->fd);
    free(p->index);
    memset(p, 0, sizeof *p);
    p->fd = -1;
}

int moe_pack_check_model(const moe_pack *p, const moe_model *m, moe_error *err) {
    const moe_model_config *c = &m->cfg;
    const struct { const char *what; long long pack, model; } g[] = {
        {"MoE layers", p->n_layers, c->n_moe_layers},
        {"experts per layer", p->n_experts, c->n_experts},
        {"hidden size", p->hidden, c->hidden},
        {"expert intermediate size", p->inter, c->expert_inter},
    };
    for (size_t i = 0; i < sizeof g / sizeof *g; i++)
        if (g[i].pack != g[i].model)
            return moe_fail(err, "%s: pack of another model: %s %lld in the pack, %lld in %s; re-run moesim model pack",
                            p->path, g[i].what, g[i].pack, g[i].model, m->name);
    uint8_t id[32];
    moe_model_identity(m, id);
    if (memcmp(id, p->model_id, 32))
        return moe_fail(err, "%s: pack of another model (model id differs from %s); re-run moesim model pack", p->path, m->name);
    return 0;
}

int moe_pack_read(const moe_pack *p, uint32_t layer, uint32_t expert, void *raw, moe_error *err) {
    if (layer >= p->n_layers || expert >= p->n_experts)
        return moe_fail(err, "%s: layer %u expert %u out of range (%u layers x %u experts)", p->path, layer, expert,
                        p->n_layers, p->n_experts);
    const moe_pack_entry *en = &p->index[(size_t)layer * p->n_experts + expert];
    if (p->io_mode == MOE_IO_MMAP) memcpy(raw, (const unsigned char *)p->map + en->offset, (size_t)p->stride);
    else {
        if (p->io_mode == MOE_IO_DIRECT && ((uintptr_t)raw % MOE_PACK_ALIGN))
            return moe_fail(err, "%s: layer %u expert %u: buffer not %d-byte aligned (O_DIRECT needs it)", p->path, layer,
                            expert, MOE_PACK_ALIGN);
        char what[64];
        snprintf(what, sizeof what, "layer %u expert %u", layer, expert);
        if (read_region(p, raw, (size_t)p->stride, en->offset, what, err)) return -1;
    }
    if (MOE_CHECK_MISMATCH(en->check, moe_pack_check64(raw, (size_t)en->bytes)))
        return moe_fail(err, "%s: layer %u expert %u: checksum mismatch (pack corrupted?)", p->path, layer, expert);
    return 0;
}

void moe_pack_qviews(const moe_pack *p, const void *raw, moe_qmat *gate_up, moe_qmat *down) {
    int bits = moe_pack_dtype_bits(p->dtype), I = (int)p->inter, H = (int)p->hidden;
    moe_qmat_view(gate_up, raw, 2 * I, H, bits);
    moe_qmat_view(down, (const unsigned char *)raw + moe_qmat_bytes(2 * I, H, bits), H, I, bits);
}

void moe_pack_to_f32(const moe_pack *p, const void *raw, float *gate_up, float *down) {
    size_t n_gu = 2 * (size_t)p->inter * p->hidden, n_down = (size_t)p->hidden * p->inter;
    if (moe_pack_dtype_bits(p->dtype)) { /* dequantized, row by row */
        moe_qmat gu, dn;
        moe_pack_qviews(p, raw, &gu, &dn);
        for (int r = 0; r < gu.rows; r++) moe_qmat_dequant_row(&gu, r, gate_up + (size_t)r * gu.cols);
        for (int r = 0; r < dn.rows; r++) moe_qmat_dequant_row(&dn, r, down + (size_t)r * dn.cols);
        return;
    }
    if (p->dtype == MOE_PACK_F32) {
        memcpy(gate_up, raw, n_gu * sizeof(float));
        memcpy(down, (const unsigned char *)raw + n_gu * sizeof(float), n_down * sizeof(float));
    } else {
        const uint16_t *s = raw; /* raw comes from moe_pack_alloc_block: aligned */
        from_bf16(gate_up, s, n_gu);
        from_bf16(down, s + n_gu, n_down);
    }
}

void *moe_pack_alloc_block(const moe_pack *p) {
    return p->stride ? aligned_alloc(MOE_PACK_ALIGN, (size_t)p->stride) : NULL;
}

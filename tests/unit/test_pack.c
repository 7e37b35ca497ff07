/* test_pack.c: expert packs (backend/pack.h). The shipped model
 * models/tinymix (bf16) and the tiny f32 model tests/golden/qwen3_moe are
 * packed into a temporary directory; every expert read back must equal the
 * resident model's weights bit for bit in every I/O mode, the bytes on disk
 * must follow pack.h independently of the reader, bf16 rounding must be
 * round-to-nearest-even with NaN kept, and every kind of damage (a flipped
 * byte, truncation, a bad magic, a forged index, another model) must be
 * refused with a message naming the file and the place. */
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../../backend/pack.h"
#include "../../core/sha256.h"
#include "check.h"

#include "../../backend/quant.h"

static char tmpdir[64];
static moe_model *tiny, *qwen; /* models/tinymix (bf16), tests/golden/qwen3_moe (f32) */
static char tiny_bf16[128], tiny_f32[128], qwen_bf16[128], qwen_f32[128];

/* ---- helpers ---------------------------------------------------------------- */

static void tmp_path(char *out, size_t n, const char *name) { snprintf(out, n, "%s/%s", tmpdir, name); }

/* Decoder layer holding MoE ordinal l. */
static int dec_layer(const moe_model *m, uint32_t l) {
    for (int i = 0; i < m->cfg.n_layers; i++)
        if (m->cfg.is_moe[i] && m->cfg.moe_index[i] == (int)l) return i;
    return -1;
}

static const moe_mlp_w *expert_of(const moe_model *m, uint32_t l, uint32_t e) {
    return &m->layers[dec_layer(m, l)].experts[e];
}

/* Expert (l, e)'s weights as f32 (a bf16 model keeps them bf16: widened
 * into the buffers, 2IH and HI floats). */
static void expert_f32(const moe_model *m, uint32_t l, uint32_t e, float *gu_buf, float *dn_buf, const float **gu,
                       const float **dn) {
    moe_mlp_f32(expert_of(m, l, e), m->cfg.hidden, gu_buf, dn_buf, gu, dn);
}

/* Read (l, e) and compare its f32 weights with the model's, bit for bit.
 * 0 = equal; on failure prints why. */
static int block_equals_model(const moe_pack *p, const moe_model *m, uint32_t l, uint32_t e, void *blk) {
    moe_error err = {{0}};
    size_t n_gu = 2 * (size_t)p->inter * p->hidden, n_d = (size_t)p->hidden * p->inter;
    float *gu = malloc(n_gu * sizeof(float)), *d = malloc(n_d * sizeof(float));
    float *mg = malloc(n_gu * sizeof(float)), *md = malloc(n_d * sizeof(float));
    const float *wg, *wd;
    int rc = moe_pack_read(p, l, e, blk, &err);
    if (rc) printf("info read: %s\n", err.msg);
    else {
        moe_pack_to_f32(p, blk, gu, d);
        expert_f32(m, l, e, mg, md, &wg, &wd);
        rc = memcmp(gu, wg, n_gu * sizeof(float)) || memcmp(d, wd, n_d * sizeof(float));
        if (rc) printf("info layer %u expert %u differs from the model (%s)\n", l, e, moe_io_mode_name(p->io_mode));
    }
    free(gu), free(d), free(mg), free(md);
    return rc;
}

static int copy_file(const char *from, const char *to) {
    char cmd[512];
    snprintf(cmd, sizeof cmd, "cp '%s' '%s'", from, to);
    return system(cmd);
}

static int patch_file(const char *path, uint64_t off, const void *bytes, size_t n) {
    FILE *f = fopen(path, "r+b");
    if (!f) return -1;
    int rc = fseek(f, (long)off, SEEK_SET) || fwrite(bytes, 1, n, f) != n;
    return fclose(f) || rc ? -1 : 0;
}

static int read_bytes(const char *path, uint64_t off, void *bytes, size_t n) {
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    int rc = fseek(f, (long)off, SEEK_SET) || fread(bytes, 1, n, f) != n;
    fclose(f);
    return rc ? -1 : 0;
}

static void xor_byte(const char *path, uint64_t off, unsigned char mask) {
    unsigned char b = 0;
    if (read_bytes(path, off, &b, 1) == 0) {
        b ^= mask;
        patch_file(path, off, &b, 1);
    }
}

static uint64_t le64(const unsigned char *b) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | b[i];
    return v;
}
static uint32_t le32(const unsigned char *b) { return (uint32_t)le64((const unsigned char[8]){b[0], b[1], b[2], b[3]}); }
static void put_le64(unsigned char *b, uint64_t v) {
    for (int i = 0; i < 8; i++) b[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t file_size(const char *path) {
    struct stat st;
    return stat(path, &st) ? 0 : (uint64_t)st.st_size;
}

static int dir_entries(const char *dir) {
    DIR *d = opendir(dir);
    int n = 0;
    if (!d) return -1;
    for (struct dirent *e; (e = readdir(d));) n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

/* ---- layout, header, index ------------------------------------------------ */

static void header_fields(const char *path, const moe_model *m, uint32_t dtype, uint64_t eb) {
    moe_error err = {{0}};
    moe_pack p;
    CHECK(moe_pack_open(&p, path, MOE_IO_BUFFERED, &err) == 0);
    uint64_t n = (uint64_t)m->cfg.n_moe_layers * m->cfg.n_experts;
    uint64_t data_offset = 4096 + (n * 32 + 4095) / 4096 * 4096;
    int ok = p.dtype == dtype && p.n_layers == (uint32_t)m->cfg.n_moe_layers &&
             p.n_experts == (uint32_t)m->cfg.n_experts && p.hidden == (uint32_t)m->cfg.hidden &&
             p.inter == (uint32_t)m->cfg.expert_inter && p.expert_bytes == eb &&
             p.stride == (eb + 4095) / 4096 * 4096 && p.data_offset == data_offset &&
             p.file_size == data_offset + n * p.stride && p.file_size == file_size(path) && p.io_mode == MOE_IO_BUFFERED;
    uint8_t id[32];
    moe_model_identity(m, id);
    ok = ok && !memcmp(id, p.model_id, 32);
    moe_pack_close(&p);
    CHECK(ok);
}

static void pack_header_tinymix_bf16(void) {
    header_fields(tiny_bf16, tiny, MOE_PACK_BF16, 3 * 144 * 128 * 2);
    /* the numbers themselves: 6 MoE layers x 32 experts, 110592 B per expert */
    moe_error err = {{0}};
    moe_pack p;
    CHECK(moe_pack_open(&p, tiny_bf16, MOE_IO_BUFFERED, &err) == 0);
    uint64_t eb = p.expert_bytes, st = p.stride, L = p.n_layers, E = p.n_experts, fs = p.file_size;
    moe_pack_close(&p);
    CHECK_EQ_U(eb, 110592);
    CHECK_EQ_U(st, 110592);
    CHECK_EQ_U(L, 6);
    CHECK_EQ_U(E, 32);
    CHECK_EQ_U(fs, 4096 + 8192 + 192ull * 110592);
}

static void pack_header_tinymix_f32(void) {
    header_fields(tiny_f32, tiny, MOE_PACK_F32, 3 * 144 * 128 * 4);
    moe_error err = {{0}};
    moe_pack p;
    CHECK(moe_pack_open(&p, tiny_f32, MOE_IO_BUFFERED, &err) == 0);
    uint64_t st = p.stride;
    moe_pack_close(&p);
    CHECK_EQ_U(st, 221184);
}

/* The bytes on disk against pack.h, read without moe_pack_open. */
static void pack_bytes_follow_the_format(void) {
    unsigned char h[4096];
    CHECK(read_bytes(tiny_bf16, 0, h, sizeof h) == 0);
    CHECK(!memcmp(h, "MOEPACK\0", 8));
    CHECK_EQ_U(le32(h + 8), 1);
    CHECK_EQ_U(le32(h + 12), 2);
    CHECK_EQ_U(le32(h + 16), 6);
    CHECK_EQ_U(le32(h + 20), 32);
    CHECK_EQ_U(le32(h + 24), 128);
    CHECK_EQ_U(le32(h + 28), 144);
    CHECK_EQ_U(le64(h + 32), 110592);
    CHECK_EQ_U(le64(h + 40), 110592);
    CHECK_EQ_U(le64(h + 48), 4096);
    CHECK_EQ_U(le64(h + 56), 12288);
    CHECK_EQ_U(le64(h + 64), 12288 + 192ull * 110592);
    for (int i = 136; i < 4088; i++) CHECK(h[i] == 0);
    CHECK_EQ_U(le64(h + 4088), moe_pack_check64(h, 4088));
    static unsigned char idx[8192];
    CHECK(read_bytes(tiny_bf16, 4096, idx, sizeof idx) == 0);
    uint8_t sha[32];
    moe_sha256 s;
    moe_sha256_init(&s);
    moe_sha256_update(&s, idx, 192 * 32);
    moe_sha256_final(&s, sha);
    CHECK(!memcmp(sha, h + 104, 32));
    for (int i = 192 * 32; i < 8192; i++) CHECK(idx[i] == 0);
    /* entry (3, 17) and its block: bf16 = the top half of the model's f32 bits */
    const unsigned char *en = idx + (3 * 32 + 17) * 32;
    uint64_t off = 12288 + (3ull * 32 + 17) * 110592;
    CHECK_EQ_U(le64(en), off);
    CHECK_EQ_U(le64(en + 8), 110592);
    CHECK_EQ_U(le32(en + 24), 3);
    CHECK_EQ_U(le32(en + 28), 17);
    unsigned char *blk = malloc(110592);
    CHECK(read_bytes(tiny_bf16, off, blk, 110592) == 0);
    uint64_t check = moe_pack_check64(blk, 110592);
    static float mg[2 * 144 * 128], md[128 * 144];
    const float *wg, *wd;
    expert_f32(tiny, 3, 17, mg, md, &wg, &wd);
    int bad = 0;
    for (size_t i = 0; i < 110592 / 2; i++) {
        size_t n_gu = 2 * 144 * 128;
        float f = i < n_gu ? wg[i] : wd[i - n_gu];
        uint32_t u;
        memcpy(&u, &f, 4);
        bad += (uint16_t)(blk[2 * i] | blk[2 * i + 1] << 8) != (u >> 16) || (u & 0xffff);
    }
    free(blk);
    CHECK_EQ_U(bad, 0);
    CHECK_EQ_U(le64(en + 16), check);
}

/* ---- round trips ------------------------------------------------------------- */

static void roundtrip(const char *path, int mode, int every) {
    moe_error err = {{0}};
    moe_pack p;
    if (moe_pack_open(&p, path, mode, &err)) {
        /* a file system without O_DIRECT must say so and name the way out */
        CHECK(mode == MOE_IO_DIRECT);
        CHECK_STR_CONTAINS(err.msg, path);
        CHECK_STR_CONTAINS(err.msg, "--io buffered");
        printf("info %s\n", err.msg);
        return;
    }
    void *blk = moe_pack_alloc_block(&p);
    int bad = !blk, n = 0;
    for (uint32_t k = 0; blk && k < p.n_layers * p.n_experts; k += (uint32_t)every, n++)
        bad += block_equals_model(&p, tiny, k / p.n_experts, k % p.n_experts, blk) != 0;
    /* the corners, always */
    bad += blk && block_equals_model(&p, tiny, p.n_layers - 1, p.n_experts - 1, blk) != 0;
    int mode_ok = p.io_mode == mode && (mode != MOE_IO_MMAP || p.map);
    free(blk);
    moe_pack_close(&p);
    CHECK(n > 10);
    CHECK_EQ_U(bad, 0);
    CHECK(mode_ok);
}

static void pack_roundtrip_bf16_buffered(void) { roundtrip(tiny_bf16, MOE_IO_BUFFERED, 1); }
static void pack_roundtrip_bf16_direct(void) { roundtrip(tiny_bf16, MOE_IO_DIRECT, 7); }
static void pack_roundtrip_bf16_mmap(void) { roundtrip(tiny_bf16, MOE_IO_MMAP, 5); }
static void pack_roundtrip_f32_buffered(void) { roundtrip(tiny_f32, MOE_IO_BUFFERED, 3); }
static void pack_roundtrip_f32_direct(void) { roundtrip(tiny_f32, MOE_IO_DIRECT, 7); }
static void pack_roundtrip_f32_mmap(void) { roundtrip(tiny_f32, MOE_IO_MMAP, 5); }

/* A quantized pack: each block is byte for byte the two matrices
 * backend/quant.c makes of the resident expert (gate+up rows, then down),
 * its size the one quant.h states (4-bit tinymix: 31488 bytes), and
 * moe_pack_to_f32 gives their dequantized rows. */
static void pack_quantized_blocks(void) {
    char path[600];
    tmp_path(path, sizeof path, "q4.pack");
    moe_error err = {{0}};
    CHECK(moe_pack_write(tiny, path, MOE_PACK_Q4, NULL, NULL, &err) == 0);
    moe_pack p;
    CHECK(moe_pack_open(&p, path, MOE_IO_BUFFERED, &err) == 0);
    CHECK_EQ_U(p.dtype, MOE_PACK_Q4);
    CHECK_EQ_U(p.expert_bytes, 31488);
    CHECK(!strcmp(moe_pack_dtype_name(p.dtype), "q4") && moe_pack_dtype_bits(p.dtype) == 4);
    int H = (int)p.hidden, I = (int)p.inter, bad = 0;
    void *blk = moe_pack_alloc_block(&p);
    float *gu = malloc(sizeof(float) * 2 * I * H), *dn = malloc(sizeof(float) * H * I), *row = malloc(sizeof(float) * H);
    float *mg = malloc(sizeof(float) * 2 * I * H), *md = malloc(sizeof(float) * H * I);
    CHECK(blk && gu && dn && row && mg && md);
    for (uint32_t k = 0; k < p.n_layers * p.n_experts; k += 13) {
        uint32_t l = k / p.n_experts, e = k % p.n_experts;
        const float *wg, *wd;
        expert_f32(tiny, l, e, mg, md, &wg, &wd);
        moe_qmat a, b;
        if (moe_pack_read(&p, l, e, blk, &err) || moe_qmat_quantize(&a, wg, 2 * I, H, 4, &err) ||
            moe_qmat_quantize(&b, wd, H, I, 4, &err)) {
            bad++;
            break;
        }
        size_t na = moe_qmat_bytes(2 * I, H, 4);
        bad += memcmp(blk, a.own, na) != 0 || memcmp((unsigned char *)blk + na, b.own, moe_qmat_bytes(H, I, 4)) != 0;
        moe_pack_to_f32(&p, blk, gu, dn);
        moe_qmat_dequant_row(&a, 2 * I - 1, row);
        bad += memcmp(row, gu + (size_t)(2 * I - 1) * H, sizeof(float) * H) != 0;
        moe_qmat_free(&a), moe_qmat_free(&b);
    }
    free(blk), free(gu), free(dn), free(row), free(mg), free(md);
    moe_pack_close(&p);
    CHECK_EQ_U(bad, 0);
}

/* An f32 model packed as f32 is exact; the golden qwen3_moe has 2 MoE layers. */
static void pack_roundtrip_qwen3_f32(void) {
    moe_error err = {{0}};
    moe_pack p;
    CHECK(moe_pack_open(&p, qwen_f32, MOE_IO_BUFFERED, &err) == 0);
    size_t n_gu = 2 * (size_t)p.inter * p.hidden, n_d = (size_t)p.hidden * p.inter;
    float *gu = malloc(n_gu * 4), *d = malloc(n_d * 4);
    void *blk = moe_pack_alloc_block(&p);
    int bad = 0;
    for (uint32_t l = 0; l < p.n_layers; l++)
        for (uint32_t e = 0; e < p.n_experts; e++) {
            const moe_mlp_w *w = expert_of(qwen, l, e);
            bad += moe_pack_read(&p, l, e, blk, &err) != 0;
            moe_pack_to_f32(&p, blk, gu, d);
            bad += memcmp(gu, w->gate_up, n_gu * 4) != 0 || memcmp(d, w->down, n_d * 4) != 0;
        }
    uint32_t L = p.n_layers, E = p.n_experts;
    free(gu), free(d), free(blk);
    moe_pack_close(&p);
    CHECK_EQ_U(L, 2);
    CHECK_EQ_U(E, 8);
    CHECK_EQ_U(bad, 0);
}

/* Independent reference: pick the nearer bf16 neighbour, ties to even. */
static uint16_t ref_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    if (isnan(f)) return 0; /* compared apart */
    uint32_t lo = u >> 16, rem = u & 0xffff;
    if (rem > 0x8000 || (rem == 0x8000 && (lo & 1))) lo++;
    return (uint16_t)lo;
}

static uint32_t bits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}
static float from_bits(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* f32 -> bf16: every value of qwen3_moe against the reference, and the
 * edge cases planted into one expert. */
static void pack_bf16_rounding(void) {
    static const uint32_t planted[][2] = {
        {0x3f808000, 0x3f80}, /* 1 + 2^-8: tie, to even 1.0 */
        {0x3f818000, 0x3f82}, /* 1 + 3*2^-8: tie, to even 1 + 2^-6 */
        {0x3f808001, 0x3f81}, /* just above the tie: up */
        {0x3f807fff, 0x3f80}, /* just below: down */
        {0xbf818000, 0xbf82}, /* negative tie */
        {0x7f7fffff, 0x7f80}, /* FLT_MAX rounds to +inf */
        {0x7f800000, 0x7f80}, /* +inf */
        {0xff800000, 0xff80}, /* -inf */
        {0x80000000, 0x8000}, /* -0 */
        {0x00018000, 0x0002}, /* subnormal tie, to even */
        {0x00008000, 0x0000}, /* subnormal tie to zero */
    };
    static const uint32_t nans[] = {0x7f800001, 0xff800001, 0x7fc00000, 0x7fffffff};
    moe_mlp_w *w = (moe_mlp_w *)expert_of(qwen, 1, 5);
    size_t np = sizeof planted / sizeof *planted, nn = sizeof nans / sizeof *nans;
    float saved[32];
    memcpy(saved, w->gate_up, sizeof saved);
    for (size_t i = 0; i < np; i++) w->gate_up[i] = from_bits(planted[i][0]);
    for (size_t i = 0; i < nn; i++) w->gate_up[np + i] = from_bits(nans[i]);
    moe_error err = {{0}};
    char path[128];
    tmp_path(path, sizeof path, "planted.pack");
    int wr = moe_pack_write(qwen, path, MOE_PACK_BF16, NULL, NULL, &err);
    memcpy(w->gate_up, saved, sizeof saved);
    CHECK(wr == 0);
    moe_pack p;
    CHECK(moe_pack_open(&p, path, MOE_IO_BUFFERED, &err) == 0);
    size_t n_gu = 2 * (size_t)p.inter * p.hidden, n_d = (size_t)p.hidden * p.inter;
    float *gu = malloc(n_gu * 4), *d = malloc(n_d * 4);
    void *blk = moe_pack_alloc_block(&p);
    int bad = 0, bad_planted = 0, bad_nan = 0;
    size_t compared = 0;
    for (uint32_t l = 0; l < p.n_layers; l++)
        for (uint32_t e = 0; e < p.n_experts; e++) {
            const moe_mlp_w *m = expert_of(qwen, l, e);
            bad += moe_pack_read(&p, l, e, blk, &err) != 0;
            moe_pack_to_f32(&p, blk, gu, d);
            int planted_here = l == 1 && e == 5;
            for (size_t i = planted_here ? np + nn : 0; i < n_gu; i++, compared++)
                bad += bits(gu[i]) != (uint32_t)ref_bf16(m->gate_up[i]) << 16;
            for (size_t i = 0; i < n_d; i++, compared++) bad += bits(d[i]) != (uint32_t)ref_bf16(m->down[i]) << 16;
            if (!planted_here) continue;
            for (size_t i = 0; i < np; i++) bad_planted += bits(gu[i]) != planted[i][1] << 16;
            for (size_t i = 0; i < nn; i++)
                bad_nan += !isnan(gu[np + i]) || (bits(gu[np + i]) >> 31) != nans[i] >> 31;
        }
    free(gu), free(d), free(blk);
    moe_pack_close(&p);
    CHECK(compared > 40000);
    CHECK_EQ_U(bad, 0);
    CHECK_EQ_U(bad_planted, 0);
    CHECK_EQ_U(bad_nan, 0);
}

/* ---- a hand-made model: dense layers between sparse ones, padded blocks ---- */

typedef struct synth {
    moe_model m;
    float *mem;
} synth;

/* 5 decoder layers, sparse at 0, 2, 3 (ordinals 0..2), 5 experts, H 10, I 7:
 * 840 B per f32 expert, so each block carries 3256 bytes of padding. */
static int synth_make(synth *s) {
    memset(s, 0, sizeof *s);
    moe_model *m = &s->m;
    moe_model_config *c = &m->cfg;
    snprintf(m->name, sizeof m->name, "synth");
    snprintf(m->dtype, sizeof m->dtype, "F32");
    c->n_layers = 5, c->hidden = 10, c->n_experts = 5, c->expert_inter = 7, c->n_moe_layers = 3, c->top_k = 2;
    const int moe[5] = {1, 0, 1, 1, 0};
    for (int l = 0, k = 0; l < 5; l++) c->is_moe[l] = (uint8_t)moe[l], c->moe_index[l] = moe[l] ? k++ : -1;
    m->experts_loaded = 1;
    m->layers = calloc(5, sizeof *m->layers);
    size_t per = 3 * 7 * 10;
    s->mem = malloc(5 * 5 * per * sizeof(float));
    if (!m->layers || !s->mem) return -1;
    uint64_t x = 12345;
    for (size_t i = 0; i < 5 * 5 * per; i++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        s->mem[i] = (float)((int64_t)(x >> 11) % 2000001 - 1000000) * 1e-6f;
    }
    for (int l = 0; l < 5; l++) {
        if (!moe[l]) continue;
        m->layers[l].experts = calloc(5, sizeof(moe_mlp_w));
        if (!m->layers[l].experts) return -1;
        for (int e = 0; e < 5; e++) {
            float *base = s->mem + ((size_t)l * 5 + e) * per;
            m->layers[l].experts[e] = (moe_mlp_w){.inter = 7, .gate_up = base, .down = base + 2 * 70};
        }
    }
    return 0;
}

static void synth_free(synth *s) {
    for (int l = 0; s->m.layers && l < 5; l++) free(s->m.layers[l].experts);
    free(s->m.layers);
    free(s->mem);
}

static void pack_padding_and_dense_layers(void) {
    synth s;
    int made = synth_make(&s);
    moe_error err = {{0}};
    char path[128];
    tmp_path(path, sizeof path, "synth.pack");
    int wr = made ? -1 : moe_pack_write(&s.m, path, MOE_PACK_F32, NULL, NULL, &err);
    if (wr) printf("info %s\n", err.msg);
    moe_pack p;
    int op = wr ? -1 : moe_pack_open(&p, path, MOE_IO_DIRECT, &err);
    if (op && !wr) op = moe_pack_open(&p, path, MOE_IO_BUFFERED, &err); /* no O_DIRECT here */
    int bad = 0, pad_bad = 0;
    uint64_t eb = 0, st = 0, fs = 0;
    if (!op) {
        eb = p.expert_bytes, st = p.stride, fs = p.file_size;
        void *blk = moe_pack_alloc_block(&p);
        for (uint32_t l = 0; l < 3; l++)
            for (uint32_t e = 0; e < 5; e++) {
                bad += block_equals_model(&p, &s.m, l, e, blk) != 0;
                /* the padding after the payload is zero on disk */
                for (uint64_t i = p.expert_bytes; i < p.stride; i++) pad_bad += ((unsigned char *)blk)[i] != 0;
            }
        free(blk);
        moe_pack_close(&p);
    }
    synth_free(&s);
    CHECK(wr == 0 && op == 0);
    CHECK_EQ_U(eb, 840);
    CHECK_EQ_U(st, 4096);
    CHECK_EQ_U(fs, 4096 + 4096 + 15 * 4096);
    CHECK_EQ_U(bad, 0);
    CHECK_EQ_U(pad_bad, 0);
}

/* ---- identity ------------------------------------------------------------------ */

static void pack_check_model_accepts_its_model(void) {
    moe_error err = {{0}};
    moe_pack p;
    CHECK(moe_pack_open(&p, tiny_bf16, MOE_IO_BUFFERED, &err) == 0);
    int rc = moe_pack_check_model(&p, tiny, &err);
    moe_pack_close(&p);
    CHECK(rc == 0);
}

/* Same geometry, one non-expert weight changed: only the model id differs. */
static void pack_check_model_refuses_other_model_id(void) {
    moe_error err = {{0}};
    char path[128];
    tmp_path(path, sizeof path, "retrained.pack");
    float saved = tiny->final_norm[0];
    tiny->final_norm[0] += 0.5f;
    int wr = moe_pack_write(tiny, path, MOE_PACK_BF16, NULL, NULL, &err);
    tiny->final_norm[0] = saved;
    CHECK(wr == 0);
    moe_pack p;
    CHECK(moe_pack_open(&p, path, MOE_IO_BUFFERED, &err) == 0);
    int rc = moe_pack_check_model(&p, tiny, &err);
    moe_pack_close(&p);
    unlink(path);
    CHECK(rc == -1);
    CHECK_STR_CONTAINS(err.msg, path);
    CHECK_STR_CONTAINS(err.msg, "pack of another model (model id differs from tinymix)");
    CHECK_STR_CONTAINS(err.msg, "moesim model pack");
}

static void pack_check_model_refuses_other_geometry(void) {
    moe_error err = {{0}};
    moe_pack p;
    CHECK(moe_pack_open(&p, qwen_bf16, MOE_IO_BUFFERED, &err) == 0);
    int rc = moe_pack_check_model(&p, tiny, &err);
    moe_pack_close(&p);
    CHECK(rc == -1);
    CHECK_STR_CONTAINS(err.msg, qwen_bf16);
    CHECK_STR_CONTAINS(err.msg, "MoE layers 2 in the pack, 6 in tinymix");
}

/* ---- damage ----------------------------------------------------------------- */

static void pack_corrupt_block_is_reported(void) {
    char path[128];
    tmp_path(path, sizeof path, "corrupt.pack");
    CHECK(copy_file(qwen_bf16, path) == 0);
    moe_error err = {{0}};
    moe_pack p;
    CHECK(moe_pack_open(&p, qwen_bf16, MOE_IO_BUFFERED, &err) == 0);
    uint64_t off = p.index[1 * 8 + 3].offset + 5000;
    moe_pack_close(&p);
    xor_byte(path, off, 0x10);
    for (int mode = MOE_IO_DIRECT; mode <= MOE_IO_MMAP; mode++) {
        if (moe_pack_open(&p, path, mode, &err)) {
            CHECK(mode == MOE_IO_DIRECT);
            continue;
        }
        void *blk = moe_pack_alloc_block(&p);
        int bad = moe_pack_read(&p, 1, 3, blk, &err);
        moe_error e2 = {{0}};
        int others = moe_pack_read(&p, 1, 2, blk, &e2) || moe_pack_read(&p, 1, 4, blk, &e2) ||
                     moe_pack_read(&p, 0, 3, blk, &e2) || moe_pack_read(&p, 1, 7, blk, &e2);
        free(blk);
        moe_pack_close(&p);
        CHECK(bad == -1);
        CHECK_STR_CONTAINS(err.msg, path);
        CHECK_STR_CONTAINS(err.msg, "layer 1 expert 3: checksum mismatch");
        CHECK(others == 0);
    }
}

static void expect_open_error(const char *path, const char *what1, const char *what2) {
    moe_error err = {{0}};
    moe_pack p;
    int rc = moe_pack_open(&p, path, MOE_IO_BUFFERED, &err);
    if (!rc) moe_pack_close(&p);
    CHECK(rc == -1);
    CHECK(p.fd == -1 && !p.index && !p.map);
    CHECK(!strncmp(err.msg, path, strlen(path)));
    CHECK_STR_CONTAINS(err.msg, what1);
    if (what2) CHECK_STR_CONTAINS(err.msg, what2);
}

static void pack_truncated_is_reported(void) {
    char path[128], want[64], have[64];
    tmp_path(path, sizeof path, "short.pack");
    CHECK(copy_file(qwen_bf16, path) == 0);
    uint64_t full = file_size(path);
    CHECK(full > 8192);
    CHECK(truncate(path, (off_t)(full - 100)) == 0);
    snprintf(have, sizeof have, "%llu bytes", (unsigned long long)(full - 100));
    snprintf(want, sizeof want, "says %llu", (unsigned long long)full);
    expect_open_error(path, "truncated", have);
    expect_open_error(path, want, NULL);
    /* shorter than the header */
    CHECK(truncate(path, 1000) == 0);
    expect_open_error(path, "truncated or not an expert pack: 1000 bytes", NULL);
    /* a trailing byte too many */
    CHECK(copy_file(qwen_bf16, path) == 0);
    CHECK(truncate(path, (off_t)(full + 1)) == 0);
    expect_open_error(path, "trailing", NULL);
}

static void pack_bad_header_is_reported(void) {
    char path[128];
    tmp_path(path, sizeof path, "hdr.pack");
    CHECK(copy_file(qwen_bf16, path) == 0);
    xor_byte(path, 0, 0x01);
    expect_open_error(path, "not an expert pack (bad magic", NULL);
    CHECK(copy_file(qwen_bf16, path) == 0);
    unsigned char v2[4] = {2, 0, 0, 0};
    patch_file(path, 8, v2, 4);
    expect_open_error(path, "version 2", NULL);
    CHECK(copy_file(qwen_bf16, path) == 0);
    xor_byte(path, 20, 0x01); /* n_experts 8 -> 9 */
    expect_open_error(path, "header check value mismatch", NULL);
    CHECK(copy_file(qwen_bf16, path) == 0);
    xor_byte(path, 200, 0x01); /* a reserved byte */
    expect_open_error(path, "header check value mismatch", NULL);
    expect_open_error("/nonexistent/x.pack", "cannot open", "No such file");
}

/* Rewrite field `off` of the header and re-seal it (header_check), so the
 * opener's layout checks, not the check value, must catch the lie. */
static int forge_header(const char *path, uint64_t off, uint64_t value, int width) {
    unsigned char h[4096];
    if (read_bytes(path, 0, h, sizeof h)) return -1;
    if (width == 8) put_le64(h + off, value);
    else for (int i = 0; i < 4; i++) h[off + i] = (unsigned char)(value >> (8 * i));
    put_le64(h + 4088, moe_pack_check64(h, 4088));
    return patch_file(path, 0, h, sizeof h);
}

static void pack_forged_header_is_reported(void) {
    char path[128];
    tmp_path(path, sizeof path, "forged.pack");
    CHECK(copy_file(qwen_bf16, path) == 0);
    CHECK(forge_header(path, 40, 8192, 8) == 0); /* stride */
    expect_open_error(path, "stride 8192, expected 12288", NULL);
    CHECK(copy_file(qwen_bf16, path) == 0);
    CHECK(forge_header(path, 32, 12000, 8) == 0); /* expert_bytes */
    expect_open_error(path, "expert_bytes 12000, geometry implies 12288", NULL);
    CHECK(copy_file(qwen_bf16, path) == 0);
    CHECK(forge_header(path, 12, 1, 4) == 0); /* dtype f16: not a pack dtype */
    expect_open_error(path, "unknown dtype code 1", NULL);
    CHECK(copy_file(qwen_bf16, path) == 0);
    CHECK(forge_header(path, 20, 0, 4) == 0);
    expect_open_error(path, "geometry has a zero", NULL);
    /* huge geometry: refused by size, before anything is allocated for it */
    CHECK(copy_file(qwen_bf16, path) == 0);
    CHECK(forge_header(path, 16, 0xffffffffu, 4) == 0);
    CHECK(forge_header(path, 20, 0xffffffffu, 4) == 0);
    CHECK(forge_header(path, 24, 0xffffffffu, 4) == 0);
    expect_open_error(path, "overflows", NULL);
    CHECK(copy_file(qwen_bf16, path) == 0);
    CHECK(forge_header(path, 16, 1u << 20, 4) == 0); /* a million layers in a small file */
    expect_open_error(path, "data_offset", NULL);
    /* a quantized dtype: its block size is the geometry's, and hidden or
     * inter past 2^28 (int-sized matrix views) is refused by name */
    CHECK(copy_file(qwen_bf16, path) == 0);
    CHECK(forge_header(path, 12, MOE_PACK_Q4, 4) == 0);
    expect_open_error(path, "geometry implies", "q4");
    CHECK(copy_file(qwen_bf16, path) == 0);
    CHECK(forge_header(path, 12, MOE_PACK_Q2, 4) == 0);
    CHECK(forge_header(path, 24, 1u << 29, 4) == 0);
    expect_open_error(path, "too large for a quantized pack", NULL);
}

/* An index entry rewritten with its hash and the header re-sealed: the
 * entry's own consistency check must name the layer and expert. */
static void pack_forged_index_is_reported(void) {
    char path[128];
    tmp_path(path, sizeof path, "index.pack");
    CHECK(copy_file(qwen_bf16, path) == 0);
    unsigned char idx[512];
    CHECK(read_bytes(path, 4096, idx, sizeof idx) == 0);
    unsigned char *en = idx + (1 * 8 + 3) * 32;
    put_le64(en, le64(en) + 4096);
    CHECK(patch_file(path, 4096, idx, sizeof idx) == 0);
    expect_open_error(path, "index SHA-256 mismatch", NULL);
    unsigned char h[4096];
    CHECK(read_bytes(path, 0, h, sizeof h) == 0);
    moe_sha256 s;
    moe_sha256_init(&s);
    moe_sha256_update(&s, idx, 16 * 32);
    moe_sha256_final(&s, h + 104);
    put_le64(h + 4088, moe_pack_check64(h, 4088));
    CHECK(patch_file(path, 0, h, sizeof h) == 0);
    expect_open_error(path, "layer 1 expert 3", "offset");
}

/* ---- writing ------------------------------------------------------------------ */

/* A write that fails half-way (file size limit) leaves nothing behind. */
static void pack_failed_write_leaves_nothing(void) {
    char dir[128], path[160];
    tmp_path(dir, sizeof dir, "wfail");
    CHECK(mkdir(dir, 0755) == 0);
    snprintf(path, sizeof path, "%s/x.pack", dir);
    struct rlimit old, lim;
    CHECK(getrlimit(RLIMIT_FSIZE, &old) == 0);
    lim = old;
    lim.rlim_cur = 1 << 20;
    void (*prev)(int) = signal(SIGXFSZ, SIG_IGN); /* get EFBIG instead of the signal */
    CHECK(setrlimit(RLIMIT_FSIZE, &lim) == 0);
    moe_error err = {{0}};
    int rc = moe_pack_write(tiny, path, MOE_PACK_BF16, NULL, NULL, &err);
    setrlimit(RLIMIT_FSIZE, &old);
    signal(SIGXFSZ, prev);
    int left = dir_entries(dir);
    rmdir(dir);
    CHECK(rc == -1);
    CHECK_STR_CONTAINS(err.msg, path);
    CHECK_STR_CONTAINS(err.msg, "write failed");
    CHECK_EQ_U(left, 0);
    /* a directory that does not exist */
    snprintf(path, sizeof path, "%s/none/x.pack", tmpdir);
    CHECK(moe_pack_write(tiny, path, MOE_PACK_BF16, NULL, NULL, &err) == -1);
    CHECK_STR_CONTAINS(err.msg, path);
    CHECK(access(path, F_OK) != 0);
}

static int progress_calls, progress_last;
static void count_progress(void *ctx, uint32_t done, uint32_t layers) {
    progress_calls += ctx == &progress_calls && layers == 2;
    progress_last = (int)done;
}

static void pack_write_reports_progress_and_refuses_bad_input(void) {
    char path[128];
    tmp_path(path, sizeof path, "progress.pack");
    moe_error err = {{0}};
    progress_calls = progress_last = 0;
    CHECK(moe_pack_write(qwen, path, MOE_PACK_F32, count_progress, &progress_calls, &err) == 0);
    CHECK_EQ_U(progress_calls, 2);
    CHECK_EQ_U(progress_last, 2);
    /* a second write replaces the file atomically */
    CHECK(moe_pack_write(qwen, path, MOE_PACK_BF16, NULL, NULL, &err) == 0);
    moe_pack p;
    CHECK(moe_pack_open(&p, path, MOE_IO_BUFFERED, &err) == 0);
    uint32_t dt = p.dtype;
    moe_pack_close(&p);
    CHECK_EQ_U(dt, MOE_PACK_BF16);
    CHECK(moe_pack_write(qwen, path, 1, NULL, NULL, &err) == -1);
    CHECK_STR_CONTAINS(err.msg, "dtype");
    moe_model *noexp = moe_model_load_ex("tests/golden/qwen3_moe", MOE_LOAD_NO_EXPERTS, &err);
    CHECK(noexp);
    int rc = moe_pack_write(noexp, path, MOE_PACK_F32, NULL, NULL, &err);
    /* ...but its identity is the full model's, so check_model accepts it */
    CHECK(moe_pack_open(&p, qwen_f32, MOE_IO_BUFFERED, &err) == 0);
    moe_error e2 = {{0}};
    int same = moe_pack_check_model(&p, noexp, &e2);
    moe_pack_close(&p);
    moe_model_free(noexp);
    CHECK(rc == -1);
    CHECK_STR_CONTAINS(err.msg, "without its experts");
    CHECK(same == 0);
}

static void pack_read_out_of_range(void) {
    moe_error err = {{0}};
    moe_pack p;
    CHECK(moe_pack_open(&p, qwen_bf16, MOE_IO_BUFFERED, &err) == 0);
    void *blk = moe_pack_alloc_block(&p);
    int a = moe_pack_read(&p, 2, 0, blk, &err);
    int b = moe_pack_read(&p, 0, 8, blk, &err);
    free(blk);
    moe_pack_close(&p);
    CHECK(a == -1 && b == -1);
    CHECK_STR_CONTAINS(err.msg, "layer 0 expert 8 out of range");
}

/* ---- threads --------------------------------------------------------------------- */

typedef struct reader_arg {
    const moe_pack *p;
    int start, bad;
} reader_arg;

static void *reader(void *arg) {
    reader_arg *a = arg;
    void *blk = moe_pack_alloc_block(a->p);
    uint32_t n = a->p->n_layers * a->p->n_experts;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t k = (i * 7 + (uint32_t)a->start * 48) % n; /* threads visit in different orders */
        a->bad += block_equals_model(a->p, tiny, k / a->p->n_experts, k % a->p->n_experts, blk) != 0;
    }
    free(blk);
    return NULL;
}

static void pack_concurrent_reads(void) {
    for (int mode = MOE_IO_BUFFERED; mode <= MOE_IO_MMAP; mode++) {
        moe_error err = {{0}};
        moe_pack p;
        CHECK(moe_pack_open(&p, tiny_bf16, mode, &err) == 0);
        pthread_t th[4];
        reader_arg args[4];
        for (int i = 0; i < 4; i++) {
            args[i] = (reader_arg){.p = &p, .start = i};
            pthread_create(&th[i], NULL, reader, &args[i]);
        }
        int bad = 0;
        for (int i = 0; i < 4; i++) pthread_join(th[i], NULL), bad += args[i].bad;
        moe_pack_close(&p);
        CHECK_EQ_U(bad, 0);
    }
}

/* ---- check value, io modes ------------------------------------------------------ */

static void pack_check64_properties(void) {
    unsigned char buf[203], copy[203 + 8];
    for (size_t i = 0; i < sizeof buf; i++) buf[i] = (unsigned char)(i * 37 + 11);
    uint64_t h = moe_pack_check64(buf, sizeof buf);
    CHECK(h == moe_pack_check64(buf, sizeof buf));
    /* alignment does not matter */
    memcpy(copy + 3, buf, sizeof buf);
    CHECK(h == moe_pack_check64(copy + 3, sizeof buf));
    /* every single-bit flip, including in the 3-byte tail, changes the value */
    int same = 0;
    for (size_t i = 0; i < sizeof buf * 8; i++) {
        buf[i / 8] ^= (unsigned char)(1u << (i % 8));
        same += moe_pack_check64(buf, sizeof buf) == h;
        buf[i / 8] ^= (unsigned char)(1u << (i % 8));
    }
    CHECK_EQ_U(same, 0);
    /* the length counts: a trailing zero byte, and each prefix is distinct */
    unsigned char z[16] = {0};
    CHECK(moe_pack_check64(z, 7) != moe_pack_check64(z, 8));
    CHECK(moe_pack_check64(z, 0) != moe_pack_check64(z, 1));
    CHECK(moe_pack_check64(z, 1) != moe_pack_check64(z, 2)); /* same zero-padded tail word */
    CHECK(moe_pack_check64(z, 9) != moe_pack_check64(z, 10));
    uint64_t pre[64];
    for (int n = 0; n < 64; n++) pre[n] = moe_pack_check64(buf, (size_t)n);
    int dup = 0;
    for (int a = 0; a < 64; a++)
        for (int b = a + 1; b < 64; b++) dup += pre[a] == pre[b];
    CHECK_EQ_U(dup, 0);
    /* words swapped between lanes change it */
    unsigned char sw[64];
    memcpy(sw, buf, 64);
    memcpy(sw, buf + 8, 8), memcpy(sw + 8, buf, 8);
    CHECK(moe_pack_check64(sw, 64) != moe_pack_check64(buf, 64));
    /* one value pinned, so a change of the function (and of every pack
     * written with it) cannot go unnoticed */
    printf("info check64(\"\") = %016llx, check64(buf,203) = %016llx\n", (unsigned long long)moe_pack_check64("", 0),
           (unsigned long long)h);
    /* speed, informational */
    size_t n = 64 << 20;
    unsigned char *big = malloc(n);
    CHECK(big);
    memset(big, 0x5a, n);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    volatile uint64_t sink = moe_pack_check64(big, n);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    (void)sink;
    double s = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    printf("info check64: %.1f GB/s\n", (double)n / s / 1e9);
    free(big);
}

static void pack_io_mode_names(void) {
    moe_error err = {{0}};
    int m = -1;
    CHECK(moe_io_mode_parse("direct", &m, &err) == 0 && m == MOE_IO_DIRECT);
    CHECK(moe_io_mode_parse("buffered", &m, &err) == 0 && m == MOE_IO_BUFFERED);
    CHECK(moe_io_mode_parse("mmap", &m, &err) == 0 && m == MOE_IO_MMAP);
    CHECK(!strcmp(moe_io_mode_name(MOE_IO_DIRECT), "direct"));
    CHECK(!strcmp(moe_io_mode_name(MOE_IO_BUFFERED), "buffered"));
    CHECK(!strcmp(moe_io_mode_name(MOE_IO_MMAP), "mmap"));
    CHECK(moe_io_mode_parse("Direct", &m, &err) == -1);
    CHECK_STR_CONTAINS(err.msg, "'Direct'");
    CHECK_STR_CONTAINS(err.msg, "direct, buffered or mmap");
}

/* ---- main ------------------------------------------------------------------------- */

static int setup(void) {
    moe_error err = {{0}};
    snprintf(tmpdir, sizeof tmpdir, "%s/moesim_pack_XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(tmpdir)) return printf("FAIL pack_setup: mkdtemp: %s\n", strerror(errno)), -1;
    tiny = moe_model_load("models/tinymix", &err);
    qwen = tiny ? moe_model_load("tests/golden/qwen3_moe", &err) : NULL;
    if (!tiny || !qwen) return printf("FAIL pack_setup: %s\n", err.msg), -1;
    tmp_path(tiny_bf16, sizeof tiny_bf16, "tiny_bf16.pack");
    tmp_path(tiny_f32, sizeof tiny_f32, "tiny_f32.pack");
    tmp_path(qwen_bf16, sizeof qwen_bf16, "qwen_bf16.pack");
    tmp_path(qwen_f32, sizeof qwen_f32, "qwen_f32.pack");
    if (moe_pack_write(tiny, tiny_bf16, MOE_PACK_BF16, NULL, NULL, &err) ||
        moe_pack_write(tiny, tiny_f32, MOE_PACK_F32, NULL, NULL, &err) ||
        moe_pack_write(qwen, qwen_bf16, MOE_PACK_BF16, NULL, NULL, &err) ||
        moe_pack_write(qwen, qwen_f32, MOE_PACK_F32, NULL, NULL, &err))
        return printf("FAIL pack_setup: %s\n", err.msg), -1;
    return 0;
}

int main(void) {
    if (setup() == 0) {
        RUN(pack_header_tinymix_bf16);
        RUN(pack_header_tinymix_f32);
        RUN(pack_bytes_follow_the_format);
        RUN(pack_roundtrip_bf16_buffered);
        RUN(pack_roundtrip_bf16_direct);
        RUN(pack_roundtrip_bf16_mmap);
        RUN(pack_roundtrip_f32_buffered);
        RUN(pack_roundtrip_f32_direct);
        RUN(pack_roundtrip_f32_mmap);
        RUN(pack_quantized_blocks);
        RUN(pack_roundtrip_qwen3_f32);
        RUN(pack_bf16_rounding);
        RUN(pack_padding_and_dense_layers);
        RUN(pack_check_model_accepts_its_model);
        RUN(pack_check_model_refuses_other_model_id);
        RUN(pack_check_model_refuses_other_geometry);
        RUN(pack_corrupt_block_is_reported);
        RUN(pack_truncated_is_reported);
        RUN(pack_bad_header_is_reported);
        RUN(pack_forged_header_is_reported);
        RUN(pack_forged_index_is_reported);
        RUN(pack_failed_write_leaves_nothing);
        RUN(pack_write_reports_progress_and_refuses_bad_input);
        RUN(pack_read_out_of_range);
        RUN(pack_concurrent_reads);
    } else check_failed_cases++;
    RUN(pack_check64_properties);
    RUN(pack_io_mode_names);
    if (tiny) moe_model_free(tiny);
    if (qwen) moe_model_free(qwen);
    if (tmpdir[0]) {
        char cmd[128];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
        if (system(cmd)) printf("info could not remove %s\n", tmpdir);
    }
    CHECK_EXIT();
}

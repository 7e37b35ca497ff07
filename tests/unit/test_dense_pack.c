/* test_dense_pack.c: dense packs (backend/dense_pack.h) and loading a model
 * without its dense weights (MOE_LOAD_NO_DENSE).
 *
 * The shipped model (bf16) and the three golden models (f32: qwen3_moe with
 * per-head q/k norms, olmoe with whole-projection q/k norms, qwen2_moe with
 * q/k/v biases and a shared expert) are packed into a temporary directory;
 * every layer read back and bound must equal the resident model's tensors
 * byte for byte in every I/O mode; the identity computed while loading
 * without dense weights must equal the full model's; tinymix's layout is
 * checked against numbers worked out by hand from dense_pack.h; damage and
 * another model's pack are refused naming the file and the place. */
#include <sys/stat.h>
#include <unistd.h>

#include "../../backend/dense_pack.h"
#include "../../backend/pack.h"
#include "check.h"

static char tmpdir[64];
static const char *const models[] = {"models/tinymix", "tests/golden/qwen3_moe", "tests/golden/olmoe",
                                     "tests/golden/qwen2_moe"};
#define N_MODELS 4

static void tmp_path(char *out, size_t n, const char *name) { snprintf(out, n, "%s/%s", tmpdir, name); }

/* The packs written by dense_roundtrip, one per model. */
static char pack_of[N_MODELS][128];

static int xor_byte(const char *path, uint64_t off, unsigned char x) {
    FILE *f = fopen(path, "r+b");
    if (!f) return -1;
    int c = fseek(f, (long)off, SEEK_SET) ? EOF : fgetc(f);
    int rc = c == EOF || fseek(f, (long)off, SEEK_SET) || fputc(c ^ x, f) == EOF;
    return fclose(f) || rc ? -1 : 0;
}

static int same_vec(const float *a, const float *b, size_t n) {
    return (!a && !b) || (a && b && !memcmp(a, b, n * sizeof(float)));
}

static int same_mat(moe_mat a, moe_mat b, size_t n) {
    if (a.f16 != b.f16) return 0;
    if (a.f32 || b.f32) return a.f32 && b.f32 && !memcmp(a.f32, b.f32, n * sizeof(float));
    return a.h16 && b.h16 && !memcmp(a.h16, b.h16, n * sizeof(uint16_t));
}

static int same_mlp(const moe_mlp_w *a, const moe_mlp_w *b, size_t H) {
    if (a->inter != b->inter) return 0;
    size_t n = (size_t)a->inter * H;
    return !a->inter || (same_mat(moe_mlp_gate_up(a), moe_mlp_gate_up(b), 2 * n) &&
                         same_mat(moe_mlp_down(a), moe_mlp_down(b), n));
}

/* Layer l bound from the pack equals the resident one, tensor by tensor. */
static int layer_equals(const moe_model *full, const moe_layer_w *w, int l) {
    const moe_model_config *c = &full->cfg;
    const moe_layer_w *r = &full->layers[l];
    size_t H = (size_t)c->hidden, Q = (size_t)c->n_heads * c->head_dim, KV = (size_t)c->n_kv_heads * c->head_dim;
    size_t qn = c->qk_norm == MOE_QKNORM_HEAD ? (size_t)c->head_dim : Q, kn = c->qk_norm == MOE_QKNORM_HEAD ? (size_t)c->head_dim : KV;
    return same_vec(r->attn_norm, w->attn_norm, H) && same_vec(r->ffn_norm, w->ffn_norm, H) &&
           same_mat(r->wq, w->wq, Q * H) && same_mat(r->wk, w->wk, KV * H) && same_mat(r->wv, w->wv, KV * H) &&
           same_mat(r->wo, w->wo, H * Q) && same_vec(r->bq, w->bq, Q) && same_vec(r->bk, w->bk, KV) &&
           same_vec(r->bv, w->bv, KV) && same_vec(r->bo, w->bo, H) && same_vec(r->q_norm, w->q_norm, qn) &&
           same_vec(r->k_norm, w->k_norm, kn) && same_mlp(&r->shared, &w->shared, H) &&
           same_vec(r->shared_gate, w->shared_gate, H) && same_mat(r->router, w->router, (size_t)c->n_experts * H);
}

/* Write, reopen in every mode, read and bind every layer. */
static void dense_roundtrip(void) {
    for (int i = 0; i < N_MODELS; i++) {
        moe_error err = {{0}};
        char name[32];
        snprintf(name, sizeof name, "d%d.pack", i);
        tmp_path(pack_of[i], sizeof pack_of[i], name);
        moe_model *full = moe_model_load_ex(models[i], MOE_LOAD_NO_EXPERTS, &err);
        moe_model *streamed = moe_model_load_ex(models[i], MOE_LOAD_NO_EXPERTS | MOE_LOAD_NO_DENSE, &err);
        if (!full || !streamed) printf("info %s: %s\n", models[i], err.msg);
        CHECK(full && streamed);
        CHECK(streamed->dense_streamed && !full->dense_streamed);
        CHECK(!streamed->layers[0].wq.h16 && !streamed->layers[0].wq.f32 && !streamed->layers[0].attn_norm);
        uint8_t a[32], b[32];
        moe_model_identity(full, a);
        moe_model_identity(streamed, b);
        CHECK(!memcmp(a, b, 32)); /* computed while loading, one layer at a time */
        CHECK(full->n_params == streamed->n_params);
        CHECK(moe_dense_pack_write(full, pack_of[i], &err) == 0);
        for (int mode = MOE_IO_DIRECT; mode <= MOE_IO_MMAP; mode++) {
            moe_dense_pack p;
            if (moe_dense_pack_open(&p, pack_of[i], mode, &err)) {
                CHECK(mode == MOE_IO_DIRECT); /* a file system without O_DIRECT (tmpfs) says so */
                CHECK(strstr(err.msg, "O_DIRECT"));
                continue;
            }
            CHECK(moe_dense_pack_check_model(&p, streamed, &err) == 0);
            void *raw = aligned_alloc(MOE_PACK_ALIGN, p.stride);
            int ok = raw != NULL;
            for (uint32_t l = 0; ok && l < p.n_layers; l++) {
                moe_layer_w w;
                ok = moe_dense_pack_read(&p, l, raw, &err) == 0;
                if (!ok) printf("info read: %s\n", err.msg);
                moe_dense_pack_bind(&p, raw, &streamed->layers[l], &w);
                ok = ok && layer_equals(full, &w, (int)l) && w.experts == streamed->layers[l].experts;
                if (!ok) printf("info %s layer %u differs (%s)\n", models[i], l, moe_io_mode_name(mode));
            }
            free(raw);
            moe_dense_pack_close(&p);
            CHECK(ok);
        }
        moe_model_free(full);
        moe_model_free(streamed);
    }
}

/* tinymix (dense_pack.h by hand): norms 2 x 128 f32 = 512 B each, q and o
 * 128 x 128 bf16 = 32768, k and v 64 x 128 = 16384: offsets 0, 512, 1024,
 * 33792, 50176, 66560, block 99328, stride 102400 (25 x 4096); the index of
 * 6 x 8 bytes pads to 4096, so data_offset 8192 and file_size 8192 + 6 x
 * 102400 = 622592. */
static void dense_layout_tinymix(void) {
    moe_error err = {{0}};
    moe_dense_pack p;
    CHECK(moe_dense_pack_open(&p, pack_of[0], MOE_IO_BUFFERED, &err) == 0);
    static const uint64_t off[6] = {0, 512, 1024, 33792, 50176, 66560};
    static const uint32_t kind[6] = {MOE_DENSE_ATTN_NORM, MOE_DENSE_FFN_NORM, MOE_DENSE_WQ, MOE_DENSE_WK, MOE_DENSE_WV,
                                     MOE_DENSE_WO};
    int ok = p.n_layers == 6 && p.n_tensors == 6 && p.block_bytes == 99328 && p.stride == 102400 &&
             p.data_offset == 8192 && p.file_size == 622592;
    for (int i = 0; i < 6 && ok; i++) ok = p.table[i].offset == off[i] && p.table[i].kind == kind[i];
    ok = ok && p.table[2].dtype == 2 && p.table[0].dtype == 0 && p.table[3].rows == 64 && p.table[3].cols == 128;
    moe_dense_pack_close(&p);
    CHECK(ok);
    struct stat st;
    CHECK(stat(pack_of[0], &st) == 0 && st.st_size == 622592);
}

static void expect_open_error(const char *path, const char *what) {
    moe_error err = {{0}};
    moe_dense_pack p;
    int rc = moe_dense_pack_open(&p, path, MOE_IO_BUFFERED, &err);
    if (!rc) moe_dense_pack_close(&p);
    CHECK(rc == -1);
    CHECK(p.fd == -1 && !p.check);
    CHECK_STR_CONTAINS(err.msg, path);
    CHECK_STR_CONTAINS(err.msg, what);
}

static void dense_damage_is_reported(void) {
    char path[128], cmd[400];
    tmp_path(path, sizeof path, "bad.pack");
    /* a flipped byte in layer 2's tensors: that layer fails, the others read */
    snprintf(cmd, sizeof cmd, "cp '%s' '%s'", pack_of[0], path);
    CHECK(system(cmd) == 0);
    CHECK(xor_byte(path, 8192 + 2 * 102400 + 40000, 0x01) == 0);
    moe_error err = {{0}};
    moe_dense_pack p;
    CHECK(moe_dense_pack_open(&p, path, MOE_IO_BUFFERED, &err) == 0);
    void *raw = aligned_alloc(MOE_PACK_ALIGN, p.stride);
    int bad = moe_dense_pack_read(&p, 2, raw, &err), others = 0;
    moe_error e2 = {{0}};
    for (uint32_t l = 0; l < 6; l++)
        if (l != 2) others |= moe_dense_pack_read(&p, l, raw, &e2);
    int range = moe_dense_pack_read(&p, 6, raw, &e2);
    free(raw);
    moe_dense_pack_close(&p);
    CHECK(bad == -1 && !others && range == -1);
    CHECK_STR_CONTAINS(err.msg, "layer 2: checksum mismatch");
    CHECK_STR_CONTAINS(e2.msg, "layer 6 out of range");
    /* header, truncation, the index */
    CHECK(system(cmd) == 0);
    CHECK(xor_byte(path, 24, 0x40) == 0);
    expect_open_error(path, "header check value mismatch");
    CHECK(system(cmd) == 0);
    CHECK(truncate(path, 622592 - 4096) == 0);
    expect_open_error(path, "truncated: 618496 bytes, the header says 622592");
    CHECK(system(cmd) == 0);
    CHECK(xor_byte(path, 4096 + 9, 0x02) == 0);
    expect_open_error(path, "index check value mismatch");
    CHECK(system(cmd) == 0);
    CHECK(xor_byte(path, 0, 0x02) == 0);
    expect_open_error(path, "not a dense pack");
    expect_open_error(models[0], "not a regular file"); /* a directory */
    unlink(path);
}

static void dense_other_model_is_refused(void) {
    moe_error err = {{0}};
    moe_model *tiny = moe_model_load_ex(models[0], MOE_LOAD_NO_EXPERTS | MOE_LOAD_NO_DENSE, &err);
    moe_model *olmoe = moe_model_load_ex(models[2], MOE_LOAD_NO_EXPERTS | MOE_LOAD_NO_DENSE, &err);
    CHECK(tiny && olmoe);
    moe_dense_pack p;
    CHECK(moe_dense_pack_open(&p, pack_of[1], MOE_IO_BUFFERED, &err) == 0); /* qwen3_moe's */
    int rc = moe_dense_pack_check_model(&p, tiny, &err);
    moe_dense_pack_close(&p);
    CHECK(rc == -1);
    CHECK_STR_CONTAINS(err.msg, "dense pack of another model: 2 layers in the pack, 6 in tinymix");
    /* the same geometry (2 layers, hidden 64) but other weights and q/k norms */
    CHECK(moe_dense_pack_open(&p, pack_of[1], MOE_IO_BUFFERED, &err) == 0);
    rc = moe_dense_pack_check_model(&p, olmoe, &err);
    moe_dense_pack_close(&p);
    CHECK(rc == -1);
    CHECK_STR_CONTAINS(err.msg, pack_of[1]);
    /* a model loaded without dense weights cannot be packed */
    char path[128];
    tmp_path(path, sizeof path, "none.pack");
    CHECK(moe_dense_pack_write(tiny, path, &err) == -1);
    CHECK_STR_CONTAINS(err.msg, "loaded without its dense weights");
    CHECK(access(path, F_OK) == -1);
    moe_model_free(tiny);
    moe_model_free(olmoe);
}

/* Without dense weights but with experts: every expert's weights stay, equal
 * to the full model's (only the dense allocations are freed). */
static void no_dense_keeps_experts(void) {
    moe_error err = {{0}};
    for (int i = 0; i < N_MODELS; i++) {
        moe_model *full = moe_model_load(models[i], &err), *nd = moe_model_load_ex(models[i], MOE_LOAD_NO_DENSE, &err);
        CHECK(full && nd && nd->experts_loaded && nd->dense_streamed);
        size_t H = (size_t)full->cfg.hidden;
        int ok = 1;
        for (int l = 0; l < full->cfg.n_layers && ok; l++)
            for (int e = 0; e < full->cfg.n_experts && ok; e++)
                ok = same_mlp(&full->layers[l].experts[e], &nd->layers[l].experts[e], H) &&
                     same_mat(full->layers[l].router, nd->layers[l].router, (size_t)full->cfg.n_experts * H);
        if (!ok) printf("info %s: an expert or router differs\n", models[i]);
        moe_model_free(full);
        moe_model_free(nd);
        CHECK(ok);
    }
}

int main(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/moesim_test_dense_XXXXXX");
    if (!mkdtemp(tmpdir)) return 1;
    RUN(dense_roundtrip);
    RUN(dense_layout_tinymix);
    RUN(dense_damage_is_reported);
    RUN(dense_other_model_is_refused);
    RUN(no_dense_keeps_experts);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd)) printf("info: could not remove %s\n", tmpdir);
    CHECK_EXIT();
}

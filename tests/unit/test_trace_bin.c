/* test_trace_bin.c: the binary .moetrace format: exact round trips,
 * corruption (truncation, byte flips, structurally bad headers with a valid
 * checksum) always rejected or validated without a crash, atomic saves,
 * generator determinism. */
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../../core/trace_formats.h"
#include "../../core/trace_gen.h"
#include "check.h"
#include "trace_cmp.h"
#include "tracemaker.h"

static char path_buf[256];
static const char *tpath(const char *name) {
    snprintf(path_buf, sizeof path_buf, "%s/%s", test_tmpdir(), name);
    return path_buf;
}

static moe_trace *gen(uint64_t steps, uint32_t lookahead, int weights, uint64_t seed) {
    moe_gen_params p;
    moe_gen_defaults(&p);
    p.steps = steps, p.layers = 4, p.experts = 16, p.top_k = 3, p.lookahead = lookahead;
    p.with_weights = weights, p.seed = seed, p.seq_len = 20, p.prefill = 5;
    moe_error err;
    moe_trace *t = moe_trace_generate(&p, &err);
    if (!t) printf("generate: %s\n", err.msg);
    return t;
}

static void roundtrip_exact(void) {
    moe_trace *t = gen(200, 2, 1, 7);
    CHECK(t);
    t->n_shared = 2;
    t->expert_bytes[MOE_PREC_Q4] = 123456789;
    moe_error err;
    const char *p = tpath("rt.moetrace");
    CHECK(moe_trace_save(t, p, &err) == 0);
    moe_trace *u = moe_trace_load(p, &err);
    CHECK(u);
    CHECK(u->map != NULL);
    CHECK_EQ_U(trace_diff(t, u, 1), 0);
    moe_trace_free(t);
    moe_trace_free(u);
}

static void roundtrip_no_weights_and_gaps(void) {
    /* absent slots and an empty layer for a token */
    moe_trace *t = make_trace(3, 6, 2, "0,1|2|3,4 ; 5|| / s2: 1,0|0|0");
    CHECK(t);
    moe_error err;
    const char *p = tpath("gaps.moetrace");
    CHECK(moe_trace_save(t, p, &err) == 0);
    moe_trace *u = moe_trace_load(p, &err);
    CHECK(u);
    CHECK_EQ_U(trace_diff(t, u, 1), 0);
    moe_trace_free(u);
    moe_trace_free(t);
    t = gen(50, 0, 0, 3);
    CHECK(t && !t->weights);
    CHECK(moe_trace_save(t, p, &err) == 0);
    u = moe_trace_load(p, &err);
    CHECK(u && !u->weights);
    CHECK_EQ_U(trace_diff(t, u, 1), 0);
    moe_trace_free(u);
    moe_trace_free(t);
}

/* Every truncation length must be rejected with the file name in the message. */
static void truncations_rejected(void) {
    moe_trace *t = gen(30, 1, 1, 11);
    CHECK(t);
    moe_error err;
    const char *p = tpath("full.moetrace");
    CHECK(moe_trace_save(t, p, &err) == 0);
    moe_trace_free(t);
    size_t n;
    char *buf = slurp(p, &n);
    CHECK(buf);
    char cut[256];
    snprintf(cut, sizeof cut, "%s/cut.moetrace", test_tmpdir());
    int bad = 0;
    for (size_t len = 0; len < n; len += (len < 600 ? 1 : 97)) {
        spit(cut, buf, len);
        moe_trace *u = moe_trace_load(cut, &err);
        if (u) { moe_trace_free(u); bad = 1; printf("truncation to %zu accepted\n", len); break; }
        if (!strstr(err.msg, "cut.moetrace")) { bad = 1; printf("message without file: %s\n", err.msg); break; }
    }
    free(buf);
    CHECK(!bad);
}

/* Single byte flips anywhere: the checksum (or magic/version/length checks)
 * must reject every one. */
static void byte_flips_rejected(void) {
    moe_trace *t = gen(30, 1, 1, 12);
    CHECK(t);
    moe_error err;
    const char *p = tpath("flip.moetrace");
    CHECK(moe_trace_save(t, p, &err) == 0);
    moe_trace_free(t);
    size_t n;
    char *buf = slurp(p, &n);
    CHECK(buf);
    srand(5);
    int bad = 0;
    for (int i = 0; i < 400 && !bad; i++) {
        size_t at = i < 416 ? (size_t)i : (size_t)rand() % n;
        unsigned char bit = (unsigned char)(1u << (rand() % 8));
        buf[at] ^= (char)bit;
        spit(p, buf, n);
        moe_trace *u = moe_trace_load(p, &err);
        if (u) { moe_trace_free(u); bad = 1; printf("flip at %zu accepted\n", at); }
        else if (!strstr(err.msg, "flip.moetrace")) { bad = 1; printf("message without file: %s\n", err.msg); }
        buf[at] ^= (char)bit;
    }
    free(buf);
    CHECK(!bad);
}

/* Rewrite the checksum so that corrupted headers reach the bounds checks. */
static void fix_checksum(unsigned char *buf, size_t n) {
    moe_hash64 h;
    moe_hash64_init(&h);
    moe_hash64_update(&h, buf + 24, n - 24);
    uint64_t s = moe_hash64_final(&h);
    for (int i = 0; i < 8; i++) buf[16 + i] = (unsigned char)(s >> (8 * i));
}

/* Random header and data corruption with a valid checksum: every load either
 * fails with a message naming the file or yields a trace that validates.
 * Run under SAN=1 this is the bounds-check fuzz. */
static void structural_fuzz(void) {
    moe_trace *t = gen(25, 2, 1, 13);
    CHECK(t);
    moe_error err;
    const char *p = tpath("fuzz.moetrace");
    CHECK(moe_trace_save(t, p, &err) == 0);
    moe_trace_free(t);
    size_t n;
    unsigned char *orig = (unsigned char *)slurp(p, &n), *buf = malloc(n);
    CHECK(orig && buf);
    srand(17);
    int bad = 0, accepted = 0;
    static const uint64_t nasty[] = {0, 1, 7, 8, 0xFFFFFFFFull, 0xFFFFFFFFFFFFFFFFull, 0x8000000000000000ull, 416, 1u << 20};
    for (int i = 0; i < 3000 && !bad; i++) {
        memcpy(buf, orig, n);
        int edits = 1 + rand() % 3;
        for (int e = 0; e < edits; e++) {
            if (rand() % 4) { /* a header field: 4- or 8-byte value */
                size_t at = 32 + (size_t)(rand() % (416 - 40)) / 4 * 4;
                uint64_t v = rand() % 2 ? nasty[rand() % 9] : (uint64_t)rand();
                size_t w = rand() % 2 ? 4 : 8;
                for (size_t k = 0; k < w; k++) buf[at + k] = (unsigned char)(v >> (8 * k));
            } else { /* anywhere */
                buf[(size_t)rand() % n] ^= (unsigned char)(1 + rand() % 255);
            }
        }
        fix_checksum(buf, n);
        spit(p, buf, n);
        moe_trace *u = moe_trace_load(p, &err);
        if (u) {
            accepted++;
            if (moe_trace_validate(u, &err)) { bad = 1; printf("accepted an invalid trace: %s\n", err.msg); }
            moe_trace_free(u);
        } else if (!strstr(err.msg, "fuzz.moetrace")) {
            bad = 1;
            printf("message without file: %s\n", err.msg);
        }
    }
    free(orig), free(buf);
    CHECK(!bad);
    CHECK(accepted < 3000); /* most corruptions are caught */
}

static void save_unwritable_path(void) {
    moe_trace *t = make_trace(1, 4, 1, "0/1");
    CHECK(t);
    moe_error err;
    CHECK(moe_trace_save(t, "/nonexistent-dir/x.moetrace", &err) != 0);
    CHECK_STR_CONTAINS(err.msg, "/nonexistent-dir/x.moetrace");
    /* a device is never replaced by a file */
    CHECK(moe_trace_save_csv(t, "/dev/null", &err) != 0);
    CHECK_STR_CONTAINS(err.msg, "not a regular file");
    moe_trace_free(t);
}

/* A write that runs out of space (simulated with RLIMIT_FSIZE in a child)
 * fails with a message naming the file and leaves nothing under the name. */
static void save_full_disk(void) {
    moe_trace *t = gen(400, 0, 1, 5);
    CHECK(t);
    char p[256];
    snprintf(p, sizeof p, "%s/diskfull.moetrace", test_tmpdir());
    fflush(stdout);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        signal(SIGXFSZ, SIG_IGN);
        struct rlimit rl = {4096, 4096};
        setrlimit(RLIMIT_FSIZE, &rl);
        moe_error err;
        int ok = moe_trace_save(t, p, &err) != 0 && strstr(err.msg, "diskfull.moetrace") != NULL;
        int ok2 = moe_trace_save_csv(t, p, &err) != 0 && strstr(err.msg, "diskfull.moetrace") != NULL;
        _exit(ok && ok2 ? 0 : 1);
    }
    int st;
    waitpid(pid, &st, 0);
    moe_trace_free(t);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    CHECK(access(p, F_OK) != 0);
    char cmd[512];
    snprintf(cmd, sizeof cmd, "ls %s | grep -q tmp", test_tmpdir());
    CHECK(system(cmd) != 0);
}

/* No temp file is left behind and the target is replaced atomically. */
static void save_replaces_atomically(void) {
    moe_trace *a = make_trace(1, 4, 1, "0/1"), *b = make_trace(1, 4, 1, "2/3/0");
    CHECK(a && b);
    moe_error err;
    const char *p = tpath("atomic.moetrace");
    CHECK(moe_trace_save(a, p, &err) == 0);
    CHECK(moe_trace_save(b, p, &err) == 0);
    moe_trace *u = moe_trace_load(p, &err);
    CHECK(u);
    CHECK_EQ_U(u->n_steps, 3);
    char cmd[512];
    snprintf(cmd, sizeof cmd, "ls %s | grep -q tmp", test_tmpdir());
    CHECK(system(cmd) != 0); /* grep found no temp file */
    moe_trace_free(u), moe_trace_free(a), moe_trace_free(b);
}

static uint64_t file_hash(const char *p) {
    size_t n;
    char *b = slurp(p, &n);
    if (!b) return 0;
    moe_hash64 h;
    moe_hash64_init(&h);
    moe_hash64_update(&h, b, n);
    free(b);
    return moe_hash64_final(&h);
}

static void generator_deterministic(void) {
    moe_error err;
    moe_trace *a = gen(300, 2, 1, 42), *b = gen(300, 2, 1, 42), *c = gen(300, 2, 1, 43);
    CHECK(a && b && c);
    char pa[256], pb[256], pc[256];
    snprintf(pa, sizeof pa, "%s/ga.moetrace", test_tmpdir());
    snprintf(pb, sizeof pb, "%s/gb.moetrace", test_tmpdir());
    snprintf(pc, sizeof pc, "%s/gc.moetrace", test_tmpdir());
    CHECK(!moe_trace_save(a, pa, &err) && !moe_trace_save(b, pb, &err) && !moe_trace_save(c, pc, &err));
    CHECK(file_hash(pa) != 0);
    CHECK_EQ_U(file_hash(pa), file_hash(pb));
    CHECK(file_hash(pa) != file_hash(pc));
    moe_trace_free(a), moe_trace_free(b), moe_trace_free(c);
}

/* The generator's knobs do what they say on simple measures. */
static void generator_shape(void) {
    moe_gen_params p;
    moe_gen_defaults(&p);
    p.steps = 3000, p.layers = 2, p.experts = 16, p.top_k = 2, p.locality = 0, p.cross_layer = 0, p.topic_every = 0;
    p.seq_len = 100000, p.prefill = 1, p.zipf_s = 1.5;
    moe_error err;
    moe_trace *t = moe_trace_generate(&p, &err);
    CHECK(t);
    /* Zipf 1.5 over 16 experts, one topic: the top expert of layer 0 is
     * chosen in far more than 2/16 of the slots */
    uint64_t cnt[16] = {0}, maxc = 0;
    for (uint64_t tok = 0; tok < t->n_tokens; tok++) cnt[t->experts[moe_trace_rec(t, tok, 0)]]++;
    for (int e = 0; e < 16; e++) maxc = cnt[e] > maxc ? cnt[e] : maxc;
    CHECK(maxc > t->n_tokens / 3);
    /* weights sorted descending and summing to 1 */
    for (uint64_t i = 0; i < t->n_tokens * 2; i++) {
        CHECK(t->weights[2 * i] >= t->weights[2 * i + 1]);
        CHECK_NEAR(t->weights[2 * i] + t->weights[2 * i + 1], 1.0, 1e-5);
    }
    moe_trace_free(t);
    /* full locality: every decode token repeats the previous token's set */
    p.locality = 1.0, p.top_k = 1;
    t = moe_trace_generate(&p, &err);
    CHECK(t);
    for (uint64_t tok = 1; tok < t->n_tokens; tok++) CHECK_EQ_U(t->experts[tok * 2], t->experts[0]);
    moe_trace_free(t);
    /* lookahead with accuracy 1 equals the true future experts */
    p.locality = 0.3, p.top_k = 2, p.layers = 5, p.lookahead = 2, p.lookahead_acc = 1.0, p.steps = 100;
    t = moe_trace_generate(&p, &err);
    CHECK(t);
    for (uint64_t tok = 0; tok < t->n_tokens; tok++)
        for (uint32_t l = 0; l < 5; l++)
            for (uint32_t d = 1; d <= 2; d++)
                for (uint32_t s = 0; s < 2; s++) {
                    uint16_t la = t->lookahead[((tok * 5 + l) * 2 + (d - 1)) * 2 + s];
                    CHECK_EQ_U(la, l + d < 5 ? t->experts[moe_trace_rec(t, tok, l + d) + s] : MOE_NO_EXPERT);
                }
    moe_trace_free(t);
}

static void bad_magic_and_unknown_ext(void) {
    moe_error err;
    char p[256];
    snprintf(p, sizeof p, "%s/junk.moetrace", test_tmpdir());
    char junk[1000];
    memset(junk, 'x', sizeof junk);
    spit(p, junk, sizeof junk);
    CHECK(moe_trace_load(p, &err) == NULL);
    CHECK_STR_CONTAINS(err.msg, "junk.moetrace");
    CHECK_STR_CONTAINS(err.msg, "magic");
    snprintf(p, sizeof p, "%s/junk.bin", test_tmpdir());
    spit(p, junk, sizeof junk);
    CHECK(moe_trace_load(p, &err) == NULL);
    CHECK_STR_CONTAINS(err.msg, "unknown trace format");
}

/* Key sequences (version 2): a round trip through moe_trace_save keeps every
 * key, a key count above 65534 loads, and with a valid checksum a key out of
 * range, routing flags in version 2 and a keys flag in version 1 are each
 * refused at their place. */
static void keys_version2(void) {
    moe_error err;
    uint32_t n = 1000, *keys = malloc(n * sizeof *keys);
    CHECK(keys);
    for (uint32_t i = 0; i < n; i++) keys[i] = (i * 7919u) % 70000u; /* 1000 distinct keys below 70000 */
    moe_trace *t = moe_trace_from_keys(keys, n, 70000, "test", "keyspace=1\n", &err);
    CHECK(t);
    const char *p = tpath("k.moetrace");
    CHECK(moe_trace_save(t, p, &err) == 0);
    moe_trace *u = moe_trace_load_ex(p, MOE_LOAD_KEYS, &err);
    if (!u) printf("%s\n", err.msg);
    CHECK(u);
    CHECK_EQ_U(trace_diff(t, u, 1), 0);
    CHECK_EQ_U(u->n_experts, 70000);
    moe_trace_free(u);
    size_t len;
    unsigned char *b = (unsigned char *)slurp(p, &len);
    CHECK(b);
    CHECK_EQ_U(len, 432 + 16 + 4000); /* header, meta padded to 16, keys */
    CHECK_EQ_U(b[8], 2);
    /* key 999 set to 70000 (= the key count): out of range */
    unsigned char *c = malloc(len);
    memcpy(c, b, len);
    uint32_t bad = 70000;
    memcpy(c + len - 4, &bad, 4);
    fix_checksum(c, len);
    CHECK(spit(p, (char *)c, len) == 0);
    CHECK(moe_trace_load_ex(p, MOE_LOAD_KEYS, &err) == NULL);
    CHECK_STR_CONTAINS(err.msg, "k.moetrace: request 999: key 70000 >= keys (70000)");
    /* version 2 with the weights flag added */
    memcpy(c, b, len);
    c[180] |= 1;
    fix_checksum(c, len);
    CHECK(spit(p, (char *)c, len) == 0);
    CHECK(moe_trace_load_ex(p, MOE_LOAD_KEYS, &err) == NULL);
    CHECK_STR_CONTAINS(err.msg, "offset 180: version 2 holds key sequences only");
    /* the keys flag in a version 1 header */
    memcpy(c, b, len);
    c[8] = 1;
    c[12] = 0xa0, c[13] = 0x01; /* header size 416 */
    fix_checksum(c, len);
    CHECK(spit(p, (char *)c, len) == 0);
    CHECK(moe_trace_load_ex(p, MOE_LOAD_KEYS, &err) == NULL);
    CHECK_STR_CONTAINS(err.msg, "offset 180: unknown flags 0x8");
    free(c), free(b);
    moe_trace_free(t);
}

int main(void) {
    RUN(roundtrip_exact);
    RUN(roundtrip_no_weights_and_gaps);
    RUN(truncations_rejected);
    RUN(byte_flips_rejected);
    RUN(structural_fuzz);
    RUN(save_unwritable_path);
    RUN(save_full_disk);
    RUN(save_replaces_atomically);
    RUN(generator_deterministic);
    RUN(generator_shape);
    RUN(bad_magic_and_unknown_ext);
    RUN(keys_version2);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", test_tmpdir());
    if (system(cmd)) { /* leftover temp dir only */ }
    CHECK_EXIT();
}

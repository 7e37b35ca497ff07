/* test_results.c: SHA-256 vectors, trace hashing, the SQLite results store
 * (store, exists, idempotence, atomicity, errors naming the path) and merge. */
#include <sqlite3.h>
#include <unistd.h>

#include "../../core/results.h"
#include "../../core/sha256.h"
#include "../../sim/runrec.h"
#include "check.h"
#include "tracemaker.h"

static char tmpdir[256];

static const char *tmp(const char *name) {
    static char buf[4][512];
    static int i;
    i = (i + 1) % 4;
    snprintf(buf[i], sizeof buf[i], "%s/%s", tmpdir, name);
    return buf[i];
}

/* Run one query returning a single integer (or -1). */
static long long q_int(const char *path, const char *sql) {
    sqlite3 *h;
    sqlite3_stmt *st;
    long long v = -1;
    if (sqlite3_open_v2(path, &h, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) return -1;
    if (sqlite3_prepare_v2(h, sql, -1, &st, NULL) == SQLITE_OK) {
        if (sqlite3_step(st) == SQLITE_ROW) v = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
    }
    sqlite3_close(h);
    return v;
}

static double q_double(const char *path, const char *sql) {
    sqlite3 *h;
    sqlite3_stmt *st;
    double v = -1;
    if (sqlite3_open_v2(path, &h, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) return -1;
    if (sqlite3_prepare_v2(h, sql, -1, &st, NULL) == SQLITE_OK) {
        if (sqlite3_step(st) == SQLITE_ROW) v = sqlite3_column_double(st, 0);
        sqlite3_finalize(st);
    }
    sqlite3_close(h);
    return v;
}

/* FIPS 180-2 appendix B vectors plus the empty string. */
static void sha256_vectors(void) {
    char hex[65];
    moe_sha256_buf_hex("abc", 3, hex);
    CHECK(!strcmp(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));
    moe_sha256_buf_hex("", 0, hex);
    CHECK(!strcmp(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"));
    const char *two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    moe_sha256_buf_hex(two, strlen(two), hex);
    CHECK(!strcmp(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"));
    /* One million 'a', fed in odd-sized pieces to exercise buffering. */
    moe_sha256 s;
    uint8_t d[32];
    char chunk[997];
    memset(chunk, 'a', sizeof chunk);
    moe_sha256_init(&s);
    size_t left = 1000000;
    while (left) {
        size_t n = left < sizeof chunk ? left : sizeof chunk;
        moe_sha256_update(&s, chunk, n);
        left -= n;
    }
    moe_sha256_final(&s, d);
    moe_sha256_hex(d, hex);
    CHECK(!strcmp(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"));
}

static void trace_hash_is_content(void) {
    moe_trace *a = make_trace(2, 4, 1, "0|1 / 2|3");
    moe_trace *b = make_trace(2, 4, 1, "0|1 / 2|3");
    moe_trace *c = make_trace(2, 4, 1, "0|1 / 2|2");
    CHECK(a && b && c);
    char ha[65], hb[65], hc[65];
    moe_trace_hash(a, ha);
    moe_trace_hash(b, hb);
    moe_trace_hash(c, hc);
    CHECK(strlen(ha) == 64);
    CHECK(!strcmp(ha, hb));
    CHECK(strcmp(ha, hc) != 0);
    moe_trace_free(a);
    moe_trace_free(b);
    moe_trace_free(c);
}

static int store_lru(moe_db *db, moe_trace *t, const char *hash, uint32_t cap, moe_error *err) {
    moe_replay_config cfg = {.policy = "lru", .capacity = cap, .seed = 1};
    moe_replay_result r;
    if (moe_replay(t, &cfg, &r, err)) return -1;
    int rc = moe_run_store(db, "unit", hash, &cfg, &r, err);
    moe_replay_result_free(&r);
    return rc;
}

static void store_exists_idempotent(void) {
    const char *path = tmp("a.db");
    unlink(path);
    moe_error err = {{0}};
    moe_trace *t = make_trace(1, 4, 1, "0/1/0/2/1/0");
    CHECK(t);
    moe_db *db = moe_db_open(path, &err);
    CHECK(db);
    char hash[65], again[65];
    CHECK(moe_db_add_trace(db, t, "x.moetrace", hash, &err) == 0);
    CHECK(moe_db_add_trace(db, t, "elsewhere.csv", again, &err) == 0);
    CHECK(!strcmp(hash, again));
    moe_replay_config cfg = {.policy = "lru", .capacity = 2, .seed = 1};
    char text[512];
    CHECK(moe_run_config_text(&cfg, "lru", text, sizeof text) == 0);
    CHECK(moe_db_run_exists(db, hash, text, &err) == 0);
    CHECK(store_lru(db, t, hash, 2, &err) == 0);
    CHECK(moe_db_run_exists(db, hash, text, &err) == 1);
    CHECK(store_lru(db, t, hash, 2, &err) == 0); /* replaces, never duplicates */
    CHECK(store_lru(db, t, hash, 1, &err) == 0);
    CHECK(moe_db_close(db, &err) == 0);
    CHECK_EQ_U(q_int(path, "SELECT count(*) FROM traces"), 1);
    CHECK_EQ_U(q_int(path, "SELECT count(*) FROM runs"), 2);
    CHECK_EQ_U(q_int(path, "SELECT count(*) FROM runs WHERE status = 'done'"), 2);
    /* 0 1 0 2 1 0 at capacity 2: 1 hit of 6. */
    CHECK_NEAR(q_double(path, "SELECT hit_rate FROM run_summary WHERE capacity = 2"), 1.0 / 6, 1e-12);
    CHECK_EQ_U(q_int(path, "SELECT count(*) FROM metrics WHERE name = 'hits'"), 2);
    CHECK_EQ_U(q_int(path, "SELECT m.value FROM metrics m JOIN runs r ON r.id = m.run_id JOIN run_config c "
                           "ON c.run_id = r.id WHERE c.key = 'capacity' AND c.value = '2' AND m.name = 'hits'"),
               1);
    CHECK_EQ_U(q_int(path, "SELECT count(*) FROM layer_metrics"), 4);
    CHECK(q_int(path, "SELECT count(*) FROM curves") > 0);
    CHECK_EQ_U(q_int(path, "SELECT count(*) FROM runs WHERE length(config_hash) = 64 AND code_version "
                           "IS NOT NULL AND host IS NOT NULL AND started_at <= finished_at"),
               2);
    moe_trace_free(t);
}

/* A store that fails midway (a duplicate metric name violates the primary
 * key after the run row and some metrics were written) leaves nothing. */
static void store_is_atomic(void) {
    const char *path = tmp("b.db");
    unlink(path);
    moe_error err = {{0}};
    moe_trace *t = make_trace(1, 4, 1, "0/1");
    CHECK(t);
    moe_db *db = moe_db_open(path, &err);
    CHECK(db);
    char hash[65];
    CHECK(moe_db_add_trace(db, t, "t", hash, &err) == 0);
    moe_metric m[] = {{"hits", 1}, {"accesses", 2}, {"hits", 3}};
    moe_run_record rec = {.experiment = "", .trace_hash = hash, .config_text = "capacity=1\npolicy=lru\n",
                          .metrics = m, .n_metrics = 3};
    CHECK(moe_db_store_run(db, &rec, &err) == -1);
    CHECK_STR_CONTAINS(err.msg, path);
    CHECK(moe_db_run_exists(db, hash, rec.config_text, &err) == 0);
    /* Unknown trace: the foreign key refuses it, again leaving nothing. */
    rec.n_metrics = 2;
    rec.trace_hash = "0000";
    CHECK(moe_db_store_run(db, &rec, &err) == -1);
    /* The connection is usable afterwards. */
    rec.trace_hash = hash;
    CHECK(moe_db_store_run(db, &rec, &err) == 0);
    CHECK(moe_db_close(db, &err) == 0);
    CHECK_EQ_U(q_int(path, "SELECT count(*) FROM runs"), 1);
    CHECK_EQ_U(q_int(path, "SELECT count(*) FROM metrics"), 2);
    CHECK_EQ_U(q_int(path, "SELECT count(*) FROM run_config"), 2);
    moe_trace_free(t);
}

static void open_errors_name_path(void) {
    moe_error err = {{0}};
    const char *bad = "/nonexistent-dir-moesim/x.db";
    CHECK(moe_db_open(bad, &err) == NULL);
    CHECK_STR_CONTAINS(err.msg, bad);
    const char *junk = tmp("junk.db");
    FILE *f = fopen(junk, "w");
    CHECK(f);
    fputs("this is not an SQLite database, just some text long enough to fill a header........", f);
    fclose(f);
    CHECK(moe_db_open(junk, &err) == NULL);
    CHECK_STR_CONTAINS(err.msg, junk);
    CHECK_STR_CONTAINS(err.msg, "not a database");
}

static int conflicts_seen;
static void count_conflict(void *ctx, const char *line) {
    (void)ctx;
    if (strstr(line, "conflicting")) conflicts_seen++;
}

static void merge(void) {
    const char *p1 = tmp("m1.db"), *p2 = tmp("m2.db"), *out = tmp("mout.db");
    unlink(p1);
    unlink(p2);
    unlink(out);
    moe_error err = {{0}};
    moe_trace *t = make_trace(1, 4, 1, "0/1/0/2/1/0");
    CHECK(t);
    char hash[65];
    moe_db *a = moe_db_open(p1, &err), *b = moe_db_open(p2, &err);
    CHECK(a && b);
    CHECK(moe_db_add_trace(a, t, "t", hash, &err) == 0);
    CHECK(moe_db_add_trace(b, t, "t", hash, &err) == 0);
    CHECK(store_lru(a, t, hash, 1, &err) == 0);
    CHECK(store_lru(a, t, hash, 2, &err) == 0);
    CHECK(store_lru(b, t, hash, 2, &err) == 0); /* duplicate of a's */
    CHECK(store_lru(b, t, hash, 3, &err) == 0);
    /* A conflicting copy: same identity, different numbers. */
    moe_metric m[] = {{"hit_rate", 0.99}};
    moe_run_record rec = {.experiment = "x", .trace_hash = hash, .config_text = "capacity=9\n",
                          .metrics = m, .n_metrics = 1};
    CHECK(moe_db_store_run(a, &rec, &err) == 0);
    m[0].value = 0.5;
    CHECK(moe_db_store_run(b, &rec, &err) == 0);
    CHECK(moe_db_close(a, &err) == 0);
    CHECK(moe_db_close(b, &err) == 0);

    moe_db *o = moe_db_open(out, &err);
    CHECK(o);
    moe_db_merge_stats st;
    CHECK(moe_db_merge(o, p1, &st, count_conflict, NULL, &err) == 0);
    CHECK_EQ_U(st.runs_added, 3);
    CHECK_EQ_U(st.traces_added, 1);
    conflicts_seen = 0;
    CHECK(moe_db_merge(o, p2, &st, count_conflict, NULL, &err) == 0);
    CHECK_EQ_U(st.runs_added, 1);
    CHECK_EQ_U(st.duplicates, 1);
    CHECK_EQ_U(st.conflicts, 1);
    CHECK_EQ_U(conflicts_seen, 1);
    CHECK_EQ_U(st.traces_added, 0);
    /* Merging again changes nothing. */
    CHECK(moe_db_merge(o, p2, &st, NULL, NULL, &err) == 0);
    CHECK_EQ_U(st.runs_added, 0);
    CHECK(moe_db_merge(o, tmp("missing.db"), &st, NULL, NULL, &err) == -1);
    CHECK_STR_CONTAINS(err.msg, "missing.db");
    CHECK(moe_db_close(o, &err) == 0);
    CHECK_EQ_U(q_int(out, "SELECT count(*) FROM runs"), 4);
    CHECK_EQ_U(q_int(out, "SELECT count(*) FROM runs WHERE status = 'done'"), 4);
    /* Children followed their runs: 3 LRU runs x 11 metrics + 1 = 34. */
    CHECK_EQ_U(q_int(out, "SELECT count(*) FROM metrics"), 34);
    CHECK_EQ_U(q_int(out, "SELECT count(*) FROM metrics m LEFT JOIN runs r ON r.id = m.run_id WHERE r.id IS NULL"), 0);
    CHECK_NEAR(q_double(out, "SELECT value FROM metrics m JOIN runs r ON r.id = m.run_id WHERE "
                             "r.config_text = 'capacity=9\n' AND m.name = 'hit_rate'"),
               0.99, 1e-12);
    CHECK_NEAR(q_double(out, "SELECT hit_rate FROM run_summary WHERE capacity = 3 AND policy = 'lru'"),
               q_double(p2, "SELECT hit_rate FROM run_summary WHERE capacity = 3"), 1e-12);
    moe_trace_free(t);
}

int main(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/moesim-test-results-XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    RUN(sha256_vectors);
    RUN(trace_hash_is_content);
    RUN(store_exists_idempotent);
    RUN(store_is_atomic);
    RUN(open_errors_name_path);
    RUN(merge);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
    CHECK_EXIT();
}

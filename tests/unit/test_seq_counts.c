/* test_seq_counts.c: per-sequence hit counts of a replay (sim/replay.h), by
 * both engines and for key sequences, hand-worked; and their rows in the
 * results store (core/results.h, table sequence_counts). */
#include <sqlite3.h>
#include <unistd.h>

#include "../../core/results.h"
#include "../../sim/replay.h"
#include "../../sim/runrec.h"
#include "check.h"
#include "tracemaker.h"

/* One layer, top-1, LRU capacity 1. Sequences (ordinal: trace id, steps):
 *   0: id 0, steps 0 0 1       warm and cold: m h m            -> 3 acc, 1 hit
 *   1: id 7, steps 1 1 {0,1}   warm: h h, then the batched step's set {0,1}
 *                              served ascending: 0 misses and is not cached
 *                              (1, the only resident, is protected), 1 hits
 *                                                              -> 4 acc, 3 hits
 *                              cold: m h, then 0 bypass, 1 h   -> 4 acc, 2 hits
 *   2: id 0 again (a new sequence: the id changed since step 5), steps 0 0
 *                              warm and cold: m h              -> 2 acc, 1 hit */
static const char *spec = "s0: 0 / 0 / 1 / s7: 1 / 1 / 0 ; 1 / s0: 0 / 0";

static int replay(moe_trace *t, int cold, const char *prefetch, moe_replay_result *r) {
    moe_replay_config cfg = {.policy = "lru", .capacity = 1, .cold_per_seq = cold, .seed = 1, .prefetch = prefetch};
    moe_error err = {{0}};
    if (moe_replay(t, &cfg, r, &err)) {
        printf("replay failed: %s\n", err.msg);
        return -1;
    }
    return 0;
}

static void check_counts(int cold, const char *prefetch) {
    moe_trace *t = make_trace(1, 4, 1, spec);
    CHECK(t);
    moe_replay_result r;
    CHECK(replay(t, cold, prefetch, &r) == 0);
    CHECK_EQ_U(r.n_seqs, 3);
    CHECK_EQ_U(r.seq_ids[0], 0);
    CHECK_EQ_U(r.seq_ids[1], 7);
    CHECK_EQ_U(r.seq_ids[2], 0);
    CHECK_EQ_U(r.seq_accesses[0], 3);
    CHECK_EQ_U(r.seq_hits[0], 1);
    CHECK_EQ_U(r.seq_accesses[1], 4);
    CHECK_EQ_U(r.seq_hits[1], cold ? 2 : 3);
    CHECK_EQ_U(r.seq_accesses[2], 2);
    CHECK_EQ_U(r.seq_hits[2], 1);
    CHECK_EQ_U(r.accesses, 9);
    CHECK_EQ_U(r.hits, cold ? 4 : 5);
    moe_replay_result_free(&r);
    moe_trace_free(t);
}

static void plain_engine_warm(void) { check_counts(0, NULL); }
static void plain_engine_cold(void) { check_counts(1, NULL); }
/* prefetch=none runs the extended engine (sim/replay_engine.c) with the same semantics */
static void ext_engine_warm(void) { check_counts(0, "none"); }
static void ext_engine_cold(void) { check_counts(1, "none"); }

/* Sums over sequences equal the totals on a generated multi-sequence trace. */
static void sums_match_totals(void) {
    char spec2[4096] = "";
    uint64_t s = 42;
    for (int i = 0; i < 200; i++) {
        size_t u = strlen(spec2);
        int e0 = (int)(test_splitmix64(&s) % 6), e1 = (e0 + 1 + (int)(test_splitmix64(&s) % 5)) % 6;
        snprintf(spec2 + u, sizeof spec2 - u, "%s%s%d,%d|%d,%d", i ? " / " : "", i % 37 == 0 ? (i % 2 ? "s3:" : "s9:") : "",
                 e0, e1, e1, e0);
    }
    moe_trace *t = make_trace(2, 6, 2, spec2);
    CHECK(t);
    moe_replay_result r;
    CHECK(replay(t, 0, NULL, &r) == 0);
    CHECK_EQ_U(r.n_seqs, 6); /* a sequence starts at steps 0, 37, 74, 111, 148, 185 */
    uint64_t a = 0, h = 0;
    for (uint32_t q = 0; q < r.n_seqs; q++) a += r.seq_accesses[q], h += r.seq_hits[q];
    CHECK_EQ_U(a, r.accesses);
    CHECK_EQ_U(h, r.hits);
    CHECK_EQ_U(r.seq_accesses[1], 37 * 4);
    moe_replay_result_free(&r);
    moe_trace_free(t);
}

/* A key sequence is one sequence holding every count. */
static void key_sequence_one_sequence(void) {
    uint32_t *keys = malloc(6 * sizeof *keys);
    CHECK(keys);
    uint32_t k[6] = {0, 1, 0, 2, 1, 0};
    memcpy(keys, k, sizeof k);
    moe_error err = {{0}};
    moe_trace *t = moe_trace_from_keys(keys, 6, 3, "test", NULL, &err);
    CHECK(t);
    moe_replay_result r;
    CHECK(replay(t, 0, NULL, &r) == 0);
    CHECK_EQ_U(r.n_seqs, 1);
    CHECK_EQ_U(r.seq_accesses[0], 6);
    CHECK_EQ_U(r.seq_hits[0], 0); /* capacity 1: 0 1 0 2 1 0 never repeats back to back */
    moe_replay_result_free(&r);
    moe_trace_free(t);
}

/* moe_run_store writes one row per sequence; the rows read back exactly. */
static void stored_rows(void) {
    char path[] = "/tmp/moesim-seqcounts-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    close(fd);
    unlink(path);
    moe_error err = {{0}};
    moe_db *db = moe_db_open(path, &err);
    CHECK(db);
    moe_trace *t = make_trace(1, 4, 1, spec);
    CHECK(t);
    char hash[65];
    CHECK(moe_db_add_trace(db, t, "t", hash, &err) == 0);
    moe_replay_result r;
    CHECK(replay(t, 1, NULL, &r) == 0);
    moe_replay_config cfg = {.policy = "lru", .capacity = 1, .cold_per_seq = 1, .seed = 1};
    CHECK(moe_run_store(db, "", hash, &cfg, &r, &err) == 0);
    moe_replay_result_free(&r);
    CHECK(moe_db_close(db, &err) == 0);
    sqlite3 *h = NULL;
    CHECK(sqlite3_open(path, &h) == SQLITE_OK);
    sqlite3_stmt *st = NULL;
    CHECK(sqlite3_prepare_v2(h, "SELECT group_concat(seq || ':' || seq_id || ':' || accesses || ':' || hits, ' ') "
                                "FROM (SELECT * FROM sequence_counts ORDER BY seq)", -1, &st, NULL) == SQLITE_OK);
    CHECK(sqlite3_step(st) == SQLITE_ROW);
    char got[256];
    snprintf(got, sizeof got, "%s", (const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    CHECK(sqlite3_prepare_v2(h, "PRAGMA user_version", -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW);
    int version = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(h);
    moe_trace_free(t);
    unlink(path);
    CHECK(!strcmp(got, "0:0:3:1 1:7:4:2 2:0:2:1"));
    CHECK_EQ_U(version, 2);
}

int main(void) {
    RUN(plain_engine_warm);
    RUN(plain_engine_cold);
    RUN(ext_engine_warm);
    RUN(ext_engine_cold);
    RUN(sums_match_totals);
    RUN(key_sequence_one_sequence);
    RUN(stored_rows);
    CHECK_EXIT();
}

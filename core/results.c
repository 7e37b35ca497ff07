/* results.c: the SQLite results store (DESIGN "Results store").
 *
 * Design decisions:
 *  - A run's identity is (trace_hash, config_hash); UNIQUE in the schema, so
 *    two writers can never both keep a copy.
 *  - moe_db_store_run is one BEGIN IMMEDIATE ... COMMIT transaction. The run
 *    row is written with status 'running' and flipped to 'done' as the last
 *    statement, so even a reader that ignores transactions (or a future writer
 *    that records a run in several transactions, e.g. the real backend) only
 *    trusts rows with status 'done'. moe_db_run_exists looks for 'done' only.
 *  - WAL journal + busy_timeout: several processes (sweep shards, GNU
 *    parallel) can write one file; readers never block the writer. IMMEDIATE
 *    transactions take the write lock up front, so a writer never has to
 *    upgrade a read snapshot (which in WAL fails with SQLITE_BUSY_SNAPSHOT
 *    without calling the busy handler).
 *  - synchronous=NORMAL: in WAL mode a committed transaction survives a kill
 *    of the process (the data is in the OS page cache); only a power cut may
 *    lose the last commits, never consistency. A lost run is simply re-run.
 *  - Schema version in PRAGMA user_version; later versions migrate from it.
 *  - Counts are stored as REAL metrics (exact up to 2^53).
 *  - Integrity on every open (db_verify): PRAGMA integrity_check for files up
 *    to MOE_DB_FULL_CHECK_MAX bytes (reads every page and cross-checks every
 *    index against its table: milliseconds for a few MB), PRAGMA quick_check
 *    above (every page's b-tree structure, no index cross-check: linear in the
 *    file size, about the time to read it). A damaged file is refused with a
 *    message naming `moesim results check` / `results recover`. Neither check
 *    sees garbage that lands only inside a stored value's bytes (SQLite keeps
 *    no page checksums), nor in a page's free space (harmless).
 *  - Readers open read-only (moe_db_open_readonly). A WAL database on
 *    read-only media (read-only directory, 0444 file, read-only bind) cannot
 *    create its -shm; then it is reopened with the URI "immutable=1", which
 *    tells SQLite that nobody writes the file (no locks, no WAL): right for
 *    an archived database, wrong while a sweep is writing it. */
#include "results.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sha256.h"
#include "version.h"

/* 2: adds sequence_counts. Opening a version-1 file for writing creates the
 * table (every statement of schema_sql is IF NOT EXISTS); its old runs keep
 * no rows there, which readers report as "not recorded". */
#define SCHEMA_VERSION 2

struct moe_db {
    sqlite3 *h;
    char *path;
    char host[256];
};

static const char schema_sql[] =
    "CREATE TABLE IF NOT EXISTS traces ("
    "  hash TEXT PRIMARY KEY,"           /* SHA-256 of content (moe_trace_hash) */
    "  path TEXT NOT NULL,"              /* where it was first seen */
    "  model TEXT, layers INTEGER, experts INTEGER, top_k INTEGER,"
    "  steps INTEGER, tokens INTEGER, source TEXT, meta TEXT,"
    "  added_at TEXT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS runs ("
    "  id INTEGER PRIMARY KEY,"
    "  experiment TEXT NOT NULL DEFAULT '',"
    "  trace_hash TEXT NOT NULL REFERENCES traces(hash),"
    "  config_hash TEXT NOT NULL,"
    "  config_text TEXT NOT NULL,"
    "  code_version TEXT, host TEXT,"
    "  started_at TEXT, finished_at TEXT, seconds REAL,"
    "  status TEXT NOT NULL CHECK (status IN ('running', 'done', 'failed')),"
    "  UNIQUE (trace_hash, config_hash));"
    "CREATE INDEX IF NOT EXISTS runs_experiment ON runs(experiment);"
    /* config_text split into rows: SQL can filter on any setting, and new
     * settings (prefetcher, device, precision ...) need no schema change. */
    "CREATE TABLE IF NOT EXISTS run_config ("
    "  run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,"
    "  key TEXT NOT NULL, value TEXT NOT NULL,"
    "  PRIMARY KEY (run_id, key)) WITHOUT ROWID;"
    "CREATE INDEX IF NOT EXISTS run_config_kv ON run_config(key, value);"
    "CREATE TABLE IF NOT EXISTS metrics ("
    "  run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,"
    "  name TEXT NOT NULL, value REAL,"
    "  PRIMARY KEY (run_id, name)) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS layer_metrics ("
    "  run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,"
    "  layer INTEGER NOT NULL, name TEXT NOT NULL, value REAL,"
    "  PRIMARY KEY (run_id, layer, name)) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS curves ("
    "  run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,"
    "  curve TEXT NOT NULL, x REAL NOT NULL, y REAL,"
    "  PRIMARY KEY (run_id, curve, x)) WITHOUT ROWID;"
    /* Per-sequence counts, exact integers: what bootstrap intervals resample
     * (seq = ordinal in the trace, seq_id = the trace's own id). */
    "CREATE TABLE IF NOT EXISTS sequence_counts ("
    "  run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,"
    "  seq INTEGER NOT NULL, seq_id INTEGER NOT NULL,"
    "  accesses INTEGER NOT NULL CHECK (accesses >= 0), hits INTEGER NOT NULL CHECK (hits BETWEEN 0 AND accesses),"
    "  PRIMARY KEY (run_id, seq)) WITHOUT ROWID;"
    /* Published numbers to compare against (experiment files, reproduce);
     * selector narrows the runs it applies to ("policy=lru capacity=4"),
     * '' = the whole experiment. */
    "CREATE TABLE IF NOT EXISTS expectations ("
    "  experiment TEXT NOT NULL, metric TEXT NOT NULL,"
    "  selector TEXT NOT NULL DEFAULT '',"
    "  value REAL NOT NULL, tolerance REAL NOT NULL DEFAULT 0,"
    "  source TEXT NOT NULL DEFAULT '',"
    "  PRIMARY KEY (experiment, metric, selector));"
    "CREATE VIEW IF NOT EXISTS run_summary AS SELECT"
    "  r.id, r.experiment, r.trace_hash, t.path AS trace_path, t.model,"
    "  (SELECT value FROM run_config c WHERE c.run_id = r.id AND c.key = 'policy') AS policy,"
    "  CAST((SELECT value FROM run_config c WHERE c.run_id = r.id AND c.key = 'capacity') AS INTEGER) AS capacity,"
    "  (SELECT value FROM run_config c WHERE c.run_id = r.id AND c.key = 'scope') AS scope,"
    "  CAST((SELECT value FROM run_config c WHERE c.run_id = r.id AND c.key = 'cold_per_seq') AS INTEGER) AS cold_per_seq,"
    "  (SELECT value FROM metrics m WHERE m.run_id = r.id AND m.name = 'hit_rate') AS hit_rate,"
    "  r.status"
    "  FROM runs r LEFT JOIN traces t ON t.hash = r.trace_hash;";

/* Fill err with "<path>: <what>: <sqlite message>" and return -1. */
static int db_fail(moe_db *db, moe_error *err, const char *what) {
    int code = sqlite3_extended_errcode(db->h);
    const char *msg = sqlite3_errmsg(db->h);
    if ((code & 0xff) == SQLITE_FULL)
        return moe_fail(err, "%s: %s: %s (no space left on the device?)", db->path, what, msg);
    return moe_fail(err, "%s: %s: %s", db->path, what, msg);
}

static int exec(moe_db *db, const char *sql, const char *what, moe_error *err) {
    if (sqlite3_exec(db->h, sql, NULL, NULL, NULL) != SQLITE_OK) return db_fail(db, err, what);
    return 0;
}

static void rollback(moe_db *db) {
    if (!sqlite3_get_autocommit(db->h)) sqlite3_exec(db->h, "ROLLBACK", NULL, NULL, NULL);
}

static sqlite3_stmt *prep(moe_db *db, const char *sql, moe_error *err) {
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db->h, sql, -1, &st, NULL) != SQLITE_OK) {
        db_fail(db, err, "preparing a statement");
        return NULL;
    }
    return st;
}

/* Step a statement expected to finish (INSERT/UPDATE/DELETE); resets it. */
static int step_done(moe_db *db, sqlite3_stmt *st, const char *what, moe_error *err) {
    int rc = sqlite3_step(st);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
        db_fail(db, err, what);
        sqlite3_reset(st);
        return -1;
    }
    sqlite3_reset(st);
    return 0;
}

const char *moe_db_path(const moe_db *db) { return db->path; }

/* ---- integrity --------------------------------------------------------- */

#define MOE_DB_FULL_CHECK_MAX (32LL << 20)

static const char *check_pragma(const char *path) {
    struct stat sb;
    if (stat(path, &sb) == 0 && (long long)sb.st_size > MOE_DB_FULL_CHECK_MAX) return "quick_check";
    return "integrity_check";
}

static int is_damage(int code) {
    code &= 0xff;
    return code == SQLITE_CORRUPT || code == SQLITE_NOTADB || code == SQLITE_FORMAT;
}

static int damaged(moe_error *err, const char *path, const char *check, const char *m) {
    /* integrity_check's first row reads "*** in database main ***\nOn tree page ...". */
    const char *head = "*** in database main ***\n";
    if (!strncmp(m, head, strlen(head))) m += strlen(head);
    char msg[300];
    snprintf(msg, sizeof msg, "%s", m);
    for (char *c = msg; *c; c++)
        if (*c == '\n') *c = ' ';
    return moe_fail(err,
                    "%s: the database is damaged (%s: %s); run `moesim results check --db %s` and "
                    "`moesim results recover --db %s -o NEW.db` (README, \"Results store\")",
                    path, check, msg, path, path);
}

/* Run the integrity check on an open handle; 0 if "ok", else -1 with err. */
static int db_verify(sqlite3 *h, const char *path, moe_error *err) {
    const char *check = check_pragma(path);
    char sql[64];
    snprintf(sql, sizeof sql, "PRAGMA %s(2)", check);
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(h, sql, -1, &st, NULL);
    if (rc == SQLITE_OK) rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        const char *m = (const char *)sqlite3_column_text(st, 0);
        int ok = m && !strcmp(m, "ok");
        if (!ok) damaged(err, path, check, m ? m : "(no message)");
        sqlite3_finalize(st);
        return ok ? 0 : -1;
    }
    int code = sqlite3_extended_errcode(h);
    if (is_damage(code)) damaged(err, path, check, sqlite3_errmsg(h));
    else moe_fail(err, "%s: cannot read database: %s", path, sqlite3_errmsg(h));
    sqlite3_finalize(st);
    return -1;
}

/* "file:" URI for path with immutable=1; NULL when out of memory. */
static char *immutable_uri(const char *path) {
    size_t n = strlen(path);
    char *u = malloc(3 * n + 32);
    if (!u) return NULL;
    char *o = u + sprintf(u, "file:%s", path[0] == '/' ? "//" : "");
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)path; *p; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
            strchr("/-_.~", *p)) {
            *o++ = (char)*p;
        } else {
            *o++ = '%', *o++ = hex[*p >> 4], *o++ = hex[*p & 15];
        }
    }
    strcpy(o, "?immutable=1");
    return u;
}

/* Read one row of the schema: fails when the file is not a database, cannot
 * be read, or (WAL on read-only media) cannot create its -shm. */
static int probe(sqlite3 *h) {
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(h, "SELECT count(*) FROM sqlite_master", -1, &st, NULL);
    if (rc == SQLITE_OK) rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_ROW ? SQLITE_OK : sqlite3_extended_errcode(h);
}

sqlite3 *moe_db_open_readonly(const char *path, int *immutable, moe_error *err) {
    sqlite3 *h = NULL;
    if (immutable) *immutable = 0;
    struct stat sb;
    /* Never create: a missing file is an error, whatever the flags do. */
    if (stat(path, &sb) != 0) {
        moe_fail(err, "%s: cannot open database: %s", path, strerror(errno));
        return NULL;
    }
    if (sqlite3_open_v2(path, &h, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        moe_fail(err, "%s: cannot open database: %s", path, h ? sqlite3_errmsg(h) : "out of memory");
        sqlite3_close(h);
        return NULL;
    }
    sqlite3_extended_result_codes(h, 1);
    sqlite3_busy_timeout(h, 60000);
    int code = probe(h);
    if ((code & 0xff) == SQLITE_READONLY || (code & 0xff) == SQLITE_CANTOPEN) {
        /* WAL mode and no way to create/open PATH-shm: read the file as is. */
        sqlite3_close(h);
        h = NULL;
        char *uri = immutable_uri(path);
        if (!uri) {
            moe_fail(err, "%s: out of memory", path);
            return NULL;
        }
        int orc = sqlite3_open_v2(uri, &h, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI, NULL);
        free(uri);
        if (orc != SQLITE_OK) {
            moe_fail(err, "%s: cannot open database read-only: %s", path, h ? sqlite3_errmsg(h) : "out of memory");
            sqlite3_close(h);
            return NULL;
        }
        sqlite3_extended_result_codes(h, 1);
        if (immutable) *immutable = 1;
        code = probe(h);
        /* Commits still in the write-ahead log are invisible in this mode. */
        size_t n = strlen(path);
        char *wal = malloc(n + 5);
        if (wal) {
            memcpy(wal, path, n);
            memcpy(wal + n, "-wal", 5);
            struct stat wb;
            if (code == SQLITE_OK && stat(wal, &wb) == 0 && wb.st_size > 0)
                fprintf(stderr, "moesim: warning: %s is on read-only media and %s is not empty: runs committed "
                                "since the last checkpoint are not shown\n", path, wal);
            free(wal);
        }
    }
    if (code != SQLITE_OK) {
        if (is_damage(code) && (code & 0xff) != SQLITE_NOTADB) damaged(err, path, "reading the schema", sqlite3_errmsg(h));
        else moe_fail(err, "%s: cannot read database: %s", path, sqlite3_errmsg(h));
        sqlite3_close(h);
        return NULL;
    }
    if (db_verify(h, path, err)) {
        sqlite3_close(h);
        return NULL;
    }
    return h;
}

int moe_db_check(const char *path, void (*report)(void *ctx, const char *line), void *ctx, moe_error *err) {
    moe_error local;
    if (!err) err = &local;
    int imm = 0;
    sqlite3 *h = moe_db_open_readonly(path, &imm, err);
    if (!h) {
        /* Damage found by the open's own check: list every problem below. */
        if (!strstr(err->msg, "the database is damaged")) return -1;
        struct stat sb;
        if (stat(path, &sb) != 0) return -1;
        char *uri = immutable_uri(path);
        int orc = uri ? sqlite3_open_v2(uri, &h, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI, NULL) : SQLITE_NOMEM;
        free(uri);
        if (orc != SQLITE_OK) {
            sqlite3_close(h);
            return -1;
        }
        /* A WAL file may hold newer pages: read normally when possible. */
        if (!imm && access(path, W_OK) == 0) {
            sqlite3_close(h);
            h = NULL;
            if (sqlite3_open_v2(path, &h, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
                sqlite3_close(h);
                return -1;
            }
        }
        sqlite3_busy_timeout(h, 60000);
    }
    int problems = 0;
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(h, "PRAGMA integrity_check(100)", -1, &st, NULL);
    if (rc == SQLITE_OK) {
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
            const char *m = (const char *)sqlite3_column_text(st, 0);
            if (m && !strcmp(m, "ok")) continue;
            /* One problem per line; the "*** in database main ***" heading is noise. */
            char *copy = strdup(m ? m : "(no message)");
            for (char *line = copy ? strtok(copy, "\n") : NULL; line; line = strtok(NULL, "\n")) {
                if (!strcmp(line, "*** in database main ***")) continue;
                problems++;
                if (report) report(ctx, line);
            }
            free(copy);
        }
    }
    if (rc != SQLITE_DONE) {
        problems++;
        if (report) report(ctx, sqlite3_errmsg(h));
    }
    sqlite3_finalize(st);
    st = NULL;
    if (!problems) {
        rc = sqlite3_prepare_v2(h, "PRAGMA foreign_key_check", -1, &st, NULL);
        if (rc == SQLITE_OK) {
            while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                char line[512];
                const char *t = (const char *)sqlite3_column_text(st, 0), *parent = (const char *)sqlite3_column_text(st, 2);
                snprintf(line, sizeof line, "table %s row %lld refers to a missing row of %s", t ? t : "?",
                         (long long)sqlite3_column_int64(st, 1), parent ? parent : "?");
                problems++;
                if (report) report(ctx, line);
            }
        }
        if (rc != SQLITE_DONE) {
            problems++;
            if (report) report(ctx, sqlite3_errmsg(h));
        }
        sqlite3_finalize(st);
    }
    sqlite3_close(h);
    return problems ? 1 : 0;
}

moe_db *moe_db_open(const char *path, moe_error *err) {
    moe_db *db = calloc(1, sizeof *db);
    if (!db || !(db->path = strdup(path))) {
        free(db);
        moe_fail(err, "%s: out of memory", path);
        return NULL;
    }
    if (gethostname(db->host, sizeof db->host - 1) != 0) snprintf(db->host, sizeof db->host, "unknown");
    db->host[sizeof db->host - 1] = 0;
    /* A path into a missing directory or without permission fails here or on
     * the first statement; both messages name the path. */
    if (sqlite3_open_v2(path, &db->h, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) != SQLITE_OK) {
        if (db->h) db_fail(db, err, "cannot open database");
        else moe_fail(err, "%s: cannot open database: out of memory", path);
        goto fail;
    }
    sqlite3_extended_result_codes(db->h, 1);
    /* Long timeout: shards of a big sweep may queue behind each other's commits. */
    sqlite3_busy_timeout(db->h, 60000);
    /* Reading the schema first turns "not a database" into a clean error. */
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db->h, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK ||
        sqlite3_step(st) != SQLITE_ROW) {
        db_fail(db, err, "cannot read database");
        sqlite3_finalize(st);
        goto fail;
    }
    int version = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    if (version > SCHEMA_VERSION) {
        moe_fail(err, "%s: results schema version %d is newer than this moesim's (%d)", path, version,
                 SCHEMA_VERSION);
        goto fail;
    }
    /* Never write into a damaged file (cost: see the header comment). */
    if (version > 0 && db_verify(db->h, path, err)) goto fail;
    /* journal_mode=WAL is persistent in the file; it returns the mode in
     * force (a filesystem without shared memory keeps "delete": still
     * correct, just less concurrent). */
    if (exec(db, "PRAGMA journal_mode=WAL", "cannot open database", err) ||
        exec(db, "PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON", "cannot open database", err))
        goto fail;
    if (version < SCHEMA_VERSION) {
        /* IMMEDIATE: two processes creating the same new file serialise here. */
        if (exec(db, "BEGIN IMMEDIATE", "cannot create schema", err)) goto fail;
        char sql[sizeof schema_sql + 64];
        snprintf(sql, sizeof sql, "%sPRAGMA user_version=%d;", schema_sql, SCHEMA_VERSION);
        if (exec(db, sql, "cannot create schema", err) || exec(db, "COMMIT", "cannot create schema", err)) {
            rollback(db);
            goto fail;
        }
    }
    return db;
fail:
    sqlite3_close(db->h);
    free(db->path);
    free(db);
    return NULL;
}

int moe_db_close(moe_db *db, moe_error *err) {
    if (!db) return 0;
    int rc = 0;
    if (sqlite3_close(db->h) != SQLITE_OK) {
        rc = moe_fail(err, "%s: closing the database: %s", db->path, sqlite3_errmsg(db->h));
        sqlite3_close_v2(db->h);
    }
    free(db->path);
    free(db);
    return rc;
}

/* ---- hashing ----------------------------------------------------------- */

/* The trace hash covers a fixed serialisation: every header field and every
 * array, integers little-endian, floats as their IEEE-754 bits, each array
 * preceded by a presence flag and its element count. It names the content,
 * not the file: the same trace as .moetrace or .csv on any host hashes alike
 * (provided the header fields match). */
static void h_u64(moe_sha256 *s, uint64_t v) {
    uint8_t b[8];
    for (int i = 0; i < 8; i++) b[i] = (uint8_t)(v >> (8 * i));
    moe_sha256_update(s, b, 8);
}

static void h_str(moe_sha256 *s, const char *str, size_t max) {
    if (!str) {
        h_u64(s, UINT64_MAX);
        return;
    }
    size_t n = strnlen(str, max);
    h_u64(s, n);
    moe_sha256_update(s, str, n);
}

/* An array of n elements of `size` bytes (2, 4 or 8), little-endian. */
static void h_array(moe_sha256 *s, const void *a, uint64_t n, size_t size) {
    h_u64(s, a ? n : UINT64_MAX);
    if (!a) return;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    moe_sha256_update(s, a, (size_t)n * size);
#else
    uint8_t buf[4096];
    const uint8_t *p = a;
    size_t total = (size_t)n * size, fill = 0;
    for (size_t i = 0; i < total; i += size) {
        for (size_t j = 0; j < size; j++) buf[fill + j] = p[i + size - 1 - j];
        fill += size;
        if (fill + 8 > sizeof buf) {
            moe_sha256_update(s, buf, fill);
            fill = 0;
        }
    }
    moe_sha256_update(s, buf, fill);
#endif
}

void moe_trace_hash(const moe_trace *t, char out[65]) {
    moe_sha256 s;
    uint8_t d[32];
    moe_sha256_init(&s);
    moe_sha256_update(&s, "moesim-trace-hash-v1", 20);
    h_str(&s, t->model, sizeof t->model);
    h_str(&s, t->source, sizeof t->source);
    h_u64(&s, t->n_layers);
    h_u64(&s, t->n_experts);
    h_u64(&s, t->top_k);
    h_u64(&s, t->n_shared);
    h_u64(&s, t->lookahead_depth);
    for (int i = 0; i < MOE_PREC_COUNT; i++) h_u64(&s, t->expert_bytes[i]);
    h_str(&s, t->meta, SIZE_MAX);
    h_u64(&s, t->n_steps);
    h_u64(&s, t->n_tokens);
    uint64_t recs = t->n_tokens * t->n_layers;
    h_array(&s, t->step_first_token, t->n_steps + 1, 8);
    h_array(&s, t->step_id, t->n_steps, 8);
    h_array(&s, t->step_phase, t->n_steps, 1);
    h_array(&s, t->token_seq, t->n_tokens, 4);
    h_array(&s, t->token_pos, t->n_tokens, 4);
    h_array(&s, t->experts, recs * t->top_k, 2);
    h_array(&s, t->weights, recs * t->top_k, 4);
    h_array(&s, t->router_logits, recs * t->n_experts, 4);
    h_array(&s, t->lookahead, recs * t->lookahead_depth * t->top_k, 2);
    /* key sequences only: routing traces keep the hash they always had */
    if (t->keys) h_array(&s, t->keys, t->n_tokens, 4);
    moe_sha256_final(&s, d);
    moe_sha256_hex(d, out);
}

void moe_config_hash(const char *config_text, char out[65]) {
    moe_sha256_buf_hex(config_text, strlen(config_text), out);
}

/* ---- writing ----------------------------------------------------------- */

int moe_db_add_trace(moe_db *db, const moe_trace *t, const char *path, char hash_out[65],
                     moe_error *err) {
    moe_trace_hash(t, hash_out);
    return moe_db_add_trace_hashed(db, t, path, hash_out, err);
}

int moe_db_add_trace_hashed(moe_db *db, const moe_trace *t, const char *path, const char *hash_out,
                            moe_error *err) {
    sqlite3_stmt *st = prep(db,
                            "INSERT OR IGNORE INTO traces (hash, path, model, layers, experts, top_k, "
                            "steps, tokens, source, meta, added_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, "
                            "?8, ?9, ?10, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))",
                            err);
    if (!st) return -1;
    sqlite3_bind_text(st, 1, hash_out, 64, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, path ? path : "", -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 3, t->model, (int)strnlen(t->model, sizeof t->model), SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 4, t->n_layers);
    sqlite3_bind_int64(st, 5, t->n_experts);
    sqlite3_bind_int64(st, 6, t->top_k);
    sqlite3_bind_int64(st, 7, (sqlite3_int64)t->n_steps);
    sqlite3_bind_int64(st, 8, (sqlite3_int64)t->n_tokens);
    sqlite3_bind_text(st, 9, t->source, (int)strnlen(t->source, sizeof t->source), SQLITE_TRANSIENT);
    if (t->meta) sqlite3_bind_text(st, 10, t->meta, -1, SQLITE_TRANSIENT);
    else sqlite3_bind_null(st, 10);
    int rc = step_done(db, st, "recording trace", err);
    sqlite3_finalize(st);
    return rc;
}

int moe_db_run_exists(moe_db *db, const char *trace_hash, const char *config_text, moe_error *err) {
    char ch[65];
    moe_config_hash(config_text, ch);
    sqlite3_stmt *st = prep(db,
                            "SELECT 1 FROM runs WHERE trace_hash = ?1 AND config_hash = ?2 "
                            "AND status = 'done'",
                            err);
    if (!st) return -1;
    sqlite3_bind_text(st, 1, trace_hash, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, ch, 64, SQLITE_TRANSIENT);
    int rc = sqlite3_step(st);
    int out = rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : db_fail(db, err, "looking up a run");
    sqlite3_finalize(st);
    return out;
}

/* Insert the run's "key=value" config lines into run_config. */
static int store_config_rows(moe_db *db, sqlite3_int64 id, const char *text, moe_error *err) {
    sqlite3_stmt *st = prep(db, "INSERT INTO run_config (run_id, key, value) VALUES (?1, ?2, ?3)", err);
    if (!st) return -1;
    int rc = 0;
    for (const char *p = text; *p && rc == 0;) {
        const char *nl = strchr(p, '\n'), *end = nl ? nl : p + strlen(p);
        const char *eq = memchr(p, '=', (size_t)(end - p));
        if (eq && eq > p) {
            sqlite3_bind_int64(st, 1, id);
            sqlite3_bind_text(st, 2, p, (int)(eq - p), SQLITE_TRANSIENT);
            sqlite3_bind_text(st, 3, eq + 1, (int)(end - eq - 1), SQLITE_TRANSIENT);
            rc = step_done(db, st, "storing run config", err);
        }
        p = nl ? nl + 1 : end;
    }
    sqlite3_finalize(st);
    return rc;
}

int moe_db_store_run(moe_db *db, const moe_run_record *rec, moe_error *err) {
    char ch[65];
    moe_config_hash(rec->config_text, ch);
    sqlite3_stmt *st = NULL;
    sqlite3_int64 id;
    if (exec(db, "BEGIN IMMEDIATE", "storing run", err)) return -1;
    /* Replace: a previous copy (complete or left 'running') goes first; its
     * metrics, config rows and curves follow by ON DELETE CASCADE. */
    if (!(st = prep(db, "DELETE FROM runs WHERE trace_hash = ?1 AND config_hash = ?2", err))) goto fail;
    sqlite3_bind_text(st, 1, rec->trace_hash, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, ch, 64, SQLITE_TRANSIENT);
    if (step_done(db, st, "storing run", err)) goto fail;
    sqlite3_finalize(st);
    /* started_at is derived from the wall time so both ends come from one clock. */
    if (!(st = prep(db,
                    "INSERT INTO runs (experiment, trace_hash, config_hash, config_text, code_version, "
                    "host, started_at, finished_at, seconds, status) VALUES (?1, ?2, ?3, ?4, ?5, ?6, "
                    "strftime('%Y-%m-%dT%H:%M:%fZ', julianday('now') - ?7 / 86400.0), "
                    "strftime('%Y-%m-%dT%H:%M:%fZ', 'now'), ?7, 'running')",
                    err)))
        goto fail;
    sqlite3_bind_text(st, 1, rec->experiment ? rec->experiment : "", -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, rec->trace_hash, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 3, ch, 64, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 4, rec->config_text, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 5, moe_version(), -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 6, db->host, -1, SQLITE_TRANSIENT);
    sqlite3_bind_double(st, 7, rec->seconds);
    if (step_done(db, st, "storing run", err)) goto fail;
    sqlite3_finalize(st);
    st = NULL;
    id = sqlite3_last_insert_rowid(db->h);
    if (store_config_rows(db, id, rec->config_text, err)) goto fail;

    if (!(st = prep(db, "INSERT INTO metrics (run_id, name, value) VALUES (?1, ?2, ?3)", err))) goto fail;
    for (size_t i = 0; i < rec->n_metrics; i++) {
        sqlite3_bind_int64(st, 1, id);
        sqlite3_bind_text(st, 2, rec->metrics[i].name, -1, SQLITE_TRANSIENT);
        sqlite3_bind_double(st, 3, rec->metrics[i].value);
        if (step_done(db, st, "storing metrics", err)) goto fail;
    }
    sqlite3_finalize(st);
    if (!(st = prep(db, "INSERT INTO layer_metrics (run_id, layer, name, value) VALUES (?1, ?2, ?3, ?4)",
                    err)))
        goto fail;
    for (size_t i = 0; i < rec->n_layer_metrics; i++) {
        sqlite3_bind_int64(st, 1, id);
        sqlite3_bind_int64(st, 2, rec->layer_metrics[i].layer);
        sqlite3_bind_text(st, 3, rec->layer_metrics[i].name, -1, SQLITE_TRANSIENT);
        sqlite3_bind_double(st, 4, rec->layer_metrics[i].value);
        if (step_done(db, st, "storing layer metrics", err)) goto fail;
    }
    sqlite3_finalize(st);
    if (!(st = prep(db, "INSERT INTO curves (run_id, curve, x, y) VALUES (?1, ?2, ?3, ?4)", err))) goto fail;
    for (size_t i = 0; i < rec->n_curve; i++) {
        sqlite3_bind_int64(st, 1, id);
        sqlite3_bind_text(st, 2, rec->curve[i].curve, -1, SQLITE_TRANSIENT);
        sqlite3_bind_double(st, 3, rec->curve[i].x);
        sqlite3_bind_double(st, 4, rec->curve[i].y);
        if (step_done(db, st, "storing curve", err)) goto fail;
    }
    sqlite3_finalize(st);
    if (!(st = prep(db, "INSERT INTO sequence_counts (run_id, seq, seq_id, accesses, hits) VALUES (?1, ?2, ?3, ?4, ?5)",
                    err)))
        goto fail;
    for (size_t i = 0; i < rec->n_seqs; i++) {
        sqlite3_bind_int64(st, 1, id);
        sqlite3_bind_int64(st, 2, (sqlite3_int64)i);
        sqlite3_bind_int64(st, 3, rec->seqs[i].seq_id);
        sqlite3_bind_int64(st, 4, (sqlite3_int64)rec->seqs[i].accesses);
        sqlite3_bind_int64(st, 5, (sqlite3_int64)rec->seqs[i].hits);
        if (step_done(db, st, "storing sequence counts", err)) goto fail;
    }
    sqlite3_finalize(st);
    if (!(st = prep(db, "UPDATE runs SET status = 'done' WHERE id = ?1", err))) goto fail;
    sqlite3_bind_int64(st, 1, id);
    if (step_done(db, st, "storing run", err)) goto fail;
    sqlite3_finalize(st);
    st = NULL;
    if (exec(db, "COMMIT", "storing run", err)) goto fail;
    return 0;
fail:
    sqlite3_finalize(st);
    rollback(db);
    return -1;
}

/* ---- merge ------------------------------------------------------------- */

static int64_t query_int(moe_db *db, const char *sql, sqlite3_int64 arg, const char *what, moe_error *err) {
    sqlite3_stmt *st = prep(db, sql, err);
    if (!st) return -1;
    if (sqlite3_bind_parameter_count(st) >= 1) sqlite3_bind_int64(st, 1, arg);
    int64_t v = -1;
    if (sqlite3_step(st) == SQLITE_ROW) v = sqlite3_column_int64(st, 0);
    else db_fail(db, err, what);
    sqlite3_finalize(st);
    return v;
}

/* Run one statement with ?1 = arg and return sqlite3_changes, or -1. */
static int64_t exec_changes(moe_db *db, const char *sql, sqlite3_int64 arg, const char *what,
                            moe_error *err) {
    sqlite3_stmt *st = prep(db, sql, err);
    if (!st) return -1;
    if (sqlite3_bind_parameter_count(st) >= 1) sqlite3_bind_int64(st, 1, arg);
    int rc = step_done(db, st, what, err);
    sqlite3_finalize(st);
    return rc ? -1 : sqlite3_changes(db->h);
}

int moe_db_merge(moe_db *db, const char *src_path, moe_db_merge_stats *stats,
                 void (*report)(void *ctx, const char *line), void *ctx, moe_error *err) {
    moe_db_merge_stats z = {0};
    if (!stats) stats = &z;
    memset(stats, 0, sizeof *stats);
    struct stat sb;
    /* ATTACH would silently create a missing file. */
    if (stat(src_path, &sb) != 0 || !S_ISREG(sb.st_mode))
        return moe_fail(err, "%s: no such results database", src_path);
    sqlite3_stmt *st = prep(db, "ATTACH DATABASE ?1 AS src", err);
    if (!st) return -1;
    sqlite3_bind_text(st, 1, src_path, -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    st = NULL;
    if (rc != SQLITE_DONE) {
        moe_fail(err, "%s: cannot attach: %s", src_path, sqlite3_errmsg(db->h));
        return -1;
    }
    int64_t n;
    sqlite3_int64 max_id;
    n = query_int(db,
                  "SELECT count(*) FROM src.sqlite_master WHERE type = 'table' AND name IN "
                  "('traces', 'runs', 'run_config', 'metrics', 'layer_metrics', 'curves', 'expectations')",
                  0, "reading source", err);
    if (n < 0) {
        moe_fail_prefix(err, "%s", src_path);
        goto detach;
    }
    if (n != 7) {
        moe_fail(err, "%s: not a moesim results database (tables missing)", src_path);
        goto detach;
    }
    /* schema 1 has no sequence_counts: its runs merge without them */
    int64_t src_seqs = query_int(db, "SELECT count(*) FROM src.sqlite_master WHERE type = 'table' AND name = "
                                     "'sequence_counts'", 0, "reading source", err);
    if (src_seqs < 0) {
        moe_fail_prefix(err, "%s", src_path);
        goto detach;
    }
    if (exec(db, "BEGIN IMMEDIATE", "merging", err)) goto detach;
    if ((n = exec_changes(db, "INSERT OR IGNORE INTO main.traces SELECT * FROM src.traces", 0,
                          "merging traces", err)) < 0)
        goto fail;
    stats->traces_added = (uint64_t)n;
    if ((n = query_int(db, "SELECT count(*) FROM src.runs WHERE status != 'done'", 0,
                       "merging", err)) < 0)
        goto fail;
    stats->incomplete = (uint64_t)n;

    /* Runs complete on both sides: equal metrics = duplicate, else conflict. */
    if (!(st = prep(db,
                    "SELECT s.config_text, s.trace_hash, m.id,"
                    " EXISTS (SELECT name, value FROM src.metrics WHERE run_id = s.id"
                    "         EXCEPT SELECT name, value FROM main.metrics WHERE run_id = m.id)"
                    " OR EXISTS (SELECT name, value FROM main.metrics WHERE run_id = m.id"
                    "         EXCEPT SELECT name, value FROM src.metrics WHERE run_id = s.id)"
                    " OR EXISTS (SELECT layer, name, value FROM src.layer_metrics WHERE run_id = s.id"
                    "         EXCEPT SELECT layer, name, value FROM main.layer_metrics WHERE run_id = m.id)"
                    " OR EXISTS (SELECT layer, name, value FROM main.layer_metrics WHERE run_id = m.id"
                    "         EXCEPT SELECT layer, name, value FROM src.layer_metrics WHERE run_id = s.id)"
                    " FROM src.runs s JOIN main.runs m"
                    "   ON m.trace_hash = s.trace_hash AND m.config_hash = s.config_hash"
                    " WHERE s.status = 'done' AND m.status = 'done' ORDER BY m.id",
                    err)))
        goto fail;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (sqlite3_column_int(st, 3)) {
            stats->conflicts++;
            if (report) {
                char line[1024], cfg[512];
                snprintf(cfg, sizeof cfg, "%s", (const char *)sqlite3_column_text(st, 0));
                for (char *p = cfg; *p; p++)
                    if (*p == '\n') *p = ' ';
                snprintf(line, sizeof line,
                         "%s: conflicting duplicate of run %lld (trace %.12s, %s): metrics differ, kept "
                         "the existing run",
                         src_path, (long long)sqlite3_column_int64(st, 2),
                         (const char *)sqlite3_column_text(st, 1), cfg);
                report(ctx, line);
            }
        } else {
            stats->duplicates++;
        }
    }
    if (rc != SQLITE_DONE) {
        db_fail(db, err, "merging");
        goto fail;
    }
    sqlite3_finalize(st);
    st = NULL;

    /* Incomplete runs here that the source has complete are replaced. */
    if ((n = exec_changes(db,
                          "DELETE FROM main.runs WHERE status != 'done' AND EXISTS (SELECT 1 FROM "
                          "src.runs s WHERE s.status = 'done' AND s.trace_hash = main.runs.trace_hash AND "
                          "s.config_hash = main.runs.config_hash)",
                          0, "merging runs", err)) < 0)
        goto fail;
    stats->replaced = (uint64_t)n;
    /* New rows get ids above the current maximum (INTEGER PRIMARY KEY picks
     * max+1), which is how their children are found below. */
    if ((max_id = query_int(db, "SELECT coalesce(max(id), 0) FROM main.runs", 0, "merging",
                            err)) < 0)
        goto fail;
    if ((n = exec_changes(db,
                          "INSERT INTO main.runs (experiment, trace_hash, config_hash, config_text, "
                          "code_version, host, started_at, finished_at, seconds, status) SELECT "
                          "experiment, trace_hash, config_hash, config_text, code_version, host, "
                          "started_at, finished_at, seconds, status FROM src.runs s WHERE s.status = 'done' "
                          "AND NOT EXISTS (SELECT 1 FROM main.runs m WHERE m.trace_hash = s.trace_hash AND "
                          "m.config_hash = s.config_hash) ORDER BY s.id",
                          0, "merging runs", err)) < 0)
        goto fail;
    stats->runs_added = (uint64_t)n;
#define CHILD(cols, table)                                                                        \
    "INSERT INTO main." table " (run_id, " cols ") SELECT m.id, " cols " FROM main.runs m JOIN "   \
    "src.runs s ON s.trace_hash = m.trace_hash AND s.config_hash = m.config_hash JOIN src." table \
    " srcrow ON srcrow.run_id = s.id WHERE m.id > ?1"
    static const char *const children[] = {
        CHILD("key, value", "run_config"),
        CHILD("name, value", "metrics"),
        CHILD("layer, name, value", "layer_metrics"),
        CHILD("curve, x, y", "curves"),
        CHILD("seq, seq_id, accesses, hits", "sequence_counts"), /* last: optional */
    };
#undef CHILD
    size_t n_children = sizeof children / sizeof *children - (src_seqs ? 0 : 1);
    for (size_t i = 0; i < n_children; i++)
        if (exec_changes(db, children[i], max_id, "merging run data", err) < 0) goto fail;
    if (exec_changes(db, "INSERT OR IGNORE INTO main.expectations SELECT * FROM src.expectations", 0,
                     "merging expectations", err) < 0)
        goto fail;
    if (exec(db, "COMMIT", "merging", err)) goto fail;
    sqlite3_exec(db->h, "DETACH DATABASE src", NULL, NULL, NULL);
    return 0;
fail:
    sqlite3_finalize(st);
    rollback(db);
detach:
    sqlite3_exec(db->h, "DETACH DATABASE src", NULL, NULL, NULL);
    return -1;
}

/* ---- recovery ----------------------------------------------------------- */

/* Copy the rows of table t from src into db: a forward scan until the first
 * read error, then a backward scan (by rowid or primary key) until the next,
 * so rows on both sides of a damaged page survive. INSERT OR IGNORE drops
 * duplicates and rows that break a constraint (garbage values). */
static int64_t copy_table(moe_db *db, sqlite3 *src, const char *t, const char *desc_key, int64_t *errors,
                          moe_error *err) {
    char cols[512] = "", marks[128] = "", sql[1024];
    int ncol = 0;
    snprintf(sql, sizeof sql, "SELECT name FROM pragma_table_info('%s') ORDER BY cid", t);
    sqlite3_stmt *st = prep(db, sql, err);
    if (!st) return -1;
    while (sqlite3_step(st) == SQLITE_ROW) {
        size_t l = strlen(cols);
        snprintf(cols + l, sizeof cols - l, "%s\"%s\"", ncol ? "," : "", (const char *)sqlite3_column_text(st, 0));
        l = strlen(marks);
        snprintf(marks + l, sizeof marks - l, "%s?", ncol ? "," : "");
        ncol++;
    }
    sqlite3_finalize(st);
    snprintf(sql, sizeof sql, "INSERT OR IGNORE INTO \"%s\" (%s) VALUES (%s)", t, cols, marks);
    sqlite3_stmt *ins = prep(db, sql, err);
    if (!ins) return -1;
    int64_t copied = 0;
    for (int pass = 0; pass < 2; pass++) {
        snprintf(sql, sizeof sql, "SELECT %s FROM \"%s\"%s%s", cols, t, pass ? " ORDER BY " : "", pass ? desc_key : "");
        sqlite3_stmt *sel = NULL;
        if (sqlite3_prepare_v2(src, sql, -1, &sel, NULL) != SQLITE_OK) {
            (*errors)++;
            continue;
        }
        int rc;
        while ((rc = sqlite3_step(sel)) == SQLITE_ROW) {
            for (int c = 0; c < ncol; c++) sqlite3_bind_value(ins, c + 1, sqlite3_column_value(sel, c));
            int r = sqlite3_step(ins);
            sqlite3_reset(ins);
            if (r != SQLITE_DONE) {
                sqlite3_finalize(sel);
                sqlite3_finalize(ins);
                return db_fail(db, err, "writing the recovered rows");
            }
            copied += sqlite3_changes(db->h);
        }
        if (rc != SQLITE_DONE) (*errors)++;
        sqlite3_finalize(sel);
    }
    sqlite3_finalize(ins);
    return copied;
}

/* Whether the (possibly damaged) source has table t: an unreadable schema
 * counts as having it, so the copy tries and reports the damage. */
static int src_has_table(sqlite3 *src, const char *t) {
    sqlite3_stmt *st = NULL;
    int has = 1;
    if (sqlite3_prepare_v2(src, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?1", -1, &st,
                           NULL) == SQLITE_OK) {
        sqlite3_bind_text(st, 1, t, -1, SQLITE_STATIC);
        if (sqlite3_step(st) == SQLITE_ROW) has = sqlite3_column_int(st, 0) > 0;
    }
    sqlite3_finalize(st);
    return has;
}

int moe_db_recover(moe_db *db, const char *src_path, void (*report)(void *ctx, const char *line), void *ctx,
                   moe_error *err) {
    struct stat sb;
    if (stat(src_path, &sb) != 0) return moe_fail(err, "%s: cannot open: %s", src_path, strerror(errno));
    /* Read the file as it is: no locks, no WAL recovery, nothing written. */
    char *uri = immutable_uri(src_path);
    sqlite3 *src = NULL;
    int orc = uri ? sqlite3_open_v2(uri, &src, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI, NULL) : SQLITE_NOMEM;
    free(uri);
    if (orc != SQLITE_OK) {
        moe_fail(err, "%s: cannot open: %s", src_path, src ? sqlite3_errmsg(src) : "out of memory");
        sqlite3_close(src);
        return -1;
    }
    static const struct { const char *t, *desc; } tables[] = {
        {"traces", "rowid DESC"},
        {"runs", "rowid DESC"},
        {"run_config", "run_id DESC, key DESC"},
        {"metrics", "run_id DESC, name DESC"},
        {"layer_metrics", "run_id DESC, layer DESC, name DESC"},
        {"curves", "run_id DESC, curve DESC, x DESC"},
        {"expectations", "rowid DESC"},
        {"sequence_counts", "run_id DESC, seq DESC"},
    };
    int rc = -1;
    char line[512];
    if (exec(db, "PRAGMA foreign_keys=OFF", "recovering", err) || exec(db, "BEGIN IMMEDIATE", "recovering", err))
        goto out;
    for (size_t i = 0; i < sizeof tables / sizeof *tables; i++) {
        if (!strcmp(tables[i].t, "sequence_counts") && !src_has_table(src, tables[i].t)) {
            if (report) report(ctx, "sequence_counts: not in this database (schema 1), nothing to copy");
            continue;
        }
        int64_t errors = 0;
        int64_t n = copy_table(db, src, tables[i].t, tables[i].desc, &errors, err);
        if (n < 0) goto out;
        snprintf(line, sizeof line, "%s: %lld rows copied%s", tables[i].t, (long long)n,
                 errors ? " (damaged pages skipped: rows on them are lost)" : "");
        if (report) report(ctx, line);
    }
    /* Make the copy consistent: a run keeps its trace (a placeholder row when
     * the trace's row was lost); runs without config or metrics rows are
     * dropped (a sweep redoes them); rows of unknown runs are dropped. */
    static const struct { const char *sql, *what; } fix[] = {
        {"INSERT INTO traces (hash, path, added_at) SELECT DISTINCT trace_hash, '(lost in recovery)', "
         "strftime('%Y-%m-%dT%H:%M:%SZ', 'now') FROM runs WHERE trace_hash NOT IN (SELECT hash FROM traces)",
         "placeholder trace rows added (trace lost)"},
        {"DELETE FROM runs WHERE id NOT IN (SELECT run_id FROM run_config) OR id NOT IN (SELECT run_id FROM metrics)",
         "runs dropped (config or metrics lost; a sweep redoes them)"},
        {"DELETE FROM run_config WHERE run_id NOT IN (SELECT id FROM runs)", "orphan run_config rows dropped"},
        {"DELETE FROM metrics WHERE run_id NOT IN (SELECT id FROM runs)", "orphan metrics rows dropped"},
        {"DELETE FROM layer_metrics WHERE run_id NOT IN (SELECT id FROM runs)", "orphan layer_metrics rows dropped"},
        {"DELETE FROM curves WHERE run_id NOT IN (SELECT id FROM runs)", "orphan curves rows dropped"},
        {"DELETE FROM sequence_counts WHERE run_id NOT IN (SELECT id FROM runs)", "orphan sequence_counts rows dropped"},
    };
    for (size_t i = 0; i < sizeof fix / sizeof *fix; i++) {
        if (exec(db, fix[i].sql, "recovering", err)) goto out;
        int n = sqlite3_changes(db->h);
        if (n && report) {
            snprintf(line, sizeof line, "%d %s", n, fix[i].what);
            report(ctx, line);
        }
    }
    if (exec(db, "COMMIT", "recovering", err)) goto out;
    rc = 0;
out:
    rollback(db);
    sqlite3_exec(db->h, "PRAGMA foreign_keys=ON", NULL, NULL, NULL);
    sqlite3_close(src);
    return rc;
}

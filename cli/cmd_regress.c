/* cmd_regress.c: `moesim regress` — re-run the configurations listed in a
 * baseline CSV on the shipped traces and fail when a metric got worse.
 *
 * Baseline format (results/baseline.csv, written by --update):
 *
 *   # comment lines (kept by --update)
 *   trace,trace_sha,scope,cold_per_seq,seed,policy,capacity,hit_rate,token_slot_hit_rate
 *   traces/default.moetrace,12635d19...,per-layer,0,1,lru,4,0.612345,0.598765
 *
 * Columns are recognised by name, in any order:
 *   trace       trace path, relative to the directory regress runs in (required)
 *   trace_sha   first 16 hex digits of the trace's content hash (moe_trace_hash);
 *               a mismatch fails the row: the numbers belong to another trace,
 *               and the baseline must be refreshed on purpose (--update)
 *   any replay option of sim/replay_opts.h (policy, capacity, scope,
 *               cold_per_seq, seed, prefetch, precision, device, model, skip,
 *               speculate); an empty cell leaves the option unset
 *   metric columns from the table `metric_dirs` below; each knows whether
 *               higher or lower is better
 * Fields holding commas (policy specs with parameters) are double-quoted.
 *
 * Tolerance: rates and fractions (hit rates, prefetch precision/recall) are
 * compared absolutely (worse by more than T); other metrics (seconds, bytes,
 * tok/s) relatively (worse by more than T x |baseline|). Replays are
 * deterministic, so the default tolerance only absorbs float printing. */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../core/results.h"
#include "cli.h"
#include "commands.h"
#include "../sim/replay.h"
#include "../sim/replay_opts.h"
#include "../sim/runrec.h"

static const char regress_usage[] =
    "usage: moesim regress --baseline F.csv [--tol T] [--update] [--db F] [--verbose]\n"
    "\n"
    "Re-run every configuration of a baseline CSV and compare its metrics with the\n"
    "stored values. Exit status 1 and a diff table when any metric is worse than its\n"
    "baseline by more than the tolerance; improvements are listed but pass.\n"
    "\n"
    "  --baseline F   baseline CSV (columns: trace, trace_sha, replay options such as\n"
    "                 policy, capacity, scope, cold_per_seq, seed, prefetch, device,\n"
    "                 then metrics such as hit_rate, token_slot_hit_rate, tok_s)\n"
    "  --tol T        tolerance (default 0.0005): absolute for rates (hit_rate,\n"
    "                 prefetch precision/recall), relative (T x baseline) otherwise\n"
    "  --update       rewrite the baseline with the values measured now (on purpose:\n"
    "                 commit the new file with a reason)\n"
    "  --db F         also store every run in SQLite database F (experiment 'regress')\n"
    "  --verbose      print every comparison, not only the changed ones\n"
    "  -h, --help     this text\n"
    "\n"
    "Exit status: 0 no regression, 1 a regression or an error, 2 misuse.\n";

/* Metrics a baseline may hold; higher = 1 when a larger value is better,
 * rate = 1 when the tolerance is absolute (values in [0, 1]). */
static const struct {
    const char *name;
    int higher, rate;
} metric_dirs[] = {
    {"hit_rate", 1, 1},           {"token_slot_hit_rate", 1, 1}, {"prefetch_precision", 1, 1},
    {"prefetch_recall", 1, 1},    {"prefetch_recall_k", 1, 1},   {"io_utilisation", 1, 1},
    {"tok_s", 1, 0},              {"hits", 1, 0},                {"misses", 0, 0},
    {"compulsory_misses", 0, 0},  {"evictions", 0, 0},           {"total_s", 0, 0},
    {"ttft_mean_s", 0, 0},        {"tpot_mean_s", 0, 0},         {"tpot_p99_s", 0, 0},
    {"stall_s", 0, 0},            {"bytes_read", 0, 0},          {"skipped_gate_mass", 0, 1},
};
#define N_DIRS (sizeof metric_dirs / sizeof *metric_dirs)

#define MAX_COLS 64

typedef struct row {
    char *cell[MAX_COLS]; /* owned; "" for an empty field */
    unsigned line;
} row;

typedef struct baseline {
    char *comments;       /* leading comment block, kept by --update */
    char *col[MAX_COLS];
    size_t n_cols;
    row *rows;
    size_t n_rows;
    int c_trace, c_sha;   /* column index, -1 if absent */
    int metric[MAX_COLS]; /* index into metric_dirs, -1 for non-metric columns */
} baseline;

/* Split one CSV line into fields (RFC 4180 quoting, no embedded newlines). */
static int split_csv(const char *line, char **out, size_t *n, const char *path, unsigned lineno, moe_error *err) {
    *n = 0;
    const char *p = line;
    for (;;) {
        if (*n == MAX_COLS) return moe_fail(err, "%s:%u: more than %d fields", path, lineno, MAX_COLS);
        size_t cap = strlen(p) + 1, len = 0;
        char *f = malloc(cap);
        if (!f) return moe_fail(err, "out of memory");
        if (*p == '"') {
            p++;
            for (;;) {
                if (!*p) {
                    free(f);
                    return moe_fail(err, "%s:%u: unterminated quoted field", path, lineno);
                }
                if (*p == '"' && p[1] == '"') f[len++] = '"', p += 2;
                else if (*p == '"') {
                    p++;
                    break;
                } else f[len++] = *p++;
            }
            if (*p && *p != ',') {
                free(f);
                return moe_fail(err, "%s:%u: text after a closing quote", path, lineno);
            }
        } else {
            while (*p && *p != ',') f[len++] = *p++;
        }
        f[len] = 0;
        out[(*n)++] = f;
        if (*p != ',') break;
        p++;
    }
    return 0;
}

static void baseline_free(baseline *b) {
    free(b->comments);
    for (size_t i = 0; i < b->n_cols; i++) free(b->col[i]);
    for (size_t r = 0; r < b->n_rows; r++)
        for (size_t i = 0; i < b->n_cols; i++) free(b->rows[r].cell[i]);
    free(b->rows);
    memset(b, 0, sizeof *b);
}

static int is_option_column(const char *name) {
    moe_replay_config probe = {0};
    moe_error e;
    /* opt_set returns 1 for names that are not replay options; a bad value
     * (-1) still means the name is one. "x" is a value no option accepts
     * silently except string ones, which is fine for a probe. */
    return moe_replay_opt_set(&probe, name, "x", &e) != 1;
}

static int baseline_load(const char *path, baseline *b, moe_error *err) {
    FILE *f = fopen(path, "r");
    if (!f) return moe_fail(err, "%s: %s", path, strerror(errno));
    char *line = NULL;
    size_t lcap = 0, ccap = 0, rcap = 0, clen = 0;
    ssize_t got;
    unsigned lineno = 0;
    int rc = 0, have_header = 0;
    b->c_trace = b->c_sha = -1;
    while (rc == 0 && (got = getline(&line, &lcap, f)) >= 0) {
        lineno++;
        while (got > 0 && (line[got - 1] == '\n' || line[got - 1] == '\r')) line[--got] = 0;
        if (line[0] == '#' || (!have_header && got == 0)) {
            if (!have_header) { /* keep the leading comment block */
                if (clen + (size_t)got + 2 > ccap) {
                    ccap = 2 * (clen + (size_t)got + 2);
                    char *c = realloc(b->comments, ccap);
                    if (!c) { rc = moe_fail(err, "out of memory"); break; }
                    b->comments = c;
                }
                memcpy(b->comments + clen, line, (size_t)got);
                clen += (size_t)got;
                b->comments[clen++] = '\n';
                b->comments[clen] = 0;
            }
            continue;
        }
        if (got == 0) continue;
        char *fields[MAX_COLS];
        size_t n;
        if ((rc = split_csv(line, fields, &n, path, lineno, err))) break;
        if (!have_header) {
            have_header = 1;
            b->n_cols = n;
            for (size_t i = 0; i < n; i++) {
                b->col[i] = fields[i];
                b->metric[i] = -1;
                for (size_t k = 0; k < i && rc == 0; k++)
                    if (!strcmp(b->col[k], fields[i]))
                        rc = moe_fail(err, "%s:%u: column '%s' given twice", path, lineno, fields[i]);
                if (rc) break;
                if (!strcmp(fields[i], "trace")) b->c_trace = (int)i;
                else if (!strcmp(fields[i], "trace_sha")) b->c_sha = (int)i;
                else if (!is_option_column(fields[i])) {
                    for (size_t k = 0; k < N_DIRS; k++)
                        if (!strcmp(metric_dirs[k].name, fields[i])) b->metric[i] = (int)k;
                    if (b->metric[i] < 0) {
                        char known[600] = "";
                        for (size_t k = 0; k < N_DIRS; k++)
                            snprintf(known + strlen(known), sizeof known - strlen(known), "%s%s", k ? ", " : "",
                                     metric_dirs[k].name);
                        rc = moe_fail(err, "%s:%u: column '%s' is neither trace, trace_sha, a replay option "
                                      "nor a known metric (%s)", path, lineno, fields[i], known);
                    }
                }
            }
            if (rc == 0 && b->c_trace < 0) rc = moe_fail(err, "%s:%u: no 'trace' column", path, lineno);
            int nm = 0;
            for (size_t i = 0; i < n; i++) nm += b->metric[i] >= 0;
            if (rc == 0 && nm == 0) rc = moe_fail(err, "%s:%u: no metric column (e.g. hit_rate)", path, lineno);
            continue;
        }
        if (n != b->n_cols) {
            for (size_t i = 0; i < n; i++) free(fields[i]);
            rc = moe_fail(err, "%s:%u: %zu fields, the header has %zu", path, lineno, n, b->n_cols);
            break;
        }
        if (b->n_rows == rcap) {
            rcap = rcap ? 2 * rcap : 64;
            row *r = realloc(b->rows, rcap * sizeof *r);
            if (!r) {
                for (size_t i = 0; i < n; i++) free(fields[i]);
                rc = moe_fail(err, "out of memory");
                break;
            }
            b->rows = r;
        }
        row *r = &b->rows[b->n_rows++];
        memset(r, 0, sizeof *r);
        r->line = lineno;
        for (size_t i = 0; i < n; i++) r->cell[i] = fields[i];
    }
    free(line);
    if (rc == 0 && ferror(f)) rc = moe_fail(err, "%s: read error", path);
    fclose(f);
    if (rc == 0 && !have_header) rc = moe_fail(err, "%s: no header line", path);
    if (rc == 0 && b->n_rows == 0) rc = moe_fail(err, "%s: no configurations", path);
    return rc;
}

/* Write a field, quoting when it holds a comma, quote or leading/trailing space. */
static void put_field(FILE *f, const char *s, int first) {
    if (!first) fputc(',', f);
    if (!strpbrk(s, ",\"\n") && !(s[0] == ' ') && !(*s && s[strlen(s) - 1] == ' ')) {
        fputs(s, f);
        return;
    }
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"') fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

static int baseline_write(const char *path, const baseline *b, moe_error *err) {
    char tmp[4200];
    if (snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof tmp)
        return moe_fail(err, "%s: path too long", path);
    FILE *f = fopen(tmp, "w");
    if (!f) return moe_fail(err, "%s: %s", tmp, strerror(errno));
    if (b->comments) fputs(b->comments, f);
    for (size_t i = 0; i < b->n_cols; i++) put_field(f, b->col[i], i == 0);
    fputc('\n', f);
    for (size_t r = 0; r < b->n_rows; r++) {
        for (size_t i = 0; i < b->n_cols; i++) put_field(f, b->rows[r].cell[i], i == 0);
        fputc('\n', f);
    }
    int bad = ferror(f);
    if (fclose(f) || bad) {
        unlink(tmp);
        return moe_fail(err, "%s: write error", tmp);
    }
    if (rename(tmp, path)) {
        int e = errno;
        unlink(tmp);
        return moe_fail(err, "%s: cannot replace: %s", path, strerror(e));
    }
    return 0;
}

/* One loaded trace per distinct path. */
typedef struct trace_cache {
    char *path[256];
    moe_trace *t[256];
    char hash[256][65];
    size_t n;
} trace_cache;

static int get_trace(trace_cache *tc, const char *path, moe_db *db, size_t *idx, moe_error *err) {
    for (size_t i = 0; i < tc->n; i++)
        if (!strcmp(tc->path[i], path)) {
            *idx = i;
            return 0;
        }
    if (tc->n == sizeof tc->t / sizeof *tc->t) return moe_fail(err, "more than 256 traces");
    moe_trace *t = moe_trace_load(path, err);
    if (!t) return -1;
    char *p = strdup(path);
    if (!p) {
        moe_trace_free(t);
        return moe_fail(err, "out of memory");
    }
    /* owned by the cache from here on, freed by the caller's cleanup */
    tc->t[tc->n] = t;
    tc->path[tc->n] = p;
    moe_trace_hash(t, tc->hash[tc->n]);
    *idx = tc->n++;
    if (db && moe_db_add_trace(db, t, path, tc->hash[*idx], err)) return -1;
    return 0;
}

/* The configuration of a row as "key=value ..." (non-empty option cells). */
static void describe(const baseline *b, const row *r, char *buf, size_t cap) {
    size_t used = 0;
    buf[0] = 0;
    for (size_t i = 0; i < b->n_cols; i++) {
        if ((int)i == b->c_trace || (int)i == b->c_sha || b->metric[i] >= 0 || !r->cell[i][0]) continue;
        int w = snprintf(buf + used, cap - used, "%s%s=%s", used ? " " : "", b->col[i], r->cell[i]);
        if (w < 0 || (size_t)w >= cap - used) break;
        used += (size_t)w;
    }
}

int cmd_regress(int argc, char **argv) {
    static const struct option opts[] = {
        {"baseline", required_argument, 0, 'b'}, {"tol", required_argument, 0, 't'},
        {"update", no_argument, 0, 'u'},         {"db", required_argument, 0, 'd'},
        {"verbose", no_argument, 0, 'v'},        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    const char *path = NULL, *db_path = NULL;
    double tol = 0.0005;
    int update = 0, verbose = 0, c;
    moe_error err = {{0}};
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'b': path = optarg; break;
        case 't': {
            char *end;
            errno = 0;
            tol = strtod(optarg, &end);
            if (end == optarg || *end || errno || !(tol >= 0) || !isfinite(tol)) {
                fprintf(stderr, "moesim regress: --tol: expected a number >= 0, got '%s'\n", optarg);
                return 2;
            }
            break;
        }
        case 'u': update = 1; break;
        case 'd': db_path = optarg; break;
        case 'v': verbose = 1; break;
        case 'h': fputs(regress_usage, stdout); return 0;
        default: fputs(regress_usage, stderr); return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "moesim regress: unexpected argument '%s'\n%s", argv[optind], regress_usage);
        return 2;
    }
    if (!path) {
        fprintf(stderr, "moesim regress: --baseline is required\n%s", regress_usage);
        return 2;
    }

    baseline b = {0};
    trace_cache tc = {.n = 0};
    moe_db *db = NULL;
    int status = 1;
    size_t worse = 0, better = 0, compared = 0, missing = 0, sha_bad = 0;
    if (baseline_load(path, &b, &err)) goto fail;
    if (db_path && !(db = moe_db_open(db_path, &err))) goto fail;

    /* --update adds a trace_sha column when the file has none. */
    if (update && b.c_sha < 0) {
        if (b.n_cols == MAX_COLS) {
            moe_fail(&err, "%s: too many columns to add trace_sha", path);
            goto fail;
        }
        for (size_t i = b.n_cols; i > (size_t)b.c_trace + 1; i--) {
            b.col[i] = b.col[i - 1];
            b.metric[i] = b.metric[i - 1];
            for (size_t r = 0; r < b.n_rows; r++) b.rows[r].cell[i] = b.rows[r].cell[i - 1];
        }
        b.c_sha = b.c_trace + 1;
        b.col[b.c_sha] = strdup("trace_sha");
        b.metric[b.c_sha] = -1;
        int oom = !b.col[b.c_sha];
        for (size_t r = 0; r < b.n_rows; r++) oom |= !(b.rows[r].cell[b.c_sha] = strdup(""));
        b.n_cols++;
        if (oom) {
            moe_fail(&err, "out of memory");
            goto fail;
        }
    }

    const char *hdr = "%-6s %-19s %10s %10s %10s  %s\n";
    int printed_hdr = 0;
#define HEADER() do { if (!printed_hdr) { printf(hdr, "status", "metric", "baseline", "now", "diff", "configuration"); printed_hdr = 1; } } while (0)
    for (size_t ri = 0; ri < b.n_rows; ri++) {
        row *r = &b.rows[ri];
        const char *tpath = r->cell[b.c_trace];
        if (!tpath[0]) {
            moe_fail(&err, "%s:%u: empty trace path", path, r->line);
            goto fail;
        }
        size_t ti = 0;
        if (get_trace(&tc, tpath, db, &ti, &err)) {
            moe_fail_prefix(&err, "%s:%u", path, r->line);
            goto fail;
        }
        moe_replay_config cfg = {.policy = "lru", .seed = 1, .scope = MOE_SCOPE_PER_LAYER};
        int have_cap = 0;
        for (size_t i = 0; i < b.n_cols; i++) {
            if ((int)i == b.c_trace || (int)i == b.c_sha || b.metric[i] >= 0 || !r->cell[i][0]) continue;
            if (moe_replay_opt_set(&cfg, b.col[i], r->cell[i], &err)) {
                moe_fail_prefix(&err, "%s:%u: column '%s'", path, r->line, b.col[i]);
                goto fail;
            }
            have_cap |= !strcmp(b.col[i], "capacity");
        }
        if (!have_cap) {
            moe_fail(&err, "%s:%u: no capacity", path, r->line);
            goto fail;
        }
        if (moe_replay_config_check(&cfg, &err)) {
            moe_fail_prefix(&err, "%s:%u", path, r->line);
            goto fail;
        }
        char desc[1024], sha[17];
        describe(&b, r, desc, sizeof desc);
        char full[1400];
        snprintf(full, sizeof full, "%s %s", tpath, desc);
        memcpy(sha, tc.hash[ti], 16);
        sha[16] = 0;
        if (b.c_sha >= 0 && !update && strcmp(r->cell[b.c_sha], sha)) {
            HEADER();
            printf(hdr, "TRACE", "trace_sha", r->cell[b.c_sha][0] ? r->cell[b.c_sha] : "(none)", sha, "", full);
            sha_bad++;
            continue;
        }
        moe_replay_result res;
        if (moe_replay(tc.t[ti], &cfg, &res, &err)) {
            moe_fail_prefix(&err, "%s:%u", path, r->line);
            goto fail;
        }
        if (db && moe_run_store(db, "regress", tc.hash[ti], &cfg, &res, &err)) {
            moe_replay_result_free(&res);
            goto fail;
        }
        moe_metric m[128];
        size_t nm = moe_run_metrics(&res, m, 128);
        for (size_t i = 0; i < b.n_cols; i++) {
            if (b.metric[i] < 0) continue;
            const char *name = b.col[i];
            double now = NAN;
            for (size_t k = 0; k < nm; k++)
                if (!strcmp(m[k].name, name)) now = m[k].value;
            if (isnan(now)) {
                moe_replay_result_free(&res);
                moe_fail(&err, "%s:%u: this configuration reports no metric '%s' "
                         "(timing metrics need a device, prefetch metrics a prefetcher)", path, r->line, name);
                goto fail;
            }
            if (update) {
                char v[64];
                snprintf(v, sizeof v, "%.6f", now);
                char *s = strdup(v);
                if (!s) {
                    moe_replay_result_free(&res);
                    goto oom;
                }
                free(r->cell[i]);
                r->cell[i] = s;
                continue;
            }
            const char *cell = r->cell[i];
            char *end;
            errno = 0;
            double base = strtod(cell, &end);
            if (!*cell) {
                HEADER();
                printf(hdr, "NOBASE", name, "(empty)", "", "", full);
                missing++;
                continue;
            }
            if (end == cell || *end || errno || !isfinite(base)) {
                moe_replay_result_free(&res);
                moe_fail(&err, "%s:%u: column '%s': '%s' is not a number", path, r->line, name, cell);
                goto fail;
            }
            compared++;
            const int higher = metric_dirs[b.metric[i]].higher;
            double allowed = metric_dirs[b.metric[i]].rate ? tol : tol * fabs(base);
            double gain = higher ? now - base : base - now; /* > 0: better */
            /* Values are stored with 6 decimals: half a unit of the last
             * place is rounding, not a change. */
            allowed += 5e-7;
            const char *st = gain < -allowed ? "WORSE" : gain > allowed ? "better" : "ok";
            if (gain < -allowed) worse++;
            else if (gain > allowed) better++;
            if (verbose || strcmp(st, "ok")) {
                char bs[32], ns[32], ds[32];
                snprintf(bs, sizeof bs, "%.6f", base);
                snprintf(ns, sizeof ns, "%.6f", now);
                snprintf(ds, sizeof ds, "%+.6f", now - base);
                HEADER();
                printf(hdr, st, name, bs, ns, ds, full);
            }
        }
        if (update && b.c_sha >= 0) {
            free(r->cell[b.c_sha]);
            if (!(r->cell[b.c_sha] = strdup(sha))) {
                moe_replay_result_free(&res);
                goto oom;
            }
        }
        moe_replay_result_free(&res);
    }
    if (update) {
        if (baseline_write(path, &b, &err)) goto fail;
        printf("regress: %s rewritten with %zu configurations measured now\n", path, b.n_rows);
        status = 0;
    } else {
        printf("regress: %zu configurations, %zu comparisons: %zu worse, %zu better, %zu within %g"
               "%s%s (baseline %s)\n",
               b.n_rows, compared, worse, better, compared - worse - better, tol,
               sha_bad ? ", traces changed: " : "", sha_bad ? "yes" : "", path);
        if (worse) printf("regress: FAILED: %zu metric(s) worse than the baseline by more than the tolerance\n", worse);
        if (sha_bad)
            printf("regress: FAILED: %zu configuration(s) on a trace whose content changed; "
                   "check and refresh with --update\n", sha_bad);
        if (missing) printf("regress: FAILED: %zu baseline value(s) empty; fill them with --update\n", missing);
        if (better && !worse)
            printf("regress: %zu metric(s) improved; refresh the baseline with --update to lock them in\n", better);
        status = worse || sha_bad || missing ? 1 : 0;
    }
    if (db && moe_db_close(db, &err)) {
        db = NULL;
        goto fail;
    }
    db = NULL;
    goto out;
oom:
    moe_fail(&err, "out of memory");
fail:
    cli_error("regress", &err);
    status = 1;
out:
    if (db) moe_db_close(db, NULL);
    for (size_t i = 0; i < tc.n; i++) {
        moe_trace_free(tc.t[i]);
        free(tc.path[i]);
    }
    baseline_free(&b);
    return status;
}

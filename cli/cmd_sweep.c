/* cmd_sweep.c: `moesim sweep` — the cartesian product of traces, scopes,
 * policies and capacities, replayed on N threads into one SQLite database.
 *
 * Resume: every run is planned with its identity (trace hash, canonical
 * config text) and skipped when the database already holds it complete;
 * each finished run is stored in its own transaction, so a sweep killed at
 * any point loses at most the runs in flight and a rerun redoes only those.
 *
 * Threads and SQLite: one connection shared by the workers and serialised by
 * the sweep's mutex. SQLite admits one writer per database file anyway, so
 * per-thread connections would only add lock contention and SQLITE_BUSY
 * retries between our own threads; a store takes milliseconds while a replay
 * takes far longer, so the mutex is never the bottleneck. The same mutex
 * guards the job counter, the tallies and the progress bar. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../core/cache.h"
#include "../core/policy.h"
#include "../core/results.h"
#include "../core/units.h"
#include "cli.h"
#include "experiment.h"
#include "commands.h"
#include "results_table.h"
#include "../sim/replay.h"
#include "../sim/replay_check.h"
#include "../sim/runrec.h"

static const char sweep_usage[] =
    "usage: moesim sweep EXPERIMENT.ini [--db F] [--shard i/N] [--jobs N] [--json]\n"
    "       moesim sweep --trace F [--trace F2 ...] --policies LIST --capacities LIST [--db F] [options]\n"
    "\n"
    "An experiment file (experiments/*.ini; every key in docs/reference.md) gives the\n"
    "traces, scopes, policies, capacities (experts, bytes, %, or rho = multiple of\n"
    "top_k), cold-per-seq, seeds, prefetchers, precision, device and model profile,\n"
    "and the published values to compare against; its runs go to --db, by default\n"
    "results/NAME.db (results/NAME.shard-i-of-N.db with --shard; results/ is made\n"
    "if missing).\n"
    "\n"
    "Replay every combination of trace, scope, policy and capacity and store each run\n"
    "in an SQLite database. Runs already complete in the database are skipped, so an\n"
    "interrupted sweep is resumed by running the same command again.\n"
    "\n"
    "  --trace F          trace file (.moetrace or .csv); repeat for several\n"
    "  --policies LIST    comma-separated policy specs, or 'all' for every registered\n"
    "                     policy (`moesim policies`) that applies to the run's options\n"
    "                     (those left out are named on stderr); a spec's own parameters\n"
    "                     may follow it: lru,s3fifo:small=0.2,threshold=2,fifo\n"
    "  --capacities LIST  comma-separated values or ranges START:END[:STEP],\n"
    "                     e.g. 1,2,4 or 1:32 or 1:32:4 or 1,2,8:64:8\n"
    "  --scope LIST       per-layer (default), global, or per-layer,global\n"
    "  --cold-per-seq     empty the cache whenever a new sequence starts\n"
    "  --seed N           seed for randomised policies (default 1)\n"
    "  --prefetch LIST    prefetchers, e.g. none,gate:ahead=1,n=2,oracle (see moesim run --help)\n"
    "  --precision LIST   precision schemes, e.g. uniform:bits=4,mlx-tiers\n"
    "  --device LIST      device profiles (experiments/devices.ini): turns on the timing model\n"
    "  --model LIST       model profiles (experiments/models.ini)\n"
    "  --skip S           skip-on-miss / adaptive top-k, e.g. cum=0.9 (one value)\n"
    "  --on-miss M        wait, skip or substitute a missing expert (one value;\n"
    "                     `moesim run --help`)\n"
    "  --speculate        run predicted next-layer experts while the lane stalls on I/O\n"
    "  --stream-dense[=B] stream each layer's dense weights too, within B layer buffers\n"
    "                     (default 2; one value; bytes from --model's dense_params)\n"
    "  --split S          per-layer capacity split: uniform, adapmoe, fate:shallow=1.5\n"
    "  --devices F, --models F   other profile files\n"
    "  --db F             SQLite results database (created if missing). Without it\n"
    "                     (and without an experiment file) the runs go to a temporary\n"
    "                     database, removed at the end, and the sweep prints their\n"
    "                     hit rates (and tok/s when timed) as policy x capacity\n"
    "                     tables, as `moesim results table` does\n"
    "  --experiment NAME  experiment label stored with each run\n"
    "  --jobs N           worker threads (default: all cores)\n"
    "  --shard i/N        run only slice i (1..N) of the run list: runs whose index in\n"
    "                     the deterministic list is i-1 modulo N; merge the shards'\n"
    "                     databases with `moesim results merge`\n"
    "  --strict           exit 1 when an [expect] block of the experiment is not met\n"
    "                     (each is checked after the runs, a PASS or FAIL line)\n"
    "  --json             print one JSON object per run replayed, then a summary object\n"
    "  -h, --help         this text\n"
    "\n"
    "Before the first run, and before the database is opened, every run of the list\n"
    "is checked with the replay's own rules; if some cannot run, one message lists\n"
    "each reason with its runs and the sweep exits 2 having changed nothing.\n"
    "A progress bar (runs done/total, ETA) is drawn on stderr when it is a terminal.\n"
    "Exit status: 0 all runs stored, 1 some run failed or an error, 2 misuse (a run\n"
    "list that cannot run included).\n"
    "\n"
    "examples:\n"
    "  moesim sweep experiments/policies.ini --db policies.db\n"
    "  moesim sweep --trace traces/default.moetrace --policies lru,s3fifo,belady --capacities 1:4 --db r.db\n";

typedef moe_exp_run sweep_job;

typedef struct sweep {
    pthread_mutex_t lock;
    /* read-only while the workers run */
    moe_trace **traces;
    const char **paths;
    char (*hashes)[65];
    sweep_job *jobs;
    size_t n_jobs, total; /* total includes skipped runs */
    const char *experiment, *cmd;
    int json, progress;
    /* under lock */
    moe_db *db;
    size_t next, ran, failed, skipped;
    size_t not_run;  /* jobs never started because the database failed */
    int stopped;
    char **json_out; /* per job, printed in plan order at the end */
    struct timespec t0;
    int bar_drawn;
} sweep;

static double since(const struct timespec *t0) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)(t.tv_sec - t0->tv_sec) + (double)(t.tv_nsec - t0->tv_nsec) * 1e-9;
}

static void fmt_secs(double s, char *buf, size_t cap) {
    long v = (long)(s + 0.5);
    if (v >= 3600) snprintf(buf, cap, "%ld:%02ld:%02ld", v / 3600, v / 60 % 60, v % 60);
    else snprintf(buf, cap, "%ld:%02ld", v / 60, v % 60);
}

/* Called under the lock. ETA from the mean time per replayed run so far. */
static void draw_bar(sweep *sw) {
    if (!sw->progress) return;
    size_t done = sw->skipped + sw->ran + sw->failed, width = 30;
    size_t fill = sw->total ? done * width / sw->total : width;
    char bar[64], eta[32] = "--:--";
    for (size_t i = 0; i < width; i++) bar[i] = i < fill ? '#' : '.';
    bar[width] = 0;
    size_t replayed = sw->ran + sw->failed;
    double el = since(&sw->t0);
    if (replayed > 0) fmt_secs(el / (double)replayed * (double)(sw->n_jobs - replayed), eta, sizeof eta);
    fprintf(stderr, "\r[%s] %zu/%zu runs, %zu failed, ETA %s ", bar, done, sw->total, sw->failed, eta);
    fflush(stderr);
    sw->bar_drawn = 1;
}

static void clear_bar(sweep *sw) {
    if (sw->bar_drawn) fprintf(stderr, "\r%*s\r", 79, "");
    sw->bar_drawn = 0;
}

static void *worker(void *arg) {
    sweep *sw = arg;
    for (;;) {
        pthread_mutex_lock(&sw->lock);
        size_t j = sw->next < sw->n_jobs ? sw->next++ : SIZE_MAX;
        pthread_mutex_unlock(&sw->lock);
        if (j == SIZE_MAX) break;
        const sweep_job *job = &sw->jobs[j];
        moe_replay_config cfg = job->cfg;
        cfg.policy = job->policy;
        moe_replay_result res;
        moe_error err = {{0}};
        int replayed = moe_replay(sw->traces[job->trace], &cfg, &res, &err) == 0, rc = replayed ? 0 : -1;
        char *json = NULL;
        if (replayed && sw->json) json = moe_run_json(&cfg, &res, sw->paths[job->trace]);
        pthread_mutex_lock(&sw->lock);
        if (replayed && moe_run_store(sw->db, sw->experiment, sw->hashes[job->trace], &cfg, &res, &err)) {
            rc = -1;
            /* A database that cannot take one run (full disk, lost lock,
             * read-only) will not take the next: stop handing out jobs. */
            if (!sw->stopped) sw->not_run = sw->n_jobs - sw->next;
            sw->stopped = 1;
            sw->next = sw->n_jobs;
        }
        if (rc == 0) {
            sw->ran++;
            sw->json_out[j] = json;
        } else {
            sw->failed++;
            free(json);
            clear_bar(sw);
            char cap[96];
            fprintf(stderr, "moesim %s: %s, %s, capacity %s, %s: %s\n", sw->cmd, sw->paths[job->trace],
                    job->policy, moe_capacity_text(&cfg, cap, sizeof cap), moe_scope_name(cfg.scope), err.msg);
        }
        draw_bar(sw);
        pthread_mutex_unlock(&sw->lock);
        if (replayed) moe_replay_result_free(&res);
    }
    return NULL;
}

/* The runs of this shard (the list is deterministic, so every shard of a
 * sweep sees the same one) minus those already complete in the database.
 * The shard is taken before the database is consulted, so every shard sees
 * the same list whatever its database already holds. */
static int plan(sweep *sw, moe_exp_run *all, size_t n_all, uint64_t shard_i, uint64_t shard_n, moe_error *err) {
    sw->jobs = all; /* compacted in place below */
    for (size_t i = 0; i < n_all; i++) {
        if (shard_n > 1 && i % shard_n != shard_i - 1) continue;
        moe_exp_run *r = &all[i];
        moe_exp_run_bind(r);
        char text[4096];
        if (moe_run_config_text_err(&r->cfg, r->policy, text, sizeof text, err)) return -1;
        sw->total++;
        int ex = moe_db_run_exists(sw->db, sw->hashes[r->trace], text, err);
        if (ex < 0) return -1;
        if (ex) {
            sw->skipped++;
            continue;
        }
        if (sw->n_jobs != i) all[sw->n_jobs] = *r;
        moe_exp_run_bind(&all[sw->n_jobs]);
        sw->n_jobs++;
    }
    return 0;
}

/* One reason runs cannot start, with how many and which policies. */
typedef struct refusal {
    char msg[sizeof(((moe_error *)0)->msg)];
    size_t runs, first;
    char policies[256];
} refusal;

/* Check every run of the list (all shards: every shard must refuse the
 * same list) with the replay's own rules (moe_replay_check) before any run
 * starts and before the database is touched. Prints one message listing
 * each reason with its runs and a hint; returns the number of runs that
 * cannot run (0 = all can), or -1 out of memory. */
static long check_runs(const sweep *sw, moe_exp_run *runs, size_t n, const char *db_path) {
    refusal *r = NULL;
    size_t nr = 0, bad = 0;
    for (size_t i = 0; i < n; i++) {
        moe_exp_run_bind(&runs[i]);
        moe_error e = {{0}};
        if (!moe_replay_check(sw->traces[runs[i].trace], &runs[i].cfg, &e)) continue;
        bad++;
        size_t k = 0;
        while (k < nr && strcmp(r[k].msg, e.msg)) k++;
        if (k == nr) {
            refusal *g = realloc(r, (nr + 1) * sizeof *r);
            if (!g) return free(r), -1;
            r = g;
            memset(&r[nr], 0, sizeof *r);
            snprintf(r[nr].msg, sizeof r[nr].msg, "%s", e.msg);
            r[nr++].first = i;
        }
        r[k].runs++;
        /* the policy names, as written in its spec up to ':' */
        char name[64];
        size_t len = strcspn(runs[i].policy, ":");
        snprintf(name, sizeof name, "%.*s", (int)(len < sizeof name ? len : sizeof name - 1), runs[i].policy);
        char item[80];
        snprintf(item, sizeof item, " %s,", name); /* the list is " a, b," while it grows */
        if (!strstr(r[k].policies, item)) {
            size_t l = strlen(r[k].policies);
            snprintf(r[k].policies + l, sizeof r[k].policies - l, "%s", item);
        }
    }
    if (!bad) return 0;
    fprintf(stderr, "moesim %s: %zu of %zu runs cannot run; nothing was run and %s was not touched:\n", sw->cmd, bad, n,
            db_path);
    for (size_t k = 0; k < nr; k++) {
        const moe_exp_run *x = &runs[r[k].first];
        char capt[96];
        size_t pl = strlen(r[k].policies);
        if (pl) r[k].policies[pl - 1] = 0; /* the last comma */
        fprintf(stderr, "  %zu run%s (policies%s; e.g. %s, %s, capacity %s, %s): %s\n", r[k].runs,
                r[k].runs == 1 ? "" : "s", r[k].policies, sw->paths[x->trace], x->policy,
                moe_capacity_text(&x->cfg, capt, sizeof capt), moe_scope_name(x->cfg.scope), r[k].msg);
    }
    fprintf(stderr, "moesim %s: hint: change the options named above, or leave those runs out of the list "
                    "(--policies all keeps only the policies that apply); `moesim run` with one run's options "
                    "gives the same message\n", sw->cmd);
    free(r);
    return (long)bad;
}

/* Store the experiment's expectations (INSERT OR REPLACE: the file is the
 * truth for its own experiment). A second connection, since moe_db keeps its
 * handle private; it is closed before any worker writes. */
static int store_expectations(const char *db_path, const moe_experiment *exp, moe_error *err) {
    if (!exp->n_expects) return 0;
    sqlite3 *h = NULL;
    sqlite3_stmt *st = NULL;
    int rc = -1;
    if (sqlite3_open_v2(db_path, &h, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK) goto out;
    sqlite3_busy_timeout(h, 60000);
    if (sqlite3_exec(h, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) goto out;
    if (sqlite3_prepare_v2(h, "INSERT OR REPLACE INTO expectations (experiment, metric, selector, value, tolerance, source)"
                              " VALUES (?, ?, ?, ?, ?, ?)", -1, &st, NULL) != SQLITE_OK)
        goto out;
    for (size_t i = 0; i < exp->n_expects; i++) {
        const moe_expectation *x = &exp->expects[i];
        sqlite3_reset(st);
        sqlite3_bind_text(st, 1, exp->name, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, x->metric, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, x->selector, -1, SQLITE_STATIC);
        sqlite3_bind_double(st, 4, x->value);
        sqlite3_bind_double(st, 5, x->tolerance);
        sqlite3_bind_text(st, 6, x->source, -1, SQLITE_STATIC);
        if (sqlite3_step(st) != SQLITE_DONE) goto out;
    }
    if (sqlite3_exec(h, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) goto out;
    rc = 0;
out:
    if (rc) moe_fail(err, "%s: storing expectations: %s", db_path, h ? sqlite3_errmsg(h) : "out of memory");
    sqlite3_finalize(st);
    if (h) {
        if (rc) sqlite3_exec(h, "ROLLBACK", NULL, NULL, NULL);
        sqlite3_close(h);
    }
    return rc;
}

/* The experiment's [expect] blocks against the runs now in the database:
 * the metric's mean over the experiment's finished runs whose configuration
 * has every key=value of the selector (none given: all of them), within
 * the tolerance or not. One line each (to out); returns how many failed,
 * counting an expectation no run matches as failed; -1 on a database error. */
static int check_expectations(const char *db_path, const char *experiment, const moe_experiment *exp, FILE *out,
                              moe_error *err) {
    sqlite3 *h = NULL;
    if (sqlite3_open_v2(db_path, &h, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        moe_fail(err, "%s: checking expectations: %s", db_path, h ? sqlite3_errmsg(h) : "out of memory");
        sqlite3_close(h);
        return -1;
    }
    sqlite3_busy_timeout(h, 60000);
    int failed = 0;
    for (size_t i = 0; i < exp->n_expects && failed >= 0; i++) {
        const moe_expectation *x = &exp->expects[i];
        char sql[4096] = "SELECT AVG(m.value), COUNT(*) FROM runs r JOIN metrics m ON m.run_id = r.id AND m.name = ?1 "
                         "WHERE r.experiment = ?2 AND r.status = 'done'";
        char sel[1024], *kv[32], *save = NULL;
        int n = 0;
        snprintf(sel, sizeof sel, "%s", x->selector);
        for (char *t = strtok_r(sel, " \t", &save); t && n < 32; t = strtok_r(NULL, " \t", &save)) {
            kv[n++] = t;
            size_t l = strlen(sql);
            snprintf(sql + l, sizeof sql - l, " AND EXISTS (SELECT 1 FROM run_config c WHERE c.run_id = r.id AND "
                                              "c.key = ?%d AND c.value = ?%d)", 2 * n + 1, 2 * n + 2);
        }
        sqlite3_stmt *st = NULL;
        if (sqlite3_prepare_v2(h, sql, -1, &st, NULL) != SQLITE_OK) {
            moe_fail(err, "%s: checking expectations: %s", db_path, sqlite3_errmsg(h));
            failed = -1;
            break;
        }
        sqlite3_bind_text(st, 1, x->metric, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, experiment, -1, SQLITE_STATIC);
        for (int k = 0; k < n; k++) {
            char *eq = strchr(kv[k], '=');
            if (eq) *eq = 0;
            sqlite3_bind_text(st, 2 * k + 3, kv[k], -1, SQLITE_STATIC);
            sqlite3_bind_text(st, 2 * k + 4, eq ? eq + 1 : "", -1, SQLITE_STATIC);
        }
        double got = 0;
        long runs = 0;
        if (sqlite3_step(st) == SQLITE_ROW) got = sqlite3_column_double(st, 0), runs = sqlite3_column_int64(st, 1);
        sqlite3_finalize(st);
        int ok = runs > 0 && fabs(got - x->value) <= x->tolerance;
        failed += !ok;
        if (runs == 0)
            fprintf(out, "expect %s: FAIL: no finished run of experiment %s has %s%s%s\n", x->name, experiment,
                    x->metric, x->selector[0] ? " and " : "", x->selector);
        else
            fprintf(out, "expect %s: %s = %.4g (mean of %ld run%s), expected %.4g +- %.4g: %s%s%s%s\n", x->name, x->metric,
                    got, runs, runs == 1 ? "" : "s", x->value, x->tolerance, ok ? "PASS" : "FAIL",
                    x->source[0] ? " (" : "", x->source, x->source[0] ? ")" : "");
    }
    sqlite3_close(h);
    return failed;
}

/* The runs of a sweep without --db, as `results table` prints them: hit
 * rates, and tok/s when a device profile timed them. */
static int print_tables(const char *db_path, const moe_experiment *exp, moe_error *err) {
    sqlite3 *h = moe_db_open_readonly(db_path, NULL, err);
    if (!h) return -1;
    results_table_opts o = {.metric = "hit_rate"};
    int timed = 0;
    for (size_t i = 0; i < exp->devices.n; i++) timed |= exp->devices.v[i][0] != 0;
    printf("\n");
    int rc = results_table_print(h, db_path, &o, stdout, err);
    if (!rc && timed) {
        o.metric = "tok_s";
        printf("\n");
        rc = results_table_print(h, db_path, &o, stdout, err);
    }
    sqlite3_close(h);
    return rc;
}

/* Remove the temporary database of a sweep without --db, and its folder. */
static void remove_tmp_db(const char *dir) {
    static const char *const files[] = {"sweep.db", "sweep.db-wal", "sweep.db-shm"};
    char p[700];
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, files[i]);
        unlink(p);
    }
    rmdir(dir);
}

/* "i/N" with 1 <= i <= N. */
static int parse_shard(const char *s, uint64_t *i, uint64_t *n, moe_error *err) {
    const char *slash = strchr(s, '/');
    char a[32];
    if (!slash || (size_t)(slash - s) >= sizeof a) return moe_fail(err, "--shard: expected i/N (e.g. 2/4), got '%s'", s);
    memcpy(a, s, (size_t)(slash - s));
    a[slash - s] = 0;
    if (cli_parse_u64("--shard", a, 1000000, i, err) || cli_parse_u64("--shard", slash + 1, 1000000, n, err)) return -1;
    if (*n < 1 || *i < 1 || *i > *n) return moe_fail(err, "--shard: '%s': need 1 <= i <= N", s);
    return 0;
}

int cmd_sweep(int argc, char **argv) {
    static const struct option opts[] = {
        {"trace", required_argument, 0, 't'},      {"policies", required_argument, 0, 'p'},
        {"policy", required_argument, 0, 'p'},     {"capacities", required_argument, 0, 'c'},
        {"scope", required_argument, 0, 's'},      {"cold-per-seq", no_argument, 0, 'C'},
        {"seed", required_argument, 0, 'S'},       {"db", required_argument, 0, 'd'},
        {"experiment", required_argument, 0, 'e'}, {"jobs", required_argument, 0, 'j'},
        {"json", no_argument, 0, 'J'},             {"shard", required_argument, 0, 'x'},
        {"strict", no_argument, 0, 'Z'},
        /* issue-4 axes, applied by name exactly as an experiment file's keys */
        {"prefetch", required_argument, 0, 'X'},   {"precision", required_argument, 0, 'X'},
        {"device", required_argument, 0, 'X'},     {"model", required_argument, 0, 'X'},
        {"skip", required_argument, 0, 'X'},       {"on-miss", required_argument, 0, 'X'},       {"split", required_argument, 0, 'X'},
        {"speculate", no_argument, 0, 'X'},        {"devices", required_argument, 0, 'X'},
        {"stream-dense", optional_argument, 0, 'X'},
        {"models", required_argument, 0, 'X'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    moe_experiment exp = {0};
    int c, status = 2, cli_axes = 0, have_caps = 0;
    const char *db_path = NULL, *experiment = NULL;
    char db_buf[600], tmp_dir[512] = "";
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    uint64_t jobs = ncpu > 0 ? (uint64_t)ncpu : 1, v, shard_i = 1, shard_n = 1, seed = 1;
    int have_seed = 0, strict = 0;
    moe_error err = {{0}};
    sweep sw = {.experiment = "", .cmd = "sweep"};
    pthread_mutex_init(&sw.lock, NULL);
    optind = 1;
    int idx;
    while ((c = getopt_long(argc, argv, "h", opts, &idx)) != -1) {
        switch (c) {
        case 'X':
            cli_axes = 1;
            if (moe_experiment_set(&exp, opts[idx].name, optarg ? optarg : "on", &err)) {
                moe_fail_prefix(&err, "--%s", opts[idx].name);
                goto misuse;
            }
            break;
        case 't':
            cli_axes = 1;
            if (moe_str_list_push(&exp.traces, optarg, strlen(optarg))) goto oom;
            break;
        case 'Z': strict = 1; break;
        case 'p':
            cli_axes = 1;
            if (moe_experiment_add_policies(&exp, optarg, &err)) goto misuse_opt;
            break;
        case 'c':
            cli_axes = 1;
            if (moe_experiment_add_capacities(&exp, optarg, &err)) goto misuse_opt;
            have_caps = 1;
            break;
        case 's': {
            cli_axes = 1;
            moe_str_list items = {0};
            if (moe_split_specs(optarg, "scope", &items, &err)) {
                moe_str_list_free(&items);
                goto misuse_opt;
            }
            for (size_t i = 0; i < items.n; i++) {
                int sc;
                if (moe_scope_parse(items.v[i], &sc, &err)) {
                    moe_str_list_free(&items);
                    goto misuse;
                }
                if (!(exp.n_scopes == 1 && exp.scopes[0] == sc) && exp.n_scopes < 2) exp.scopes[exp.n_scopes++] = sc;
            }
            moe_str_list_free(&items);
            break;
        }
        case 'C':
            cli_axes = 1;
            exp.cold[0] = 1;
            exp.n_cold = 1;
            break;
        case 'S':
            cli_axes = 1;
            if (cli_parse_u64("--seed", optarg, UINT64_MAX, &seed, &err)) goto misuse;
            have_seed = 1;
            break;
        case 'd': db_path = optarg; break;
        case 'e': experiment = optarg; break;
        case 'j':
            if (cli_parse_u64("--jobs", optarg, 1024, &v, &err)) goto misuse;
            jobs = v ? v : 1;
            break;
        case 'J': sw.json = 1; break;
        case 'x':
            if (parse_shard(optarg, &shard_i, &shard_n, &err)) goto misuse;
            break;
        case 'h':
            fputs(sweep_usage, stdout);
            status = 0;
            goto out;
        default: fputs(sweep_usage, stderr); goto out;
        }
    }
    if (optind < argc) {
        const char *ini = argv[optind];
        if (optind + 1 < argc) {
            fprintf(stderr, "moesim sweep: unexpected argument '%s' (one experiment file per sweep)\n%s",
                    argv[optind + 1], sweep_usage);
            goto out;
        }
        if (cli_axes) {
            fprintf(stderr, "moesim sweep: %s sets traces, policies, capacities, scopes, cold-per-seq and seeds; "
                            "--trace, --policies, --capacities, --scope, --cold-per-seq and --seed cannot be "
                            "combined with it\n", ini);
            goto out;
        }
        if (moe_experiment_load(ini, &exp, &err)) {
            status = 1;
            goto fail;
        }
        if (!db_path) {
            /* results/<name>.db, one file per shard */
            if (shard_n > 1)
                snprintf(db_buf, sizeof db_buf, "results/%s.shard-%llu-of-%llu.db", exp.name,
                         (unsigned long long)shard_i, (unsigned long long)shard_n);
            else snprintf(db_buf, sizeof db_buf, "results/%s.db", exp.name);
            db_path = db_buf;
            /* the default folder, made where the sweep runs (outside a
             * checkout there is none); a failure shows when the database
             * opens, with its path */
            (void)mkdir("results", 0777);
        }
    } else {
        if (!exp.traces.n || !exp.policies.n || !have_caps) {
            fprintf(stderr, "moesim sweep: an experiment file, or --trace, --policies and --capacities, "
                            "are required\n%s", sweep_usage);
            goto out;
        }
        if (!db_path) { /* a temporary database, shown as tables at the end */
            const char *tmp = getenv("TMPDIR");
            snprintf(tmp_dir, sizeof tmp_dir, "%s/moesim-sweep-XXXXXX", tmp && *tmp ? tmp : "/tmp");
            if (!mkdtemp(tmp_dir)) {
                moe_fail(&err, "%s: cannot create a temporary folder: %s (give --db F)", tmp_dir, strerror(errno));
                tmp_dir[0] = 0;
                status = 1;
                goto fail;
            }
            snprintf(db_buf, sizeof db_buf, "%s/sweep.db", tmp_dir);
            db_path = db_buf;
        }
        if (have_seed) {
            if (!(exp.seeds = malloc(sizeof *exp.seeds))) goto oom;
            exp.seeds[0] = seed;
            exp.n_seeds = 1;
        }
    }
    sw.experiment = experiment ? experiment : exp.name;

    /* Load the traces and plan the runs; trace errors exit 1. */
    status = 1;
    sw.traces = calloc(exp.traces.n, sizeof *sw.traces);
    sw.hashes = calloc(exp.traces.n, sizeof *sw.hashes);
    sw.paths = (const char **)exp.traces.v;
    if (!sw.traces || !sw.hashes) goto oom;
    for (size_t i = 0; i < exp.traces.n; i++) {
        if (!(sw.traces[i] = moe_trace_load_ex(exp.traces.v[i], MOE_LOAD_KEYS, &err))) goto fail;
        moe_trace_hash(sw.traces[i], sw.hashes[i]);
    }
    /* A run list that cannot run is misuse (exit 2), found before any run
     * and before the database is opened. */
    {
        moe_exp_run *all = NULL;
        size_t n_all = 0;
        moe_str_list left = {0};
        if (moe_experiment_plan(&exp, sw.traces, sw.hashes, &all, &n_all, &left, &err)) {
            moe_str_list_free(&left);
            goto misuse;
        }
        sw.jobs = all;
        for (size_t i = 0; i < left.n; i++) /* once per policy and reason */
            fprintf(stderr, "moesim sweep: --policies all: left out %s\n", left.v[i]);
        moe_str_list_free(&left);
        long bad = check_runs(&sw, all, n_all, db_path);
        if (bad < 0) goto oom;
        if (bad > 0) {
            status = 2;
            goto out;
        }
        if (!(sw.db = moe_db_open(db_path, &err))) goto fail;
        for (size_t i = 0; i < exp.traces.n; i++)
            if (moe_db_add_trace_hashed(sw.db, sw.traces[i], exp.traces.v[i], sw.hashes[i], &err)) goto fail;
        if (plan(&sw, all, n_all, shard_i, shard_n, &err)) goto fail;
    }
    if (store_expectations(db_path, &exp, &err)) goto fail;
    sw.json_out = calloc(sw.n_jobs ? sw.n_jobs : 1, sizeof *sw.json_out);
    if (!sw.json_out) goto oom;
    sw.progress = cli_is_tty(2);
    clock_gettime(CLOCK_MONOTONIC, &sw.t0);
    if (jobs > sw.n_jobs) jobs = sw.n_jobs ? sw.n_jobs : 1;
    pthread_t *th = calloc(jobs, sizeof *th);
    if (!th) goto oom;
    draw_bar(&sw);
    size_t started = 0;
    for (; started < jobs; started++)
        if (pthread_create(&th[started], NULL, worker, &sw) != 0) break;
    if (started == 0) worker(&sw); /* no thread could start: do the work here */
    for (size_t i = 0; i < started; i++) pthread_join(th[i], NULL);
    free(th);
    pthread_mutex_lock(&sw.lock);
    clear_bar(&sw);
    pthread_mutex_unlock(&sw.lock);
    double secs = since(&sw.t0);
    if (sw.json) {
        for (size_t j = 0; j < sw.n_jobs; j++)
            if (sw.json_out[j]) puts(sw.json_out[j]);
        cJSON *o = cJSON_CreateObject(), *sum = cJSON_AddObjectToObject(o, "summary");
        cJSON_AddNumberToObject(sum, "runs", (double)sw.total);
        cJSON_AddNumberToObject(sum, "ran", (double)sw.ran);
        cJSON_AddNumberToObject(sum, "skipped", (double)sw.skipped);
        cJSON_AddNumberToObject(sum, "failed", (double)sw.failed);
        cJSON_AddNumberToObject(sum, "not_started", (double)sw.not_run);
        cJSON_AddNumberToObject(sum, "seconds", secs);
        if (tmp_dir[0]) cJSON_AddNullToObject(sum, "db"); /* not kept */
        else cJSON_AddStringToObject(sum, "db", db_path);
        cJSON_AddStringToObject(sum, "experiment", sw.experiment);
        if (shard_n > 1) {
            char sh[48];
            snprintf(sh, sizeof sh, "%llu/%llu", (unsigned long long)shard_i, (unsigned long long)shard_n);
            cJSON_AddStringToObject(sum, "shard", sh);
        }
        /* the content hashes let scripts select these traces' runs in SQL */
        cJSON *tr = cJSON_AddArrayToObject(sum, "traces");
        for (size_t i = 0; i < exp.traces.n; i++) {
            cJSON *e = cJSON_CreateObject();
            cJSON_AddStringToObject(e, "path", exp.traces.v[i]);
            cJSON_AddStringToObject(e, "hash", sw.hashes[i]);
            cJSON_AddItemToArray(tr, e);
        }
        char *s = cJSON_PrintUnformatted(o);
        if (s) puts(s);
        free(s);
        cJSON_Delete(o);
    } else {
        char sh[64] = "";
        if (shard_n > 1)
            snprintf(sh, sizeof sh, " (shard %llu/%llu)", (unsigned long long)shard_i, (unsigned long long)shard_n);
        char took[32];
        moe_duration_text(secs, took, sizeof took);
        if (tmp_dir[0])
            printf("sweep: %zu runs: %zu ran, %zu failed, %s on %llu threads (not stored: --db F keeps them)\n",
                   sw.total, sw.ran, sw.failed, took, (unsigned long long)jobs);
        else
            printf("sweep: %zu runs: %zu ran, %zu skipped (already in %s), %zu failed, %s on %llu threads%s\n",
                   sw.total, sw.ran, sw.skipped, db_path, sw.failed, took, (unsigned long long)jobs, sh);
    }
    if (sw.stopped) {
        fprintf(stderr, "moesim sweep: stopped after a database error; %zu runs not started "
                        "(run the same command again to finish)\n", sw.not_run);
    }
    if (moe_db_close(sw.db, &err)) {
        sw.db = NULL;
        goto fail;
    }
    sw.db = NULL;
    status = sw.failed || sw.stopped ? 1 : 0;
    if (tmp_dir[0] && !sw.json && sw.ran && print_tables(db_path, &exp, &err)) goto fail;
    if (exp.n_expects && !sw.stopped) { /* on stdout, or stderr beside --json's objects */
        int bad = check_expectations(db_path, sw.experiment, &exp, sw.json ? stderr : stdout, &err);
        if (bad < 0) goto fail;
        if (bad && strict) {
            fprintf(stderr, "moesim sweep: %d expectation(s) not met (--strict)\n", bad);
            status = 1;
        }
    }
    goto out;
misuse_opt:
    fprintf(stderr, "moesim sweep: --%s\n", err.msg);
    status = 2;
    goto out;
misuse:
    fprintf(stderr, "moesim sweep: %s\n", err.msg);
    status = 2;
    goto out;
oom:
    moe_fail(&err, "out of memory");
fail:
    cli_error("sweep", &err);
    status = 1;
out:
    if (sw.db) moe_db_close(sw.db, NULL);
    if (sw.traces)
        for (size_t i = 0; i < exp.traces.n; i++) moe_trace_free(sw.traces[i]);
    if (sw.json_out)
        for (size_t j = 0; j < sw.n_jobs; j++) free(sw.json_out[j]);
    free(sw.json_out);
    free(sw.traces);
    free(sw.hashes);
    free(sw.jobs);
    if (tmp_dir[0]) remove_tmp_db(tmp_dir);
    moe_experiment_free(&exp);
    pthread_mutex_destroy(&sw.lock);
    return status;
}

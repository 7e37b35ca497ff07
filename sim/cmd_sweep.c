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
#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../core/cache.h"
#include "../core/policy.h"
#include "../core/results.h"
#include "cli.h"
#include "commands.h"
#include "replay.h"
#include "runrec.h"

static const char sweep_usage[] =
    "usage: moesim sweep --trace F [--trace F2 ...] --policies LIST --capacities LIST --db F [options]\n"
    "\n"
    "Replay every combination of trace, scope, policy and capacity and store each run\n"
    "in an SQLite database. Runs already complete in the database are skipped, so an\n"
    "interrupted sweep is resumed by running the same command again.\n"
    "\n"
    "  --trace F          trace file (.moetrace or .csv); repeat for several\n"
    "  --policies LIST    comma-separated policy specs, or 'all' for every registered\n"
    "                     policy (`moesim policies`); a spec's own parameters may follow\n"
    "                     it: lru,s3fifo:small=0.2,threshold=2,fifo\n"
    "  --capacities LIST  comma-separated values or ranges START:END[:STEP],\n"
    "                     e.g. 1,2,4 or 1:32 or 1:32:4 or 1,2,8:64:8\n"
    "  --scope LIST       per-layer (default), global, or per-layer,global\n"
    "  --cold-per-seq     empty the cache whenever a new sequence starts\n"
    "  --seed N           seed for randomised policies (default 1)\n"
    "  --db F             SQLite results database (created if missing)\n"
    "  --experiment NAME  experiment label stored with each run\n"
    "  --jobs N           worker threads (default: all cores)\n"
    "  --json             print one JSON object per run replayed, then a summary object\n"
    "  -h, --help         this text\n"
    "\n"
    "A progress bar (runs done/total, ETA) is drawn on stderr when it is a terminal.\n"
    "Exit status: 0 all runs stored, 1 some run failed or an error, 2 misuse.\n";

#define MAX_RUNS 10000000u

typedef struct str_list {
    char **v;
    size_t n, cap;
} str_list;

static int sl_push(str_list *l, const char *s, size_t len) {
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 8;
        char **v = realloc(l->v, cap * sizeof *v);
        if (!v) return -1;
        l->v = v;
        l->cap = cap;
    }
    if (!(l->v[l->n] = strndup(s, len))) return -1;
    l->n++;
    return 0;
}

static void sl_free(str_list *l) {
    for (size_t i = 0; i < l->n; i++) free(l->v[i]);
    free(l->v);
    memset(l, 0, sizeof *l);
}

/* Split a --policies value. Commas separate policies, except that a piece
 * of the form key=value (no ':') continues the previous spec's parameters,
 * since parameter lists use commas themselves. */
static int parse_policies(const char *s, str_list *out, moe_error *err) {
    if (!strcmp(s, "all")) {
        for (const moe_policy_ops *const *p = moe_policy_list(); *p; p++)
            if (sl_push(out, (*p)->name, strlen((*p)->name))) return moe_fail(err, "out of memory");
        return 0;
    }
    for (const char *p = s; *p;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        if (len == 0) return moe_fail(err, "--policies: empty policy name in '%s'", s);
        int is_param = memchr(p, '=', len) && !memchr(p, ':', len);
        if (is_param) {
            if (out->n == 0 || !strchr(out->v[out->n - 1], ':'))
                return moe_fail(err, "--policies: parameter '%.*s' does not follow a 'name:' spec", (int)len, p);
            char *prev = out->v[out->n - 1];
            size_t pl = strlen(prev);
            char *joined = realloc(prev, pl + len + 2);
            if (!joined) return moe_fail(err, "out of memory");
            joined[pl] = ',';
            memcpy(joined + pl + 1, p, len);
            joined[pl + 1 + len] = 0;
            out->v[out->n - 1] = joined;
        } else if (sl_push(out, p, len)) {
            return moe_fail(err, "out of memory");
        }
        p += len;
        if (*p == ',') p++;
    }
    if (out->n == 0) return moe_fail(err, "--policies: no policy given");
    /* Reject unknown names now, before any trace is loaded. */
    for (size_t i = 0; i < out->n; i++) {
        char name[64];
        size_t len = strcspn(out->v[i], ":");
        if (len >= sizeof name) len = sizeof name - 1;
        memcpy(name, out->v[i], len);
        name[len] = 0;
        if (!moe_policy_find(name)) {
            char known[512] = "";
            for (const moe_policy_ops *const *p = moe_policy_list(); *p; p++) {
                if (p != moe_policy_list()) strncat(known, ", ", sizeof known - strlen(known) - 1);
                strncat(known, (*p)->name, sizeof known - strlen(known) - 1);
            }
            return moe_fail(err, "--policies: unknown policy '%s' (known: %s)", name, known);
        }
    }
    return 0;
}

typedef struct u32_list {
    uint32_t *v;
    size_t n, cap;
} u32_list;

static int ul_push(u32_list *l, uint32_t x) {
    for (size_t i = 0; i < l->n; i++)
        if (l->v[i] == x) return 0; /* keep the first occurrence only */
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 16;
        uint32_t *v = realloc(l->v, cap * sizeof *v);
        if (!v) return -1;
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = x;
    return 0;
}

/* "1,2,4", "1:32", "1:32:4", or a mix. */
static int parse_capacities(const char *s, u32_list *out, moe_error *err) {
    char *copy = strdup(s), *save = NULL;
    if (!copy) return moe_fail(err, "out of memory");
    int rc = 0;
    if (!*s) rc = moe_fail(err, "--capacities: empty list");
    for (char *tok = strtok_r(copy, ",", &save); tok && rc == 0; tok = strtok_r(NULL, ",", &save)) {
        char orig[64];
        snprintf(orig, sizeof orig, "%s", tok); /* tok is cut at ':' below */
        char *parts[3] = {tok, NULL, NULL};
        int np = 1;
        for (char *c = tok; *c && np <= 3; c++)
            if (*c == ':') {
                *c = 0;
                if (np == 3) {
                    np = 4;
                    break;
                }
                parts[np++] = c + 1;
            }
        if (np > 3) {
            rc = moe_fail(err, "--capacities: '%s' has more than START:END:STEP", orig);
            break;
        }
        uint64_t v[3] = {0, 0, 1};
        for (int i = 0; i < np && rc == 0; i++)
            rc = cli_parse_u64("--capacities", parts[i], UINT32_MAX, &v[i], err);
        if (rc) break;
        if (np == 1) v[1] = v[0];
        if (v[1] < v[0]) rc = moe_fail(err, "--capacities: range %llu:%llu ends before it starts",
                                       (unsigned long long)v[0], (unsigned long long)v[1]);
        else if (v[2] == 0) rc = moe_fail(err, "--capacities: step must be at least 1");
        else if ((v[1] - v[0]) / v[2] + out->n >= MAX_RUNS) rc = moe_fail(err, "--capacities: too many values");
        for (uint64_t c = v[0]; rc == 0 && c <= v[1]; c += v[2])
            if (ul_push(out, (uint32_t)c)) rc = moe_fail(err, "out of memory");
    }
    free(copy);
    return rc;
}

typedef struct sweep_job {
    size_t trace;       /* index into sweep.traces */
    int scope;
    uint32_t capacity;
    char policy[256];   /* canonical spec, also what the replay is given */
} sweep_job;

typedef struct sweep {
    pthread_mutex_t lock;
    /* read-only while the workers run */
    moe_trace **traces;
    const char **paths;
    char (*hashes)[65];
    sweep_job *jobs;
    size_t n_jobs, total; /* total includes skipped runs */
    const char *experiment, *cmd;
    int cold_per_seq, json, progress;
    uint64_t seed;
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
        moe_replay_config cfg = {.policy = job->policy, .capacity = job->capacity, .scope = job->scope,
                                 .cold_per_seq = sw->cold_per_seq, .seed = sw->seed};
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
            fprintf(stderr, "moesim %s: %s, %s capacity %u %s: %s\n", sw->cmd, sw->paths[job->trace],
                    job->policy, job->capacity, moe_scope_name(job->scope), err.msg);
        }
        draw_bar(sw);
        pthread_mutex_unlock(&sw->lock);
        if (replayed) moe_replay_result_free(&res);
    }
    return NULL;
}

/* Plan: one job per combination not yet complete in the database. */
static int plan(sweep *sw, size_t n_traces, const str_list *policies, const int *scopes, size_t n_scopes,
                const u32_list *caps, moe_error *err) {
    size_t max = n_traces * n_scopes * policies->n * caps->n;
    if (max > MAX_RUNS) return moe_fail(err, "%zu runs is more than one sweep takes (%u)", max, MAX_RUNS);
    sw->jobs = calloc(max ? max : 1, sizeof *sw->jobs);
    if (!sw->jobs) return moe_fail(err, "out of memory");
    for (size_t ti = 0; ti < n_traces; ti++) {
        /* The same content under two paths is one trace. */
        int dup = 0;
        for (size_t k = 0; k < ti; k++) dup |= !strcmp(sw->hashes[k], sw->hashes[ti]);
        if (dup) continue;
        const moe_trace *t = sw->traces[ti];
        for (size_t si = 0; si < n_scopes; si++)
            for (size_t pi = 0; pi < policies->n; pi++)
                for (size_t ci = 0; ci < caps->n; ci++) {
                    sweep_job *job = &sw->jobs[sw->n_jobs];
                    int global = scopes[si] == MOE_SCOPE_GLOBAL;
                    moe_policy_env env = {
                        .n_keys = global ? t->n_layers * t->n_experts : t->n_experts,
                        .capacity = caps->v[ci],
                        .n_layers = t->n_layers,
                        .n_experts = t->n_experts,
                        .fixed_layer = global ? -1 : 0,
                        .seed = sw->seed,
                        .trace = t,
                    };
                    /* The canonical name (effective parameters) is the identity
                     * the replay will store; parameter errors surface here. */
                    if (moe_policy_canonical(policies->v[pi], &env, job->policy, sizeof job->policy, err))
                        return moe_fail_prefix(err, "--policies '%s'", policies->v[pi]);
                    moe_replay_config cfg = {.policy = job->policy, .capacity = caps->v[ci],
                                             .scope = scopes[si], .cold_per_seq = sw->cold_per_seq,
                                             .seed = sw->seed};
                    char text[1024];
                    if (moe_run_config_text(&cfg, job->policy, text, sizeof text))
                        return moe_fail(err, "config text too long for policy '%s'", job->policy);
                    sw->total++;
                    int ex = moe_db_run_exists(sw->db, sw->hashes[ti], text, err);
                    if (ex < 0) return -1;
                    if (ex) {
                        sw->skipped++;
                        continue;
                    }
                    /* the same spec twice in --policies plans one run */
                    int twice = 0;
                    for (size_t k = 0; k < sw->n_jobs && !twice; k++)
                        twice = sw->jobs[k].trace == ti && sw->jobs[k].scope == scopes[si] &&
                                sw->jobs[k].capacity == caps->v[ci] && !strcmp(sw->jobs[k].policy, job->policy);
                    if (twice) {
                        sw->total--;
                        continue;
                    }
                    job->trace = ti;
                    job->scope = scopes[si];
                    job->capacity = caps->v[ci];
                    sw->n_jobs++;
                }
    }
    return 0;
}

int cmd_sweep(int argc, char **argv) {
    static const struct option opts[] = {
        {"trace", required_argument, 0, 't'},      {"policies", required_argument, 0, 'p'},
        {"policy", required_argument, 0, 'p'},     {"capacities", required_argument, 0, 'c'},
        {"scope", required_argument, 0, 's'},      {"cold-per-seq", no_argument, 0, 'C'},
        {"seed", required_argument, 0, 'S'},       {"db", required_argument, 0, 'd'},
        {"experiment", required_argument, 0, 'e'}, {"jobs", required_argument, 0, 'j'},
        {"json", no_argument, 0, 'J'},             {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    str_list trace_paths = {0}, policies = {0};
    u32_list caps = {0};
    int scopes[2] = {MOE_SCOPE_PER_LAYER}, n_scopes = 0, have_caps = 0, c, status = 2;
    const char *db_path = NULL;
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    uint64_t jobs = ncpu > 0 ? (uint64_t)ncpu : 1, v;
    moe_error err = {{0}};
    sweep sw = {.experiment = "", .cmd = "sweep", .seed = 1};
    pthread_mutex_init(&sw.lock, NULL);
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 't':
            if (sl_push(&trace_paths, optarg, strlen(optarg))) goto oom;
            break;
        case 'p':
            if (parse_policies(optarg, &policies, &err)) goto misuse;
            break;
        case 'c':
            if (parse_capacities(optarg, &caps, &err)) goto misuse;
            have_caps = 1;
            break;
        case 's': {
            char *copy = strdup(optarg), *save = NULL;
            if (!copy) goto oom;
            for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
                int sc;
                if (moe_scope_parse(tok, &sc, &err)) {
                    free(copy);
                    goto misuse;
                }
                if (!(n_scopes == 1 && scopes[0] == sc) && n_scopes < 2) scopes[n_scopes++] = sc;
            }
            free(copy);
            break;
        }
        case 'C': sw.cold_per_seq = 1; break;
        case 'S':
            if (cli_parse_u64("--seed", optarg, UINT64_MAX, &sw.seed, &err)) goto misuse;
            break;
        case 'd': db_path = optarg; break;
        case 'e': sw.experiment = optarg; break;
        case 'j':
            if (cli_parse_u64("--jobs", optarg, 1024, &v, &err)) goto misuse;
            jobs = v ? v : 1;
            break;
        case 'J': sw.json = 1; break;
        case 'h':
            fputs(sweep_usage, stdout);
            status = 0;
            goto out;
        default: fputs(sweep_usage, stderr); goto out;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "moesim sweep: unexpected argument '%s'\n%s", argv[optind], sweep_usage);
        goto out;
    }
    if (!trace_paths.n || !policies.n || !have_caps || !db_path) {
        fprintf(stderr, "moesim sweep: --trace, --policies, --capacities and --db are required\n%s", sweep_usage);
        goto out;
    }
    if (n_scopes == 0) n_scopes = 1;

    /* Everything below is work: errors exit 1. */
    status = 1;
    sw.traces = calloc(trace_paths.n, sizeof *sw.traces);
    sw.hashes = calloc(trace_paths.n, sizeof *sw.hashes);
    sw.paths = (const char **)trace_paths.v;
    if (!sw.traces || !sw.hashes) goto oom;
    if (!(sw.db = moe_db_open(db_path, &err))) goto fail;
    for (size_t i = 0; i < trace_paths.n; i++) {
        if (!(sw.traces[i] = moe_trace_load(trace_paths.v[i], &err))) goto fail;
        if (moe_db_add_trace(sw.db, sw.traces[i], trace_paths.v[i], sw.hashes[i], &err)) goto fail;
    }
    if (plan(&sw, trace_paths.n, &policies, scopes, (size_t)n_scopes, &caps, &err)) goto fail;
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
        cJSON_AddStringToObject(sum, "db", db_path);
        /* the content hashes let scripts select these traces' runs in SQL */
        cJSON *tr = cJSON_AddArrayToObject(sum, "traces");
        for (size_t i = 0; i < trace_paths.n; i++) {
            cJSON *e = cJSON_CreateObject();
            cJSON_AddStringToObject(e, "path", trace_paths.v[i]);
            cJSON_AddStringToObject(e, "hash", sw.hashes[i]);
            cJSON_AddItemToArray(tr, e);
        }
        char *s = cJSON_PrintUnformatted(o);
        if (s) puts(s);
        free(s);
        cJSON_Delete(o);
    } else {
        printf("sweep: %zu runs: %zu ran, %zu skipped (already in %s), %zu failed, %.1f s on %llu threads\n",
               sw.total, sw.ran, sw.skipped, db_path, sw.failed, secs, (unsigned long long)jobs);
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
        for (size_t i = 0; i < trace_paths.n; i++) moe_trace_free(sw.traces[i]);
    if (sw.json_out)
        for (size_t j = 0; j < sw.n_jobs; j++) free(sw.json_out[j]);
    free(sw.json_out);
    free(sw.traces);
    free(sw.hashes);
    free(sw.jobs);
    free(caps.v);
    sl_free(&trace_paths);
    sl_free(&policies);
    pthread_mutex_destroy(&sw.lock);
    return status;
}

/* cmd_plot.c: `moesim plot KIND` — figures drawn by gnuplot from the results
 * database.
 *
 * Each kind selects runs with the same filters (trace, policy, scope,
 * experiment, capacity, cold-per-seq), writes the numbers into data files in
 * a temporary folder, and runs gnuplot on a template of plots/ with the
 * file names, labels and ranges passed as -e variables. The terminal follows
 * the output's extension (.png: pngcairo, .svg: svg). Runs that change the
 * cache's contents beyond policy and size (prefetch, precision, skip, byte
 * capacities) are left out of the hit-rate kinds, so one point is one policy
 * at one size; several seeds of a randomised policy are averaged. */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../core/bootstrap.h"
#include "../core/datadir.h"
#include "../core/policy.h"
#include "../core/results.h"
#include "../core/trace.h"
#include "cli.h"
#include "commands.h"
#include "results_ci.h"

static const char plot_usage[] =
    "usage: moesim plot KIND --db F [filters] -o FILE.png|FILE.svg|FILE.pdf\n"
    "\n"
    "Draw a figure from a results database with gnuplot (templates in plots/).\n"
    "\n"
    "kinds:\n"
    "  hit-rate        hit rate vs capacity, one line per policy, Belady as the ceiling\n"
    "  warmup          hit rate over the trace (warm-up curve), one line per policy\n"
    "  layer-heatmap   per-layer hit rate: policy x layer (or capacity x layer with --policy)\n"
    "  popularity      expert popularity, layer x expert (share of the layer's activations),\n"
    "                  counted from the trace file\n"
    "  time-breakdown  time per token: dense and expert compute, stalls; I/O busy time\n"
    "  topic-switch    hit rate around sequence starts (cold-per-seq vs warm)\n"
    "  prefetch        prefetch precision and recall vs lookahead distance\n"
    "  validation      simulator vs real backend (`moesim validate --db`)\n"
    "  quality         Pareto: measured decode tok/s vs quality loss, one point per\n"
    "                  configuration of `moesim quality --generate N --db`, the\n"
    "                  frontier drawn (--experiment selects)\n"
    "\n"
    "filters:\n"
    "  --trace T        trace file, or a prefix of its content hash (default: the only one)\n"
    "  --policy P       policy name (all its parameter variants) or canonical spec;\n"
    "                   repeatable, or a list: --policy lru,lfu,arc. hit-rate and\n"
    "                   warmup always draw Belady when present (the ceiling); a\n"
    "                   policy that reads the future is labelled (oracle)\n"
    "  --scope S        per-layer or global (default: per-layer when present)\n"
    "  --experiment E   experiment name\n"
    "  --capacity N     capacity (warmup, layer-heatmap, topic-switch; default: a middle one)\n"
    "  --cold-per-seq on|off   (default: off when present)\n"
    "  --title TEXT     figure title (default: names the trace)\n"
    "  --size WxH       pixels (default 1100x680; a PDF is 100 pixels to the inch)\n"
    "  --font 'NAME,PT' font (default 'DejaVu Sans,11')\n"
    "  --ci             hit-rate: 95% bootstrap intervals as error bars (the trace's\n"
    "                   sequences resampled 1000 times, seed 1, GSL mt19937: as\n"
    "                   `moesim results table --ci`); needs per-sequence counts\n"
    "  --plots DIR      template folder (default: $MOESIM_PLOTS, else plots/ in the\n"
    "                   data folders: moesim(1), FILES)\n"
    "  -h, --help       this text\n"
    "\n"
    "Exit status: 0 figure written, 1 error (an empty selection names the filters), 2 misuse.\n";

typedef struct plot_ctx {
    sqlite3 *db;
    const char *db_path, *kind, *out, *plots;
    const char *trace_arg, *policy, *scope, *experiment, *title;
    char pol[1024];      /* --policy, every one given, as one comma list ("" = all) */
    int n_pol;           /* items in it */
    int keep_belady;     /* hit-rate, warmup: Belady drawn whatever --policy says */
    int ci;              /* hit-rate: bootstrap intervals as error bars */
    double ci_widest;    /* the widest interval drawn (hi - lo) */
    size_t ci_seqs;      /* sequences resampled */
    const char *size, *font;
    long capacity;     /* -1 = not given */
    int cold;          /* -1 = not given */
    char trace_hash[65], trace_path[1024], trace_desc[1400];
    uint32_t layers, experts, top_k;
    char dir[64];      /* temporary data folder */
    char gp_vars[16384];
    moe_error err;
} plot_ctx;

static int fail(plot_ctx *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(plot_ctx *p, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->err.msg, sizeof p->err.msg, fmt, ap);
    va_end(ap);
    return -1;
}

/* Append formatted text to a NUL-terminated buffer, cutting at its end. */
static void appendf(char *buf, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void appendf(char *buf, size_t cap, const char *fmt, ...) {
    size_t u = strlen(buf);
    if (u + 1 >= cap) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf + u, cap - u, fmt, ap);
    va_end(ap);
}

/* Append "name='value'; " to the gnuplot variables (quotes escaped). */
static void gp_str(plot_ctx *p, const char *name, const char *value) {
    size_t u = strlen(p->gp_vars);
    u += (size_t)snprintf(p->gp_vars + u, sizeof p->gp_vars - u, "%s=\"", name);
    for (const char *c = value; *c && u + 4 < sizeof p->gp_vars; c++) {
        if (*c == '"' || *c == '\\') p->gp_vars[u++] = '\\';
        if (*c == '\n') { /* gnuplot reads \n in a double-quoted string as a line break */
            p->gp_vars[u++] = '\\';
            p->gp_vars[u++] = 'n';
        } else p->gp_vars[u++] = *c;
    }
    snprintf(p->gp_vars + u, sizeof p->gp_vars - u, "\"; ");
}

static void gp_num(plot_ctx *p, const char *name, double v) {
    size_t u = strlen(p->gp_vars);
    snprintf(p->gp_vars + u, sizeof p->gp_vars - u, "%s=%.17g; ", name, v);
}

/* Whether policy spec `pol` is selected by --policy (cli_spec_in_list's
 * rule), Belady kept where it is the ceiling. */
static int policy_selected(const plot_ctx *p, const char *pol) {
    if (!p->n_pol) return 1;
    if (p->keep_belady && cli_spec_in_list(pol, "belady")) return 1;
    return cli_spec_in_list(pol, p->pol);
}

static void policy_match_fn(sqlite3_context *cx, int argc, sqlite3_value **v) {
    (void)argc;
    const unsigned char *pol = sqlite3_value_text(v[0]);
    sqlite3_result_int(cx, pol && policy_selected(sqlite3_user_data(cx), (const char *)pol));
}

/* Append a --policy value (repeatable, itself a comma list) to p->pol. */
static int add_policies(plot_ctx *p, const char *arg) {
    size_t used = strlen(p->pol);
    if (used + strlen(arg) + 2 > sizeof p->pol) return -1;
    snprintf(p->pol + used, sizeof p->pol - used, "%s%s", used ? "," : "", arg);
    for (const char *c = arg; *c; c++) p->n_pol += *c != ',' && (c == arg || c[-1] == ',');
    return 0;
}

/* The run filter as SQL over run_summary s (bound in a fixed order by bind_filter). */
static void filter_sql(const plot_ctx *p, char *buf, size_t cap, int plain) {
    (void)p; /* the values are bound by bind_filter */
    snprintf(buf, cap,
             " s.status = 'done' AND s.trace_hash = ?1"
             " AND moe_policy_match(s.policy)"
             " AND (?3 IS NULL OR s.scope = ?3) AND (?4 IS NULL OR s.experiment = ?4)"
             " AND (?5 < 0 OR s.capacity = ?5) AND (?6 < 0 OR s.cold_per_seq = ?6)%s",
             plain ? " AND NOT EXISTS (SELECT 1 FROM run_config c WHERE c.run_id = s.id AND c.key IN"
                     " ('prefetch', 'precision', 'skip', 'speculate', 'capacity_bytes', 'capacity_frac'))"
                   : "");
}

static void bind_filter(const plot_ctx *p, sqlite3_stmt *st) {
    sqlite3_bind_text(st, 1, p->trace_hash, -1, SQLITE_STATIC);
    if (p->scope) sqlite3_bind_text(st, 3, p->scope, -1, SQLITE_STATIC);
    if (p->experiment) sqlite3_bind_text(st, 4, p->experiment, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, p->capacity);
    sqlite3_bind_int(st, 6, p->cold);
}

static sqlite3_stmt *prepare(plot_ctx *p, const char *sql) {
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(p->db, sql, -1, &st, NULL) != SQLITE_OK) {
        fail(p, "%s: %s", p->db_path, sqlite3_errmsg(p->db));
        return NULL;
    }
    return st;
}

static void describe_filters(const plot_ctx *p, char *buf, size_t cap) {
    snprintf(buf, cap, "trace %.16s%s%.600s%s%s%s%s%s%s", p->trace_hash, p->n_pol ? ", policy " : "",
             p->pol, p->scope ? ", scope " : "", p->scope ? p->scope : "",
             p->experiment ? ", experiment " : "", p->experiment ? p->experiment : "",
             p->cold >= 0 ? (p->cold ? ", cold per sequence" : ", warm cache") : "", "");
    if (p->capacity >= 0) appendf(buf, cap, ", capacity %ld", p->capacity);
}

/* Resolve --trace (file path, hash prefix, or the only trace in the db). */
static int pick_trace(plot_ctx *p) {
    sqlite3_stmt *st;
    char hash[65] = "";
    if (p->trace_arg) {
        struct stat sb;
        if (stat(p->trace_arg, &sb) == 0 && S_ISREG(sb.st_mode)) {
            moe_trace *t = moe_trace_load(p->trace_arg, &p->err);
            if (!t) return -1;
            moe_trace_hash(t, hash);
            moe_trace_free(t);
        } else {
            if (!(st = prepare(p, "SELECT hash FROM traces WHERE hash LIKE ?1 || '%' OR path = ?1"))) return -1;
            sqlite3_bind_text(st, 1, p->trace_arg, -1, SQLITE_STATIC);
            int n = 0;
            while (sqlite3_step(st) == SQLITE_ROW) {
                n++;
                snprintf(hash, sizeof hash, "%s", (const char *)sqlite3_column_text(st, 0));
            }
            sqlite3_finalize(st);
            if (n != 1)
                return fail(p, "--trace '%s': %s in %s", p->trace_arg,
                            n ? "matches several traces (give more of the hash)" : "no such file, hash or stored path",
                            p->db_path);
        }
    } else {
        if (!(st = prepare(p, "SELECT DISTINCT trace_hash, trace_path FROM run_summary WHERE status = 'done'"))) return -1;
        int n = 0;
        char list[2048] = "";
        while (sqlite3_step(st) == SQLITE_ROW) {
            n++;
            snprintf(hash, sizeof hash, "%s", (const char *)sqlite3_column_text(st, 0));
            appendf(list, sizeof list, " %.16s (%s)", hash,
                     (const char *)sqlite3_column_text(st, 1));
        }
        sqlite3_finalize(st);
        if (n == 0) return fail(p, "%s holds no finished runs", p->db_path);
        if (n > 1) return fail(p, "%s holds runs of %d traces; pick one with --trace:%s", p->db_path, n, list);
    }
    snprintf(p->trace_hash, sizeof p->trace_hash, "%s", hash);
    if (!(st = prepare(p, "SELECT path, model, layers, experts, top_k, steps FROM traces WHERE hash = ?1"))) return -1;
    sqlite3_bind_text(st, 1, hash, -1, SQLITE_STATIC);
    if (sqlite3_step(st) != SQLITE_ROW) {
        sqlite3_finalize(st);
        return fail(p, "trace %.16s is not in %s", hash, p->db_path);
    }
    snprintf(p->trace_path, sizeof p->trace_path, "%s", (const char *)sqlite3_column_text(st, 0));
    p->layers = (uint32_t)sqlite3_column_int(st, 2);
    p->experts = (uint32_t)sqlite3_column_int(st, 3);
    p->top_k = (uint32_t)sqlite3_column_int(st, 4);
    snprintf(p->trace_desc, sizeof p->trace_desc, "%s (%s: %u layers x %u experts, top-%u, %lld steps)",
             p->trace_path, sqlite3_column_text(st, 1) ? (const char *)sqlite3_column_text(st, 1) : "?", p->layers,
             p->experts, p->top_k, (long long)sqlite3_column_int64(st, 5));
    sqlite3_finalize(st);
    return 0;
}

/* Default scope / cold mode: per-layer and warm when the selection has them. */
static int pick_defaults(plot_ctx *p, int plain) {
    char where[1024], sql[1400];
    filter_sql(p, where, sizeof where, plain);
    if (!p->scope) {
        snprintf(sql, sizeof sql, "SELECT scope FROM run_summary s WHERE %s GROUP BY scope ORDER BY scope = 'per-layer' DESC", where);
        sqlite3_stmt *st = prepare(p, sql);
        if (!st) return -1;
        bind_filter(p, st);
        static char scope[32];
        if (sqlite3_step(st) == SQLITE_ROW) {
            snprintf(scope, sizeof scope, "%s", (const char *)sqlite3_column_text(st, 0));
            p->scope = scope;
        }
        sqlite3_finalize(st);
    }
    if (p->cold < 0) {
        filter_sql(p, where, sizeof where, plain);
        snprintf(sql, sizeof sql, "SELECT MIN(cold_per_seq) FROM run_summary s WHERE %s", where);
        sqlite3_stmt *st = prepare(p, sql);
        if (!st) return -1;
        bind_filter(p, st);
        if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL) p->cold = sqlite3_column_int(st, 0);
        sqlite3_finalize(st);
    }
    return 0;
}

static const char *capacity_unit(const plot_ctx *p) {
    return p->scope && !strcmp(p->scope, "global") ? "experts in all (global cache)" : "experts per layer";
}

/* Write the rows of a query (already bound) to a file, columns separated by
 * spaces; returns the row count or -1. */
static long dump_rows(plot_ctx *p, sqlite3_stmt *st, const char *file) {
    FILE *f = fopen(file, "w");
    if (!f) return fail(p, "%s: %s", file, strerror(errno));
    long n = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int nc = sqlite3_column_count(st);
        for (int i = 0; i < nc; i++) {
            if (i) fputc(' ', f);
            if (sqlite3_column_type(st, i) == SQLITE_TEXT) fprintf(f, "\"%s\"", sqlite3_column_text(st, i));
            else fprintf(f, "%.10g", sqlite3_column_double(st, i));
        }
        fputc('\n', f);
        n++;
    }
    fclose(f);
    if (rc != SQLITE_DONE) return fail(p, "%s: %s", p->db_path, sqlite3_errmsg(p->db));
    return n;
}

/* The distinct policies of the selection, Belady last (it is the ceiling). */
static int list_policies(plot_ctx *p, int plain, char names[][128], int max) {
    char where[1024], sql[1600];
    filter_sql(p, where, sizeof where, plain);
    snprintf(sql, sizeof sql, "SELECT policy, MIN(id) FROM run_summary s WHERE %s GROUP BY policy "
                              "ORDER BY policy LIKE 'belady%%', MIN(id)", where);
    sqlite3_stmt *st = prepare(p, sql);
    if (!st) return -1;
    bind_filter(p, st);
    int n = 0, asked = 0, keep = p->keep_belady;
    while (sqlite3_step(st) == SQLITE_ROW && n < max) {
        snprintf(names[n++], 128, "%s", (const char *)sqlite3_column_text(st, 0));
        p->keep_belady = 0; /* was any of them asked for, Belady aside? */
        asked |= policy_selected(p, names[n - 1]);
        p->keep_belady = keep;
    }
    sqlite3_finalize(st);
    /* Belady alone, drawn only because it is kept: none of --policy matched */
    return p->n_pol && !asked ? 0 : n;
}

static int empty_selection(plot_ctx *p, const char *what) {
    char f[1024];
    describe_filters(p, f, sizeof f);
    return fail(p, "%s: empty selection: no %s for %s in %s", p->kind, what, f, p->db_path);
}

/* A middle capacity of the selection, for kinds drawn at one size. */
static int pick_capacity(plot_ctx *p, int plain) {
    if (p->capacity >= 0) return 0;
    char where[1024], sql[1400];
    filter_sql(p, where, sizeof where, plain);
    snprintf(sql, sizeof sql, "SELECT DISTINCT capacity FROM run_summary s WHERE %s ORDER BY capacity", where);
    sqlite3_stmt *st = prepare(p, sql);
    if (!st) return -1;
    bind_filter(p, st);
    long caps[4096];
    int n = 0;
    while (sqlite3_step(st) == SQLITE_ROW && n < 4096) caps[n++] = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    if (n == 0) return empty_selection(p, "runs");
    p->capacity = caps[(n - 1) / 2];
    return 0;
}

/* names[i] shortened to its base name when no other drawn policy shares it. */
static int short_len(char names[][128], int n, int i) {
    size_t bl = strcspn(names[i], ":");
    for (int j = 0; j < n; j++)
        if (j != i && strcspn(names[j], ":") == bl && !strncmp(names[i], names[j], bl)) return (int)strlen(names[i]);
    return (int)bl;
}

/* Legend names: the policy's base name ("s3fifo"), unless two variants of
 * the same policy are drawn, when the full canonical spec tells them apart. */
static int policy_files(plot_ctx *p, char names[][128], int n) {
    char list[8192] = "";
    for (int i = 0; i < n; i++) {
        size_t bl = strcspn(names[i], ":");
        int clash = 0;
        for (int j = 0; j < n; j++)
            clash |= j != i && strcspn(names[j], ":") == bl && !strncmp(names[i], names[j], bl);
        /* a policy that reads the future says so: a profile or a training
         * taken from the replayed trace itself */
        int oracle = moe_policy_is_oracle(names[i]) && strncmp(names[i], "belady", 6); /* Belady: the template's "offline optimum" */
        appendf(list, sizeof list, "%s%.*s%s", i ? " " : "", clash ? (int)strlen(names[i]) : (int)bl, names[i],
                oracle ? "(oracle)" : "");
    }
    gp_str(p, "policies", list);
    return 0;
}

/* --ci: policy pol's points with their intervals, "capacity hit_rate lo hi"
 * per line (results_ci.h; every point on the same resamples). */
static long dump_ci_rows(plot_ctx *p, const char *where, const char *pol, const char *file) {
    char sql[1600];
    snprintf(sql, sizeof sql, "SELECT capacity, id, hit_rate FROM run_summary s WHERE %s AND s.policy = ?7 "
                              "ORDER BY capacity, id", where);
    sqlite3_stmt *st = prepare(p, sql);
    if (!st) return -1;
    bind_filter(p, st);
    sqlite3_bind_text(st, 7, pol, -1, SQLITE_STATIC);
    size_t n = 0, cap = 0, nc = 0;
    int64_t *ids = NULL;
    size_t *start = NULL;
    double *caps = NULL, *sum = NULL;
    long rows = -1;
    results_ci ci = {0};
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (n == cap) { /* room for n + 1 runs and as many cells */
            cap = cap ? 2 * cap : 32;
            int64_t *i2 = realloc(ids, cap * sizeof *i2);
            size_t *s2 = i2 ? realloc(start, (cap + 1) * sizeof *s2) : NULL;
            double *c2 = s2 ? realloc(caps, cap * sizeof *c2) : NULL, *m2 = c2 ? realloc(sum, cap * sizeof *m2) : NULL;
            if (i2) ids = i2;
            if (s2) start = s2;
            if (c2) caps = c2;
            if (!m2) {
                fail(p, "out of memory");
                goto out;
            }
            sum = m2;
        }
        double c = sqlite3_column_double(st, 0);
        if (nc == 0 || caps[nc - 1] != c) start[nc] = n, caps[nc] = c, sum[nc++] = 0;
        ids[n++] = sqlite3_column_int64(st, 1);
        sum[nc - 1] += sqlite3_column_double(st, 2);
    }
    if (rc != SQLITE_DONE) {
        fail(p, "%s: %s", p->db_path, sqlite3_errmsg(p->db));
        goto out;
    }
    if (nc) start[nc] = n;
    if (nc && results_ci_compute(p->db, p->db_path, ids, start, nc, MOE_BOOTSTRAP_RESAMPLES, MOE_BOOTSTRAP_SEED, &ci,
                                 &p->err))
        goto out;
    FILE *f = fopen(file, "w");
    if (!f) {
        fail(p, "%s: %s", file, strerror(errno));
        goto out;
    }
    for (size_t c = 0; c < nc; c++) {
        double lo, hi;
        results_ci_interval(&ci, c, -1, MOE_BOOTSTRAP_LEVEL, &lo, &hi);
        if (hi - lo > p->ci_widest) p->ci_widest = hi - lo;
        p->ci_seqs = ci.n_seqs;
        fprintf(f, "%.10g %.10g %.10g %.10g\n", caps[c], sum[c] / (double)(start[c + 1] - start[c]), lo, hi);
    }
    fclose(f);
    rows = (long)nc;
out:
    sqlite3_finalize(st);
    results_ci_free(&ci);
    free(ids), free(start), free(caps), free(sum);
    return rows;
}

static int plot_hit_rate(plot_ctx *p) {
    if (pick_defaults(p, 1)) return -1;
    char names[64][128], where[1024], sql[1600], file[256];
    int n = list_policies(p, 1, names, 64);
    if (n < 0) return -1;
    if (n == 0) return empty_selection(p, "runs");
    filter_sql(p, where, sizeof where, 1);
    snprintf(sql, sizeof sql, "SELECT capacity, AVG(hit_rate) FROM run_summary s WHERE %s AND s.policy = ?7 "
                              "GROUP BY capacity ORDER BY capacity", where);
    long maxcap = 0;
    for (int i = 0; i < n; i++) {
        sqlite3_stmt *st = prepare(p, sql);
        if (!st) return -1;
        bind_filter(p, st);
        sqlite3_bind_text(st, 7, names[i], -1, SQLITE_STATIC);
        snprintf(file, sizeof file, "%s/%d.dat", p->dir, i + 1);
        long rows = p->ci ? dump_ci_rows(p, where, names[i], file) : dump_rows(p, st, file);
        sqlite3_finalize(st);
        if (rows < 0) return -1;
    }
    gp_num(p, "ci", p->ci);
    if (p->ci) { /* bars can be too short to see: the caption says how long they are */
        char t[200];
        snprintf(t, sizeof t, "error bars: 95%% bootstrap intervals over %zu sequences (1000 resamples, seed 1); "
                              "widest %.4f", p->ci_seqs, p->ci_widest);
        gp_str(p, "ci_text", t);
    }
    snprintf(sql, sizeof sql, "SELECT MAX(capacity) FROM run_summary s WHERE %s", where);
    sqlite3_stmt *st = prepare(p, sql);
    if (!st) return -1;
    bind_filter(p, st);
    if (sqlite3_step(st) == SQLITE_ROW) maxcap = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    policy_files(p, names, n);
    gp_num(p, "n", n);
    gp_num(p, "ceiling", !strncmp(names[n - 1], "belady", 6) ? n : 0);
    gp_num(p, "xmax", (double)maxcap);
    char xl[256];
    snprintf(xl, sizeof xl, "cache capacity (%s; %s)", capacity_unit(p), p->cold ? "cold cache per sequence" : "warm cache");
    gp_str(p, "xlabel_text", xl);
    return 0;
}

static int plot_warmup(plot_ctx *p, int topic) {
    if (pick_defaults(p, 1)) return -1;
    if (topic) p->cold = 1; /* pick capacity and policies among cold-per-seq runs */
    if (pick_capacity(p, 1)) return -1;
    char names[64][128], where[1024], sql[1800], file[256];
    int n = list_policies(p, 1, names, 64);
    if (topic && n == 0) return empty_selection(p, "cold-per-seq runs (sweep with cold_per_seq = off, on)");
    if (n < 0) return -1;
    if (n == 0) return empty_selection(p, "runs");
    filter_sql(p, where, sizeof where, 1);
    /* topic-switch: the warm and the cold-per-sequence run of each policy,
     * so the recovery after a sequence start is seen against the warm line */
    int modes = 1;
    if (topic && !p->n_pol) n = n > 4 ? 4 : n; /* a readable number of lines */
    char labels[8192] = "";
    int k = 0, last_belady = 0;
    for (int i = 0; i < n; i++)
        for (int m = 0; m < modes + (topic ? 1 : 0); m++) {
            int cold = topic ? m : p->cold;
            int saved = p->cold;
            p->cold = cold;
            filter_sql(p, where, sizeof where, 1);
            snprintf(sql, sizeof sql, "SELECT c.x, AVG(c.y) FROM curves c JOIN run_summary s ON s.id = c.run_id "
                                      "WHERE %s AND s.policy = ?7 AND c.curve = 'warmup_hit_rate' GROUP BY c.x ORDER BY c.x", where);
            sqlite3_stmt *st = prepare(p, sql);
            p->cold = saved;
            if (!st) return -1;
            p->cold = cold;
            bind_filter(p, st);
            p->cold = saved;
            sqlite3_bind_text(st, 7, names[i], -1, SQLITE_STATIC);
            snprintf(file, sizeof file, "%s/%d.dat", p->dir, k + 1);
            long rows = dump_rows(p, st, file);
            sqlite3_finalize(st);
            if (rows < 0) return -1;
            if (rows == 0 && !topic) continue; /* topic-switch keeps pairs: an empty file draws nothing */
            k++;
            last_belady = !strncmp(names[i], "belady", 6);
            appendf(labels, sizeof labels, "%s%.*s%s", k > 1 ? " " : "", short_len(names, n, i), names[i],
                     topic ? (cold ? "(cold-per-seq)" : "(warm)") : "");
        }
    if (k == 0) return empty_selection(p, "warm-up curves");
    gp_str(p, "policies", labels);
    gp_num(p, "n", k);
    /* Belady comes last (list_policies): drawn as the dashed black ceiling,
     * as in the hit-rate figure, never in a colour another policy also has. */
    if (!topic) gp_num(p, "ceiling", last_belady ? k : 0);
    char xl[256];
    snprintf(xl, sizeof xl, "step (forward pass); each point = hit rate within a window of steps, capacity %ld %s",
             p->capacity, capacity_unit(p));
    gp_str(p, "xlabel_text", xl);
    if (topic) {
        /* sequence starts, from the trace itself */
        moe_trace *t = moe_trace_load(p->trace_path, &p->err);
        if (!t) return moe_fail_prefix(&p->err, "topic-switch needs the trace file (stored path)");
        snprintf(file, sizeof file, "%s/starts.dat", p->dir);
        FILE *f = fopen(file, "w");
        if (!f) {
            moe_trace_free(t);
            return fail(p, "%s: %s", file, strerror(errno));
        }
        uint32_t prev = UINT32_MAX;
        int ns = 0;
        for (uint64_t s = 0; s < t->n_steps; s++) {
            uint64_t tok = t->step_first_token[s];
            if (tok >= t->n_tokens) continue;
            uint32_t seq = t->token_seq[tok];
            if (seq != prev) {
                fprintf(f, "%llu\n", (unsigned long long)s);
                ns++;
            }
            prev = seq;
        }
        fclose(f);
        gp_num(p, "xmax", (double)t->n_steps);
        moe_trace_free(t);
        gp_num(p, "n_starts", ns);
    }
    return 0;
}

static int plot_layer_heatmap(plot_ctx *p) {
    if (pick_defaults(p, 1)) return -1;
    /* one policy given: its rows are capacities; otherwise the policies' rows */
    int by_capacity = p->n_pol == 1;
    p->policy = by_capacity ? p->pol : NULL;
    if (!by_capacity && pick_capacity(p, 1)) return -1;
    char where[1024], sql[2000], file[256];
    filter_sql(p, where, sizeof where, 1);
    snprintf(sql, sizeof sql,
             "SELECT %s AS row, l.layer, AVG(l.value) FROM layer_metrics l JOIN run_summary s ON s.id = l.run_id "
             "WHERE %s AND l.name = 'hit_rate' GROUP BY row, l.layer ORDER BY %s, l.layer",
             by_capacity ? "s.capacity" : "s.policy", where,
             by_capacity ? "row" : "row LIKE 'belady%', MIN(s.id)");
    sqlite3_stmt *st = prepare(p, sql);
    if (!st) return -1;
    bind_filter(p, st);
    /* rows -> index; the template draws a matrix of (layer, row index, value) */
    snprintf(file, sizeof file, "%s/heat.dat", p->dir);
    FILE *f = fopen(file, "w");
    if (!f) {
        sqlite3_finalize(st);
        return fail(p, "%s: %s", file, strerror(errno));
    }
    char rows[128][128], tics[12000] = "";
    int nr = 0, rc;
    uint32_t maxl = 0;
    double vmin = 1, vmax = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        char key[128];
        snprintf(key, sizeof key, "%s", (const char *)sqlite3_column_text(st, 0));
        if (nr == 0 || strcmp(rows[nr - 1], key)) {
            if (nr == 128) break;
            snprintf(rows[nr++], 128, "%s", key);
        }
        uint32_t l = (uint32_t)sqlite3_column_int(st, 1);
        if (l > maxl) maxl = l;
        double v = sqlite3_column_double(st, 2);
        if (v < vmin) vmin = v;
        if (v > vmax) vmax = v;
        fprintf(f, "%u %d %.6f\n", l, nr - 1, v);
    }
    for (int i = 0; i < nr; i++)
        appendf(tics, sizeof tics, "%s\"%.*s\" %d", i ? ", " : "", by_capacity ? 127 : short_len(rows, nr, i), rows[i], i);
    sqlite3_finalize(st);
    fclose(f);
    if (nr == 0) return empty_selection(p, "per-layer metrics");
    gp_str(p, "ytics_text", tics);
    gp_num(p, "n_rows", nr);
    gp_num(p, "n_layers", maxl + 1);
    gp_str(p, "ylabel_text", by_capacity ? "capacity" : "policy");
    /* colour scale over the data's range (to 0.05), so differences between
     * layers show; the label says the scale does not start at 0 */
    double lo = floor(vmin * 20) / 20, hi = ceil(vmax * 20) / 20;
    if (hi <= lo) hi = lo + 0.05;
    char cbl[128];
    snprintf(cbl, sizeof cbl, "hit rate in the layer (scale %.2f to %.2f)", lo, hi);
    gp_str(p, "cblabel_text", cbl);
    gp_num(p, "cbmin", lo);
    gp_num(p, "cbmax", hi);
    char xl[256];
    if (by_capacity) snprintf(xl, sizeof xl, "MoE layer (policy %s, capacity in %s)", p->policy, capacity_unit(p));
    else snprintf(xl, sizeof xl, "MoE layer (capacity %ld %s)", p->capacity, capacity_unit(p));
    gp_str(p, "xlabel_text", xl);
    return 0;
}

static int plot_popularity(plot_ctx *p) {
    const char *path = p->trace_arg;
    struct stat sb;
    if (!path || stat(path, &sb) != 0) path = p->trace_path;
    moe_trace *t = moe_trace_load(path, &p->err);
    if (!t) return moe_fail_prefix(&p->err, "popularity counts experts in the trace file");
    uint64_t *cnt = calloc((size_t)t->n_layers * t->n_experts, sizeof *cnt);
    if (!cnt) {
        moe_trace_free(t);
        return fail(p, "out of memory");
    }
    /* every (token, layer, slot) choice counts once */
    for (uint64_t tok = 0; tok < t->n_tokens; tok++)
        for (uint32_t l = 0; l < t->n_layers; l++)
            for (uint32_t s = 0; s < t->top_k; s++) {
                uint16_t e = t->experts[moe_trace_rec(t, tok, l) + s];
                if (e < t->n_experts) cnt[(size_t)l * t->n_experts + e]++;
            }
    char file[256];
    snprintf(file, sizeof file, "%s/heat.dat", p->dir);
    FILE *f = fopen(file, "w");
    double vmax = 0;
    if (f) {
        for (uint32_t l = 0; l < t->n_layers; l++) {
            uint64_t tot = 0;
            for (uint32_t e = 0; e < t->n_experts; e++) tot += cnt[(size_t)l * t->n_experts + e];
            for (uint32_t e = 0; e < t->n_experts; e++) {
                double v = tot ? (double)cnt[(size_t)l * t->n_experts + e] / (double)tot : 0;
                if (v > vmax) vmax = v;
                fprintf(f, "%u %u %.6f\n", e, l, v);
            }
        }
        fclose(f);
    }
    uint32_t L = t->n_layers, E = t->n_experts;
    free(cnt);
    moe_trace_free(t);
    if (!f) return fail(p, "%s: %s", file, strerror(errno));
    gp_str(p, "ytics_text", "");
    gp_num(p, "n_rows", L);
    gp_num(p, "n_layers", E);
    gp_str(p, "ylabel_text", "MoE layer");
    gp_str(p, "xlabel_text", "expert id");
    char cb[128];
    snprintf(cb, sizeof cb, "share of the layer's activations (uniform = 1/%u = %.3f)", E, 1.0 / E);
    gp_str(p, "cblabel_text", cb);
    gp_num(p, "cbmin", 0);
    gp_num(p, "cbmax", vmax > 0 ? ceil(vmax * 20) / 20 : 1);
    return 0;
}

static int has_metric(plot_ctx *p, const char *metric) {
    char where[1024], sql[1400];
    filter_sql(p, where, sizeof where, 0);
    snprintf(sql, sizeof sql, "SELECT COUNT(*) FROM metrics m JOIN run_summary s ON s.id = m.run_id WHERE %s AND m.name = '%s'",
             where, metric);
    sqlite3_stmt *st = prepare(p, sql);
    if (!st) return -1;
    bind_filter(p, st);
    int n = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int(st, 0) : 0;
    sqlite3_finalize(st);
    return n;
}

/* 0 if some selected run has `metric`; else an error "<what> in this
 * database for <filters> (<db>); <hint>". */
static int require_metric(plot_ctx *p, const char *metric, const char *what, const char *hint) {
    int n = has_metric(p, metric);
    if (n < 0) return -1;
    if (n > 0) return 0;
    char f[1024];
    describe_filters(p, f, sizeof f);
    return fail(p, "%s in this database for %s (%s); %s", what, f, p->db_path, hint);
}

static int plot_time_breakdown(plot_ctx *p) {
    if (pick_defaults(p, 0)) return -1;
    if (require_metric(p, "total_s", "time-breakdown: no timing metrics",
                       "runs need a device profile: sweep with 'device = ...' in the experiment file, "
                       "or moesim run --device"))
        return -1;
    if (pick_capacity(p, 0)) return -1;
    char where[1024], sql[3000], file[256];
    filter_sql(p, where, sizeof where, 0);
    /* milliseconds per token; a label per bar = policy plus what else varies */
#define MV(name) "(SELECT value FROM metrics m WHERE m.run_id = s.id AND m.name = '" name "')"
#define CV(key) "(SELECT value FROM run_config c WHERE c.run_id = s.id AND c.key = '" key "')"
    snprintf(sql, sizeof sql,
             /* short label: policy base name, prefetcher without its ',n=..' tail */
             "SELECT CASE WHEN instr(s.policy, ':') THEN substr(s.policy, 1, instr(s.policy, ':') - 1) ELSE s.policy END"
             " || COALESCE(' + ' || CASE WHEN instr(" CV("prefetch") ", ',') THEN substr(" CV("prefetch") ", 1,"
             " instr(" CV("prefetch") ", ',') - 1) ELSE " CV("prefetch") " END, '') || COALESCE(' ' || " CV("precision") ", ''),"
             " 1e3 * " MV("dense_s") " / t.tokens, 1e3 * " MV("expert_s") " / t.tokens,"
             " 1e3 * " MV("stall_miss_s") " / t.tokens, 1e3 * COALESCE(" MV("stall_late_prefetch_s") ", 0) / t.tokens,"
             " 1e3 * " MV("io_utilisation") " * " MV("total_s") " / t.tokens"
             " FROM run_summary s JOIN traces t ON t.hash = s.trace_hash WHERE %s AND " MV("total_s") " IS NOT NULL"
             " ORDER BY s.policy LIKE 'belady%%', s.id",
             where);
#undef MV
#undef CV
    sqlite3_stmt *st = prepare(p, sql);
    if (!st) return -1;
    bind_filter(p, st);
    snprintf(file, sizeof file, "%s/time.dat", p->dir);
    long rows = dump_rows(p, st, file);
    sqlite3_finalize(st);
    if (rows < 0) return -1;
    if (rows == 0) return empty_selection(p, "runs with timing metrics");
    char xl[256];
    snprintf(xl, sizeof xl, "policy (capacity %ld %s)", p->capacity, capacity_unit(p));
    gp_str(p, "xlabel_text", xl);
    return 0;
}

static int plot_prefetch(plot_ctx *p) {
    if (pick_defaults(p, 0)) return -1;
    if (require_metric(p, "prefetch_precision", "prefetch: no prefetch metrics",
                       "sweep with 'prefetch = gate:ahead=1, gate:ahead=2, ...' in the experiment file"))
        return -1;
    char where[1024], sql[3000], file[256];
    filter_sql(p, where, sizeof where, 0);
    /* lookahead distance = the prefetcher's 'ahead' (or 'hops') parameter;
     * one line per prefetcher family */
#define CV "(SELECT value FROM run_config c WHERE c.run_id = s.id AND c.key = 'prefetch')"
    const char *fam[] = {"gate", "transition", "history", "topn", "oracle"};
    char names[8192] = "";
    int k = 0;
    for (int i = 0; i < 5; i++) {
        snprintf(sql, sizeof sql,
                 "SELECT CASE WHEN instr(" CV ", 'ahead=') THEN CAST(substr(" CV ", instr(" CV ", 'ahead=') + 6) AS INTEGER)"
                 " WHEN instr(" CV ", 'hops=') THEN CAST(substr(" CV ", instr(" CV ", 'hops=') + 5) AS INTEGER)"
                 " ELSE 1 END AS d,"
                 " AVG((SELECT value FROM metrics m WHERE m.run_id = s.id AND m.name = 'prefetch_precision')),"
                 " AVG((SELECT value FROM metrics m WHERE m.run_id = s.id AND m.name = 'prefetch_recall'))"
                 " FROM run_summary s WHERE %s AND " CV " LIKE '%s%%' GROUP BY d ORDER BY d",
                 where, fam[i]);
        sqlite3_stmt *st = prepare(p, sql);
        if (!st) return -1;
        bind_filter(p, st);
        snprintf(file, sizeof file, "%s/%d.dat", p->dir, k + 1);
        long rows = dump_rows(p, st, file);
        sqlite3_finalize(st);
        if (rows < 0) return -1;
        if (rows == 0) continue;
        k++;
        appendf(names, sizeof names, "%s%s", k > 1 ? " " : "", fam[i]);
    }
#undef CV
    if (k == 0) return empty_selection(p, "prefetch runs");
    gp_str(p, "policies", names);
    gp_num(p, "n", k);
    gp_str(p, "xlabel_text", "lookahead distance (layers ahead; 'ahead' / 'hops' parameter)");
    return 0;
}

/* validation: one point per validation (measured vs predicted tok/s), and
 * the time breakdown of each validation measured and predicted. Every
 * validation has its own captured trace, so the trace filter does not apply;
 * --experiment, --policy, --scope and --capacity do. */
static int plot_validation(plot_ctx *p) {
    char file[160];
#define KV(k) "(SELECT value FROM run_config c WHERE c.run_id = s.id AND c.key = '" k "')"
#define MV(run, m) "(SELECT value FROM metrics x WHERE x.run_id = " run ".id AND x.name = '" m "')"
    static const char sql[] =
        "SELECT " MV("s", "tok_s") ", " MV("q", "tok_s") ", "
        /* a short label: policy and prefetcher names without parameters */
        " substr(s.policy, 1, instr(s.policy || ':', ':') - 1) || '/' || s.capacity || (CASE s.scope WHEN 'global'"
        " THEN 'g' ELSE '' END) || '/' || coalesce(substr(" KV("prefetch") ", 1, instr(" KV("prefetch") " || ':', ':') - 1),"
        " 'none'),"
        " 1e3 * " MV("s", "dense_s") ", 1e3 * " MV("s", "expert_s") ","
        " 1e3 * " MV("s", "stall_miss_s") ", 1e3 * " MV("s", "stall_late_prefetch_s") ","
        " 1e3 * " MV("q", "dense_s") ", 1e3 * " MV("q", "expert_s") ","
        " 1e3 * " MV("q", "stall_miss_s") ", 1e3 * " MV("q", "stall_late_prefetch_s")
        " FROM run_summary s JOIN run_summary q ON q.id IN (SELECT run_id FROM run_config WHERE key = 'validation'"
        "   AND value = " KV("validation") ") AND (SELECT value FROM run_config WHERE run_id = q.id AND key = 'kind') = 'predicted'"
        " WHERE s.status = 'done' AND " KV("kind") " = 'measured'"
        " AND moe_policy_match(s.policy)"
        " AND (?2 IS NULL OR s.scope = ?2) AND (?3 IS NULL OR s.experiment = ?3) AND (?4 < 0 OR s.capacity = ?4)"
        " ORDER BY s.id";
#undef KV
#undef MV
    sqlite3_stmt *st = prepare(p, sql);
    if (!st) return -1;
    if (p->scope) sqlite3_bind_text(st, 2, p->scope, -1, SQLITE_STATIC);
    if (p->experiment) sqlite3_bind_text(st, 3, p->experiment, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, p->capacity);
    snprintf(file, sizeof file, "%s/1.dat", p->dir);
    long rows = dump_rows(p, st, file);
    sqlite3_finalize(st);
    if (rows < 0) return -1;
    if (rows == 0) return fail(p, "validation: no validations (measured + predicted runs of `moesim validate --db`) "
                                  "match in %s", p->db_path);
    gp_num(p, "n", (double)rows);
    return 0;
}

/* quality: one point per configuration of `moesim quality --generate`
 * runs (kind=quality): mean measured decode tok/s against mean delta
 * nats/byte over the texts it ran on (a configuration: the run's
 * `configuration` key, its constraint with each text's profile path written
 * as profile=P). The frontier: the points no other point beats on both axes
 * (faster and no worse, or as fast and better). Delta is floored at 1e-4
 * for the log axis (quantization to 8 bits moves it by less). */
typedef struct qpoint {
    char label[300];
    double tok_s, delta;
    int n;
} qpoint;

static int by_tok_s(const void *a, const void *b) {
    const qpoint *x = a, *y = b;
    return x->tok_s < y->tok_s ? -1 : x->tok_s > y->tok_s;
}

static int plot_quality(plot_ctx *p) {
#define KV(k) "(SELECT value FROM run_config c WHERE c.run_id = s.id AND c.key = '" k "')"
#define MV(m) "(SELECT value FROM metrics x WHERE x.run_id = s.id AND x.name = '" m "')"
    static const char sql[] = "SELECT " KV("configuration") ", " MV("tok_s") ", " MV("delta_nats_per_byte")
                              " FROM run_summary s WHERE s.status = 'done' AND " KV("kind") " = 'quality'"
                              " AND " MV("tok_s") " IS NOT NULL AND (?1 IS NULL OR s.experiment = ?1) ORDER BY s.id";
#undef KV
#undef MV
    sqlite3_stmt *st = prepare(p, sql);
    if (!st) return -1;
    if (p->experiment) sqlite3_bind_text(st, 1, p->experiment, -1, SQLITE_STATIC);
    qpoint *pt = NULL;
    size_t n = 0, cap = 0;
    int rc = 0, s;
    while ((s = sqlite3_step(st)) == SQLITE_ROW) {
        const unsigned char *c = sqlite3_column_text(st, 0);
        const char *label = c ? (const char *)c : "?";
        size_t i = 0;
        while (i < n && strcmp(pt[i].label, label)) i++;
        if (i == n) {
            if (n == cap) {
                qpoint *np = realloc(pt, (cap = cap ? 2 * cap : 32) * sizeof *pt);
                if (!np) { rc = fail(p, "out of memory"); break; }
                pt = np;
            }
            memset(&pt[n], 0, sizeof pt[n]);
            snprintf(pt[n++].label, sizeof pt->label, "%s", label);
        }
        pt[i].tok_s += sqlite3_column_double(st, 1);
        pt[i].delta += sqlite3_column_double(st, 2);
        pt[i].n++;
    }
    if (!rc && s != SQLITE_DONE) rc = fail(p, "%s: %s", p->db_path, sqlite3_errmsg(p->db));
    sqlite3_finalize(st);
    if (!rc && !n) rc = fail(p, "quality: no runs of `moesim quality --generate N --db` match in %s", p->db_path);
    char file[160];
    FILE *f1 = NULL, *f2 = NULL;
    if (!rc) {
        for (size_t i = 0; i < n; i++) {
            pt[i].tok_s /= pt[i].n;
            pt[i].delta /= pt[i].n;
        }
        qsort(pt, n, sizeof *pt, by_tok_s);
        snprintf(file, sizeof file, "%s/1.dat", p->dir);
        f1 = fopen(file, "w");
        snprintf(file, sizeof file, "%s/2.dat", p->dir);
        f2 = fopen(file, "w");
        if (!f1 || !f2) rc = fail(p, "%s: %s", file, strerror(errno));
    }
    for (size_t i = 0; !rc && i < n; i++) {
        double d = pt[i].delta > 1e-4 ? pt[i].delta : 1e-4;
        fprintf(f1, "%.6g %.6g \"%s\"\n", pt[i].tok_s, d, pt[i].label);
        int beaten = 0; /* by a point at least as fast and no worse, better in one */
        for (size_t j = 0; j < n && !beaten; j++)
            beaten = j != i && pt[j].tok_s >= pt[i].tok_s && pt[j].delta <= pt[i].delta &&
                     (pt[j].tok_s > pt[i].tok_s || pt[j].delta < pt[i].delta);
        if (!beaten) fprintf(f2, "%.6g %.6g\n", pt[i].tok_s, d);
    }
    if (f1 && fclose(f1) && !rc) rc = fail(p, "writing the plot data: %s", strerror(errno));
    if (f2 && fclose(f2) && !rc) rc = fail(p, "writing the plot data: %s", strerror(errno));
    if (!rc) gp_num(p, "n", (double)n);
    free(pt);
    return rc;
}

static int run_gnuplot(plot_ctx *p, const char *tmpl) {
    char gp[1200], term[1400];
    snprintf(gp, sizeof gp, "%s/%s", p->plots, tmpl);
    if (access(gp, R_OK)) {
        char dirs[2048];
        moe_data_dirs_text(dirs, sizeof dirs);
        return fail(p, "template %s: %s (plots/ was looked for in the working directory, then %s; "
                       "or give --plots DIR)", gp, strerror(errno), dirs);
    }
    size_t ol = strlen(p->out);
    const char *ext = ol > 4 ? p->out + ol - 4 : "";
    int svg = !strcasecmp(ext, ".svg"), pdf = !strcasecmp(ext, ".pdf");
    if (!svg && !pdf && strcasecmp(ext, ".png"))
        return fail(p, "-o %s: the output must end in .png, .svg or .pdf", p->out);
    unsigned w = 1100, h = 680;
    if (p->size) {
        char *x;
        unsigned long a = strtoul(p->size, &x, 10), b = *x == 'x' ? strtoul(x + 1, &x, 10) : 0;
        if (*x || a < 100 || b < 100 || a > 10000 || b > 10000)
            return fail(p, "--size %s: expected WIDTHxHEIGHT in pixels, each 100..10000 (e.g. 1600x900)", p->size);
        w = (unsigned)a, h = (unsigned)b;
    }
    char font[200];
    snprintf(font, sizeof font, "%s", p->font ? p->font : svg ? "DejaVu Sans,12" : "DejaVu Sans,11");
    if (strchr(font, '\'') || strchr(font, '"')) return fail(p, "--font %s: no quotes in a font name", p->font);
    /* PDF sizes are in inches: 100 pixels to the inch */
    if (svg) snprintf(term, sizeof term, "set terminal svg size %u,%u dynamic noenhanced font '%s' background '#ffffff'", w, h, font);
    else if (pdf) snprintf(term, sizeof term, "set terminal pdfcairo size %.2fin,%.2fin noenhanced font '%s'", w / 100.0, h / 100.0, font);
    else snprintf(term, sizeof term, "set terminal pngcairo size %u,%u noenhanced font '%s'", w, h, font);
    appendf(term, sizeof term, "; set output \"%s\"", p->out);
    gp_str(p, "datadir", p->dir);
    static const struct { const char *kind, *head; } heads[] = {
        {"hit-rate", "Expert-cache hit rate vs cache capacity"},
        {"warmup", "Warm-up: hit rate over the trace"},
        {"layer-heatmap", "Hit rate per MoE layer"},
        {"popularity", "Expert popularity per layer"},
        {"time-breakdown", "Where the time per token goes"},
        {"topic-switch", "Recovery after sequence starts: cold-per-sequence vs warm cache"},
        {"prefetch", "Prefetch precision and recall vs lookahead"},
        {"validation", "Simulator vs real backend (offloaded): predicted against measured"},
        {"quality", "Speed against quality: measured decode tok/s and the loss in nats per byte"},
    };
    char title[2048] = "";
    for (size_t i = 0; i < sizeof heads / sizeof *heads; i++)
        if (!strcmp(heads[i].kind, p->kind)) snprintf(title, sizeof title, "%s\n%s", heads[i].head, p->trace_desc);
    gp_str(p, "title_text", p->title ? p->title : title);
    pid_t pid = fork();
    if (pid < 0) return fail(p, "fork: %s", strerror(errno));
    if (pid == 0) {
        execlp("gnuplot", "gnuplot", "-e", term, "-e", p->gp_vars, gp, (char *)NULL);
        fprintf(stderr, "moesim plot: cannot run gnuplot: %s (install gnuplot-nox: sudo make deps)\n", strerror(errno));
        _exit(127);
    }
    int ws;
    while (waitpid(pid, &ws, 0) < 0)
        if (errno != EINTR) return fail(p, "waitpid: %s", strerror(errno));
    if (!WIFEXITED(ws) || WEXITSTATUS(ws)) {
        unlink(p->out);
        return fail(p, "gnuplot failed on %s (exit %d)", gp, WIFEXITED(ws) ? WEXITSTATUS(ws) : -1);
    }
    return 0;
}

static void rm_dir(const char *dir) {
    char cmd[200];
    /* our own mkdtemp folder of plain files: unlink each, then the folder */
    for (int i = 1; i <= 256; i++) {
        snprintf(cmd, sizeof cmd, "%s/%d.dat", dir, i);
        unlink(cmd);
    }
    const char *fixed[] = {"heat.dat", "time.dat", "starts.dat"};
    for (int i = 0; i < 3; i++) {
        snprintf(cmd, sizeof cmd, "%s/%s", dir, fixed[i]);
        unlink(cmd);
    }
    rmdir(dir);
}

int cmd_plot(int argc, char **argv) {
    static const struct option opts[] = {
        {"db", required_argument, 0, 'd'},         {"trace", required_argument, 0, 't'},
        {"policy", required_argument, 0, 'p'},     {"scope", required_argument, 0, 's'},
        {"experiment", required_argument, 0, 'e'}, {"capacity", required_argument, 0, 'c'},
        {"cold-per-seq", required_argument, 0, 'C'}, {"title", required_argument, 0, 'T'},
        {"plots", required_argument, 0, 'P'},      {"output", required_argument, 0, 'o'},
        {"size", required_argument, 0, 'S'},       {"font", required_argument, 0, 'F'},
        {"ci", no_argument, 0, 'I'},               {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    plot_ctx p = {.capacity = -1, .cold = -1};
    char plots_dir[4096];
    p.plots = getenv("MOESIM_PLOTS") ? getenv("MOESIM_PLOTS") : moe_data_path("plots", plots_dir, sizeof plots_dir);
    int c;
    uint64_t v;
    optind = 1;
    while ((c = getopt_long(argc, argv, "ho:", opts, NULL)) != -1) {
        switch (c) {
        case 'd': p.db_path = optarg; break;
        case 't': p.trace_arg = optarg; break;
        case 'p':
            if (add_policies(&p, optarg)) {
                fprintf(stderr, "moesim plot: --policy: the list is too long\n");
                return 2;
            }
            break;
        case 'S': p.size = optarg; break;
        case 'F': p.font = optarg; break;
        case 's':
            if (strcmp(optarg, "per-layer") && strcmp(optarg, "global")) {
                fprintf(stderr, "moesim plot: --scope: per-layer or global, not '%s'\n", optarg);
                return 2;
            }
            p.scope = optarg;
            break;
        case 'e': p.experiment = optarg; break;
        case 'c':
            if (cli_parse_u64("--capacity", optarg, UINT32_MAX, &v, &p.err)) {
                fprintf(stderr, "moesim plot: %s\n", p.err.msg);
                return 2;
            }
            p.capacity = (long)v;
            break;
        case 'C':
            if (!strcmp(optarg, "on") || !strcmp(optarg, "1")) p.cold = 1;
            else if (!strcmp(optarg, "off") || !strcmp(optarg, "0")) p.cold = 0;
            else {
                fprintf(stderr, "moesim plot: --cold-per-seq: on or off, not '%s'\n", optarg);
                return 2;
            }
            break;
        case 'T': p.title = optarg; break;
        case 'I': p.ci = 1; break;
        case 'P': p.plots = optarg; break;
        case 'o': p.out = optarg; break;
        case 'h': fputs(plot_usage, stdout); return 0;
        default: fputs(plot_usage, stderr); return 2;
        }
    }
    if (optind != argc - 1 || !p.db_path || !p.out) {
        fprintf(stderr, "moesim plot: KIND, --db and -o are required\n%s", plot_usage);
        return 2;
    }
    p.kind = argv[optind];
    if (p.ci && strcmp(p.kind, "hit-rate")) {
        fprintf(stderr, "moesim plot: --ci draws intervals on the hit-rate figure only, not %s\n", p.kind);
        return 2;
    }
    static const struct { const char *kind, *tmpl; } kinds[] = {
        {"hit-rate", "hit_rate.gp"},   {"warmup", "warmup.gp"},         {"layer-heatmap", "heatmap.gp"},
        {"popularity", "heatmap.gp"},  {"time-breakdown", "time_breakdown.gp"},
        {"topic-switch", "topic_switch.gp"}, {"prefetch", "prefetch.gp"}, {"validation", "validation.gp"},
        {"quality", "quality.gp"},
    };
    const char *tmpl = NULL;
    for (size_t i = 0; i < sizeof kinds / sizeof *kinds; i++)
        if (!strcmp(kinds[i].kind, p.kind)) tmpl = kinds[i].tmpl;
    if (!tmpl) {
        fprintf(stderr, "moesim plot: unknown kind '%s'\n%s", p.kind, plot_usage);
        return 2;
    }
    int rc = -1;
    if (access(p.db_path, R_OK)) {
        fail(&p, "%s: %s", p.db_path, strerror(errno));
        goto out;
    }
    /* Read-only, works on read-only media, refuses a damaged file. */
    if (!(p.db = moe_db_open_readonly(p.db_path, NULL, &p.err))) goto out;
    sqlite3_busy_timeout(p.db, 10000);
    sqlite3_create_function(p.db, "moe_policy_match", 1, SQLITE_UTF8 | SQLITE_DETERMINISTIC, &p, policy_match_fn, NULL,
                            NULL);
    p.keep_belady = !strcmp(p.kind, "hit-rate") || !strcmp(p.kind, "warmup");
    snprintf(p.dir, sizeof p.dir, "/tmp/moesim-plot-XXXXXX");
    if (!mkdtemp(p.dir)) {
        fail(&p, "mkdtemp: %s", strerror(errno));
        p.dir[0] = 0;
        goto out;
    }
    if (!strcmp(p.kind, "popularity") && p.trace_arg && access(p.trace_arg, R_OK) == 0) {
        /* popularity needs only the trace; the database may not know it */
        moe_trace *t = moe_trace_load(p.trace_arg, &p.err);
        if (!t) goto out;
        snprintf(p.trace_desc, sizeof p.trace_desc, "%s (%s: %u layers x %u experts, top-%u, %llu steps)", p.trace_arg,
                 t->model, t->n_layers, t->n_experts, t->top_k, (unsigned long long)t->n_steps);
        moe_trace_free(t);
    } else if (!strcmp(p.kind, "validation") || !strcmp(p.kind, "quality")) {
        snprintf(p.trace_desc, sizeof p.trace_desc, "%s", p.db_path);
    } else if (pick_trace(&p)) {
        goto out;
    }
    int r;
    if (!strcmp(p.kind, "hit-rate")) r = plot_hit_rate(&p);
    else if (!strcmp(p.kind, "warmup")) r = plot_warmup(&p, 0);
    else if (!strcmp(p.kind, "topic-switch")) r = plot_warmup(&p, 1);
    else if (!strcmp(p.kind, "layer-heatmap")) r = plot_layer_heatmap(&p);
    else if (!strcmp(p.kind, "popularity")) r = plot_popularity(&p);
    else if (!strcmp(p.kind, "time-breakdown")) r = plot_time_breakdown(&p);
    else if (!strcmp(p.kind, "validation")) r = plot_validation(&p);
    else if (!strcmp(p.kind, "quality")) r = plot_quality(&p);
    else r = plot_prefetch(&p);
    if (r) goto out;
    gp_str(&p, "kind", p.kind);
    if (run_gnuplot(&p, tmpl)) goto out;
    printf("plot: %s written (%s)\n", p.out, p.kind);
    rc = 0;
out:
    if (p.db) sqlite3_close(p.db);
    if (p.dir[0]) rm_dir(p.dir);
    if (rc) return cli_error("plot", &p.err);
    return 0;
}

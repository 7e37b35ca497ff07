/* cmd_plot.c: `moesim plot KIND` — figures drawn by gnuplot from the results
 * database.
 *
 * Each kind selects runs with the same filters (trace, policy, scope,
 * experiment, capacity, cold-per-seq), writes the numbers into data files in
 * a temporary folder, and runs gnuplot on a template of plots/ with the
 * file names, labels and ranges passed as -e variables. The terminal follows
 * the output's extension (.png: pngcairo, .svg: svg, .pdf: pdfcairo); --data
 * writes the same data files as one CSV (plot_data.h). Runs that change the
 * cache's contents beyond policy and size (prefetch, precision, skip, byte
 * capacities) are left out of the hit-rate kinds, so one point is one policy
 * at one size; several seeds of a randomised policy are averaged. Without
 * --policy, the line kinds draw a stated default choice (default_policies). */
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
#include "plot_data.h"

static const char plot_usage[] =
    "usage: moesim plot KIND --db F [filters] -o FILE.png|FILE.svg|FILE.pdf [-o ...] [--data FILE.csv]\n"
    "\n"
    "Draw a figure from a results database with gnuplot (templates in plots/).\n"
    "\n"
    "kinds:\n"
    "  hit-rate        hit rate vs capacity, one line per policy, Belady as the ceiling\n"
    "  warmup          hit rate over the trace in windows of steps, one line per policy;\n"
    "                  sequence starts dotted, --mark steps labelled\n"
    "  layer-heatmap   per-layer hit rate: policy x layer (or capacity x layer with --policy)\n"
    "  popularity      expert popularity, layer x expert (share of the layer's activations),\n"
    "                  counted from the trace file\n"
    "  time-breakdown  time per token: dense and expert compute, stalls; I/O busy time;\n"
    "                  bars grouped by prefetcher (and precision, device, model where they vary)\n"
    "  topic-switch    recovery after a sequence start: hit rate by steps since the start,\n"
    "                  pooled over every start but the first, warm cache vs cold-per-seq\n"
    "  prefetch        prefetch precision and recall vs lookahead distance\n"
    "  validation      simulator vs real backend (`moesim validate --db`)\n"
    "  quality         Pareto: measured decode tok/s vs quality loss, one point per\n"
    "                  configuration of `moesim quality --generate N --db`, the\n"
    "                  frontier drawn (--experiment selects)\n"
    "\n"
    "filters:\n"
    "  --trace T        trace file, or a prefix of its content hash (default: the only one)\n"
    "  --policy P       policy name (all its parameter variants) or canonical spec;\n"
    "                   repeatable, or a list: --policy lru,lfu,arc; 'all': every one.\n"
    "                   hit-rate and warmup always draw Belady when present (the\n"
    "                   ceiling); a policy that reads the future is labelled (oracle)\n"
    "  --scope S        per-layer or global (default: per-layer when present)\n"
    "  --experiment E   experiment name\n"
    "  --capacity N     capacity (warmup, layer-heatmap, topic-switch; default: a middle one)\n"
    "  --cold-per-seq on|off   (default: off when present)\n"
    "\n"
    "default lines (hit-rate, warmup, topic-switch; without --policy): at most 6 lines:\n"
    "  Belady (the ceiling) and lru (the classic baseline) when present, and the other\n"
    "  policies with the highest mean hit rate over the capacities every policy ran at\n"
    "  (warmup, topic-switch: at the figure's capacity; ties by name), as many as fit\n"
    "  (topic-switch: 3 policies, warm and cold each). The legend says so, stderr names\n"
    "  the ones left out; --policy all draws every policy.\n"
    "\n"
    "output:\n"
    "  -o FILE          .png, .svg or .pdf; repeat -o for several formats of one figure\n"
    "  --data FILE      the plotted numbers as CSV (a header row; text quoted as RFC 4180);\n"
    "                   with --data, -o may be left out\n"
    "  --mark S:LABEL[,S:LABEL...]  warmup: a labelled vertical line at each step S\n"
    "                   (e.g. where a prompt changes topic)\n"
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
    const char *db_path, *kind, *plots;
    const char *trace_arg, *policy, *scope, *experiment, *title;
    char pol[1024];      /* --policy, every one given, as one comma list ("" = all) */
    int n_pol;           /* items in it */
    int all_pol;         /* --policy all: every policy, no default choice */
    int keep_belady;     /* hit-rate, warmup: Belady drawn whatever --policy says */
    int ci;              /* hit-rate: bootstrap intervals as error bars */
    double ci_widest;    /* the widest interval drawn (hi - lo) */
    size_t ci_seqs;      /* sequences resampled */
    const char *outs[4]; /* -o, each format of the one figure */
    int n_out;
    const char *out_data; /* --data FILE.csv */
    const char *marks;   /* --mark, checked */
    /* what --data writes: the data files, their series, the columns */
    plot_data_file data[128];
    int n_data;
    const char *data_series, *data_cols;
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
            else fprintf(f, "%.17g", sqlite3_column_double(st, i)); /* every bit: --data reads these */
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

/* The legend name of names[i] among the n drawn: its base name ("s3fifo"),
 * or the full spec when another drawn policy shares that base name, with
 * "(oracle)" when it reads the future (a profile or a training taken from
 * the replayed trace itself; Belady is the templates' "offline optimum"). */
static void policy_label(char names[][128], int n, int i, char *out, size_t cap) {
    /* a policy that reads the future says so (core/policy.h's rule); Belady
     * is the template's "offline optimum" and needs no mark */
    int oracle = moe_policy_is_oracle(names[i]) && strncmp(names[i], "belady", 6);
    snprintf(out, cap, "%.*s%s", short_len(names, n, i), names[i], oracle ? "(oracle)" : "");
}

/* The legend names of the n drawn policies, space-separated, as gnuplot's
 * `policies` (specs have no spaces). */
static void policy_files(plot_ctx *p, char names[][128], int n) {
    char list[8192] = "", label[160];
    for (int i = 0; i < n; i++) {
        policy_label(names, n, i, label, sizeof label);
        appendf(list, sizeof list, "%s%s", i ? " " : "", label);
    }
    gp_str(p, "policies", list);
}

/* --data: data file `name` of the figure draws `series`. */
static void data_file(plot_ctx *p, const char *name, const char *series) {
    if (p->n_data == (int)(sizeof p->data / sizeof *p->data)) return; /* callers draw at most 64 x 2 lines */
    plot_data_file *d = &p->data[p->n_data++];
    snprintf(d->name, sizeof d->name, "%.15s", name);
    snprintf(d->series, sizeof d->series, "%.319s", series);
}

/* The default lines (plot_usage states the rule): without --policy, when the
 * selection has more than max policies, keep Belady (the ceiling) and lru
 * (the classic baseline) when present and fill the rest with the policies of
 * the highest mean hit rate over the capacities every policy of the
 * selection ran at (ties by name). names (n of them, Belady last) becomes:
 * the chosen by rank, then lru, then Belady; the legend title says the rule
 * and stderr names what was left out. Returns the new count, or -1. */
static int default_policies(plot_ctx *p, int plain, char names[][128], int n, int max) {
    gp_str(p, "key_title", "policy");
    if (p->n_pol || p->all_pol || n <= max) return n;
    char where[1024], sql[2400];
    filter_sql(p, where, sizeof where, plain);
    snprintf(sql, sizeof sql,
             "WITH pc AS (SELECT s.policy AS policy, s.capacity AS capacity, AVG(s.hit_rate) AS h"
             "   FROM run_summary s WHERE %s GROUP BY s.policy, s.capacity),"
             " common AS (SELECT capacity FROM pc GROUP BY capacity"
             "   HAVING COUNT(*) = (SELECT COUNT(DISTINCT policy) FROM pc))"
             " SELECT policy, AVG(h), (SELECT COUNT(*) FROM common), (SELECT MIN(capacity) FROM common),"
             "   (SELECT MAX(capacity) FROM common) FROM pc"
             " WHERE capacity IN (SELECT capacity FROM common) OR NOT EXISTS (SELECT 1 FROM common)"
             " GROUP BY policy ORDER BY AVG(h) DESC, policy",
             where);
    sqlite3_stmt *st = prepare(p, sql);
    if (!st) return -1;
    bind_filter(p, st);
    int has_belady = !strncmp(names[n - 1], "belady", 6), lru = -1, rc;
    for (int i = 0; i < n; i++)
        if (lru < 0 && !strcmp(names[i], "lru")) lru = i;
    int slots = max - has_belady - (lru >= 0), others = n - has_belady - (lru >= 0), k = 0;
    long n_common = 0, cmin = 0, cmax = 0;
    char picked[64][128], left[4096] = "";
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *pol = (const char *)sqlite3_column_text(st, 0);
        n_common = sqlite3_column_int64(st, 2), cmin = sqlite3_column_int64(st, 3), cmax = sqlite3_column_int64(st, 4);
        if (!strncmp(pol, "belady", 6) || !strcmp(pol, "lru")) continue;
        if (k < slots) snprintf(picked[k++], 128, "%s", pol);
        else appendf(left, sizeof left, "%s%s", left[0] ? ", " : "", pol);
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) return fail(p, "%s: %s", p->db_path, sqlite3_errmsg(p->db));
    char belady[128] = "";
    if (has_belady) snprintf(belady, sizeof belady, "%s", names[n - 1]);
    int m = 0;
    for (int i = 0; i < k; i++) snprintf(names[m++], 128, "%.127s", picked[i]);
    if (lru >= 0) snprintf(names[m++], 128, "lru");
    if (has_belady) snprintf(names[m++], 128, "%s", belady);
    char over[160];
    if (n_common == 0) snprintf(over, sizeof over, "over each one's own capacities (none is common to all)");
    else if (n_common == 1) snprintf(over, sizeof over, "at capacity %ld", cmin);
    else snprintf(over, sizeof over, "over the %ld capacities %ld..%ld", n_common, cmin, cmax);
    char title[400];
    snprintf(title, sizeof title, "policy: the %d of %d%s with the best\nmean hit rate%s%s", k, others,
             lru >= 0 || has_belady ? " others" : "", lru >= 0 ? ", lru" : "", has_belady ? ", belady" : "");
    gp_str(p, "key_title", title);
    fprintf(stderr, "moesim plot: %s: %d of %d policies drawn: the %d with the highest mean hit rate %s%s%s; "
                    "left out: %s (--policy all draws every one)\n",
            p->kind, m, n, k, over, lru >= 0 ? ", lru (the classic baseline)" : "",
            has_belady ? ", belady (the ceiling)" : "", left);
    return m;
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
    if ((n = default_policies(p, 1, names, n, 6)) < 0) return -1;
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
        snprintf(file, sizeof file, "%d.dat", i + 1);
        data_file(p, file, names[i]);
    }
    gp_num(p, "ci", p->ci);
    if (p->ci) { /* bars can be too short to see: the caption says how long they are */
        char t[200];
        snprintf(t, sizeof t, "error bars: 95%% bootstrap intervals over %zu sequences (1000 resamples, seed 1); "
                              "widest %.4f", p->ci_seqs, p->ci_widest);
        gp_str(p, "ci_text", t);
    }
    p->data_series = "policy";
    p->data_cols = "capacity,hit_rate";
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

/* starts.dat: every sequence start of the trace but the first (step 0), and
 * marks.dat: the --mark steps with their labels. The trace file is read
 * for the starts; without it (moved since the runs) only marks are drawn.
 * Sets n_starts and n_marks; *n_seqs = the trace's sequences (0 unknown). */
static int write_markers(plot_ctx *p, uint64_t *n_seqs) {
    char file[256];
    snprintf(file, sizeof file, "%s/starts.dat", p->dir);
    FILE *f = fopen(file, "w");
    if (!f) return fail(p, "%s: %s", file, strerror(errno));
    int ns = 0;
    *n_seqs = 0;
    moe_error e2;
    moe_trace *t = p->trace_path[0] ? moe_trace_load(p->trace_path, &e2) : NULL;
    if (t) {
        uint32_t prev = 0;
        int any = 0;
        for (uint64_t s = 0; s < t->n_steps; s++) {
            uint64_t tok = t->step_first_token[s];
            if (tok >= t->step_first_token[s + 1]) continue; /* a step without tokens stays in its sequence */
            uint32_t seq = t->token_seq[tok];
            if (any && seq != prev) fprintf(f, "%llu\n", (unsigned long long)s), ns++;
            prev = seq, any = 1;
        }
        *n_seqs = (uint64_t)ns + 1;
        gp_num(p, "xmax", (double)t->n_steps);
        moe_trace_free(t);
    }
    fclose(f);
    gp_num(p, "n_starts", ns);
    snprintf(file, sizeof file, "%s/marks.dat", p->dir);
    if (!(f = fopen(file, "w"))) return fail(p, "%s: %s", file, strerror(errno));
    int nm = 0;
    for (const char *c = p->marks ? p->marks : ""; *c; nm++) { /* checked when parsed: STEP:LABEL,... */
        size_t n = strcspn(c, ",");
        const char *colon = memchr(c, ':', n);
        fprintf(f, "%.*s \"%.*s\"\n", (int)(colon - c), c, (int)(n - (size_t)(colon - c) - 1), colon + 1);
        c += n + (c[n] == ',');
    }
    fclose(f);
    gp_num(p, "n_marks", nm);
    return 0;
}

/* warmup: the windowed hit-rate curve of each drawn policy over the trace,
 * sequence starts and --mark steps marked. */
static int plot_warmup(plot_ctx *p) {
    if (pick_defaults(p, 1)) return -1;
    if (pick_capacity(p, 1)) return -1;
    char names[64][128], where[1024], sql[1800], file[256], label[160];
    int n = list_policies(p, 1, names, 64);
    if (n < 0) return -1;
    if (n == 0) return empty_selection(p, "runs");
    if ((n = default_policies(p, 1, names, n, 6)) < 0) return -1;
    filter_sql(p, where, sizeof where, 1);
    snprintf(sql, sizeof sql, "SELECT c.x, AVG(c.y) FROM curves c JOIN run_summary s ON s.id = c.run_id "
                              "WHERE %s AND s.policy = ?7 AND c.curve = 'warmup_hit_rate' GROUP BY c.x ORDER BY c.x", where);
    char labels[8192] = "";
    int k = 0, last_belady = 0;
    for (int i = 0; i < n; i++) {
        sqlite3_stmt *st = prepare(p, sql);
        if (!st) return -1;
        bind_filter(p, st);
        sqlite3_bind_text(st, 7, names[i], -1, SQLITE_STATIC);
        snprintf(file, sizeof file, "%s/%d.dat", p->dir, k + 1);
        long rows = dump_rows(p, st, file);
        sqlite3_finalize(st);
        if (rows < 0) return -1;
        if (rows == 0) continue;
        k++;
        snprintf(file, sizeof file, "%d.dat", k);
        data_file(p, file, names[i]);
        last_belady = !strncmp(names[i], "belady", 6);
        policy_label(names, n, i, label, sizeof label);
        appendf(labels, sizeof labels, "%s%s", k > 1 ? " " : "", label);
    }
    if (k == 0) return empty_selection(p, "warm-up curves");
    p->data_series = "policy";
    p->data_cols = "first_step_of_window,hit_rate";
    gp_str(p, "policies", labels);
    gp_num(p, "n", k);
    /* Belady comes last (list_policies): drawn as the dashed black ceiling,
     * as in the hit-rate figure, never in a colour another policy also has. */
    gp_num(p, "ceiling", last_belady ? k : 0);
    uint64_t n_seqs;
    if (write_markers(p, &n_seqs)) return -1;
    char xl[256];
    snprintf(xl, sizeof xl, "step (forward pass); each point = hit rate within a window of steps, capacity %ld %s",
             p->capacity, capacity_unit(p));
    gp_str(p, "xlabel_text", xl);
    return 0;
}

/* topic-switch: the recovery curve (seq_start_hit_rate: hit rate by steps
 * since a sequence start, pooled over every start but the first) of the
 * warm and the cold-per-sequence run of each drawn policy, so what a
 * restart costs, and for how many steps, is seen against the warm line. */
static int plot_topic_switch(plot_ctx *p) {
    if (pick_defaults(p, 1)) return -1;
    p->cold = 1; /* pick capacity and policies among cold-per-seq runs */
    if (pick_capacity(p, 1)) return -1;
    char names[64][128], where[1024], sql[1800], file[256], label[160];
    int n = list_policies(p, 1, names, 64);
    if (n < 0) return -1;
    if (n == 0) return empty_selection(p, "cold-per-seq runs (sweep with cold_per_seq = off, on)");
    int n_all = n;
    if ((n = default_policies(p, 1, names, n, 3)) < 0) return -1;
    if (n == n_all) gp_str(p, "key_title", "policy (cache mode)"); /* else the default choice's title */
    char labels[8192] = "";
    long total = 0;
    for (int i = 0; i < n; i++)
        for (int cold = 0; cold < 2; cold++) {
            p->cold = cold;
            filter_sql(p, where, sizeof where, 1);
            snprintf(sql, sizeof sql,
                     "SELECT c.x, AVG(c.y), '%s' FROM curves c JOIN run_summary s ON s.id = c.run_id WHERE %s"
                     " AND s.policy = ?7 AND c.curve = 'seq_start_hit_rate' GROUP BY c.x ORDER BY c.x",
                     cold ? "cold-per-seq" : "warm", where);
            sqlite3_stmt *st = prepare(p, sql);
            if (!st) return -1;
            bind_filter(p, st);
            sqlite3_bind_text(st, 7, names[i], -1, SQLITE_STATIC);
            int f = 2 * i + cold + 1; /* pairs per policy: odd = warm, even = cold; an empty file draws nothing */
            snprintf(file, sizeof file, "%s/%d.dat", p->dir, f);
            long rows = dump_rows(p, st, file);
            sqlite3_finalize(st);
            if (rows < 0) return -1;
            total += rows;
            snprintf(file, sizeof file, "%d.dat", f);
            data_file(p, file, names[i]);
            policy_label(names, n, i, label, sizeof label);
            appendf(labels, sizeof labels, "%s%s%s", f > 1 ? " " : "", label, cold ? "(cold-per-seq)" : "(warm)");
        }
    p->cold = 1;
    if (total == 0) {
        char fl[1024];
        describe_filters(p, fl, sizeof fl);
        return fail(p, "topic-switch: no recovery curves (seq_start_hit_rate) for %s in %s: the trace needs "
                       "several sequences, and runs stored by an older moesim lack the curve (run them again)",
                    fl, p->db_path);
    }
    p->data_series = "policy";
    p->data_cols = "steps_since_start,hit_rate,cache";
    gp_str(p, "policies", labels);
    gp_num(p, "n", 2 * n);
    gp_num(p, "ceiling", !strncmp(names[n - 1], "belady", 6) ? n : 0);
    uint64_t n_seqs;
    if (write_markers(p, &n_seqs)) return -1;
    char xl[300];
    if (n_seqs > 1)
        snprintf(xl, sizeof xl, "steps since a sequence start (0 = its first step), pooled over the %llu starts after "
                 "the first; capacity %ld %s", (unsigned long long)n_seqs - 1, p->capacity, capacity_unit(p));
    else
        snprintf(xl, sizeof xl, "steps since a sequence start (0 = its first step), pooled over every start after "
                 "the first; capacity %ld %s", p->capacity, capacity_unit(p));
    gp_str(p, "xlabel_text", xl);
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
        /* the row's name too: the template draws columns 1-3, --data names the row */
        fprintf(f, "%u %d %.17g \"%s\"\n", l, nr - 1, v, key);
    }
    char label[160];
    for (int i = 0; i < nr; i++) {
        if (by_capacity) snprintf(label, sizeof label, "%.127s", rows[i]);
        else policy_label(rows, nr, i, label, sizeof label);
        appendf(tics, sizeof tics, "%s\"%s\" %d", i ? ", " : "", label, i);
    }
    sqlite3_finalize(st);
    fclose(f);
    if (nr == 0) return empty_selection(p, "per-layer metrics");
    data_file(p, "heat.dat", "");
    p->data_cols = by_capacity ? "layer,row,hit_rate,capacity" : "layer,row,hit_rate,policy";
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
                fprintf(f, "%u %u %.17g\n", e, l, v);
            }
        }
        fclose(f);
    }
    uint32_t L = t->n_layers, E = t->n_experts;
    free(cnt);
    moe_trace_free(t);
    if (!f) return fail(p, "%s: %s", file, strerror(errno));
    data_file(p, "heat.dat", "");
    p->data_cols = "expert,layer,share_of_layer_activations";
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

/* One bar of time-breakdown: a run's configuration and ms per token. */
typedef struct tb_bar {
    char policy[128], cfg[4][200]; /* prefetch, precision, device, model ("" = none) */
    double ms[5];                  /* dense, expert, stall miss, stall late prefetch, I/O busy */
    int group;
} tb_bar;

/* Cut a canonical spec to its name ("rtx-3060:io_channels=1,..." -> "rtx-3060"). */
static void spec_name(char *spec) { spec[strcspn(spec, ":")] = 0; }

/* time-breakdown: one stacked bar per run (ms per token), labelled by its
 * policy and grouped by the rest of its configuration (prefetcher, and
 * precision, device and model where they vary); what is the same for every
 * bar goes into the title, so a label never repeats it. */
static int plot_time_breakdown(plot_ctx *p) {
    if (pick_defaults(p, 0)) return -1;
    if (require_metric(p, "total_s", "time-breakdown: no timing metrics",
                       "runs need a device profile: sweep with 'device = ...' in the experiment file, "
                       "or moesim run --device"))
        return -1;
    if (pick_capacity(p, 0)) return -1;
    char where[1024], sql[3000], file[256];
    filter_sql(p, where, sizeof where, 0);
#define MV(name) "(SELECT value FROM metrics m WHERE m.run_id = s.id AND m.name = '" name "')"
#define CV(key) "COALESCE((SELECT value FROM run_config c WHERE c.run_id = s.id AND c.key = '" key "'), '')"
    snprintf(sql, sizeof sql,
             "SELECT s.policy, " CV("prefetch") ", " CV("precision") ", " CV("device") ", " CV("model") ","
             " 1e3 * " MV("dense_s") " / t.tokens, 1e3 * " MV("expert_s") " / t.tokens,"
             " 1e3 * " MV("stall_miss_s") " / t.tokens, 1e3 * COALESCE(" MV("stall_late_prefetch_s") ", 0) / t.tokens,"
             " 1e3 * " MV("io_utilisation") " * " MV("total_s") " / t.tokens"
             " FROM run_summary s JOIN traces t ON t.hash = s.trace_hash WHERE %s AND " MV("total_s") " IS NOT NULL"
             " ORDER BY s.id",
             where);
#undef MV
#undef CV
    sqlite3_stmt *st = prepare(p, sql);
    if (!st) return -1;
    bind_filter(p, st);
    enum { MAX_BARS = 256 };
    tb_bar *bar = calloc(MAX_BARS, sizeof *bar);
    char(*pols)[128] = calloc(MAX_BARS, sizeof *pols);
    if (!bar || !pols) {
        sqlite3_finalize(st);
        free(bar), free(pols);
        return fail(p, "out of memory");
    }
    int nb = 0, np = 0, rc, ret = -1;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW && nb < MAX_BARS) {
        tb_bar *b = &bar[nb++];
        snprintf(b->policy, sizeof b->policy, "%s", (const char *)sqlite3_column_text(st, 0));
        for (int k = 0; k < 4; k++) snprintf(b->cfg[k], sizeof b->cfg[k], "%s", (const char *)sqlite3_column_text(st, 1 + k));
        for (int k = 0; k < 5; k++) b->ms[k] = sqlite3_column_double(st, 5 + k);
        int seen = 0;
        for (int j = 0; j < np && !seen; j++) seen = !strcmp(pols[j], b->policy);
        if (!seen) snprintf(pols[np++], 128, "%s", b->policy);
    }
    sqlite3_finalize(st);
    if (rc == SQLITE_ROW) { /* more than MAX_BARS: say so rather than drop bars silently */
        fail(p, "time-breakdown: more than %d runs match; narrow them (--experiment, --policy, --capacity)", MAX_BARS);
        goto out;
    }
    if (rc != SQLITE_DONE) {
        fail(p, "%s: %s", p->db_path, sqlite3_errmsg(p->db));
        goto out;
    }
    if (nb == 0) {
        empty_selection(p, "runs with timing metrics");
        goto out;
    }
    /* device and model by name (their parameters are in the database) */
    for (int i = 0; i < nb; i++)
        for (int k = 2; k < 4; k++) spec_name(bar[i].cfg[k]);
    int varies[4] = {0};
    for (int i = 1; i < nb; i++)
        for (int k = 0; k < 4; k++) varies[k] |= strcmp(bar[i].cfg[k], bar[0].cfg[k]) != 0;
    /* groups: the varying parts, in order of first appearance; key = one
     * line (time.dat, --data), shown = a line per part, the spec's name
     * above its parameters (a group is only as wide as its bars) */
    char(*groups)[400] = calloc(MAX_BARS, sizeof *groups), (*shown)[400] = calloc(MAX_BARS, sizeof *shown);
    if (!groups || !shown) {
        free(groups), free(shown);
        fail(p, "out of memory");
        goto out;
    }
    static const char *part[4] = {"prefetch", "precision", "device", "model"};
    static const char *unset[4] = {"none", "none (16-bit experts)", "?", "?"};
    int ng = 0, n_varies = 0;
    for (int k = 0; k < 4; k++) n_varies += varies[k];
    for (int i = 0; i < nb; i++) {
        char key[400] = "", show[400] = "";
        for (int k = 0; k < 4; k++) {
            if (!varies[k]) continue;
            const char *v = bar[i].cfg[k][0] ? bar[i].cfg[k] : unset[k];
            appendf(key, sizeof key, "%s%s %s", key[0] ? ", " : "", part[k], v);
            /* "gate:ahead=1,n=2" -> "gate" / "ahead=1,n=2"; gnuplot reads \n in the label (two characters) */
            if (k == 0 && !bar[i].cfg[k][0] && n_varies == 1) v = "no prefetch";
            size_t nl = strcspn(v, ":");
            appendf(show, sizeof show, "%s%s%s%.*s", show[0] ? "\\n" : "", n_varies > 1 ? part[k] : "",
                    n_varies > 1 ? " " : "", (int)nl, v);
            if (v[nl]) appendf(show, sizeof show, "\\n%s", v + nl + 1);
        }
        int g = 0;
        while (g < ng && strcmp(groups[g], key)) g++;
        if (g == ng) {
            snprintf(groups[ng], sizeof groups[0], "%s", key);
            snprintf(shown[ng++], sizeof shown[0], "%s", show);
        }
        bar[i].group = g;
    }
    snprintf(file, sizeof file, "%s/time.dat", p->dir);
    FILE *f = fopen(file, "w");
    if (!f) {
        free(groups), free(shown);
        fail(p, "%s: %s", file, strerror(errno));
        goto out;
    }
    /* x: bars side by side, half a bar's gap between groups; the group
     * names as gnuplot labels under the policy names */
    char glabels[8192] = "";
    int lines = 0;
    double x = 0;
    for (int g = 0; g < ng; g++) {
        double x0 = x;
        for (int i = 0; i < nb; i++) {
            if (bar[i].group != g) continue;
            int pi = 0;
            while (strcmp(pols[pi], bar[i].policy)) pi++;
            char label[160];
            policy_label(pols, np, pi, label, sizeof label);
            fprintf(f, "%g \"%s\" \"%s\"", x, label, groups[g]);
            for (int k = 0; k < 5; k++) fprintf(f, " %.17g", bar[i].ms[k]);
            fputc('\n', f);
            x += 1;
        }
        if (shown[g][0]) {
            appendf(glabels, sizeof glabels, "set label \"%s\" at first %g, graph 0 center offset 0, char -2.2 "
                    "tc rgb '#222222' front; ", shown[g], (x0 + x - 1) / 2);
            int l = 1;
            for (const char *c = shown[g]; (c = strstr(c, "\\n")); c += 2) l++;
            if (l > lines) lines = l;
        }
        x += 0.5;
    }
    fclose(f);
    free(groups), free(shown);
    data_file(p, "time.dat", "");
    p->data_cols = "x,policy,configuration,dense_ms_per_token,expert_ms_per_token,stall_miss_ms_per_token,"
                   "stall_late_prefetch_ms_per_token,io_busy_ms_per_token";
    gp_str(p, "group_labels", glabels);
    gp_num(p, "group_lines", lines);
    /* what every bar shares goes into the title; what varies, under the bars */
    char same[1000] = "";
    if (!varies[2]) appendf(same, sizeof same, "device %s, ", bar[0].cfg[2][0] ? bar[0].cfg[2] : "?");
    if (!varies[3]) appendf(same, sizeof same, "%s expert sizes, ", bar[0].cfg[3][0] ? bar[0].cfg[3] : "the trace's");
    if (!varies[1]) appendf(same, sizeof same, "%s, ", bar[0].cfg[1][0] ? bar[0].cfg[1] : "16-bit experts");
    if (!varies[0]) appendf(same, sizeof same, "%s, ", bar[0].cfg[0][0] ? bar[0].cfg[0] : "no prefetch");
    appendf(same, sizeof same, "capacity %ld %s", p->capacity, capacity_unit(p));
    appendf(p->trace_desc, sizeof p->trace_desc, "\n%s", same);
    char xl[200] = "policy";
    for (int k = 0, first = 1; k < 4; k++)
        if (varies[k]) appendf(xl, sizeof xl, "%s%s", first ? ", grouped by " : " and ", part[k]), first = 0;
    gp_str(p, "xlabel_text", xl);
    ret = 0;
out:
    free(bar);
    free(pols);
    return ret;
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
        snprintf(file, sizeof file, "%d.dat", k);
        data_file(p, file, fam[i]);
        appendf(names, sizeof names, "%s%s", k > 1 ? " " : "", fam[i]);
    }
#undef CV
    if (k == 0) return empty_selection(p, "prefetch runs");
    gp_str(p, "policies", names);
    gp_num(p, "n", k);
    p->data_series = "prefetcher";
    p->data_cols = "distance,precision,recall";
    /* the policies and capacities the points average over, named */
    snprintf(sql, sizeof sql, "SELECT group_concat(DISTINCT substr(s.policy, 1, instr(s.policy || ':', ':') - 1)),"
                              " group_concat(DISTINCT s.capacity) FROM run_summary s WHERE %s AND EXISTS (SELECT 1"
                              " FROM run_config c WHERE c.run_id = s.id AND c.key = 'prefetch')", where);
    sqlite3_stmt *st = prepare(p, sql);
    if (!st) return -1;
    bind_filter(p, st);
    char xl[600];
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0))
        snprintf(xl, sizeof xl, "lookahead distance (layers ahead; 'ahead' / 'hops' parameter); %s %.200s, capacity %.100s %s",
                 strchr((const char *)sqlite3_column_text(st, 0), ',') ? "mean over the policies" : "policy",
                 (const char *)sqlite3_column_text(st, 0), (const char *)sqlite3_column_text(st, 1), capacity_unit(p));
    else snprintf(xl, sizeof xl, "lookahead distance (layers ahead; 'ahead' / 'hops' parameter)");
    sqlite3_finalize(st);
    gp_str(p, "xlabel_text", xl);
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
    data_file(p, "1.dat", "");
    p->data_cols = "measured_tok_s,predicted_tok_s,configuration,measured_dense_ms,measured_expert_ms,"
                   "measured_stall_miss_ms,measured_stall_late_prefetch_ms,predicted_dense_ms,predicted_expert_ms,"
                   "predicted_stall_miss_ms,predicted_stall_late_prefetch_ms";
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
        int beaten = 0; /* by a point at least as fast and no worse, better in one */
        for (size_t j = 0; j < n && !beaten; j++)
            beaten = j != i && pt[j].tok_s >= pt[i].tok_s && pt[j].delta <= pt[i].delta &&
                     (pt[j].tok_s > pt[i].tok_s || pt[j].delta < pt[i].delta);
        /* columns 4-5 for --data: on the frontier, and delta before the floor */
        fprintf(f1, "%.17g %.17g \"%s\" %d %.17g\n", pt[i].tok_s, d, pt[i].label, !beaten, pt[i].delta);
        if (!beaten) fprintf(f2, "%.17g %.17g\n", pt[i].tok_s, d);
    }
    if (f1 && fclose(f1) && !rc) rc = fail(p, "writing the plot data: %s", strerror(errno));
    if (f2 && fclose(f2) && !rc) rc = fail(p, "writing the plot data: %s", strerror(errno));
    if (!rc) {
        gp_num(p, "n", (double)n);
        data_file(p, "1.dat", "");
        p->data_cols = "tok_s,delta_nats_per_byte_plotted,configuration,on_frontier,delta_nats_per_byte";
    }
    free(pt);
    return rc;
}

/* Check -o FILE's extension: 0 png, 1 svg, 2 pdf, -1 (error set) other. */
static int out_format(plot_ctx *p, const char *out) {
    size_t ol = strlen(out);
    const char *ext = ol > 4 ? out + ol - 4 : "";
    if (!strcasecmp(ext, ".png")) return 0;
    if (!strcasecmp(ext, ".svg")) return 1;
    if (!strcasecmp(ext, ".pdf")) return 2;
    return fail(p, "-o %s: the output must end in .png, .svg or .pdf", out);
}

static int run_gnuplot(plot_ctx *p, const char *tmpl, const char *out) {
    char gp[1200], term[1400];
    snprintf(gp, sizeof gp, "%s/%s", p->plots, tmpl);
    if (access(gp, R_OK)) {
        char dirs[2048];
        moe_data_dirs_text(dirs, sizeof dirs);
        return fail(p, "template %s: %s (plots/ was looked for in the working directory, then %s; "
                       "or give --plots DIR)", gp, strerror(errno), dirs);
    }
    int format = out_format(p, out);
    if (format < 0) return -1;
    int svg = format == 1, pdf = format == 2;
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
    appendf(term, sizeof term, "; set output \"%s\"", out);
    size_t vars_len = strlen(p->gp_vars); /* each output adds the same variables to the kind's */
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
        unlink(out);
        return fail(p, "gnuplot failed on %s (exit %d)", gp, WIFEXITED(ws) ? WEXITSTATUS(ws) : -1);
    }
    p->gp_vars[vars_len] = 0;
    return 0;
}

static void rm_dir(const char *dir) {
    char cmd[200];
    /* our own mkdtemp folder of plain files: unlink each, then the folder */
    for (int i = 1; i <= 256; i++) {
        snprintf(cmd, sizeof cmd, "%s/%d.dat", dir, i);
        unlink(cmd);
    }
    const char *fixed[] = {"heat.dat", "time.dat", "starts.dat", "marks.dat", "groups.dat"};
    for (int i = 0; i < 5; i++) {
        snprintf(cmd, sizeof cmd, "%s/%s", dir, fixed[i]);
        unlink(cmd);
    }
    rmdir(dir);
}

/* --mark S:LABEL[,S:LABEL...]: steps as integers, labels without quotes
 * (they go into a gnuplot data file between double quotes). */
static int check_marks(const char *arg, moe_error *err) {
    for (const char *c = arg; *c;) {
        size_t n = strcspn(c, ",");
        const char *colon = memchr(c, ':', n);
        if (!colon || colon == c || (size_t)(colon - c) + 1 == n || strspn(c, "0123456789") != (size_t)(colon - c))
            return moe_fail(err, "--mark %s: expected STEP:LABEL[,STEP:LABEL...], e.g. 242:C,484:Bible at '%.*s'",
                            arg, (int)n, c);
        if (memchr(c, '"', n)) return moe_fail(err, "--mark %s: no quotes in a label", arg);
        c += n + (c[n] == ',');
    }
    return 0;
}

int cmd_plot(int argc, char **argv) {
    static const struct option opts[] = {
        {"db", required_argument, 0, 'd'},         {"trace", required_argument, 0, 't'},
        {"policy", required_argument, 0, 'p'},     {"scope", required_argument, 0, 's'},
        {"experiment", required_argument, 0, 'e'}, {"capacity", required_argument, 0, 'c'},
        {"cold-per-seq", required_argument, 0, 'C'}, {"title", required_argument, 0, 'T'},
        {"plots", required_argument, 0, 'P'},      {"output", required_argument, 0, 'o'},
        {"size", required_argument, 0, 'S'},       {"font", required_argument, 0, 'F'},
        {"ci", no_argument, 0, 'I'},               {"data", required_argument, 0, 'D'},
        {"mark", required_argument, 0, 'M'},       {"help", no_argument, 0, 'h'},
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
            if (!strcmp(optarg, "all")) {
                p.all_pol = 1;
                break;
            }
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
        case 'o':
            if (p.n_out == (int)(sizeof p.outs / sizeof *p.outs)) {
                fprintf(stderr, "moesim plot: -o: at most %d outputs\n", p.n_out);
                return 2;
            }
            p.outs[p.n_out++] = optarg;
            break;
        case 'D': p.out_data = optarg; break;
        case 'M':
            if (check_marks(optarg, &p.err)) {
                fprintf(stderr, "moesim plot: %s\n", p.err.msg);
                return 2;
            }
            p.marks = optarg;
            break;
        case 'h': fputs(plot_usage, stdout); return 0;
        default: fputs(plot_usage, stderr); return 2;
        }
    }
    if (optind != argc - 1 || !p.db_path || (!p.n_out && !p.out_data)) {
        fprintf(stderr, "moesim plot: KIND, --db and -o (or --data) are required\n%s", plot_usage);
        return 2;
    }
    if (p.all_pol && p.n_pol) {
        fprintf(stderr, "moesim plot: --policy all draws every policy; give it alone, not with '%s'\n", p.pol);
        return 2;
    }
    p.kind = argv[optind];
    if (p.ci && strcmp(p.kind, "hit-rate")) {
        fprintf(stderr, "moesim plot: --ci draws intervals on the hit-rate figure only, not %s\n", p.kind);
        return 2;
    }
    if (p.marks && strcmp(p.kind, "warmup")) {
        fprintf(stderr, "moesim plot: --mark: only the warmup figure has steps on its x axis\n");
        return 2;
    }
    for (int i = 0; i < p.n_out; i++)
        if (out_format(&p, p.outs[i]) < 0) { /* before any work, so nothing is drawn for a bad name */
            fprintf(stderr, "moesim plot: %s\n", p.err.msg);
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
    else if (!strcmp(p.kind, "warmup")) r = plot_warmup(&p);
    else if (!strcmp(p.kind, "topic-switch")) r = plot_topic_switch(&p);
    else if (!strcmp(p.kind, "layer-heatmap")) r = plot_layer_heatmap(&p);
    else if (!strcmp(p.kind, "popularity")) r = plot_popularity(&p);
    else if (!strcmp(p.kind, "time-breakdown")) r = plot_time_breakdown(&p);
    else if (!strcmp(p.kind, "validation")) r = plot_validation(&p);
    else if (!strcmp(p.kind, "quality")) r = plot_quality(&p);
    else r = plot_prefetch(&p);
    if (r) goto out;
    gp_str(&p, "kind", p.kind);
    int drawn = 0;
    for (; drawn < p.n_out; drawn++)
        if (run_gnuplot(&p, tmpl, p.outs[drawn])) break;
    /* the CSV is the numbers of the figure: written only with it, and a
     * figure without its CSV is taken back (all or nothing) */
    if (drawn == p.n_out && p.out_data &&
        plot_data_write(p.out_data, p.dir, p.data, p.n_data, p.n_data > 1 || (p.n_data && p.data[0].series[0])
                        ? p.data_series : NULL, p.data_cols, &p.err))
        drawn = -drawn - 1;
    if (drawn != p.n_out) {
        for (int i = 0; i < (drawn < 0 ? -drawn - 1 : drawn); i++) unlink(p.outs[i]);
        goto out;
    }
    for (int i = 0; i < p.n_out; i++) printf("plot: %s written (%s)\n", p.outs[i], p.kind);
    if (p.out_data) printf("plot: %s written (the plotted numbers, CSV)\n", p.out_data);
    rc = 0;
out:
    if (p.db) sqlite3_close(p.db);
    if (p.dir[0]) rm_dir(p.dir);
    if (rc) return cli_error("plot", &p.err);
    return 0;
}

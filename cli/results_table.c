/* results_table.c: the policy x capacity pivot (results_table.h).
 *
 * Runs are grouped by trace and by their configuration without policy,
 * capacity and seed: each group is one table, so a number is never averaged
 * across scopes, devices, prefetchers or traces. Within a table a cell is
 * the mean over its runs (several seeds of one configuration). Rows come in
 * registry order (`moesim policies`: the classic ones first), oracles last
 * and marked; columns by capacity, experts before byte capacities before
 * fractions. */
#include "results_table.h"

#include <math.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

#include "../core/bootstrap.h"
#include "../core/policy.h"
#include "../core/units.h"
#include "cli.h"
#include "results_ci.h"

enum { CAP_EXPERTS, CAP_BYTES, CAP_FRAC, CAP_NONE };

typedef struct run_row {
    int64_t id;
    char *trace, *hash, *group, *policy; /* group: trace hash + config lines other than policy, capacity, seed */
    int cap_kind;
    double cap;
    int has_value;
    double value;
} run_row;

typedef struct cap_col {
    int kind;
    double v;
} cap_col;

static void free_rows(run_row *r, size_t n) {
    for (size_t i = 0; i < n; i++) free(r[i].trace), free(r[i].hash), free(r[i].group), free(r[i].policy);
    free(r);
}

/* Split a run's config text into its capacity and the rest (the group key). */
static int parse_config(run_row *r, const char *hash, const char *text) {
    size_t cap = strlen(hash) + strlen(text) + 2, u = 0;
    if (!(r->group = malloc(cap))) return -1;
    u += (size_t)snprintf(r->group, cap, "%s", hash);
    r->cap_kind = CAP_NONE;
    for (const char *p = text; *p;) {
        size_t len = strcspn(p, "\n");
        const char *eq = memchr(p, '=', len);
        size_t kl = eq ? (size_t)(eq - p) : len;
#define KEY(k) (kl == strlen(k) && !strncmp(p, k, kl))
        if (KEY("capacity")) r->cap_kind = CAP_EXPERTS, r->cap = strtod(eq + 1, NULL);
        else if (KEY("capacity_bytes")) r->cap_kind = CAP_BYTES, r->cap = strtod(eq + 1, NULL);
        else if (KEY("capacity_frac")) r->cap_kind = CAP_FRAC, r->cap = strtod(eq + 1, NULL);
        else if (!KEY("policy") && !KEY("seed")) u += (size_t)snprintf(r->group + u, cap - u, "\n%.*s", (int)len, p);
#undef KEY
        p += len + (p[len] == '\n');
    }
    return 0;
}

/* The SQL expression of the metric's value for run s (?1 = its name;
 * miss_rate leaves ?1 unused, which SQLite allows: filters start at ?2). */
static const char *metric_sql(const char *metric) {
    if (!strcmp(metric, "miss_rate")) /* derived: misses / accesses */
        return "(SELECT CASE WHEN a.value > 0 THEN mi.value / a.value END FROM metrics mi JOIN metrics a ON "
               "a.run_id = mi.run_id AND a.name = 'accesses' WHERE mi.run_id = s.id AND mi.name = 'misses')";
    return "(SELECT value FROM metrics m WHERE m.run_id = s.id AND m.name = ?1)";
}

static int load_rows(sqlite3 *h, const char *db_path, const results_table_opts *o, const char *metric, run_row **out,
                     size_t *n_out, moe_error *err) {
    char sql[8192];
    const char *binds[16] = {metric};
    int nb = 1;
    snprintf(sql, sizeof sql,
             "SELECT s.id, s.trace_hash, coalesce(s.trace_path, s.trace_hash), r.config_text, s.policy, %s "
             "FROM run_summary s JOIN runs r ON r.id = s.id WHERE s.status = 'done'",
             metric_sql(metric));
    results_filter_sql(&o->filter, sql, sizeof sql, binds, &nb);
    size_t l = strlen(sql);
    snprintf(sql + l, sizeof sql - l, " ORDER BY 3, s.id");
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(h, sql, -1, &st, NULL) != SQLITE_OK)
        return moe_fail(err, "%s: %s", db_path, sqlite3_errmsg(h));
    for (int i = 0; i < nb; i++) sqlite3_bind_text(st, i + 1, binds[i], -1, SQLITE_STATIC);
    run_row *rows = NULL;
    size_t n = 0, cap = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (n == cap) {
            size_t nc = cap ? 2 * cap : 64;
            run_row *r = realloc(rows, nc * sizeof *r);
            if (!r) break;
            rows = r, cap = nc;
        }
        run_row *r = &rows[n++];
        memset(r, 0, sizeof *r);
        const char *hash = (const char *)sqlite3_column_text(st, 1), *text = (const char *)sqlite3_column_text(st, 3);
        const char *pol = (const char *)sqlite3_column_text(st, 4), *tr = (const char *)sqlite3_column_text(st, 2);
        r->id = sqlite3_column_int64(st, 0);
        r->hash = strdup(hash ? hash : "");
        r->trace = strdup(tr ? tr : "");
        r->policy = strdup(pol ? pol : "-");
        r->has_value = sqlite3_column_type(st, 5) != SQLITE_NULL;
        r->value = sqlite3_column_double(st, 5);
        if (!r->hash || !r->trace || !r->policy || parse_config(r, r->hash, text ? text : "")) break;
    }
    sqlite3_finalize(st);
    *out = rows, *n_out = n;
    if (rc == SQLITE_ROW) return moe_fail(err, "out of memory");
    if (rc != SQLITE_DONE) return moe_fail(err, "%s: %s", db_path, sqlite3_errmsg(h));
    return 0;
}

/* The metrics stored for the selection, for the message naming them. */
static void list_metrics(sqlite3 *h, const results_table_opts *o, char *buf, size_t cap) {
    char sql[8192];
    const char *binds[16];
    int nb = 0;
    snprintf(sql, sizeof sql, "SELECT DISTINCT m.name FROM metrics m JOIN run_summary s ON s.id = m.run_id "
                              "WHERE s.status = 'done'");
    results_filter_sql(&o->filter, sql, sizeof sql, binds, &nb);
    size_t l = strlen(sql);
    snprintf(sql + l, sizeof sql - l, " ORDER BY 1");
    sqlite3_stmt *st = NULL;
    size_t u = (size_t)snprintf(buf, cap, "miss_rate");
    if (sqlite3_prepare_v2(h, sql, -1, &st, NULL) != SQLITE_OK) return;
    for (int i = 0; i < nb; i++) sqlite3_bind_text(st, i + 1, binds[i], -1, SQLITE_STATIC);
    while (sqlite3_step(st) == SQLITE_ROW && u < cap)
        u += (size_t)snprintf(buf + u, cap - u, ", %s", (const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
}

/* ---- one table ----------------------------------------------------------- */

static int cmp_cap(const cap_col *a, const cap_col *b) {
    if (a->kind != b->kind) return a->kind - b->kind;
    return (a->v > b->v) - (a->v < b->v);
}

/* Row order: oracles last, then registry order, then the spec. */
static int cmp_policy(const char *a, const char *b) {
    int oa = moe_policy_is_oracle(a), ob = moe_policy_is_oracle(b);
    if (oa != ob) return oa - ob;
    int ra = moe_policy_rank(a), rb = moe_policy_rank(b);
    if (ra != rb) return ra - rb;
    return strcmp(a, b);
}

static void cap_label(const cap_col *c, char *buf, size_t cap) {
    if (c->kind == CAP_EXPERTS) snprintf(buf, cap, "%.0f", c->v);
    else if (c->kind == CAP_BYTES) moe_bytes_text(c->v, buf, cap);
    else if (c->kind == CAP_FRAC) snprintf(buf, cap, "%g%%", c->v * 100);
    else snprintf(buf, cap, "-");
}

/* Rates with four decimals, bytes in their unit, the rest with 4 digits. */
static int is_rate(const char *m) {
    return strstr(m, "rate") || strstr(m, "precision") || strstr(m, "recall") || strstr(m, "utilisation") ||
           strstr(m, "gate_mass");
}

static void fmt_value(const char *metric, double v, char *buf, size_t cap) {
    if (isnan(v)) snprintf(buf, cap, "-");
    else if (is_rate(metric)) snprintf(buf, cap, "%.4f", v);
    else if (strstr(metric, "bytes")) moe_bytes_text(v, buf, cap);
    else if (fabs(v) >= 1000) snprintf(buf, cap, "%.0f", v); /* counts: every digit */
    else snprintf(buf, cap, "%.4g", v);
}

/* The label of policy i among pols: its name, or its full spec when
 * another row is a variant of the same policy; "(oracle)" appended. */
static void policy_label(char **pols, size_t n, size_t i, char *buf, size_t cap) {
    size_t bl = strcspn(pols[i], ":");
    int clash = 0;
    for (size_t j = 0; j < n; j++)
        clash |= j != i && strcspn(pols[j], ":") == bl && !strncmp(pols[i], pols[j], bl);
    snprintf(buf, cap, "%.*s%s", clash ? (int)strlen(pols[i]) : (int)bl, pols[i],
             moe_policy_is_oracle(pols[i]) ? " (oracle)" : "");
}

typedef struct table {
    size_t nr, nc;
    char **head;  /* nc + 1 */
    char **cell;  /* nr x (nc + 1): the row label, then the columns */
} table;

static int table_new(table *t, size_t nr, size_t nc) {
    t->nr = nr, t->nc = nc;
    t->head = calloc(nc + 1, sizeof *t->head);
    t->cell = calloc((nr ? nr : 1) * (nc + 1), sizeof *t->cell);
    return t->head && t->cell ? 0 : -1;
}

static void table_free(table *t) {
    for (size_t i = 0; t->head && i <= t->nc; i++) free(t->head[i]);
    for (size_t i = 0; t->cell && i < t->nr * (t->nc + 1); i++) free(t->cell[i]);
    free(t->head), free(t->cell);
}

/* A Markdown cell: '|' would end it. */
static void md_cell(FILE *out, const char *s) {
    fputs("| ", out);
    for (; *s; s++) {
        if (*s == '|') fputc('\\', out);
        fputc(*s, out);
    }
    fputc(' ', out);
}

static void table_print(const table *t, int markdown, FILE *out) {
    size_t w[256] = {0}, nc = t->nc + 1 < 256 ? t->nc + 1 : 256;
    if (markdown) {
        for (size_t c = 0; c < nc; c++) md_cell(out, t->head[c] ? t->head[c] : "");
        fputs("|\n", out);
        for (size_t c = 0; c < nc; c++) fputs(c ? "|---:" : "|:---", out);
        fputs("|\n", out);
        for (size_t r = 0; r < t->nr; r++) {
            for (size_t c = 0; c < nc; c++) md_cell(out, t->cell[r * (t->nc + 1) + c] ? t->cell[r * (t->nc + 1) + c] : "-");
            fputs("|\n", out);
        }
        return;
    }
    for (size_t c = 0; c < nc; c++) {
        w[c] = strlen(t->head[c] ? t->head[c] : "");
        for (size_t r = 0; r < t->nr; r++) {
            const char *s = t->cell[r * (t->nc + 1) + c];
            if (s && strlen(s) > w[c]) w[c] = strlen(s);
        }
    }
    /* the row label left-aligned, numbers right-aligned */
    for (size_t c = 0; c < nc; c++) fprintf(out, c ? "  %*s" : "%-*s", (int)w[c], t->head[c] ? t->head[c] : "");
    fputc('\n', out);
    for (size_t r = 0; r < t->nr; r++) {
        for (size_t c = 0; c < nc; c++) {
            const char *s = t->cell[r * (t->nc + 1) + c];
            fprintf(out, c ? "  %*s" : "%-*s", (int)w[c], s ? s : "-");
        }
        fputc('\n', out);
    }
}

/* "cold_per_seq=0, scope=per-layer" from a group key (after the hash). A
 * long spec (a device or model profile with every value) is cut to its name:
 * `results show` has it whole. */
static void group_desc(const char *group, char *buf, size_t cap) {
    const char *p = strchr(group, '\n');
    size_t u = 0;
    buf[0] = 0;
    while (p && u < cap) {
        p++;
        size_t len = strcspn(p, "\n"), colon = strcspn(p, ":\n");
        int cut = len > 40 && colon < len;
        u += (size_t)snprintf(buf + u, cap - u, "%s%.*s%s", u ? ", " : "", (int)(cut ? colon : len), p,
                              cut ? ":..." : "");
        p = p[len] ? p + len : NULL;
    }
}

typedef struct group_ctx {
    sqlite3 *h;
    const char *db_path, *metric;
    const results_table_opts *o;
    FILE *out;
    int miss; /* metric is miss_rate: intervals are 1 - the hit rate's */
} group_ctx;

/* One table; a blank line first when sep. Returns 1 when printed, 0 when no
 * run of the group has the metric (nothing printed), -1 on error. */
static int print_group(group_ctx *g, run_row *rows, size_t *idx, size_t n, int sep, moe_error *err) {
    const results_table_opts *o = g->o;
    int rc = -1;
    char **pols = calloc(n, sizeof *pols);
    cap_col *caps = calloc(n, sizeof *caps);
    size_t np = 0, nc = 0;
    int64_t *ids = NULL;
    size_t *start = NULL, *count = NULL;
    double *sum = NULL;
    table t = {0}, d = {0};
    results_ci ci = {0};
    if (!pols || !caps) goto oom;
    /* distinct policies and capacities, sorted */
    for (size_t i = 0; i < n; i++) {
        run_row *r = &rows[idx[i]];
        size_t k = 0;
        while (k < np && strcmp(pols[k], r->policy)) k++;
        if (k == np) pols[np++] = r->policy;
        cap_col c = {r->cap_kind, r->cap};
        for (k = 0; k < nc && cmp_cap(&caps[k], &c); k++) {}
        if (k == nc) caps[nc++] = c;
    }
    for (size_t i = 1; i < np; i++) /* insertion sorts: a table has few rows and columns */
        for (size_t j = i; j > 0 && cmp_policy(pols[j - 1], pols[j]) > 0; j--) {
            char *x = pols[j]; pols[j] = pols[j - 1]; pols[j - 1] = x;
        }
    for (size_t i = 1; i < nc; i++)
        for (size_t j = i; j > 0 && cmp_cap(&caps[j - 1], &caps[j]) > 0; j--) {
            cap_col x = caps[j]; caps[j] = caps[j - 1]; caps[j - 1] = x;
        }
    /* cells: runs grouped by (policy, capacity), contiguous in ids */
    size_t ncell = np * nc;
    ids = malloc(n * sizeof *ids);
    start = calloc(ncell + 1, sizeof *start);
    count = calloc(ncell, sizeof *count);
    sum = calloc(ncell, sizeof *sum);
    size_t *cell_of = malloc(n * sizeof *cell_of);
    if (!ids || !start || !count || !sum || !cell_of) {
        free(cell_of);
        goto oom;
    }
    size_t max_runs = 0, any_value = 0;
    for (size_t i = 0; i < n; i++) {
        run_row *r = &rows[idx[i]];
        size_t p = 0, c = 0;
        cap_col cc = {r->cap_kind, r->cap};
        while (strcmp(pols[p], r->policy)) p++;
        while (cmp_cap(&caps[c], &cc)) c++;
        cell_of[i] = p * nc + c;
        start[cell_of[i] + 1]++;
        if (r->has_value) count[cell_of[i]]++, sum[cell_of[i]] += r->value, any_value++;
    }
    for (size_t c = 0; c < ncell; c++) {
        start[c + 1] += start[c];
        if (count[c] > max_runs) max_runs = count[c];
    }
    {
        size_t *fill = calloc(ncell ? ncell : 1, sizeof *fill);
        if (!fill) {
            free(cell_of);
            goto oom;
        }
        for (size_t i = 0; i < n; i++) ids[start[cell_of[i]] + fill[cell_of[i]]++] = rows[idx[i]].id;
        free(fill);
    }
    free(cell_of);
    if (!any_value) { /* this configuration lacks the metric (e.g. tok_s without a device) */
        rc = 0;
        goto out;
    }
    /* intervals first (nothing is printed for a table that cannot have
     * them): every cell on the same resamples */
    size_t R = o->resamples ? o->resamples : MOE_BOOTSTRAP_RESAMPLES;
    uint64_t seed = o->seed ? o->seed : MOE_BOOTSTRAP_SEED;
    if (o->ci && results_ci_compute(g->h, g->db_path, ids, start, ncell, R, seed, &ci, err)) goto out;
    if (sep) fputc('\n', g->out);

    /* heading */
    run_row *r0 = &rows[idx[0]];
    char desc[2048], unit[160];
    group_desc(r0->group, desc, sizeof desc);
    int global = strstr(r0->group, "\nscope=global") != NULL;
    snprintf(unit, sizeof unit, "capacity in experts %s", global ? "in all (one global cache)" : "per layer");
    int has_bytes = 0, has_frac = 0;
    for (size_t c = 0; c < nc; c++) has_bytes |= caps[c].kind == CAP_BYTES, has_frac |= caps[c].kind == CAP_FRAC;
    if (has_bytes) strncat(unit, ", or bytes in all", sizeof unit - strlen(unit) - 1);
    if (has_frac) strncat(unit, ", or % of all experts' bytes", sizeof unit - strlen(unit) - 1);
    const char *slash = strrchr(r0->trace, '/');
    if (o->markdown)
        fprintf(g->out, "**%s**: trace `%s` (%.12s)%s%s; rows: policy; columns: %s\n\n", g->metric,
                slash ? slash + 1 : r0->trace, r0->hash, desc[0] ? ", " : "", desc, unit);
    else
        fprintf(g->out, "%s: trace %s (%.12s)%s%s\nrows: policy; columns: %s\n", g->metric, slash ? slash + 1 : r0->trace,
                r0->hash, desc[0] ? ", " : "", desc, unit);

    if (table_new(&t, np, nc)) goto oom;
    char buf[256], a[64], b[64], v[64];
    t.head[0] = strdup("policy");
    for (size_t c = 0; c < nc; c++) cap_label(&caps[c], buf, sizeof buf), t.head[c + 1] = strdup(buf);
    for (size_t p = 0; p < np; p++) {
        policy_label(pols, np, p, buf, sizeof buf);
        t.cell[p * (nc + 1)] = strdup(buf);
        for (size_t c = 0; c < nc; c++) {
            size_t k = p * nc + c;
            if (!count[k]) continue;
            fmt_value(g->metric, sum[k] / (double)count[k], v, sizeof v);
            if (o->ci) {
                double lo, hi;
                results_ci_interval(&ci, k, -1, MOE_BOOTSTRAP_LEVEL, &lo, &hi);
                if (g->miss) { double x = 1 - hi; hi = 1 - lo; lo = x; }
                fmt_value(g->metric, lo, a, sizeof a);
                fmt_value(g->metric, hi, b, sizeof b);
                snprintf(buf, sizeof buf, "%s [%s, %s]", v, a, b);
            } else {
                snprintf(buf, sizeof buf, "%s", v);
            }
            t.cell[p * (nc + 1) + c + 1] = strdup(buf);
        }
    }
    table_print(&t, o->markdown, g->out);

    /* paired differences against the baseline */
    long base = -1;
    if (o->ci && o->baseline) {
        for (size_t p = 0; p < np; p++) {
            if (!cli_spec_in_list(pols[p], o->baseline)) continue;
            if (base >= 0) {
                moe_fail(err, "--baseline %s matches both %s and %s in this table; give the canonical spec",
                         o->baseline, pols[base], pols[p]);
                goto out;
            }
            base = (long)p;
        }
        if (base < 0) {
            fprintf(g->out, "%sbaseline %s: no run in this table, no differences\n", o->markdown ? "\n" : "", o->baseline);
        } else if (np > 1) {
            if (table_new(&d, np - 1, nc)) goto oom;
            policy_label(pols, np, (size_t)base, buf, sizeof buf);
            fprintf(g->out, "\n%s minus %s's, paired (both on the same resamples)%s\n", g->metric, buf,
                    o->markdown ? "\n" : "");
            snprintf(buf, sizeof buf, "policy");
            d.head[0] = strdup(buf);
            for (size_t c = 0; c < nc; c++) d.head[c + 1] = strdup(t.head[c + 1]);
            size_t row = 0;
            for (size_t p = 0; p < np; p++) {
                if ((long)p == base) continue;
                d.cell[row * (nc + 1)] = strdup(t.cell[p * (nc + 1)]);
                for (size_t c = 0; c < nc; c++) {
                    size_t k = p * nc + c, kb = (size_t)base * nc + c;
                    if (!count[k] || !count[kb]) continue;
                    double lo, hi, diff = sum[k] / (double)count[k] - sum[kb] / (double)count[kb];
                    results_ci_interval(&ci, k, (long)kb, MOE_BOOTSTRAP_LEVEL, &lo, &hi);
                    if (g->miss) { double x = -hi; hi = -lo; lo = x; }
                    snprintf(buf, sizeof buf, "%+.4f [%+.4f, %+.4f]", diff, lo, hi);
                    d.cell[row * (nc + 1) + c + 1] = strdup(buf);
                }
                row++;
            }
            table_print(&d, o->markdown, g->out);
        }
    }

    /* notes */
    if (o->markdown) fputc('\n', g->out);
    int oracle = 0;
    for (size_t p = 0; p < np; p++) oracle |= moe_policy_is_oracle(pols[p]);
    if (oracle)
        fprintf(g->out, "(oracle): reads the future or the replayed trace itself; an upper bound, not a deployable "
                        "policy\n");
    if (max_runs > 1)
        fprintf(g->out, "a cell with several runs (other seeds) shows their mean (up to %zu runs per cell)\n", max_runs);
    if (o->ci) {
        fprintf(g->out, "[lo, hi]: 95%% bootstrap percentile interval over the trace's %zu sequence%s: %zu resamples, "
                        "seed %llu (GSL mt19937)\n", ci.n_seqs, ci.n_seqs == 1 ? "" : "s", R,
                (unsigned long long)seed);
        if (ci.n_seqs == 1)
            fprintf(g->out, "one sequence: nothing to resample, so every interval has zero width; intervals need a "
                            "trace with several sequences\n");
    }
    rc = 1;
    goto out;
oom:
    moe_fail(err, "out of memory");
out:
    table_free(&t);
    table_free(&d);
    results_ci_free(&ci);
    free(pols), free(caps), free(ids), free(start), free(count), free(sum);
    return rc;
}

int results_table_print(sqlite3 *h, const char *db_path, const results_table_opts *o, FILE *out, moe_error *err) {
    const char *metric = o->metric ? o->metric : "hit_rate";
    int miss = !strcmp(metric, "miss_rate");
    if (o->ci && strcmp(metric, "hit_rate") && !miss)
        return moe_fail(err, "--ci: intervals are for hit_rate and miss_rate (resampled per-sequence counts), "
                             "not for %s", metric);
    cli_sql_spec_in(h);
    run_row *rows = NULL;
    size_t n = 0;
    if (load_rows(h, db_path, o, metric, &rows, &n, err)) {
        free_rows(rows, n);
        return -1;
    }
    int rc = -1;
    size_t *order = malloc((n ? n : 1) * sizeof *order), any = 0;
    char **groups = calloc(n ? n : 1, sizeof *groups);
    if (!order || !groups) {
        moe_fail(err, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++) any += rows[i].has_value;
    if (n == 0 || !any) {
        char f[1024], names[4096];
        results_filter_describe(&o->filter, f, sizeof f);
        if (n == 0) {
            moe_fail(err, "%s: no finished runs%s%s", db_path, f[0] ? " match " : "", f);
        } else {
            list_metrics(h, o, names, sizeof names);
            moe_fail(err, "%s: no selected run has metric '%s'; they have: %s", db_path, metric, names);
        }
        goto out;
    }
    /* groups in order of first appearance (rows come by trace path, then id) */
    size_t ng = 0;
    for (size_t i = 0; i < n; i++) {
        size_t k = 0;
        while (k < ng && strcmp(groups[k], rows[i].group)) k++;
        if (k == ng) groups[ng++] = rows[i].group;
    }
    group_ctx g = {h, db_path, metric, o, out, miss};
    int printed = 0;
    for (size_t k = 0; k < ng; k++) {
        size_t m = 0;
        for (size_t i = 0; i < n; i++)
            if (!strcmp(rows[i].group, groups[k])) order[m++] = i;
        int r = print_group(&g, rows, order, m, printed, err);
        if (r < 0) goto out;
        printed |= r;
    }
    rc = 0;
out:
    free(order);
    free(groups);
    free_rows(rows, n);
    return rc;
}

/* cmd_results.c: `moesim results list|show|export|merge|check|recover` —
 * reading the SQLite results store. list/show/export/check open the database
 * read-only (moe_db_open_readonly: works on read-only media, never creates
 * one, refuses a damaged file); merge writes through core/results
 * (moe_db_merge); recover runs the sqlite3 tool's `.recover`. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../core/results.h"
#include "../core/units.h"
#include "../core/trace_formats.h"
#include "cli.h"
#include "commands.h"

static const char results_usage[] =
    "usage: moesim results <list|show|export|merge|check|recover> [options]\n"
    "\n"
    "  list   --db F [--experiment NAME]      one line per run: id, experiment, trace,\n"
    "                                         policy, capacity, scope, hit rate, status\n"
    "  show   --db F ID                       a run's config, metrics and per-layer metrics\n"
    "  export --db F --csv [-o FILE] [--experiment NAME]\n"
    "                                         one CSV row per complete run: config keys and\n"
    "                                         metrics as columns\n"
    "  merge  -o OUT.db IN1.db [IN2.db ...]   union of traces and runs; runs already in OUT\n"
    "                                         are skipped, conflicting ones reported\n"
    "  check  --db F                          full integrity check: \"ok\" or the problems\n"
    "  recover --db F -o NEW.db               copy what is readable of a damaged F into\n"
    "                                         NEW.db (table by table, row by row)\n"
    "\n"
    "`moesim results <subcommand> --help` describes each.\n";

static const char list_usage[] =
    "usage: moesim results list --db F [filters] [--sort config|id]\n"
    "\n"
    "One line per run: id, experiment, trace, policy, capacity (experts, or bytes when\n"
    "given in bytes), scope (+cold: cold per sequence), then prefetch, device and\n"
    "precision when some run has them, hit rate, tok/s when timed, kind (sim, or a\n"
    "validation's measured / predicted) and status (runs not 'done' were interrupted\n"
    "and are redone by the next sweep).\n"
    "\n"
    "filters (each a comma list; a policy, device, prefetcher or precision name\n"
    "selects all its parameter variants, a canonical spec just itself):\n"
    "  --experiment E  --policy P  --trace PATH|HASH-PREFIX  --scope S\n"
    "  --device D  --prefetch X  --precision S\n"
    "  --sort config   by experiment, trace, scope, policy, capacity (default)\n"
    "  --sort id       in the order the runs were made\n";
static const char show_usage[] =
    "usage: moesim results show --db F ID\n"
    "\n"
    "Print run ID: trace, canonical config, code version, host, times, every metric,\n"
    "the per-layer metrics and the curves stored with it.\n";
static const char export_usage[] =
    "usage: moesim results export --db F --csv [-o FILE] [--experiment NAME]\n"
    "\n"
    "Write one CSV row per complete run (standard output unless -o): id, experiment,\n"
    "trace, trace_hash, every config key, code_version, host, started_at,\n"
    "finished_at, seconds, then every metric name as a column (empty when a run\n"
    "lacks it). Numbers are written so that they read back exactly.\n";
static const char check_usage[] =
    "usage: moesim results check --db F\n"
    "\n"
    "Check the whole database (PRAGMA integrity_check, then foreign_key_check) without\n"
    "writing it. Prints \"F: ok\" (exit 0) or one line per problem (exit 1). Every\n"
    "other command refuses a damaged database; `moesim results recover` saves what\n"
    "is readable.\n";
static const char recover_usage[] =
    "usage: moesim results recover --db F -o NEW.db\n"
    "\n"
    "Copy every readable row of the (damaged) database F into NEW.db, a new file:\n"
    "each table is read forwards and backwards up to the damaged pages (rows on them\n"
    "are lost), rows with impossible values are dropped, runs left without config or\n"
    "metrics rows are dropped (a sweep redoes them), a run whose trace row was lost\n"
    "gets a placeholder trace row. F is only read, as it is on disk (a non-empty F-wal\n"
    "is not read). NEW.db is written beside itself under a temporary name and takes\n"
    "its name only when it passes `results check`; an existing NEW.db is refused.\n"
    "(The sqlite3 tool's .recover needs the sqlite_dbpage table, which Debian's\n"
    "SQLite lacks.) A run whose metrics were partly on a damaged page keeps the\n"
    "rest: compare `results show` with a re-run when in doubt.\n";
static const char merge_usage[] =
    "usage: moesim results merge -o OUT.db IN1.db [IN2.db ...]\n"
    "\n"
    "Merge result databases (e.g. shards of one sweep) into OUT.db, created if\n"
    "missing: traces by content hash, runs by identity (trace hash, config hash).\n"
    "A complete run already in OUT.db with equal metrics is skipped; one with other\n"
    "metrics is reported on stderr as a conflict and OUT's copy kept; incomplete runs\n"
    "of an input are ignored. Exit status 1 if any conflict or error occurred.\n";

/* Open an existing results database for reading; NULL after printing. */
static sqlite3 *open_ro(const char *cmd, const char *path) {
    moe_error err = {{0}};
    sqlite3 *h = moe_db_open_readonly(path, NULL, &err);
    if (!h) {
        fprintf(stderr, "moesim results %s: %s\n", cmd, err.msg);
        return NULL;
    }
    sqlite3_stmt *st = NULL;
    int ok = sqlite3_prepare_v2(h, "SELECT count(*) FROM sqlite_master WHERE name IN ('runs', 'run_summary')",
                                -1, &st, NULL) == SQLITE_OK &&
             sqlite3_step(st) == SQLITE_ROW;
    int n = ok ? sqlite3_column_int(st, 0) : 0;
    sqlite3_finalize(st);
    if (!ok) {
        fprintf(stderr, "moesim results %s: %s: %s\n", cmd, path, sqlite3_errmsg(h));
    } else if (n != 2) {
        fprintf(stderr, "moesim results %s: %s: not a moesim results database\n", cmd, path);
        ok = 0;
    }
    if (!ok) {
        sqlite3_close(h);
        return NULL;
    }
    return h;
}

static int sql_fail(const char *cmd, const char *path, sqlite3 *h) {
    fprintf(stderr, "moesim results %s: %s: %s\n", cmd, path, sqlite3_errmsg(h));
    return 1;
}

/* Shortest of %.15g / %.17g that reads back as the same double. */
static void fmt_num(double v, char *buf, size_t cap) {
    snprintf(buf, cap, "%.15g", v);
    if (strtod(buf, NULL) != v) snprintf(buf, cap, "%.17g", v);
}

static const char *base_name(const char *p) {
    const char *s = strrchr(p, '/');
    return s ? s + 1 : p;
}

/* Parse the common options of list/show/export. */
typedef struct ropts {
    const char *db, *experiment, *out;
    int csv;
    const char *positional;
} ropts;

static int parse_ropts(const char *cmd, const char *usage, int allow_pos, int argc, char **argv, ropts *o) {
    static const struct option opts[] = {
        {"db", required_argument, 0, 'd'},  {"experiment", required_argument, 0, 'e'},
        {"csv", no_argument, 0, 'c'},       {"output", required_argument, 0, 'o'},
        {"help", no_argument, 0, 'h'},      {0, 0, 0, 0},
    };
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "ho:", opts, NULL)) != -1) {
        switch (c) {
        case 'd': o->db = optarg; break;
        case 'e': o->experiment = optarg; break;
        case 'c': o->csv = 1; break;
        case 'o': o->out = optarg; break;
        case 'h': fputs(usage, stdout); return 0;
        default: fputs(usage, stderr); return 2;
        }
    }
    if (optind < argc && allow_pos) o->positional = argv[optind++];
    if (optind < argc) {
        fprintf(stderr, "moesim results %s: unexpected argument '%s'\n%s", cmd, argv[optind], usage);
        return 2;
    }
    if (!o->db) {
        fprintf(stderr, "moesim results %s: --db is required\n%s", cmd, usage);
        return 2;
    }
    return -1; /* go on */
}

/* A filter: the column's value in the comma list, by cli_spec_in_list's rule. */
static void add_list_filter(char *sql, size_t cap, const char *col, const char *list, int *n_bind,
                            const char **binds) {
    size_t l = strlen(sql);
    binds[(*n_bind)++] = list;
    snprintf(sql + l, cap - l, " AND spec_in(%s, ?%d)", col, *n_bind);
}

/* A config value of run s, as a column. */
#define CONF(key) "(SELECT value FROM run_config c WHERE c.run_id = s.id AND c.key = '" key "')"

static int results_list(int argc, char **argv) {
    static const struct option opts[] = {
        {"db", required_argument, 0, 'd'},      {"experiment", required_argument, 0, 'e'},
        {"policy", required_argument, 0, 'p'},  {"trace", required_argument, 0, 't'},
        {"scope", required_argument, 0, 's'},   {"device", required_argument, 0, 'D'},
        {"prefetch", required_argument, 0, 'f'}, {"precision", required_argument, 0, 'P'},
        {"sort", required_argument, 0, 'S'},    {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    const char *db = NULL, *exp = NULL, *pol = NULL, *trace = NULL, *scope = NULL, *dev = NULL, *pf = NULL,
               *prec = NULL, *sort = "config";
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'd': db = optarg; break;
        case 'e': exp = optarg; break;
        case 'p': pol = optarg; break;
        case 't': trace = optarg; break;
        case 's': scope = optarg; break;
        case 'D': dev = optarg; break;
        case 'f': pf = optarg; break;
        case 'P': prec = optarg; break;
        case 'S': sort = optarg; break;
        case 'h': fputs(list_usage, stdout); return 0;
        default: fputs(list_usage, stderr); return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "moesim results list: unexpected argument '%s'\n%s", argv[optind], list_usage);
        return 2;
    }
    if (!db) {
        fprintf(stderr, "moesim results list: --db is required\n%s", list_usage);
        return 2;
    }
    if (strcmp(sort, "config") && strcmp(sort, "id")) {
        fprintf(stderr, "moesim results list: --sort: config or id, not '%s'\n", sort);
        return 2;
    }
    sqlite3 *h = open_ro("list", db);
    if (!h) return 1;
    cli_sql_spec_in(h);
    char sql[8192];
    const char *binds[16];
    int nb = 0;
    snprintf(sql, sizeof sql,
             "SELECT id, experiment, coalesce(trace_path, trace_hash), policy, capacity, scope, hit_rate, status, "
             "cold_per_seq, coalesce(" CONF("kind") ", 'sim'), " CONF("prefetch") ", " CONF("device") ", "
             CONF("precision") ", " CONF("capacity_bytes") ", "
             "(SELECT value FROM metrics m WHERE m.run_id = s.id AND m.name = 'tok_s') "
             "FROM run_summary s WHERE 1");
    if (exp) add_list_filter(sql, sizeof sql, "experiment", exp, &nb, binds);
    if (pol) add_list_filter(sql, sizeof sql, "policy", pol, &nb, binds);
    if (scope) add_list_filter(sql, sizeof sql, "scope", scope, &nb, binds);
    if (dev) add_list_filter(sql, sizeof sql, CONF("device"), dev, &nb, binds);
    if (pf) add_list_filter(sql, sizeof sql, CONF("prefetch"), pf, &nb, binds);
    if (prec) add_list_filter(sql, sizeof sql, CONF("precision"), prec, &nb, binds);
    if (trace) { /* a path as stored, or a prefix of the content hash */
        size_t l = strlen(sql);
        snprintf(sql + l, sizeof sql - l, " AND (trace_path = ?%d OR trace_hash LIKE ?%d || '%%')", nb + 1, nb + 1);
        binds[nb++] = trace;
    }
    size_t l = strlen(sql);
    /* by the configuration's axes, so a sweep reads as a table; --sort id: in the order run */
    snprintf(sql + l, sizeof sql - l, "%s",
             !strcmp(sort, "id") ? " ORDER BY id"
                                 : " ORDER BY experiment, coalesce(trace_path, trace_hash), scope, cold_per_seq, policy, "
                                   "capacity, 14, 11, 12, 13, id");
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(h, sql, -1, &st, NULL) != SQLITE_OK) {
        int rc = sql_fail("list", db, h);
        sqlite3_close(h);
        return rc;
    }
    for (int i = 0; i < nb; i++) sqlite3_bind_text(st, i + 1, binds[i], -1, SQLITE_STATIC);
    /* rows first: a column is printed only when some row has a value in it */
    typedef struct row { char *f[15]; } row;
    row *rows = NULL;
    size_t n = 0, cap = 0;
    int rc, has[15] = {0};
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (n == cap) {
            size_t nc = cap ? 2 * cap : 64;
            row *r = realloc(rows, nc * sizeof *r);
            if (!r) break;
            rows = r, cap = nc;
        }
        for (int k = 0; k < 15; k++) {
            const unsigned char *t = sqlite3_column_text(st, k);
            rows[n].f[k] = t ? strdup((const char *)t) : NULL;
            has[k] |= t != NULL;
        }
        if (sqlite3_column_type(st, 6) != SQLITE_NULL) { /* the hit rate as the table shows it */
            char hr[32];
            snprintf(hr, sizeof hr, "%.4f", sqlite3_column_double(st, 6));
            free(rows[n].f[6]);
            rows[n].f[6] = strdup(hr);
        }
        if (sqlite3_column_type(st, 14) != SQLITE_NULL) {
            char ts[32];
            snprintf(ts, sizeof ts, "%.1f", sqlite3_column_double(st, 14));
            free(rows[n].f[14]);
            rows[n].f[14] = strdup(ts);
        }
        n++;
    }
    rc = rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : sql_fail("list", db, h);
    sqlite3_finalize(st);
    sqlite3_close(h);
    if (!rc) {
        printf("%-5s %-14s %-24s %-22s %10s %-9s", "id", "experiment", "trace", "policy", "capacity", "scope");
        if (has[10]) printf(" %-20s", "prefetch");
        if (has[11]) printf(" %-14s", "device");
        if (has[12]) printf(" %-22s", "precision");
        printf(" %8s", "hit_rate");
        if (has[14]) printf(" %9s", "tok/s");
        printf(" %-9s %s\n", "kind", "status");
        for (size_t i = 0; i < n; i++) {
            char **f = rows[i].f, scope_buf[32], capb[40];
            snprintf(scope_buf, sizeof scope_buf, "%s%s", f[5] ? f[5] : "-", f[8] && atoi(f[8]) ? "+cold" : "");
            /* a capacity given in bytes is shown in bytes */
            if (f[13]) moe_bytes_text(strtod(f[13], NULL), capb, sizeof capb);
            else snprintf(capb, sizeof capb, "%s", f[4] ? f[4] : "-");
            printf("%-5s %-14s %-24s %-22s %10s %-9s", f[0], f[1] && *f[1] ? f[1] : "-", f[2] ? base_name(f[2]) : "-",
                   f[3] ? f[3] : "-", capb, scope_buf);
            if (has[10]) printf(" %-20s", f[10] ? f[10] : "-");
            if (has[11]) printf(" %-14.*s", f[11] ? (int)strcspn(f[11], ":") : 1, f[11] ? f[11] : "-"); /* its name */
            if (has[12]) printf(" %-22s", f[12] ? f[12] : "-");
            printf(" %8s", f[6] ? f[6] : "-");
            if (has[14]) printf(" %9s", f[14] ? f[14] : "-");
            printf(" %-9s %s\n", f[9] ? f[9] : "-", f[7] ? f[7] : "-");
        }
    }
    for (size_t i = 0; i < n; i++)
        for (int k = 0; k < 15; k++) free(rows[i].f[k]);
    free(rows);
    return rc;
}
#undef CONF

static int results_show(int argc, char **argv) {
    ropts o = {0};
    int rc = parse_ropts("show", show_usage, 1, argc, argv, &o);
    if (rc >= 0) return rc;
    uint64_t id;
    moe_error err;
    if (!o.positional) {
        fprintf(stderr, "moesim results show: a run ID is required\n%s", show_usage);
        return 2;
    }
    if (cli_parse_u64("run ID", o.positional, INT64_MAX, &id, &err)) {
        fprintf(stderr, "moesim results show: %s\n", err.msg);
        return 2;
    }
    sqlite3 *h = open_ro("show", o.db);
    if (!h) return 1;
    sqlite3_stmt *st = NULL;
    rc = 1;
    if (sqlite3_prepare_v2(h,
                           "SELECT r.experiment, r.trace_hash, t.path, t.model, t.layers, t.experts, t.top_k, "
                           "t.steps, t.tokens, r.config_text, r.config_hash, r.code_version, r.host, "
                           "r.started_at, r.finished_at, r.seconds, r.status FROM runs r LEFT JOIN traces t "
                           "ON t.hash = r.trace_hash WHERE r.id = ?1",
                           -1, &st, NULL) != SQLITE_OK)
        goto sqlerr;
    sqlite3_bind_int64(st, 1, (sqlite3_int64)id);
    int s = sqlite3_step(st);
    if (s == SQLITE_DONE) {
        fprintf(stderr, "moesim results show: %s: no run with id %llu\n", o.db, (unsigned long long)id);
        goto out;
    }
    if (s != SQLITE_ROW) goto sqlerr;
#define TXT(i) (sqlite3_column_type(st, i) == SQLITE_NULL ? "-" : (const char *)sqlite3_column_text(st, i))
    printf("run          %llu (%s)\n", (unsigned long long)id, TXT(16));
    printf("experiment   %s\n", *TXT(0) ? TXT(0) : "-");
    printf("trace        %s\n", TXT(2));
    printf("trace hash   %s\n", TXT(1));
    printf("trace shape  model %s, %lld layers, %lld experts, top-%lld, %lld steps, %lld tokens\n", *TXT(3) ? TXT(3) : "-",
           (long long)sqlite3_column_int64(st, 4), (long long)sqlite3_column_int64(st, 5),
           (long long)sqlite3_column_int64(st, 6), (long long)sqlite3_column_int64(st, 7),
           (long long)sqlite3_column_int64(st, 8));
    printf("config hash  %s\n", TXT(10));
    printf("config\n");
    {
        const char *p = TXT(9);
        while (*p) {
            size_t n = strcspn(p, "\n");
            printf("  %.*s\n", (int)n, p);
            p += n;
            if (*p) p++;
        }
    }
    printf("code         %s on %s\n", TXT(11), TXT(12));
    printf("time         %s .. %s (%.3f s)\n", TXT(13), TXT(14), sqlite3_column_double(st, 15));
#undef TXT
    sqlite3_finalize(st);
    st = NULL;

    printf("metrics\n");
    if (sqlite3_prepare_v2(h, "SELECT name, value FROM metrics WHERE run_id = ?1 ORDER BY name", -1, &st, NULL) !=
        SQLITE_OK)
        goto sqlerr;
    sqlite3_bind_int64(st, 1, (sqlite3_int64)id);
    while ((s = sqlite3_step(st)) == SQLITE_ROW) {
        char num[40];
        fmt_num(sqlite3_column_double(st, 1), num, sizeof num);
        printf("  %-22s %s\n", (const char *)sqlite3_column_text(st, 0), num);
    }
    if (s != SQLITE_DONE) goto sqlerr;
    sqlite3_finalize(st);
    st = NULL;

    /* Per layer: one row per layer, one column per metric name. */
    if (sqlite3_prepare_v2(h, "SELECT DISTINCT name FROM layer_metrics WHERE run_id = ?1 ORDER BY name", -1, &st,
                           NULL) != SQLITE_OK)
        goto sqlerr;
    sqlite3_bind_int64(st, 1, (sqlite3_int64)id);
    char names[16][64];
    int nn = 0;
    while ((s = sqlite3_step(st)) == SQLITE_ROW && nn < 16)
        snprintf(names[nn++], sizeof names[0], "%s", (const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    st = NULL;
    if (nn > 0) {
        printf("per layer\n  %-6s", "layer");
        for (int i = 0; i < nn; i++) printf(" %20s", names[i]);
        printf("\n");
        if (sqlite3_prepare_v2(h, "SELECT layer, name, value FROM layer_metrics WHERE run_id = ?1 ORDER BY layer, name",
                               -1, &st, NULL) != SQLITE_OK)
            goto sqlerr;
        sqlite3_bind_int64(st, 1, (sqlite3_int64)id);
        long long cur = -1;
        int col = 0;
        while ((s = sqlite3_step(st)) == SQLITE_ROW) {
            long long layer = sqlite3_column_int64(st, 0);
            const char *name = (const char *)sqlite3_column_text(st, 1);
            if (layer != cur) {
                if (cur >= 0) printf("\n");
                printf("  %-6lld", layer);
                cur = layer;
                col = 0;
            }
            /* pad missing columns so values stay under their heading */
            while (col < nn && strcmp(names[col], name)) {
                printf(" %20s", "-");
                col++;
            }
            char num[40];
            fmt_num(sqlite3_column_double(st, 2), num, sizeof num);
            printf(" %20s", num);
            col++;
        }
        if (cur >= 0) printf("\n");
        if (s != SQLITE_DONE) goto sqlerr;
        sqlite3_finalize(st);
        st = NULL;
    }
    if (sqlite3_prepare_v2(h,
                           "SELECT curve, count(*), min(x), max(x), avg(y) FROM curves WHERE run_id = ?1 "
                           "GROUP BY curve ORDER BY curve",
                           -1, &st, NULL) != SQLITE_OK)
        goto sqlerr;
    sqlite3_bind_int64(st, 1, (sqlite3_int64)id);
    while ((s = sqlite3_step(st)) == SQLITE_ROW)
        printf("curve        %s: %lld points, x %g..%g, mean y %.4f\n", (const char *)sqlite3_column_text(st, 0),
               (long long)sqlite3_column_int64(st, 1), sqlite3_column_double(st, 2), sqlite3_column_double(st, 3),
               sqlite3_column_double(st, 4));
    if (s != SQLITE_DONE) goto sqlerr;
    rc = 0;
    goto out;
sqlerr:
    rc = sql_fail("show", o.db, h);
out:
    sqlite3_finalize(st);
    sqlite3_close(h);
    return rc;
}

/* Collect the distinct values of a one-column query. */
static int collect(sqlite3 *h, const char *sql, char ***out, int *n) {
    sqlite3_stmt *st;
    *out = NULL;
    *n = 0;
    if (sqlite3_prepare_v2(h, sql, -1, &st, NULL) != SQLITE_OK) return -1;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        char **v = realloc(*out, (size_t)(*n + 1) * sizeof *v);
        if (!v) break;
        *out = v;
        v[*n] = strdup((const char *)sqlite3_column_text(st, 0));
        if (!v[*n]) break;
        (*n)++;
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : -1;
}

static void free_list(char **v, int n) {
    for (int i = 0; i < n; i++) free(v[i]);
    free(v);
}

static int results_export(int argc, char **argv) {
    ropts o = {0};
    int rc = parse_ropts("export", export_usage, 0, argc, argv, &o);
    if (rc >= 0) return rc;
    if (!o.csv) {
        fprintf(stderr, "moesim results export: choose a format (--csv)\n%s", export_usage);
        return 2;
    }
    sqlite3 *h = open_ro("export", o.db);
    if (!h) return 1;
    char **keys = NULL, **names = NULL, *sql = NULL;
    int nk = 0, nm = 0;
    sqlite3_stmt *st = NULL;
    FILE *f = stdout;
    moe_atomic_file af = {0};
    int atomic = 0;
    rc = 1;
    if (collect(h, "SELECT DISTINCT key FROM run_config ORDER BY key", &keys, &nk) ||
        collect(h, "SELECT DISTINCT name FROM metrics ORDER BY name", &names, &nm))
        goto sqlerr;
    /* One SELECT with a sub-select per column; names are quoted by %Q. */
    sql = sqlite3_mprintf("SELECT r.id, r.experiment, coalesce(t.path, ''), r.trace_hash");
    for (int i = 0; i < nk && sql; i++) {
        char *s2 = sqlite3_mprintf("%s, (SELECT value FROM run_config c WHERE c.run_id = r.id AND c.key = %Q)",
                                   sql, keys[i]);
        sqlite3_free(sql);
        sql = s2;
    }
    if (sql) {
        char *s2 = sqlite3_mprintf("%s, r.code_version, r.host, r.started_at, r.finished_at, r.seconds", sql);
        sqlite3_free(sql);
        sql = s2;
    }
    for (int i = 0; i < nm && sql; i++) {
        char *s2 =
            sqlite3_mprintf("%s, (SELECT value FROM metrics m WHERE m.run_id = r.id AND m.name = %Q)", sql, names[i]);
        sqlite3_free(sql);
        sql = s2;
    }
    if (sql) {
        char *s2 = sqlite3_mprintf("%s FROM runs r LEFT JOIN traces t ON t.hash = r.trace_hash WHERE r.status = "
                                   "'done' AND (?1 IS NULL OR r.experiment = ?1) ORDER BY r.id",
                                   sql);
        sqlite3_free(sql);
        sql = s2;
    }
    if (!sql || sqlite3_prepare_v2(h, sql, -1, &st, NULL) != SQLITE_OK) goto sqlerr;
    if (o.experiment) sqlite3_bind_text(st, 1, o.experiment, -1, SQLITE_STATIC);
    /* -o FILE is written atomically (temporary file in the same directory,
     * fsync, rename): a full disk or any failed write leaves FILE as it was.
     * A target that exists and is not a regular file (/dev/stdout, a FIFO)
     * cannot be renamed over and is written in place, every write checked. */
    if (o.out) {
        struct stat sb;
        if (stat(o.out, &sb) == 0 && !S_ISREG(sb.st_mode)) {
            if (!(f = fopen(o.out, "w"))) {
                fprintf(stderr, "moesim results export: %s: cannot write: %m\n", o.out);
                f = stdout;
                goto out;
            }
        } else {
            moe_error err;
            if (moe_atomic_open(&af, o.out, &err)) {
                fprintf(stderr, "moesim results export: %s\n", err.msg);
                goto out;
            }
            atomic = 1;
            f = af.f;
        }
    }
    fputs("id,experiment,trace,trace_hash", f);
    for (int i = 0; i < nk; i++) fputc(',', f), cli_csv_field(f, keys[i]);
    fputs(",code_version,host,started_at,finished_at,seconds", f);
    for (int i = 0; i < nm; i++) fputc(',', f), cli_csv_field(f, names[i]);
    fputc('\n', f);
    int s, ncol = sqlite3_column_count(st);
    while ((s = sqlite3_step(st)) == SQLITE_ROW) {
        for (int c = 0; c < ncol; c++) {
            if (c) fputc(',', f);
            int type = sqlite3_column_type(st, c);
            if (type == SQLITE_FLOAT) {
                char num[40];
                fmt_num(sqlite3_column_double(st, c), num, sizeof num);
                fputs(num, f);
            } else if (type != SQLITE_NULL) {
                cli_csv_field(f, (const char *)sqlite3_column_text(st, c));
            }
        }
        fputc('\n', f);
    }
    if (s != SQLITE_DONE) goto sqlerr;
    rc = 0;
    if (atomic) {
        moe_error err;
        atomic = 0, f = stdout;
        if (moe_atomic_commit(&af, &err)) {
            fprintf(stderr, "moesim results export: %s\n", err.msg);
            rc = 1;
        }
    } else if (f != stdout) {
        errno = 0;
        int bad = fflush(f) != 0 || ferror(f);
        int e = errno ? errno : EIO;
        if (fclose(f) != 0 && !bad) bad = 1, e = errno;
        if (bad) {
            fprintf(stderr, "moesim results export: %s: cannot write: %s\n", o.out, strerror(e));
            rc = 1;
        }
    }
    /* Standard output is flushed and checked by main (cli/main.c). */
    f = stdout;
    goto out;
sqlerr:
    rc = sql_fail("export", o.db, h);
out:
    if (atomic) moe_atomic_abort(&af);
    else if (f != stdout) fclose(f);
    sqlite3_free(sql);
    sqlite3_finalize(st);
    free_list(keys, nk);
    free_list(names, nm);
    sqlite3_close(h);
    return rc;
}

static void print_conflict(void *ctx, const char *line) {
    (void)ctx;
    fprintf(stderr, "moesim results merge: %s\n", line);
}

static int results_merge(int argc, char **argv) {
    static const struct option opts[] = {
        {"output", required_argument, 0, 'o'}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    const char *out = NULL;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "ho:", opts, NULL)) != -1) {
        switch (c) {
        case 'o': out = optarg; break;
        case 'h': fputs(merge_usage, stdout); return 0;
        default: fputs(merge_usage, stderr); return 2;
        }
    }
    if (!out || optind >= argc) {
        fprintf(stderr, "moesim results merge: -o OUT.db and at least one input are required\n%s", merge_usage);
        return 2;
    }
    moe_error err = {{0}};
    moe_db *db = moe_db_open(out, &err);
    if (!db) return cli_error("results merge", &err);
    int rc = 0;
    uint64_t total_runs = 0, total_conf = 0;
    for (int i = optind; i < argc; i++) {
        moe_db_merge_stats s;
        if (moe_db_merge(db, argv[i], &s, print_conflict, NULL, &err)) {
            cli_error("results merge", &err);
            rc = 1;
            continue;
        }
        total_runs += s.runs_added;
        total_conf += s.conflicts;
        printf("%s: %llu runs added, %llu traces added, %llu duplicates skipped, %llu conflicts, "
               "%llu incomplete ignored, %llu incomplete replaced\n",
               argv[i], (unsigned long long)s.runs_added, (unsigned long long)s.traces_added,
               (unsigned long long)s.duplicates, (unsigned long long)s.conflicts, (unsigned long long)s.incomplete,
               (unsigned long long)s.replaced);
    }
    if (moe_db_close(db, &err)) rc = cli_error("results merge", &err);
    printf("%s: %llu runs added in all, %llu conflicts\n", out, (unsigned long long)total_runs,
           (unsigned long long)total_conf);
    return rc || total_conf ? 1 : 0;
}

static void print_problem(void *ctx, const char *line) {
    fprintf(stdout, "%s: %s\n", (const char *)ctx, line);
}

static int results_check(int argc, char **argv) {
    ropts o = {0};
    int r = parse_ropts("check", check_usage, 0, argc, argv, &o);
    if (r >= 0) return r;
    moe_error err = {{0}};
    int rc = moe_db_check(o.db, print_problem, (void *)o.db, &err);
    if (rc < 0) return cli_error("results check", &err);
    if (rc == 0) {
        printf("%s: ok\n", o.db);
        return 0;
    }
    fprintf(stderr, "moesim results check: %s: the database is damaged; `moesim results recover --db %s -o NEW.db` "
                    "copies what is readable\n", o.db, o.db);
    return 1;
}

static void print_line(void *ctx, const char *line) {
    printf("%s: %s\n", (const char *)ctx, line);
}

static int results_recover(int argc, char **argv) {
    ropts o = {0};
    int r = parse_ropts("recover", recover_usage, 0, argc, argv, &o);
    if (r >= 0) return r;
    if (!o.out) {
        fprintf(stderr, "moesim results recover: -o NEW.db is required\n%s", recover_usage);
        return 2;
    }
    struct stat sb;
    if (stat(o.db, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        fprintf(stderr, "moesim results recover: %s: no such database file\n", o.db);
        return 1;
    }
    if (lstat(o.out, &sb) == 0) {
        fprintf(stderr, "moesim results recover: %s: exists; give a new file name\n", o.out);
        return 1;
    }
    size_t n = strlen(o.out);
    char *tmp = malloc(n + 16);
    if (!tmp) return 1;
    snprintf(tmp, n + 16, "%s.tmp-XXXXXX", o.out);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        fprintf(stderr, "moesim results recover: %s: cannot create: %s\n", o.out, strerror(errno));
        free(tmp);
        return 1;
    }
    close(fd);
    int rc = 1;
    moe_error err = {{0}};
    moe_db *db = moe_db_open(tmp, &err);
    if (!db) {
        cli_error("results recover", &err);
        goto out;
    }
    int bad = moe_db_recover(db, o.db, print_line, (void *)o.db, &err);
    if (bad) cli_error("results recover", &err);
    if (moe_db_close(db, bad ? NULL : &err) && !bad) bad = cli_error("results recover", &err);
    if (bad) goto out;
    /* The copy must be sound before it takes the name. */
    int c = moe_db_check(tmp, NULL, NULL, &err);
    if (c != 0) {
        fprintf(stderr, "moesim results recover: %s: the recovered copy does not pass the check%s%s\n", o.out,
                c < 0 ? ": " : "", c < 0 ? err.msg : "");
        goto out;
    }
    fd = open(tmp, O_RDONLY);
    if (fd < 0 || fsync(fd) != 0) {
        fprintf(stderr, "moesim results recover: %s: fsync: %s\n", tmp, strerror(errno));
        if (fd >= 0) close(fd);
        goto out;
    }
    close(fd);
    /* link() refuses to replace a file that appeared meanwhile. */
    if (link(tmp, o.out) != 0) {
        fprintf(stderr, "moesim results recover: %s: %s\n", o.out, strerror(errno));
        goto out;
    }
    printf("%s: recovered from %s; check it with `moesim results list --db %s`\n", o.out, o.db, o.out);
    rc = 0;
out:
    /* The check's read-only connection leaves an empty -wal/-shm behind. */
    for (int i = 0; i < 3; i++) {
        char side[4096];
        snprintf(side, sizeof side, "%s%s", tmp, i == 0 ? "" : i == 1 ? "-wal" : "-shm");
        unlink(side);
    }
    free(tmp);
    return rc;
}

int cmd_results(int argc, char **argv) {
    if (argc < 2) {
        fputs(results_usage, stderr);
        return 2;
    }
    const char *sub = argv[1];
    if (!strcmp(sub, "--help") || !strcmp(sub, "-h") || !strcmp(sub, "help")) {
        fputs(results_usage, stdout);
        return 0;
    }
    if (!strcmp(sub, "list")) return results_list(argc - 1, argv + 1);
    if (!strcmp(sub, "show")) return results_show(argc - 1, argv + 1);
    if (!strcmp(sub, "export")) return results_export(argc - 1, argv + 1);
    if (!strcmp(sub, "merge")) return results_merge(argc - 1, argv + 1);
    if (!strcmp(sub, "check")) return results_check(argc - 1, argv + 1);
    if (!strcmp(sub, "recover")) return results_recover(argc - 1, argv + 1);
    fprintf(stderr, "moesim results: unknown subcommand '%s'\n%s", sub, results_usage);
    return 2;
}

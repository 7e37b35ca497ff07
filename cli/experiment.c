/* experiment.c: experiment files and run lists (see experiment.h). */
#include "experiment.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../core/cache.h"
#include "../core/datadir.h"
#include "../core/on_miss.h"
#include "../core/ini.h"
#include "../core/policy.h"
#include "../core/strindex.h"
#include "cli.h"
#include "../sim/replay_check.h"
#include "../sim/replay_opts.h"
#include "../sim/runrec.h"

#define MAX_PLAN 1000000u
/* Capacities of one experiment: each is at least one replay per policy and
 * trace, so more is a typo; the bound also keeps a 1 KB file to a fraction
 * of a second. */
#define MAX_CAPACITIES 100000u

int moe_str_list_push(moe_str_list *l, const char *s, size_t len) {
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

void moe_str_list_free(moe_str_list *l) {
    for (size_t i = 0; i < l->n; i++) free(l->v[i]);
    free(l->v);
    memset(l, 0, sizeof *l);
}

int moe_split_specs(const char *s, const char *what, moe_str_list *out, moe_error *err) {
    size_t first = out->n;
    for (const char *p = s; *p;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        while (len && isspace((unsigned char)*p)) p++, len--;
        while (len && isspace((unsigned char)p[len - 1])) len--;
        if (len == 0) return moe_fail(err, "%s: empty item in '%s'", what, s);
        int is_param = memchr(p, '=', len) && !memchr(p, ':', len);
        if (is_param) {
            if (out->n == first || !strchr(out->v[out->n - 1], ':'))
                return moe_fail(err, "%s: parameter '%.*s' does not follow a 'name:' spec", what, (int)len, p);
            char *prev = out->v[out->n - 1];
            size_t pl = strlen(prev);
            char *joined = realloc(prev, pl + len + 2);
            if (!joined) return moe_fail(err, "out of memory");
            joined[pl] = ',';
            memcpy(joined + pl + 1, p, len);
            joined[pl + 1 + len] = 0;
            out->v[out->n - 1] = joined;
        } else if (moe_str_list_push(out, p, len)) {
            return moe_fail(err, "out of memory");
        }
        p = comma ? comma + 1 : p + strlen(p);
    }
    if (out->n == first) return moe_fail(err, "%s: empty list", what);
    return 0;
}

void moe_experiment_free(moe_experiment *exp) {
    moe_str_list_free(&exp->traces);
    moe_str_list_free(&exp->policies);
    moe_str_list_free(&exp->capacities);
    moe_str_list_free(&exp->devices);
    moe_str_list_free(&exp->models);
    moe_str_list_free(&exp->precisions);
    moe_str_list_free(&exp->prefetchers);
    free(exp->rho);
    free(exp->seeds);
    free(exp->skip);
    free(exp->split);
    free(exp->devices_path);
    free(exp->models_path);
    for (size_t i = 0; i < exp->n_expects; i++) {
        free(exp->expects[i].name);
        free(exp->expects[i].metric);
        free(exp->expects[i].selector);
        free(exp->expects[i].source);
    }
    free(exp->expects);
    memset(exp, 0, sizeof *exp);
}

int moe_experiment_add_policies(moe_experiment *exp, const char *s, moe_error *err) {
    while (isspace((unsigned char)*s)) s++;
    if (!strcasecmp(s, "all")) {
        if (exp->all_n) return moe_fail(err, "policies: 'all' given twice");
        exp->all_first = exp->policies.n;
        for (const moe_policy_ops *const *p = moe_policy_list(); *p; p++)
            if (moe_str_list_push(&exp->policies, (*p)->name, strlen((*p)->name))) return moe_fail(err, "out of memory");
        exp->all_n = exp->policies.n - exp->all_first;
        return 0;
    }
    size_t first = exp->policies.n;
    if (moe_split_specs(s, "policies", &exp->policies, err)) return -1;
    /* Reject unknown names now, before any trace is loaded. */
    for (size_t i = first; i < exp->policies.n; i++) {
        char name[64];
        size_t len = strcspn(exp->policies.v[i], ":");
        if (len >= sizeof name) len = sizeof name - 1;
        memcpy(name, exp->policies.v[i], len);
        name[len] = 0;
        if (!moe_policy_find(name)) {
            char known[512] = "", close[256];
            const char *names[64];
            size_t k = 0;
            for (const moe_policy_ops *const *p = moe_policy_list(); *p && k < 64; p++) {
                names[k++] = (*p)->name;
                snprintf(known + strlen(known), sizeof known - strlen(known), "%s%s",
                         p == moe_policy_list() ? "" : ", ", (*p)->name);
            }
            cli_close_names(name, names, k, close, sizeof close);
            if (*close) return moe_fail(err, "policies: unknown policy '%s'; close: %s (known: %s)", name, close, known);
            return moe_fail(err, "policies: unknown policy '%s' (known: %s)", name, known);
        }
    }
    return 0;
}

/* Append s unless the list has it already (first occurrence only). */
/* A hash index over the list (core/strindex.h): a range "0:1000000" once
 * took minutes of strcmp against every earlier value. x indexes l->v[0..n);
 * the list's pointer array may move, the strings do not. */
static int push_unique(moe_str_list *l, moe_strindex *x, const char *s, moe_error *err) {
    if (x->n < l->n) /* values added before this call */
        for (size_t i = x->n; i < l->n; i++)
            if (moe_strindex_add(x, l->v, i)) return moe_fail(err, "out of memory");
    if (moe_strindex_find(x, l->v, s) >= 0) return 0;
    if (l->n >= MAX_CAPACITIES) return moe_fail(err, "capacities: more than %u values", MAX_CAPACITIES);
    if (moe_str_list_push(l, s, strlen(s)) || moe_strindex_add(x, l->v, l->n - 1)) return moe_fail(err, "out of memory");
    return 0;
}

int moe_experiment_add_capacities(moe_experiment *exp, const char *s, moe_error *err) {
    moe_str_list items = {0};
    moe_strindex seen = {0};
    int rc = 0;
    while (isspace((unsigned char)*s)) s++;
    if (!*s) return moe_fail(err, "capacities: empty list");
    for (const char *p = s; *p && rc == 0;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        char tok[128];
        while (len && isspace((unsigned char)*p)) p++, len--;
        while (len && isspace((unsigned char)p[len - 1])) len--;
        if (len == 0 || len >= sizeof tok) {
            rc = moe_fail(err, "capacities: %s item in '%s'", len ? "overlong" : "empty", s);
            break;
        }
        memcpy(tok, p, len);
        tok[len] = 0;
        p = comma ? comma + 1 : p + strlen(p);
        if (strchr(tok, ':')) { /* START:END[:STEP] in experts */
            char *parts[3] = {tok, NULL, NULL}, orig[128];
            int np = 1;
            snprintf(orig, sizeof orig, "%s", tok);
            for (char *c = tok; *c; c++)
                if (*c == ':') {
                    *c = 0;
                    if (np == 3) {
                        np = 4;
                        break;
                    }
                    parts[np++] = c + 1;
                }
            if (np > 3) {
                rc = moe_fail(err, "capacities: '%s' has more than START:END:STEP", orig);
                break;
            }
            uint64_t v[3] = {0, 0, 1};
            for (int i = 0; i < np && rc == 0; i++) rc = cli_parse_u64("capacities", parts[i], UINT32_MAX, &v[i], err);
            if (rc) break;
            if (v[1] < v[0]) rc = moe_fail(err, "capacities: range %s ends before it starts", orig);
            else if (v[2] == 0) rc = moe_fail(err, "capacities: step must be at least 1");
            else if ((v[1] - v[0]) / v[2] + 1 + exp->capacities.n > MAX_CAPACITIES)
                rc = moe_fail(err, "capacities: range %s has %llu values%s; at most %u in all (give a larger STEP, "
                              "START:END:STEP)", orig, (unsigned long long)((v[1] - v[0]) / v[2] + 1),
                              exp->capacities.n ? " besides the earlier ones" : "", MAX_CAPACITIES);
            for (uint64_t c = v[0]; rc == 0 && c <= v[1]; c += v[2]) {
                char num[32];
                snprintf(num, sizeof num, "%llu", (unsigned long long)c);
                rc = push_unique(&exp->capacities, &seen, num, err);
            }
        } else {
            moe_replay_config probe = {0};
            if (moe_replay_parse_capacity(&probe, tok, err)) rc = moe_fail_prefix(err, "capacities");
            else rc = push_unique(&exp->capacities, &seen, tok, err);
        }
    }
    moe_str_list_free(&items);
    moe_strindex_free(&seen);
    return rc;
}

/* Parse a comma list of plain values with `fn`. */
static int parse_flag(const char *v, int *out) {
    if (!strcasecmp(v, "on") || !strcmp(v, "1") || !strcasecmp(v, "yes") || !strcasecmp(v, "true")) *out = 1;
    else if (!strcasecmp(v, "off") || !strcmp(v, "0") || !strcasecmp(v, "no") || !strcasecmp(v, "false")) *out = 0;
    else return -1;
    return 0;
}

static char *xstrdup(const char *s, moe_error *err) {
    char *d = strdup(s);
    if (!d) moe_fail(err, "out of memory");
    return d;
}

/* "file:line: key 'k': <msg>" around an error of a value. */
static int at(moe_error *err, const moe_ini *ini, const moe_ini_entry *e) {
    return moe_fail_prefix(err, "%s:%u: [%s] %s", ini->path, e->line, e->section, e->key);
}

int moe_experiment_set(moe_experiment *exp, const char *k, const char *v, moe_error *err) {
    moe_str_list items = {0};
    int rc = 0;
    if (!strcasecmp(k, "policies")) {
        rc = moe_experiment_add_policies(exp, v, err);
    } else if (!strcasecmp(k, "capacities")) {
        rc = moe_experiment_add_capacities(exp, v, err);
    } else if (!strcasecmp(k, "scopes")) {
        rc = moe_split_specs(v, "scopes", &items, err);
        for (size_t j = 0; j < items.n && rc == 0; j++) {
            int sc;
            if ((rc = moe_scope_parse(items.v[j], &sc, err))) break;
            if (!(exp->n_scopes == 1 && exp->scopes[0] == sc) && exp->n_scopes < 2) exp->scopes[exp->n_scopes++] = sc;
        }
    } else if (!strcasecmp(k, "cold_per_seq") || !strcasecmp(k, "speculate")) {
        rc = moe_split_specs(v, k, &items, err);
        for (size_t j = 0; j < items.n && rc == 0; j++) {
            int f;
            if (parse_flag(items.v[j], &f)) rc = moe_fail(err, "expected on/off, got '%s'", items.v[j]);
            else if (!strcasecmp(k, "speculate")) {
                if (items.n > 1) rc = moe_fail(err, "one value only");
                exp->speculate = f;
            } else if (!(exp->n_cold == 1 && exp->cold[0] == f) && exp->n_cold < 2) {
                exp->cold[exp->n_cold++] = f;
            }
        }
    } else if (!strcasecmp(k, "seeds") || !strcasecmp(k, "rho")) {
        rc = moe_split_specs(v, k, &items, err);
        int seeds = !strcasecmp(k, "seeds");
        void *arr = realloc(seeds ? (void *)exp->seeds : (void *)exp->rho, (items.n + 1) * 8);
        if (!arr) rc = moe_fail(err, "out of memory");
        else if (seeds) exp->seeds = arr;
        else exp->rho = arr;
        for (size_t j = 0; j < items.n && rc == 0; j++) {
            char *end;
            errno = 0;
            if (seeds) {
                uint64_t s;
                if ((rc = cli_parse_u64("seed", items.v[j], UINT64_MAX, &s, err))) break;
                exp->seeds[exp->n_seeds++] = s;
            } else {
                double r = strtod(items.v[j], &end);
                if (end == items.v[j] || *end || errno || !(r > 0) || !isfinite(r))
                    rc = moe_fail(err, "'%s' is not a positive number", items.v[j]);
                else exp->rho[exp->n_rho++] = r;
            }
        }
    } else if (!strcasecmp(k, "on_miss") || !strcasecmp(k, "on-miss")) {
        rc = moe_on_miss_parse(v, &exp->on_miss, err); /* a single value */
    } else if (!strcasecmp(k, "stream_dense") || !strcasecmp(k, "stream-dense")) {
        moe_replay_config probe = {0}; /* a single value, parsed by the replay's own option parser */
        if (!(rc = moe_replay_opt_set(&probe, "stream-dense", v, err))) exp->stream_dense = probe.stream_dense;
    } else if (!strcasecmp(k, "skip") || !strcasecmp(k, "split")) {
        /* single values, validated by the replay's own option parser */
        moe_replay_config probe = {0};
        char **dst = !strcasecmp(k, "skip") ? &exp->skip : &exp->split;
        free(*dst);
        *dst = NULL;
        if (!(rc = moe_replay_opt_set(&probe, k, v, err))) rc = (*dst = xstrdup(v, err)) ? 0 : -1;
    } else if (!strcasecmp(k, "devices") || !strcasecmp(k, "models")) {
        char **dst = !strcasecmp(k, "devices") ? &exp->devices_path : &exp->models_path;
        rc = (*dst = xstrdup(v, err)) ? 0 : -1;
    } else {
        /* prefetch, precision, device, model: lists of specs, "none" = unset
         * (for prefetch "none" is also the name of the null prefetcher:
         * both mean no prefetching, and unset keeps the plain replay). */
        moe_str_list *dst = !strcasecmp(k, "prefetch") ? &exp->prefetchers
                            : !strcasecmp(k, "precision") ? &exp->precisions
                            : !strcasecmp(k, "device") ? &exp->devices : &exp->models;
        rc = moe_split_specs(v, k, &items, err);
        for (size_t j = 0; j < items.n && rc == 0; j++) {
            const char *it = !strcasecmp(items.v[j], "none") ? "" : items.v[j];
            moe_replay_config probe = {0};
            if (*it && (rc = moe_replay_opt_set(&probe, k, it, err)) != 0) break;
            if (moe_str_list_push(dst, it, strlen(it))) rc = moe_fail(err, "out of memory");
        }
    }
    moe_str_list_free(&items);
    return rc;
}

static int load_sweep(const moe_ini *ini, moe_experiment *exp, moe_error *err) {
    static const char *const known[] = {"policies", "scopes", "capacities", "rho", "cold_per_seq", "seeds",
                                        "prefetch", "precision", "device", "model", "skip", "on_miss", "stream_dense", "speculate",
                                        "split", "devices", "models", NULL};
    if (moe_ini_check_keys(ini, "sweep", known, err)) return -1;
    for (size_t i = 0; i < ini->n_entries; i++) {
        const moe_ini_entry *e = &ini->entries[i];
        if (strcasecmp(e->section, "sweep")) continue;
        if (moe_experiment_set(exp, e->key, e->value, err)) return at(err, ini, e);
    }
    return 0;
}

static int load_expect(const moe_ini *ini, const moe_ini_section *s, moe_experiment *exp, moe_error *err) {
    static const char *const known[] = {"metric", "selector", "value", "tolerance", "source", NULL};
    if (moe_ini_check_keys(ini, s->name, known, err)) return -1;
    const char *metric = moe_ini_get(ini, s->name, "metric");
    if (!metric || !*metric) return moe_fail(err, "%s:%u: [%s] needs a metric", ini->path, s->line, s->name);
    if (!moe_ini_find(ini, s->name, "value"))
        return moe_fail(err, "%s:%u: [%s] needs a value", ini->path, s->line, s->name);
    moe_expectation x = {0};
    if (moe_ini_get_double(ini, s->name, "value", 0, -1e300, 1e300, &x.value, err) ||
        moe_ini_get_double(ini, s->name, "tolerance", 0, 0, 1e300, &x.tolerance, err))
        return -1;
    const char *sel = moe_ini_get(ini, s->name, "selector"), *src = moe_ini_get(ini, s->name, "source");
    const char *name = s->name + 6; /* after "expect" */
    while (isspace((unsigned char)*name)) name++;
    void *arr = realloc(exp->expects, (exp->n_expects + 1) * sizeof *exp->expects);
    if (!arr) return moe_fail(err, "out of memory");
    exp->expects = arr;
    x.name = strdup(name);
    x.metric = strdup(metric);
    x.selector = strdup(sel ? sel : "");
    x.source = strdup(src ? src : "");
    exp->expects[exp->n_expects++] = x;
    if (!x.name || !x.metric || !x.selector || !x.source) return moe_fail(err, "out of memory");
    /* the table's key is (experiment, metric, selector) */
    for (size_t i = 0; i + 1 < exp->n_expects; i++)
        if (!strcmp(exp->expects[i].metric, x.metric) && !strcmp(exp->expects[i].selector, x.selector))
            return moe_fail(err, "%s:%u: [%s] repeats metric '%s' with selector '%s' of [expect %s]", ini->path,
                            s->line, s->name, x.metric, x.selector, exp->expects[i].name);
    return 0;
}

int moe_experiment_load(const char *path, moe_experiment *exp, moe_error *err) {
    memset(exp, 0, sizeof *exp);
    /* experiments/policies.ini and the other shipped files from anywhere */
    char where[4096];
    path = moe_data_path(path, where, sizeof where);
    moe_ini *ini = moe_ini_load(path, err);
    if (!ini) return -1;
    int rc = -1;
    snprintf(exp->path, sizeof exp->path, "%s", path);
    /* default name: the file's stem */
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    size_t len = strcspn(base, ".");
    snprintf(exp->name, sizeof exp->name, "%.*s", (int)len, base);
    for (size_t i = 0; i < ini->n_sections; i++) {
        const moe_ini_section *s = &ini->sections[i];
        if (!strcasecmp(s->name, "experiment") || !strcasecmp(s->name, "traces") || !strcasecmp(s->name, "sweep"))
            continue;
        if (!strncasecmp(s->name, "expect", 6) && (s->name[6] == 0 || isspace((unsigned char)s->name[6]))) {
            if (load_expect(ini, s, exp, err)) goto out;
            continue;
        }
        /* other tools may keep their own sections in the same file ([reproduce ...] ...) */
    }
    static const char *const exp_keys[] = {"name", "description", NULL};
    if (moe_ini_check_keys(ini, "experiment", exp_keys, err)) goto out;
    const char *name = moe_ini_get(ini, "experiment", "name");
    if (name) {
        if (!*name || strlen(name) >= sizeof exp->name) {
            moe_fail(err, "%s:%u: [experiment] name: empty or longer than %zu", path,
                     moe_ini_find(ini, "experiment", "name")->line, sizeof exp->name - 1);
            goto out;
        }
        snprintf(exp->name, sizeof exp->name, "%s", name);
    }
    for (size_t i = 0; i < ini->n_entries; i++) {
        const moe_ini_entry *e = &ini->entries[i];
        if (strcasecmp(e->section, "traces")) continue;
        if (!*e->value) {
            moe_fail(err, "%s:%u: [traces] %s: empty path", path, e->line, e->key);
            goto out;
        }
        if (moe_str_list_push(&exp->traces, e->value, strlen(e->value))) {
            moe_fail(err, "out of memory");
            goto out;
        }
    }
    if (load_sweep(ini, exp, err)) goto out;
    if (!exp->traces.n) {
        moe_fail(err, "%s: no trace: add a [traces] section with 'label = path' lines", path);
        goto out;
    }
    if (!exp->policies.n) {
        moe_fail(err, "%s: no policies: add 'policies = ...' to [sweep]", path);
        goto out;
    }
    if (!exp->capacities.n && !exp->n_rho) {
        moe_fail(err, "%s: no capacities: add 'capacities = ...' or 'rho = ...' to [sweep]", path);
        goto out;
    }
    rc = 0;
out:
    moe_ini_free(ini);
    if (rc) moe_experiment_free(exp);
    return rc;
}

/* Open-addressing set of config identities (trace index + config text). */
typedef struct idset {
    uint64_t *h;
    size_t *idx, cap;
} idset;

static uint64_t fnv(const char *s, size_t trace) {
    uint64_t h = 1469598103934665603ull ^ trace;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

/* Note "policy: reason" in list once. */
static int note_left_out(moe_str_list *list, const char *policy, const char *reason, moe_error *err) {
    char line[1200];
    snprintf(line, sizeof line, "%s: %s", policy, reason);
    for (size_t i = 0; i < list->n; i++)
        if (!strcmp(list->v[i], line)) return 0;
    return moe_str_list_push(list, line, strlen(line)) ? moe_fail(err, "out of memory") : 0;
}

int moe_experiment_plan(const moe_experiment *exp, moe_trace *const *traces, char (*hashes)[65],
                        moe_exp_run **runs_out, size_t *n_out, moe_str_list *left_out, moe_error *err) {
    *runs_out = NULL;
    *n_out = 0;
    /* Axes with an implicit single value. */
    static const int def_scope[1] = {MOE_SCOPE_PER_LAYER}, def_cold[1] = {0};
    static const uint64_t def_seed[1] = {1};
    static char *const unset_item[1] = {""};
    const int *scopes = exp->n_scopes ? exp->scopes : def_scope, *colds = exp->n_cold ? exp->cold : def_cold;
    size_t n_scopes = exp->n_scopes ? exp->n_scopes : 1, n_cold = exp->n_cold ? exp->n_cold : 1;
    const uint64_t *seeds = exp->n_seeds ? exp->seeds : def_seed;
    size_t n_seeds = exp->n_seeds ? exp->n_seeds : 1;
#define AXIS(l) ((l).n ? (const char *const *)(l).v : (const char *const *)unset_item), ((l).n ? (l).n : 1)
    struct { const char *const *v; size_t n; } dev = {AXIS(exp->devices)}, mod = {AXIS(exp->models)},
                                             pre = {AXIS(exp->precisions)}, pf = {AXIS(exp->prefetchers)};
#undef AXIS
    size_t n_caps = exp->capacities.n + exp->n_rho;
    double max = (double)exp->traces.n * (double)n_scopes * (double)n_cold * (double)n_seeds * (double)dev.n *
                 (double)mod.n * (double)pre.n * (double)pf.n * (double)exp->policies.n * (double)n_caps;
    if (max > MAX_PLAN) return moe_fail(err, "%.0f runs is more than one sweep takes (%u)", max, MAX_PLAN);
    size_t cap = (size_t)max ? (size_t)max : 1, n = 0;
    moe_exp_run *runs = calloc(cap, sizeof *runs);
    idset set = {.cap = 1};
    while (set.cap < 2 * cap) set.cap <<= 1;
    set.h = calloc(set.cap, sizeof *set.h);
    set.idx = calloc(set.cap, sizeof *set.idx);
    char **texts = calloc(cap, sizeof *texts); /* config text per planned run, for exact comparison */
    if (!runs || !set.h || !set.idx || !texts) {
        moe_fail(err, "out of memory");
        goto fail;
    }
    for (size_t ti = 0; ti < exp->traces.n; ti++) {
        /* The same content under two paths is one trace. */
        int dup = 0;
        for (size_t k = 0; k < ti; k++) dup |= !strcmp(hashes[k], hashes[ti]);
        if (dup) continue;
        const moe_trace *t = traces[ti];
        for (size_t si = 0; si < n_scopes; si++)
        for (size_t ci = 0; ci < n_cold; ci++)
        for (size_t ei = 0; ei < n_seeds; ei++)
        for (size_t di = 0; di < dev.n; di++)
        for (size_t mi = 0; mi < mod.n; mi++)
        for (size_t qi = 0; qi < pre.n; qi++)
        for (size_t fi = 0; fi < pf.n; fi++)
        for (size_t pi = 0; pi < exp->policies.n; pi++)
        for (size_t ki = 0; ki < n_caps; ki++) {
            moe_exp_run *r = &runs[n];
            memset(r, 0, sizeof *r);
            r->trace = ti;
            moe_replay_config *c = &r->cfg;
            int global = scopes[si] == MOE_SCOPE_GLOBAL;
            uint32_t n_keys = global ? t->n_layers * t->n_experts : t->n_experts;
            c->scope = scopes[si];
            c->cold_per_seq = colds[ci];
            c->seed = seeds[ei];
            c->device = *dev.v[di] ? dev.v[di] : NULL;
            c->model = *mod.v[mi] ? mod.v[mi] : NULL;
            c->precision = *pre.v[qi] ? pre.v[qi] : NULL;
            c->prefetch = *pf.v[fi] ? pf.v[fi] : NULL;
            c->skip = exp->skip;
            c->on_miss = exp->on_miss;
            c->stream_dense = exp->stream_dense;
            c->split = exp->split;
            c->speculate = exp->speculate;
            c->devices_path = exp->devices_path;
            c->models_path = exp->models_path;
            if (ki < exp->capacities.n) {
                if (moe_replay_parse_capacity(c, exp->capacities.v[ki], err)) goto fail;
            } else {
                /* ρ: multiple of top_k per layer; L times that in global scope */
                double rho = exp->rho[ki - exp->capacities.n];
                double keys = rho * t->top_k * (global ? t->n_layers : 1);
                double v = floor(keys + 0.5);
                if (v < 1) v = 1;
                if (v > n_keys) v = n_keys;
                c->capacity = (uint32_t)v;
            }
            moe_policy_env env = {
                .n_keys = n_keys,
                .capacity = c->capacity ? c->capacity : 1,
                .n_layers = t->n_layers,
                .n_experts = t->n_experts,
                .fixed_layer = global ? -1 : 0,
                .seed = c->seed,
                .trace = t,
            };
            /* "all" means the policies that apply to these options */
            moe_error why;
            c->policy = exp->policies.v[pi];
            if (pi >= exp->all_first && pi < exp->all_first + exp->all_n && moe_replay_policy_check(t, c, &why)) {
                if (left_out && note_left_out(left_out, exp->policies.v[pi], why.msg, err)) goto fail;
                continue;
            }
            /* The canonical name (effective parameters) is the identity the
             * replay will store; parameter errors surface here. */
            if (moe_policy_canonical(exp->policies.v[pi], &env, r->policy, sizeof r->policy, err)) {
                moe_fail_prefix(err, "policy '%s'", exp->policies.v[pi]);
                goto fail;
            }
            moe_exp_run_bind(r);
            char text[4096];
            if (moe_run_config_text_err(c, r->policy, text, sizeof text, err)) goto fail;
            uint64_t h = fnv(text, ti) | 1; /* 0 marks an empty slot */
            size_t slot = h & (set.cap - 1);
            int twice = 0;
            for (; set.h[slot]; slot = (slot + 1) & (set.cap - 1))
                if (set.h[slot] == h && runs[set.idx[slot]].trace == ti && !strcmp(texts[set.idx[slot]], text)) {
                    twice = 1;
                    break;
                }
            if (twice) continue; /* the same run planned twice (ρ = a listed capacity, ...) */
            if (!(texts[n] = strdup(text))) {
                moe_fail(err, "out of memory");
                goto fail;
            }
            set.h[slot] = h;
            set.idx[slot] = n;
            n++;
        }
    }
    free(set.h);
    free(set.idx);
    for (size_t i = 0; i < n; i++) free(texts[i]);
    free(texts);
    *runs_out = runs;
    *n_out = n;
    return 0;
fail:
    free(set.h);
    free(set.idx);
    if (texts)
        for (size_t i = 0; i < n; i++) free(texts[i]);
    free(texts);
    free(runs);
    return -1;
}

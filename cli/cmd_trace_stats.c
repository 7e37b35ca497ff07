/* cmd_trace_stats.c: `moesim trace stats F` — expert popularity, reuse
 * distances, lookahead predictability, moe-lrc's SRP / SCH / cache hit
 * rates and the one-pass LRU curve of a trace; printed, as JSON, or stored
 * in SQLite as a run of experiment "trace-stats". Definitions:
 * core/trace_stats.h, core/lrc.h, core/mrc.h. */
#include <cjson/cJSON.h>
#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../core/lrc.h"
#include "../core/mrc.h"
#include "../core/results.h"
#include "../core/trace_stats.h"
#include "cli.h"
#include "commands.h"

static const char stats_usage[] =
    "usage: moesim trace stats F [--json] [--db F] [--m 1,2,4,8,16] [--rho 0.5,1,2,3]\n"
    "\n"
    "Describe a routing trace (.moetrace or .csv) before any policy runs:\n"
    "  - expert popularity per layer: entropy (bits, and over log2 E), Gini,\n"
    "    share of the 1, 2, k and E/4 most used experts (token-slot counts);\n"
    "  - reuse distances per layer: distinct other experts used between two\n"
    "    uses of an expert (replay accounting), in log2 buckets;\n"
    "  - one-layer-ahead predictability of the trace's lookahead field\n"
    "    (precision and recall of layer l's d=1 prediction for layer l+1);\n"
    "  - moe-lrc (arXiv:2505.16056) as its code defines them: SRP(m) with the\n"
    "    best relative set size rho_hat, SCH(m, rho), and cache hit rates of\n"
    "    LRU / LFU / Belady with one global cache of rho*L*k experts, cold per\n"
    "    512-token sequence (definitions in docs/reference.md, Trace statistics);\n"
    "  - the LRU hit-rate curve per layer for every capacity (one pass).\n"
    "\n"
    "  --m LIST         window lengths for SRP and SCH (default 1,2,4,8,16;\n"
    "                   the paper uses 4,16,64,256)\n"
    "  --rho LIST       relative cache sizes for SCH and hit rates (default 0.5,1,2,3)\n"
    "  --seq-len N      moe-lrc sequence length in tokens, 0 = whole sequences\n"
    "                   (default 512)\n"
    "  --json           print one JSON object instead of tables\n"
    "  --db F           also store the figures in SQLite database F (experiment\n"
    "                   \"trace-stats\")\n"
    "  -h, --help       this text\n"
    "\n"
    "example:\n"
    "  moesim trace stats traces/tinymix_session.moetrace --m 4,16 --rho 1,2\n";

#define MAX_LIST 64

static int parse_list(const char *opt, const char *s, int integer, double *out, uint32_t *n, moe_error *err) {
    *n = 0;
    const char *p = s;
    while (*p) {
        char *end;
        double v = strtod(p, &end);
        if (end == p || !(v > 0) || !isfinite(v) || (integer && (v != floor(v) || v > 1e6)))
            return moe_fail(err, "%s: expected a comma-separated list of %s, got '%s'", opt,
                            integer ? "positive integers" : "positive numbers", s);
        if (*n == MAX_LIST) return moe_fail(err, "%s: at most %d values", opt, MAX_LIST);
        out[(*n)++] = v;
        p = end;
        if (*p == ',') {
            p++;
            if (!*p) return moe_fail(err, "%s: trailing comma in '%s'", opt, s);
        } else if (*p) {
            return moe_fail(err, "%s: expected a comma-separated list, got '%s'", opt, s);
        }
    }
    if (!*n) return moe_fail(err, "%s: empty list", opt);
    return 0;
}

/* "%g" list, for the config text and headings. */
static void fmt_list(char *buf, size_t cap, const double *v, uint32_t n) {
    size_t len = 0;
    buf[0] = 0;
    for (uint32_t i = 0; i < n && len < cap; i++)
        len += (size_t)snprintf(buf + len, cap - len, "%s%g", i ? "," : "", v[i]);
}

typedef struct all_stats {
    const moe_trace *t;
    moe_trace_stats st;
    moe_lrc lrc;
    moe_mrc mrc;
    uint32_t seq_len;
} all_stats;

static double pct(uint64_t a, uint64_t b) { return b ? 100.0 * (double)a / (double)b : NAN; }

static void print_tables(const all_stats *a, const char *path) {
    const moe_trace *t = a->t;
    const moe_trace_stats *s = &a->st;
    const moe_lrc *r = &a->lrc;
    const uint32_t L = s->n_layers, L1 = L + 1;
    printf("trace %s: model %s, %u layers, %u experts, top-%u, %llu steps, %llu tokens, "
           "%llu unique (step, layer, expert) accesses\n\n",
           path, t->model, L, s->n_experts, s->top_k, (unsigned long long)s->n_steps,
           (unsigned long long)s->n_tokens, (unsigned long long)s->accesses);

    printf("expert popularity (token-slot activations; top-n = share of the n most used experts)\n");
    printf("%5s %10s %8s %7s %6s %6s %6s %6s %7s\n", "layer", "activ", "H bits", "H/logE", "gini", "top1",
           "top2", "top-k", "top-E/4");
    for (uint32_t l = 0; l <= L; l++) {
        const moe_popularity *p = l < L ? &s->layer[l] : &s->mean;
        if (l < L) printf("%5u ", l);
        else printf("%5s ", "mean");
        printf("%10llu %8.3f %7.3f %6.3f %6.3f %6.3f %6.3f %7.3f\n", (unsigned long long)p->activations,
               p->entropy_bits, p->entropy_norm, p->gini, p->top1, p->top2, p->topk, p->topq);
    }

    printf("\nreuse distance (distinct other experts of the layer between two uses; %% of uses)\n%5s", "layer");
    char lab[32];
    for (uint32_t b = 0; b < s->rd_buckets; b++) {
        uint32_t lo = moe_rd_bucket_lo(b), hi = b ? 2 * lo - 1 : 0;
        if (lo == hi) snprintf(lab, sizeof lab, "%u", lo);
        else snprintf(lab, sizeof lab, "%u-%u", lo, hi);
        printf(" %7s", lab);
    }
    printf(" %7s\n", "first");
    uint64_t tot_b[MOE_RD_BUCKETS] = {0}, tot_cold = 0, tot = 0;
    for (uint32_t l = 0; l <= L; l++) {
        uint64_t n = 0;
        const uint64_t *h = l < L ? s->rd_hist + (size_t)l * MOE_RD_BUCKETS : tot_b;
        uint64_t cold = l < L ? s->rd_cold[l] : tot_cold;
        if (l < L) {
            for (uint32_t b = 0; b < s->rd_buckets; b++) tot_b[b] += h[b];
            tot_cold += cold;
        }
        for (uint32_t b = 0; b < s->rd_buckets; b++) n += h[b];
        n += cold;
        if (l == L) tot = n;
        if (l < L) printf("%5u", l);
        else printf("%5s", "all");
        for (uint32_t b = 0; b < s->rd_buckets; b++) printf(" %7.2f", pct(h[b], n));
        printf(" %7.2f\n", pct(cold, n));
    }
    (void)tot;

    printf("\nlookahead predictability (layer l's d=1 prediction vs layer l+1's experts)\n");
    if (!s->has_lookahead) {
        printf("  n/a: the trace has no lookahead field\n");
    } else {
        printf("%5s %10s %10s\n", "layer", "precision", "recall");
        for (uint32_t l = 0; l + 1 < L; l++)
            printf("%5u %10.3f %10.3f\n", l, s->la_pred[l] ? (double)s->la_match[l] / (double)s->la_pred[l] : NAN,
                   s->la_actual[l] ? (double)s->la_match[l] / (double)s->la_actual[l] : NAN);
        printf("%5s %10.3f %10.3f\n", "all", s->la_precision, s->la_recall);
    }

    printf("\nmoe-lrc local routing consistency (%llu sequences of <= %u tokens; docs/reference.md)\n",
           (unsigned long long)r->n_chunks, a->seq_len);
    printf("SRP(m): best segment-routing F1 / rho_hat, per layer and model level\n%5s", "layer");
    for (uint32_t i = 0; i < r->n_m; i++) {
        snprintf(lab, sizeof lab, "m=%u", r->m[i]);
        printf(" %14s", lab);
    }
    printf("\n");
    for (uint32_t l = 0; l <= L; l++) {
        if (l < L) printf("%5u", l);
        else printf("%5s", "model");
        for (uint32_t i = 0; i < r->n_m; i++) printf("  %5.3f / %5.2f", r->srp[i * L1 + l], r->srp_rho[i * L1 + l]);
        printf("\n");
    }
    printf("\nSCH(m, rho), model level (cache of rho*L*k experts, eviction by occurrences in the next m tokens)\n%6s",
           "m\\rho");
    for (uint32_t j = 0; j < r->n_rho; j++) {
        snprintf(lab, sizeof lab, "%g (%u)", r->rho[j], r->cap[j * L1 + L]);
        printf(" %11s", lab);
    }
    printf("\n");
    for (uint32_t i = 0; i < r->n_m; i++) {
        printf("%6u", r->m[i]);
        for (uint32_t j = 0; j < r->n_rho; j++) printf(" %11.3f", r->sch[((size_t)i * r->n_rho + j) * L1 + L]);
        printf("\n");
    }
    printf("\ncache hit rate, moe-lrc mode (one global cache of rho*L*k experts; per-layer caches of rho*k in "
           "brackets)\n%7s", "policy");
    for (uint32_t j = 0; j < r->n_rho; j++) {
        snprintf(lab, sizeof lab, "rho=%g", r->rho[j]);
        printf(" %15s", lab);
    }
    printf("\n");
    for (int p = 0; p < MOE_LRC_N_POLICIES; p++) {
        printf("%7s", moe_lrc_policy_name(p));
        for (uint32_t j = 0; j < r->n_rho; j++) {
            double g = r->chr[((size_t)p * r->n_rho + j) * L1 + L], m = 0;
            for (uint32_t l = 0; l < L; l++) m += r->chr[((size_t)p * r->n_rho + j) * L1 + l];
            printf("   %5.3f [%5.3f]", g, m / L);
        }
        printf("\n");
    }
    printf("note: as in moe-lrc's code, an expert's first use in a sequence counts as a hit while the\n"
           "cache still has room (the cache starts as if holding the sequence's first experts).\n");

    const moe_mrc *m = &a->mrc;
    printf("\nLRU hit rate per layer (replay semantics, warm, one pass; exact for capacity >= %u)\n", m->exact_from);
    printf("%9s %9s\n", "capacity", "hit rate");
    for (uint32_t c = 0; c <= m->max_capacity; c++)
        printf("%9u %9.4f%s\n", c, m->accesses ? (double)m->hits[c] / (double)m->accesses : NAN,
               c < m->exact_from ? "  (approximate)" : "");
}

static cJSON *num(double v) { return isfinite(v) ? cJSON_CreateNumber(v) : cJSON_CreateNull(); }

static char *to_json(const all_stats *a, const char *path) {
    const moe_trace_stats *s = &a->st;
    const moe_lrc *r = &a->lrc;
    const moe_mrc *m = &a->mrc;
    const uint32_t L = s->n_layers, L1 = L + 1;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "trace", path);
    cJSON_AddStringToObject(o, "model", a->t->model);
    cJSON_AddNumberToObject(o, "layers", L);
    cJSON_AddNumberToObject(o, "experts", s->n_experts);
    cJSON_AddNumberToObject(o, "top_k", s->top_k);
    cJSON_AddNumberToObject(o, "steps", (double)s->n_steps);
    cJSON_AddNumberToObject(o, "tokens", (double)s->n_tokens);
    cJSON_AddNumberToObject(o, "accesses", (double)s->accesses);
    cJSON *layers = cJSON_AddArrayToObject(o, "layers_stats");
    for (uint32_t l = 0; l <= L; l++) {
        const moe_popularity *p = l < L ? &s->layer[l] : &s->mean;
        cJSON *x = cJSON_CreateObject();
        if (l < L) cJSON_AddNumberToObject(x, "layer", l);
        cJSON_AddNumberToObject(x, "activations", (double)p->activations);
        cJSON_AddItemToObject(x, "entropy_bits", num(p->entropy_bits));
        cJSON_AddItemToObject(x, "entropy_norm", num(p->entropy_norm));
        cJSON_AddItemToObject(x, "gini", num(p->gini));
        cJSON_AddItemToObject(x, "top1_share", num(p->top1));
        cJSON_AddItemToObject(x, "top2_share", num(p->top2));
        cJSON_AddItemToObject(x, "topk_share", num(p->topk));
        cJSON_AddItemToObject(x, "topq_share", num(p->topq));
        if (l < L) {
            cJSON *h = cJSON_AddArrayToObject(x, "reuse_hist");
            for (uint32_t b = 0; b < s->rd_buckets; b++)
                cJSON_AddItemToArray(h, cJSON_CreateNumber((double)s->rd_hist[(size_t)l * MOE_RD_BUCKETS + b]));
            cJSON_AddNumberToObject(x, "reuse_first", (double)s->rd_cold[l]);
            if (s->has_lookahead && l + 1 < L) {
                cJSON_AddItemToObject(x, "la_precision", num(s->la_pred[l] ? (double)s->la_match[l] / (double)s->la_pred[l] : NAN));
                cJSON_AddItemToObject(x, "la_recall", num(s->la_actual[l] ? (double)s->la_match[l] / (double)s->la_actual[l] : NAN));
            }
            cJSON_AddItemToArray(layers, x);
        } else {
            cJSON_AddItemToObject(o, "popularity_mean", x);
        }
    }
    cJSON *lo = cJSON_AddArrayToObject(o, "reuse_bucket_lo");
    for (uint32_t b = 0; b < s->rd_buckets; b++) cJSON_AddItemToArray(lo, cJSON_CreateNumber(moe_rd_bucket_lo(b)));
    if (s->has_lookahead) {
        cJSON *la = cJSON_AddObjectToObject(o, "lookahead");
        cJSON_AddItemToObject(la, "precision", num(s->la_precision));
        cJSON_AddItemToObject(la, "recall", num(s->la_recall));
    } else {
        cJSON_AddNullToObject(o, "lookahead");
    }
    cJSON *lrc = cJSON_AddObjectToObject(o, "lrc");
    cJSON_AddNumberToObject(lrc, "seq_len", a->seq_len);
    cJSON_AddNumberToObject(lrc, "sequences", (double)r->n_chunks);
    cJSON *srp = cJSON_AddArrayToObject(lrc, "srp");
    for (uint32_t i = 0; i < r->n_m; i++) {
        cJSON *x = cJSON_CreateObject();
        cJSON_AddNumberToObject(x, "m", r->m[i]);
        cJSON_AddItemToObject(x, "model", num(r->srp[i * L1 + L]));
        cJSON_AddItemToObject(x, "model_rho_hat", num(r->srp_rho[i * L1 + L]));
        cJSON *pl = cJSON_AddArrayToObject(x, "layers");
        cJSON *pr = cJSON_AddArrayToObject(x, "layers_rho_hat");
        for (uint32_t l = 0; l < L; l++) {
            cJSON_AddItemToArray(pl, num(r->srp[i * L1 + l]));
            cJSON_AddItemToArray(pr, num(r->srp_rho[i * L1 + l]));
        }
        cJSON_AddItemToArray(srp, x);
    }
    cJSON *sch = cJSON_AddArrayToObject(lrc, "sch");
    for (uint32_t i = 0; i < r->n_m; i++)
        for (uint32_t j = 0; j < r->n_rho; j++) {
            cJSON *x = cJSON_CreateObject();
            cJSON_AddNumberToObject(x, "m", r->m[i]);
            cJSON_AddNumberToObject(x, "rho", r->rho[j]);
            cJSON_AddNumberToObject(x, "capacity", r->cap[j * L1 + L]);
            cJSON_AddItemToObject(x, "model", num(r->sch[((size_t)i * r->n_rho + j) * L1 + L]));
            cJSON *pl = cJSON_AddArrayToObject(x, "layers");
            for (uint32_t l = 0; l < L; l++) cJSON_AddItemToArray(pl, num(r->sch[((size_t)i * r->n_rho + j) * L1 + l]));
            cJSON_AddItemToArray(sch, x);
        }
    cJSON *chr = cJSON_AddArrayToObject(lrc, "hit_rate");
    for (int p = 0; p < MOE_LRC_N_POLICIES; p++)
        for (uint32_t j = 0; j < r->n_rho; j++) {
            cJSON *x = cJSON_CreateObject();
            cJSON_AddStringToObject(x, "policy", moe_lrc_policy_name(p));
            cJSON_AddNumberToObject(x, "rho", r->rho[j]);
            cJSON_AddNumberToObject(x, "capacity", r->cap[j * L1 + L]);
            cJSON_AddItemToObject(x, "model", num(r->chr[((size_t)p * r->n_rho + j) * L1 + L]));
            cJSON *pl = cJSON_AddArrayToObject(x, "layers");
            for (uint32_t l = 0; l < L; l++) cJSON_AddItemToArray(pl, num(r->chr[((size_t)p * r->n_rho + j) * L1 + l]));
            cJSON_AddItemToArray(chr, x);
        }
    cJSON *mr = cJSON_AddObjectToObject(o, "lru_mrc_per_layer");
    cJSON_AddNumberToObject(mr, "exact_from", m->exact_from);
    cJSON *hr = cJSON_AddArrayToObject(mr, "hit_rate");
    for (uint32_t c = 0; c <= m->max_capacity; c++)
        cJSON_AddItemToArray(hr, num(m->accesses ? (double)m->hits[c] / (double)m->accesses : NAN));
    char *txt = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return txt;
}

/* Names live in one arena so the records can point at them. */
typedef struct names {
    char *buf;
    size_t len, cap;
} names;

static const char *name_of(names *n, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static const char *name_of(names *n, const char *fmt, ...) {
    char tmp[96];
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (k < 0) k = 0;
    if ((size_t)k >= sizeof tmp) k = sizeof tmp - 1;
    if (n->len + (size_t)k + 1 > n->cap) return NULL; /* sized up front, see store() */
    char *d = n->buf + n->len;
    memcpy(d, tmp, (size_t)k + 1);
    n->len += (size_t)k + 1;
    return d;
}

static int store(const all_stats *a, const char *trace_path, const char *db_path, const char *config,
                 double seconds, moe_error *err) {
    const moe_trace_stats *s = &a->st;
    const moe_lrc *r = &a->lrc;
    const moe_mrc *m = &a->mrc;
    const uint32_t L = s->n_layers, L1 = L + 1;
    size_t n_metrics = 16 + 2 * r->n_m + (size_t)(r->n_m + MOE_LRC_N_POLICIES) * r->n_rho;
    size_t n_layer = (size_t)L * (8 + MOE_RD_BUCKETS + 1 + 2 + 2 * r->n_m + (size_t)(r->n_m + MOE_LRC_N_POLICIES) * r->n_rho);
    size_t n_curve = (size_t)m->max_capacity + 1 + s->rd_buckets + 1;
    moe_metric *mt = calloc(n_metrics, sizeof *mt);
    moe_layer_metric *lm = calloc(n_layer, sizeof *lm);
    moe_curve_point *cv = calloc(n_curve, sizeof *cv);
    names nm = {.cap = (n_metrics + n_layer + 8) * 48};
    nm.buf = malloc(nm.cap);
    int rc = -1;
    moe_db *db = NULL;
    if (!mt || !lm || !cv || !nm.buf) { moe_fail(err, "out of memory"); goto out; }
    size_t im = 0, il = 0, ic = 0;
#define MET(val, ...) do { mt[im].name = name_of(&nm, __VA_ARGS__); mt[im++].value = (val); } while (0)
#define LMET(l, val, ...) do { lm[il].layer = (l); lm[il].name = name_of(&nm, __VA_ARGS__); lm[il++].value = (val); } while (0)
    MET((double)s->n_tokens, "tokens");
    MET((double)s->accesses, "accesses");
    MET(s->mean.entropy_bits, "entropy_bits_mean");
    MET(s->mean.entropy_norm, "entropy_norm_mean");
    MET(s->mean.gini, "gini_mean");
    MET(s->mean.top1, "top1_share_mean");
    MET(s->mean.top2, "top2_share_mean");
    MET(s->mean.topk, "topk_share_mean");
    MET(s->mean.topq, "topq_share_mean");
    if (s->has_lookahead) {
        MET(s->la_precision, "lookahead_precision");
        MET(s->la_recall, "lookahead_recall");
    }
    MET((double)m->exact_from, "lru_mrc_exact_from");
    for (uint32_t i = 0; i < r->n_m; i++) {
        MET(r->srp[i * L1 + L], "srp_m%u", r->m[i]);
        MET(r->srp_rho[i * L1 + L], "srp_rho_hat_m%u", r->m[i]);
        for (uint32_t j = 0; j < r->n_rho; j++)
            MET(r->sch[((size_t)i * r->n_rho + j) * L1 + L], "sch_m%u_rho%g", r->m[i], r->rho[j]);
    }
    for (int p = 0; p < MOE_LRC_N_POLICIES; p++)
        for (uint32_t j = 0; j < r->n_rho; j++)
            MET(r->chr[((size_t)p * r->n_rho + j) * L1 + L], "lrc_hit_rate_%s_rho%g", moe_lrc_policy_name(p), r->rho[j]);
    for (uint32_t l = 0; l < L; l++) {
        const moe_popularity *p = &s->layer[l];
        LMET(l, (double)p->activations, "activations");
        LMET(l, p->entropy_bits, "entropy_bits");
        LMET(l, p->entropy_norm, "entropy_norm");
        LMET(l, p->gini, "gini");
        LMET(l, p->top1, "top1_share");
        LMET(l, p->top2, "top2_share");
        LMET(l, p->topk, "topk_share");
        LMET(l, p->topq, "topq_share");
        for (uint32_t b = 0; b < s->rd_buckets; b++)
            LMET(l, (double)s->rd_hist[(size_t)l * MOE_RD_BUCKETS + b], "reuse_ge%u", moe_rd_bucket_lo(b));
        LMET(l, (double)s->rd_cold[l], "reuse_first");
        if (s->has_lookahead && l + 1 < L) {
            LMET(l, s->la_pred[l] ? (double)s->la_match[l] / (double)s->la_pred[l] : NAN, "lookahead_precision");
            LMET(l, s->la_actual[l] ? (double)s->la_match[l] / (double)s->la_actual[l] : NAN, "lookahead_recall");
        }
        for (uint32_t i = 0; i < r->n_m; i++) {
            LMET(l, r->srp[i * L1 + l], "srp_m%u", r->m[i]);
            LMET(l, r->srp_rho[i * L1 + l], "srp_rho_hat_m%u", r->m[i]);
            for (uint32_t j = 0; j < r->n_rho; j++)
                LMET(l, r->sch[((size_t)i * r->n_rho + j) * L1 + l], "sch_m%u_rho%g", r->m[i], r->rho[j]);
        }
        for (int p2 = 0; p2 < MOE_LRC_N_POLICIES; p2++)
            for (uint32_t j = 0; j < r->n_rho; j++)
                LMET(l, r->chr[((size_t)p2 * r->n_rho + j) * L1 + l], "lrc_hit_rate_%s_rho%g", moe_lrc_policy_name(p2), r->rho[j]);
    }
#undef MET
#undef LMET
    for (uint32_t c = 0; c <= m->max_capacity; c++) {
        cv[ic].curve = "lru_mrc_per_layer";
        cv[ic].x = c;
        cv[ic++].y = m->accesses ? (double)m->hits[c] / (double)m->accesses : NAN;
    }
    /* the reuse-distance histogram over all layers, as fractions of uses */
    {
        uint64_t tot = 0, bsum[MOE_RD_BUCKETS] = {0};
        for (uint32_t l = 0; l < L; l++) {
            for (uint32_t b = 0; b < s->rd_buckets; b++) bsum[b] += s->rd_hist[(size_t)l * MOE_RD_BUCKETS + b];
            tot += s->rd_cold[l];
        }
        for (uint32_t b = 0; b < s->rd_buckets; b++) tot += bsum[b];
        for (uint32_t b = 0; b < s->rd_buckets; b++) {
            cv[ic].curve = "reuse_distance";
            cv[ic].x = moe_rd_bucket_lo(b);
            cv[ic++].y = tot ? (double)bsum[b] / (double)tot : NAN;
        }
    }
    for (size_t i = 0; i < im; i++)
        if (!mt[i].name) { moe_fail(err, "internal: metric names overflow"); goto out; }
    for (size_t i = 0; i < il; i++)
        if (!lm[i].name) { moe_fail(err, "internal: metric names overflow"); goto out; }
    char hash[65];
    if (!(db = moe_db_open(db_path, err))) goto out;
    if (moe_db_add_trace(db, a->t, trace_path, hash, err)) goto out;
    moe_run_record rec = {
        .experiment = "trace-stats",
        .trace_hash = hash,
        .config_text = config,
        .seconds = seconds,
        .metrics = mt,
        .n_metrics = im,
        .layer_metrics = lm,
        .n_layer_metrics = il,
        .curve = cv,
        .n_curve = ic,
    };
    if (moe_db_store_run(db, &rec, err)) goto out;
    rc = moe_db_close(db, err);
    db = NULL;
out:
    if (db) moe_db_close(db, NULL);
    free(mt);
    free(lm);
    free(cv);
    free(nm.buf);
    return rc;
}

int cmd_trace_stats(int argc, char **argv) {
    static const struct option opts[] = {
        {"m", required_argument, 0, 'm'},       {"rho", required_argument, 0, 'r'},
        {"seq-len", required_argument, 0, 'L'}, {"json", no_argument, 0, 'j'},
        {"db", required_argument, 0, 'd'},      {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    double mv[MAX_LIST] = {1, 2, 4, 8, 16}, rho[MAX_LIST] = {0.5, 1, 2, 3};
    uint32_t n_m = 5, n_rho = 4, seq_len = 512;
    const char *db_path = NULL;
    int json = 0, c;
    uint64_t v;
    moe_error err = {{0}};
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'm':
            if (parse_list("--m", optarg, 1, mv, &n_m, &err)) return cli_error("trace stats", &err);
            break;
        case 'r':
            if (parse_list("--rho", optarg, 0, rho, &n_rho, &err)) return cli_error("trace stats", &err);
            break;
        case 'L':
            if (cli_parse_u64("--seq-len", optarg, UINT32_MAX, &v, &err)) return cli_error("trace stats", &err);
            seq_len = (uint32_t)v;
            break;
        case 'j': json = 1; break;
        case 'd': db_path = optarg; break;
        case 'h': fputs(stats_usage, stdout); return 0;
        default: fputs(stats_usage, stderr); return 2;
        }
    }
    if (optind + 1 != argc) {
        fprintf(stderr, "moesim trace stats: expected exactly one trace file\n%s", stats_usage);
        return 2;
    }
    const char *path = argv[optind];
    uint32_t m_int[MAX_LIST];
    for (uint32_t i = 0; i < n_m; i++) m_int[i] = (uint32_t)mv[i];

    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    all_stats a = {.seq_len = seq_len};
    moe_trace *t = moe_trace_load(path, &err);
    if (!t) return cli_error("trace stats", &err);
    a.t = t;
    int rc = 1;
    moe_lrc_config lc = {.seq_len = seq_len, .m = m_int, .n_m = n_m, .rho = rho, .n_rho = n_rho};
    if (moe_trace_stats_compute(t, &a.st, &err) || moe_lrc_compute(t, &lc, &a.lrc, &err) ||
        moe_mrc_compute(t, 0, 0, &a.mrc, &err)) {
        rc = cli_error("trace stats", &err);
        goto out;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    rc = 0;
    if (db_path) {
        /* canonical config text: keys sorted, one per line */
        char ml[1024], rl[1024], config[2200];
        fmt_list(ml, sizeof ml, mv, n_m);
        fmt_list(rl, sizeof rl, rho, n_rho);
        int k = snprintf(config, sizeof config, "analysis=trace-stats\nm=%s\nrho=%s\n", ml, rl);
        if (seq_len != 512 && k > 0 && (size_t)k < sizeof config)
            snprintf(config + k, sizeof config - (size_t)k, "seq_len=%u\n", seq_len);
        if (store(&a, path, db_path, config, secs, &err)) rc = cli_error("trace stats", &err);
    }
    if (rc == 0) {
        if (json) {
            char *s = to_json(&a, path);
            if (s) puts(s);
            free(s);
        } else {
            print_tables(&a, path);
        }
    }
out:
    /* each free is safe on a zeroed (failed or never computed) result */
    moe_mrc_free(&a.mrc);
    moe_lrc_free(&a.lrc);
    moe_trace_stats_free(&a.st);
    moe_trace_free(t);
    return rc;
}

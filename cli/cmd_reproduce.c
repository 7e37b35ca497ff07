/* cmd_reproduce.c: `moesim reproduce [experiments/repro_*.ini ...]` — run
 * paper reproductions: rows of experiment, claim, metric, published, ours,
 * error, verdict (PASS / FAIL / NOT COMPARABLE) and the reason, printed by
 * cli/reproduce_table.c as a table, CSV or JSON.
 *
 * An experiment file has an [experiment] section (name, title, source) and
 * one section per check, [check NAME], whose `kind` selects what runs:
 *
 *   lrc        moe-lrc cache hit rate (core/lrc.h, model level, chunk 512)
 *              of `policy` on `trace` at each `rho`; PASS iff
 *              |ours - published| <= tolerance.
 *   lrc_order  qualitative: hit rate of `better` >= (or, strict = 1, >)
 *              that of `worse` at every `rho`, on every trace matching
 *              `traces` (a glob); `experts` restricts to traces with that
 *              many experts per layer. ours = the smallest difference.
 *   eliseev    Eliseev & Mazur's ablation (tok/s: full / no pre-loading /
 *              no LRU and no pre-loading / naive) priced by the timing model
 *              on `trace` with `device`, `model`, `precision`, `capacity`
 *              experts per layer and `prefetch`; compares the RATIOS of
 *              neighbouring columns (relative tolerance), absolute tok/s are
 *              printed as NOT COMPARABLE.
 *   mlx_tiers  MLX-Flash's tier arithmetic: `counts` experts at `bits`
 *              bits; effective bits and saving against `reference_bits`.
 *   layer_hits per-layer cache hit rate (token by token, cold per sequence,
 *              compulsory misses are misses) of `policies` at `capacity`
 *              experts per layer (or `capacity_frac` of E), counting tokens
 *              at position >= `skip_tokens`; `relation` approx (|diff| <=
 *              tolerance) or ge (ours >= published). `experts` restricts the
 *              traces as in lrc_order. It is the replay (sim/replay.h) of
 *              the trace with one token per step (moe_trace_token_steps),
 *              count_from = skip_tokens: a token's experts are served in
 *              ascending id, as in every replay.
 *   quality    a claim about model quality or measured speed, judged from
 *              the runs `make quality` stored (`db`, default
 *              results/quality.db; `experiment`, default quality): the mean
 *              of `metric` over the texts for configuration `config` (the
 *              stored configuration string) and, for ratio and lower,
 *              `versus`. claim = ratio: ours = versus / config (e.g. bytes
 *              of 4-bit over the scheme's: "x times smaller") or, with
 *              `ratio = config/versus`, config / versus; PASS iff within
 *              `tolerance` (relative) of `published`. claim = below: PASS
 *              iff ours < `published` (a threshold, stated before
 *              measuring). claim = lower: PASS iff config's mean is below
 *              versus's at every `capacities` value ("{cap}" in both
 *              strings); ours = the largest difference. Without the
 *              database or its runs: NOT COMPARABLE, naming `make quality`.
 * Every check has `source` (URL) and may have `metric` and `note`.
 *
 * Fitted by construction: an lrc row whose trace `moesim trace fit` made
 * match this very published value (its meta's fit_rho and
 * fit_target_<policy>), and an lrc_order row whose trace was fitted to both
 * policies' curves at every rho checked. They test the calibration, not a
 * model, and are counted apart from the reproductions.
 *
 * Exit status: 0 when the reproductions ran (a FAIL is a finding, not an
 * error), 1 on a broken experiment file, and with --strict 1 when any row
 * is FAIL. */
#include <ctype.h>
#include <getopt.h>
#include <glob.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "../core/datadir.h"
#include "../core/device_profile.h"
#include "../core/ini.h"
#include "../core/lrc.h"
#include "../core/trace_fit.h"
#include "cli.h"
#include "commands.h"
#include "../sim/replay.h"
#include "experiment.h"
#include "quality_db.h"
#include "../sim/replay_ext.h"
#include "reproduce.h"
#include "reproduce_table.h"

static const char reproduce_usage[] =
    "usage: moesim reproduce [--strict] [--csv | --json | --width N] [experiments/repro_*.ini ...]\n"
    "\n"
    "Run paper reproductions and print, per experiment and claim, each row's\n"
    "metric, published value, ours, error and verdict (PASS / FAIL / NOT\n"
    "COMPARABLE), the reasons as numbered notes under each claim, one summary\n"
    "line per claim and the totals. Rows fitted by construction (a trace fitted\n"
    "to the very value it is compared with: a check of the calibration, not\n"
    "evidence) are marked * and counted apart. Without files, every\n"
    "experiments/repro_*.ini runs (here, else in the data folders: `moesim\n"
    "--data-path`). The file format: docs/reference.md, Reproduction files.\n"
    "\n"
    "  --csv        one CSV line per row instead: experiment, claim, kind, metric,\n"
    "               published, ours, error, verdict (as in the table), fitted (1/0),\n"
    "               published_value, ours_value (numbers, empty if none), reason, source\n"
    "  --json       one JSON object: rows (the same fields), claims (counts per\n"
    "               claim) and totals, fitted rows apart\n"
    "  --width N    the table's width in columns (default 100, at least 80)\n"
    "  --strict     exit 1 if any verdict is FAIL, fitted rows included\n"
    "               (default: 0 when it ran)\n"
    "  -h, --help   this text\n";

#define MAXV 16

/* A row of check `sec` (its claim name, kind and source come from there). */
static repro_row *add_row(repro_table *t, const char *exp, const moe_ini *ini, const char *sec, const char *metric) {
    return repro_add_row(t, exp, sec + strlen("check "), moe_ini_get(ini, sec, "kind"), moe_ini_get(ini, sec, "source"),
                         metric);
}

/* A numeric row: PASS iff |ours - pub| <= tol (absolute). */
static void numeric(repro_table *t, repro_row *r, double pub, double ours, double tol, const char *fmt) {
    snprintf(r->pub, sizeof r->pub, fmt, pub);
    snprintf(r->ours, sizeof r->ours, fmt, ours);
    snprintf(r->diff, sizeof r->diff, "%+.4f", ours - pub);
    r->pub_v = pub, r->ours_v = ours;
    repro_verdict(t, r, fabs(ours - pub) <= tol + 1e-12 ? "PASS" : "FAIL");
}

/* ---- small helpers ------------------------------------------------------ */

static int get_list(const moe_ini *ini, const char *sec, const char *key, double *v, uint32_t *n, moe_error *err) {
    const moe_ini_entry *e = moe_ini_find(ini, sec, key);
    if (!e) return moe_fail(err, "%s: [%s]: missing key '%s'", ini->path, sec, key);
    if (repro_parse_list(key, e->value, v, MAXV, n, err)) return moe_fail_prefix(err, "%s:%u", ini->path, e->line), -1;
    return 0;
}

static const char *need(const moe_ini *ini, const char *sec, const char *key, moe_error *err) {
    const char *v = moe_ini_get(ini, sec, key);
    if (!v) moe_fail(err, "%s: [%s]: missing key '%s'", ini->path, sec, key);
    return v;
}

static const char *opt(const moe_ini *ini, const char *sec, const char *key, const char *def) {
    const char *v = moe_ini_get(ini, sec, key);
    return v ? v : def;
}

static const char *base(const char *path) {
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

/* A trace's file name without ".moetrace", for metric labels. */
static const char *trace_label(const char *path, char *out, size_t cap) {
    const char *b = base(path), *dot = strrchr(b, '.');
    size_t n = dot && !strcmp(dot, ".moetrace") ? (size_t)(dot - b) : strlen(b);
    snprintf(out, cap, "%.*s", (int)n, b);
    return out;
}

/* Whether `moesim trace fit` made t match `policy`'s moe-lrc curve at rho
 * (its meta's fit_rho and fit_target_<policy>), and, unless v is NaN, with
 * the target v (to the 3 decimals targets are written with). A row that
 * compares the trace with that very value checks the fit, not a model: it
 * is fitted by construction. */
static int fitted_to(const moe_trace *t, const char *policy, double rho, double v) {
    char key[64], rhos[1024], vals[1024];
    snprintf(key, sizeof key, "fit_target_%s", policy);
    for (char *k = key; *k; k++) *k = (char)tolower((unsigned char)*k);
    double rv[64], tv[64];
    uint32_t nr, nv;
    moe_error e;
    if (moe_trace_meta_get(t, "fit_rho", rhos, sizeof rhos) || moe_trace_meta_get(t, key, vals, sizeof vals) ||
        repro_parse_list("fit_rho", rhos, rv, 64, &nr, &e) || repro_parse_list(key, vals, tv, 64, &nv, &e) || nr != nv)
        return 0;
    for (uint32_t j = 0; j < nr; j++)
        if (fabs(rv[j] - rho) < 1e-9 && !isnan(tv[j])) return isnan(v) || fabs(tv[j] - v) < 5e-4;
    return 0;
}

static int policy_of(const char *s) {
    if (!strcasecmp(s, "lru")) return MOE_LRC_LRU;
    if (!strcasecmp(s, "lfu")) return MOE_LRC_LFU;
    if (!strcasecmp(s, "belady")) return MOE_LRC_BELADY;
    return -1;
}

static double lrc_rate(const moe_trace *t, int policy, double rho, moe_error *err) {
    uint32_t cap = (uint32_t)floor(rho * t->n_layers * t->top_k + 1e-9);
    uint64_t h = 0, a = 0;
    if (moe_lrc_cache_run(t, 512, t->n_layers, policy, 0, cap, &h, &a, err)) return NAN;
    return a ? (double)h / (double)a : NAN;
}

/* ---- kind = lrc ----------------------------------------------------------- */

static int run_lrc(repro_table *tb, const char *exp, const moe_ini *ini, const char *sec, moe_error *err) {
    const char *tp = need(ini, sec, "trace", err), *pol = need(ini, sec, "policy", err);
    if (!tp || !pol) return -1;
    double rho[MAXV], pub[MAXV], tol;
    uint32_t nr, np;
    if (get_list(ini, sec, "rho", rho, &nr, err) || get_list(ini, sec, "published", pub, &np, err)) return -1;
    if (nr != np) return moe_fail(err, "%s: [%s]: %u rho values but %u published values", ini->path, sec, nr, np);
    if (moe_ini_get_double(ini, sec, "tolerance", 0.02, 0, 1, &tol, err)) return -1;
    int p = policy_of(pol);
    if (p < 0) return moe_fail(err, "%s: [%s]: policy '%s' is not lru, lfu or belady", ini->path, sec, pol);
    moe_error terr = {{0}};
    moe_trace *t = moe_trace_load(tp, &terr);
    for (uint32_t i = 0; i < nr; i++) {
        char m[96];
        const char *model = opt(ini, sec, "model", "");
        snprintf(m, sizeof m, "%s%s%s hit rate rho=%g", model, *model ? " " : "", pol, rho[i]);
        repro_row *r = add_row(tb, exp, ini, sec, m);
        if (!r) return moe_fail(err, "out of memory");
        snprintf(r->pub, sizeof r->pub, "%.3f", pub[i]);
        r->pub_v = pub[i];
        if (!t) {
            repro_verdict(tb, r, "NOT COMPARABLE");
            repro_set_reason(r, "no trace: %s", terr.msg);
            continue;
        }
        double v = lrc_rate(t, p, rho[i], err);
        if (isnan(v)) {
            moe_trace_free(t);
            return -1;
        }
        numeric(tb, r, pub[i], v, tol, "%.3f");
        r->fitted = fitted_to(t, pol, rho[i], pub[i]);
        repro_set_reason(r, "%s, tol %g%s%s%s", base(tp), tol, moe_ini_get(ini, sec, "note") ? "; " : "",
                         opt(ini, sec, "note", ""),
                         r->fitted ? "; fitted by construction: `moesim trace fit` made the trace match this very "
                                     "value" : "");
    }
    moe_trace_free(t);
    return 0;
}

/* ---- kind = lrc_order ----------------------------------------------------- */

static int run_lrc_order(repro_table *tb, const char *exp, const moe_ini *ini, const char *sec, moe_error *err) {
    const char *pat = need(ini, sec, "traces", err), *bs = need(ini, sec, "better", err), *ws = need(ini, sec, "worse", err);
    if (!pat || !bs || !ws) return -1;
    int pb = policy_of(bs), pw = policy_of(ws);
    if (pb < 0 || pw < 0) return moe_fail(err, "%s: [%s]: better/worse must be lru, lfu or belady", ini->path, sec);
    double rho[MAXV];
    uint32_t nr;
    uint64_t strict, experts;
    if (get_list(ini, sec, "rho", rho, &nr, err) || moe_ini_get_u64(ini, sec, "strict", 0, 0, 1, &strict, err) ||
        moe_ini_get_u64(ini, sec, "experts", 0, 0, 65534, &experts, err))
        return -1;
    glob_t g;
    int gr = moe_data_glob(pat, &g);
    if (gr == GLOB_NOMATCH) {
        repro_row *r = add_row(tb, exp, ini, sec, opt(ini, sec, "metric", "order"));
        if (!r) return moe_fail(err, "out of memory");
        repro_verdict(tb, r, "NOT COMPARABLE");
        repro_set_reason(r, "no trace matches %s", pat);
        return 0;
    }
    if (gr) return moe_fail(err, "%s: [%s]: glob '%s' failed", ini->path, sec, pat);
    for (size_t i = 0; i < g.gl_pathc; i++) {
        char m[96], lab[80];
        snprintf(m, sizeof m, "%s: %s", trace_label(g.gl_pathv[i], lab, sizeof lab), opt(ini, sec, "metric", "order"));
        repro_row *r = add_row(tb, exp, ini, sec, m);
        if (!r) { globfree(&g); return moe_fail(err, "out of memory"); }
        snprintf(r->pub, sizeof r->pub, "%s %s %s", bs, strict ? ">" : ">=", ws);
        moe_error terr = {{0}};
        moe_trace *t = moe_trace_load(g.gl_pathv[i], &terr);
        if (!t) {
            repro_verdict(tb, r, "NOT COMPARABLE");
            repro_set_reason(r, "cannot load: %s", terr.msg);
            continue;
        }
        if (experts && t->n_experts != experts) {
            repro_verdict(tb, r, "NOT COMPARABLE");
            repro_set_reason(r, "the finding is about %llu-expert models; this trace has %u", (unsigned long long)experts,
                       t->n_experts);
            moe_trace_free(t);
            continue;
        }
        double worst = INFINITY, at = 0;
        for (uint32_t j = 0; j < nr; j++) {
            double b = lrc_rate(t, pb, rho[j], err), w = lrc_rate(t, pw, rho[j], err);
            if (isnan(b) || isnan(w)) { moe_trace_free(t); globfree(&g); return -1; }
            if (b - w < worst) worst = b - w, at = rho[j];
        }
        snprintf(r->ours, sizeof r->ours, "min %+.4f", worst);
        snprintf(r->diff, sizeof r->diff, "@rho=%g", at);
        r->ours_v = worst;
        /* the order is by construction when both curves were fit targets at every rho */
        r->fitted = 1;
        for (uint32_t j = 0; j < nr; j++) r->fitted &= fitted_to(t, bs, rho[j], NAN) && fitted_to(t, ws, rho[j], NAN);
        int ok = strict ? worst > 0 : worst >= 0;
        repro_verdict(tb, r, ok ? "PASS" : "FAIL");
        repro_set_reason(r, "%s - %s smallest at rho=%g over rho %s%s%s%s", bs, ws, at, moe_ini_get(ini, sec, "rho"),
                         r->fitted ? "; fitted by construction: `moesim trace fit` made the trace match both curves "
                                     "at every rho"
                         : strstr(t->source, "gen") ? "; synthetic trace: a property of the generator, not of a model"
                                                    : "",
                         moe_ini_get(ini, sec, "note") ? "; " : "", opt(ini, sec, "note", ""));
        moe_trace_free(t);
    }
    globfree(&g);
    return 0;
}

/* ---- kind = eliseev --------------------------------------------------------- */

static int tok_s(const moe_trace *t, moe_replay_config cfg, double *out, moe_error *err) {
    moe_replay_result res;
    if (moe_replay(t, &cfg, &res, err)) return -1;
    *out = res.ext ? res.ext->tok_s : NAN;
    moe_replay_result_free(&res);
    return 0;
}

static int run_eliseev(repro_table *tb, const char *exp, const moe_ini *ini, const char *sec, moe_error *err) {
    const char *tp = need(ini, sec, "trace", err), *dev = need(ini, sec, "device", err),
               *model = need(ini, sec, "model", err);
    if (!tp || !dev || !model) return -1;
    const char *prec = opt(ini, sec, "precision", "uniform:bits=2"), *pf = opt(ini, sec, "prefetch", "gate:ahead=1,n=2");
    const char *label = opt(ini, sec, "label", sec);
    double pub[MAXV], tol;
    uint32_t np;
    uint64_t cap;
    if (get_list(ini, sec, "published", pub, &np, err)) return -1;
    if (np != 4) return moe_fail(err, "%s: [%s]: published needs 4 values (full, no pre-loading, no LRU, naive)", ini->path, sec);
    if (moe_ini_get_double(ini, sec, "tolerance", 0.15, 0, 10, &tol, err) ||
        moe_ini_get_u64(ini, sec, "capacity", 4, 0, 65534, &cap, err))
        return -1;
    static const char *const col[4] = {"full", "no-preload", "no-LRU", "naive"};
    double ours[4];
    moe_error terr = {{0}};
    moe_trace *t = moe_trace_load(tp, &terr);
    const char *why = NULL;
    char whybuf[1200];
    if (!t) snprintf(whybuf, sizeof whybuf, "no trace: %s", terr.msg), why = whybuf;
    else if (!t->lookahead_depth)
        snprintf(whybuf, sizeof whybuf, "%s has no lookahead field for the gate pre-loader", base(tp)), why = whybuf;
    moe_device_profile dp;
    moe_model_profile mp;
    if (!why) {
        if (moe_device_profile_load(MOE_DEVICES_INI, dev, &dp, &terr) ||
            moe_model_profile_load(MOE_MODELS_INI, model, &mp, &terr))
            snprintf(whybuf, sizeof whybuf, "timing model unavailable: %s", terr.msg), why = whybuf;
    }
    if (!why) {
        moe_replay_config cfg = {.policy = "lru", .capacity = (uint32_t)cap, .scope = MOE_SCOPE_PER_LAYER,
                                 .cold_per_seq = 1, .seed = 1, .precision = prec, .device = dev, .model = model};
        moe_replay_config full = cfg, nolru = cfg;
        full.prefetch = pf;
        nolru.capacity = 0;
        if (tok_s(t, full, &ours[0], err) || tok_s(t, cfg, &ours[1], err) || tok_s(t, nolru, &ours[2], err)) {
            moe_trace_free(t);
            return moe_fail_prefix(err, "%s: [%s]", ini->path, sec), -1;
        }
        /* naive (accelerate-style offloading) reads every expert of a layer
         * each token: the no-LRU time plus (E - k) more reads per layer and
         * decode token, each latency + bytes/bandwidth on the device's
         * channel (reads are serial and the lane waits for them). */
        int tier = MOE_PREC_Q2;
        const char *b = strstr(prec, "bits=");
        if (b) {
            int tt = moe_prec_of_bits(atol(b + 5));
            if (tt >= 0) tier = tt;
        }
        double read_s = dp.io_latency_s + (double)mp.expert_bytes[tier] / (dp.io_bandwidth_Bps * dp.io_channels);
        double extra = (double)t->n_layers * (t->n_experts - t->top_k) * read_s;
        ours[3] = 1.0 / (1.0 / ours[2] + extra);
    }
    /* ratios of neighbouring columns and full/naive */
    static const int ra[4][2] = {{0, 1}, {1, 2}, {2, 3}, {0, 3}};
    for (int i = 0; i < 4; i++) {
        char m[96];
        snprintf(m, sizeof m, "%s tok/s ratio %s/%s", label, col[ra[i][0]], col[ra[i][1]]);
        repro_row *r = add_row(tb, exp, ini, sec, m);
        if (!r) { moe_trace_free(t); return moe_fail(err, "out of memory"); }
        double pr = pub[ra[i][0]] / pub[ra[i][1]];
        snprintf(r->pub, sizeof r->pub, "%.3f", pr);
        r->pub_v = pr;
        if (why) {
            repro_verdict(tb, r, "NOT COMPARABLE");
            repro_set_reason(r, "%s", why);
            continue;
        }
        double or_ = ours[ra[i][0]] / ours[ra[i][1]];
        snprintf(r->ours, sizeof r->ours, "%.3f", or_);
        snprintf(r->diff, sizeof r->diff, "%+.1f%%", 100 * (or_ / pr - 1));
        r->ours_v = or_;
        repro_verdict(tb, r, fabs(or_ / pr - 1) <= tol ? "PASS" : "FAIL");
        repro_set_reason(r, "relative tol %g%s%s", tol, moe_ini_get(ini, sec, "note") ? "; " : "", opt(ini, sec, "note", ""));
    }
    for (int i = 0; i < 4 && !why; i++) {
        char m[96];
        snprintf(m, sizeof m, "%s tok/s %s (absolute)", label, col[i]);
        repro_row *r = add_row(tb, exp, ini, sec, m);
        if (!r) { moe_trace_free(t); return moe_fail(err, "out of memory"); }
        snprintf(r->pub, sizeof r->pub, "%.3f", pub[i]);
        snprintf(r->ours, sizeof r->ours, "%.3f", ours[i]);
        snprintf(r->diff, sizeof r->diff, "x%.2f", ours[i] / pub[i]);
        r->pub_v = pub[i], r->ours_v = ours[i];
        repro_verdict(tb, r, "NOT COMPARABLE");
        repro_set_reason(r, "absolute speed depends on kernels (HQQ, framework) the profile does not model; only ratios "
                      "are compared. device %s, %llu experts/layer cached", dev, (unsigned long long)cap);
    }
    moe_trace_free(t);
    return 0;
}

/* ---- kind = mlx_tiers ----------------------------------------------------- */

static int run_mlx_tiers(repro_table *tb, const char *exp, const moe_ini *ini, const char *sec, moe_error *err) {
    double cnt[MAXV], bits[MAXV], pbits, psave, refbits, tol;
    uint32_t nc, nb;
    uint64_t total;
    if (get_list(ini, sec, "counts", cnt, &nc, err) || get_list(ini, sec, "bits", bits, &nb, err)) return -1;
    if (nc != nb) return moe_fail(err, "%s: [%s]: counts and bits differ in length", ini->path, sec);
    if (moe_ini_get_double(ini, sec, "published_bits", 0, 0, 64, &pbits, err) ||
        moe_ini_get_double(ini, sec, "published_saving", 0, 0, 1, &psave, err) ||
        moe_ini_get_double(ini, sec, "reference_bits", 4, 1, 64, &refbits, err) ||
        moe_ini_get_double(ini, sec, "tolerance", 0.05, 0, 64, &tol, err) ||
        moe_ini_get_u64(ini, sec, "experts", 0, 0, 65534, &total, err))
        return -1;
    double n = 0, sb = 0;
    char split[256] = "";
    for (uint32_t i = 0; i < nc; i++) {
        n += cnt[i], sb += cnt[i] * bits[i];
        size_t o = strlen(split);
        snprintf(split + o, sizeof split - o, "%s%g@%gb", i ? "+" : "", cnt[i], bits[i]);
    }
    repro_row *r = add_row(tb, exp, ini, sec, "tier split: experts in the tiers");
    if (!r) return moe_fail(err, "out of memory");
    snprintf(r->pub, sizeof r->pub, "%llu", (unsigned long long)total);
    snprintf(r->ours, sizeof r->ours, "%g", n);
    snprintf(r->diff, sizeof r->diff, "%+g", n - (double)total);
    r->pub_v = (double)total, r->ours_v = n;
    repro_verdict(tb, r, n == (double)total ? "PASS" : "FAIL");
    repro_set_reason(r, "%s; %u tiers listed (the claim says 7)", split, nc);
    double eff = n > 0 ? sb / n : NAN;
    r = add_row(tb, exp, ini, sec, "effective bits per weight (nominal)");
    if (!r) return moe_fail(err, "out of memory");
    numeric(tb, r, pbits, eff, tol, "%.3f");
    repro_set_reason(r, "sum(count x bits) / experts = %g / %g = %.4f exactly", sb, n, eff);
    double save = 1 - eff / refbits;
    r = add_row(tb, exp, ini, sec, "memory saving vs uniform reference bits");
    if (!r) return moe_fail(err, "out of memory");
    snprintf(r->pub, sizeof r->pub, "%.1f%%", 100 * psave);
    snprintf(r->ours, sizeof r->ours, "%.1f%%", 100 * save);
    snprintf(r->diff, sizeof r->diff, "%+.1f pp", 100 * (save - psave));
    r->pub_v = psave, r->ours_v = save; /* fractions; the table prints percent */
    repro_verdict(tb, r, fabs(save - psave) <= 0.02 ? "PASS" : "FAIL");
    repro_set_reason(r, "1 - %.4f/%g; the published %g bits would give %.1f%% (vs FP16: %.1f%%)", eff, refbits, pbits,
               100 * (1 - pbits / refbits), 100 * (1 - eff / 16));
    return 0;
}

/* ---- kind = layer_hits ------------------------------------------------------ */

/* Hit rate of `policy` with a per-layer cache of `cap` experts, cold per
 * sequence, token by token (tok_steps: moe_trace_token_steps of the trace),
 * counting the tokens at position >= skip: one replay (sim/replay.h) with
 * count_from, the caches warmed by the tokens before. */
static int layer_rate(const moe_trace *tok_steps, const char *policy, uint32_t cap, uint64_t skip, double *rate,
                      moe_error *err) {
    moe_replay_config cfg = {.policy = policy, .capacity = cap, .scope = MOE_SCOPE_PER_LAYER, .cold_per_seq = 1,
                             .seed = 1, .count_from = skip};
    moe_replay_result r;
    if (moe_replay(tok_steps, &cfg, &r, err)) return -1;
    *rate = r.token_slots ? (double)r.token_slot_hits / (double)r.token_slots : NAN;
    moe_replay_result_free(&r);
    return 0;
}

static int run_layer_hits(repro_table *tb, const char *exp, const moe_ini *ini, const char *sec, moe_error *err) {
    const char *pat = need(ini, sec, "traces", err), *pols = opt(ini, sec, "policies", "lru,belady");
    const char *rel = opt(ini, sec, "relation", "approx");
    if (!pat) return -1;
    double pub, tol, frac;
    uint64_t cap, skip, experts;
    if (moe_ini_get_double(ini, sec, "published", 0, 0, 1, &pub, err) ||
        moe_ini_get_double(ini, sec, "tolerance", 0.03, 0, 1, &tol, err) ||
        moe_ini_get_double(ini, sec, "capacity_frac", 0, 0, 1, &frac, err) ||
        moe_ini_get_u64(ini, sec, "capacity", 0, 0, 65534, &cap, err) ||
        moe_ini_get_u64(ini, sec, "skip_tokens", 0, 0, 1u << 30, &skip, err) ||
        moe_ini_get_u64(ini, sec, "experts", 0, 0, 65534, &experts, err))
        return -1;
    if (!cap && !(frac > 0)) return moe_fail(err, "%s: [%s]: give capacity or capacity_frac", ini->path, sec);
    int ge = !strcmp(rel, "ge");
    if (!ge && strcmp(rel, "approx")) return moe_fail(err, "%s: [%s]: relation must be approx or ge", ini->path, sec);
    glob_t g;
    int gr = moe_data_glob(pat, &g);
    if (gr && gr != GLOB_NOMATCH) return moe_fail(err, "%s: [%s]: glob '%s' failed", ini->path, sec, pat);
    for (size_t i = 0; gr == 0 && i < g.gl_pathc; i++) {
        moe_error terr = {{0}};
        moe_trace *t = moe_trace_load(g.gl_pathv[i], &terr), *ts = NULL;
        if (t && !(ts = moe_trace_token_steps(t, err))) {
            moe_trace_free(t);
            globfree(&g);
            return -1;
        }
        for (int p = 0; p < 2; p++) {
            const char *pn = p ? "belady" : "lru";
            if (!strstr(pols, pn)) continue;
            uint32_t c = (uint32_t)cap;
            if (t && !c) c = (uint32_t)floor(frac * t->n_experts + 1e-9);
            char m[96];
            char sk[32] = "";
            if (skip) snprintf(sk, sizeof sk, ", pos>=%llu", (unsigned long long)skip);
            char lab[80];
            snprintf(m, sizeof m, "%s: %s %u/%u per layer%s", trace_label(g.gl_pathv[i], lab, sizeof lab), pn, c,
                     t ? t->n_experts : 0, sk);
            repro_row *r = add_row(tb, exp, ini, sec, m);
            if (!r) { moe_trace_free(t); moe_trace_free(ts); globfree(&g); return moe_fail(err, "out of memory"); }
            snprintf(r->pub, sizeof r->pub, ge ? ">=%.2f" : "~%.2f", pub);
            r->pub_v = pub;
            if (!t) {
                repro_verdict(tb, r, "NOT COMPARABLE");
                repro_set_reason(r, "cannot load: %s", terr.msg);
                continue;
            }
            if (experts && t->n_experts != experts) {
                repro_verdict(tb, r, "NOT COMPARABLE");
                repro_set_reason(r, "claim is about %llu-expert Mixtral; trace has %u experts per layer",
                           (unsigned long long)experts, t->n_experts);
                continue;
            }
            double v = NAN;
            if (layer_rate(ts, pn, c, skip, &v, err)) {
                moe_trace_free(t);
                moe_trace_free(ts);
                globfree(&g);
                return -1;
            }
            snprintf(r->ours, sizeof r->ours, "%.3f", v);
            r->ours_v = v;
            snprintf(r->diff, sizeof r->diff, "%+.4f", v - pub);
            repro_verdict(tb, r, (ge ? v >= pub : fabs(v - pub) <= tol) ? "PASS" : "FAIL");
            repro_set_reason(r, "per-layer cache, cold per sequence, token by token%s%s%s%s",
                       skip ? ", hits of tokens at position >= skip" : "", strstr(t->source, "gen") ? "; synthetic trace" : "",
                       moe_ini_get(ini, sec, "note") ? "; " : "", opt(ini, sec, "note", ""));
        }
        moe_trace_free(t);
        moe_trace_free(ts);
    }
    if (gr == GLOB_NOMATCH) {
        repro_row *r = add_row(tb, exp, ini, sec, opt(ini, sec, "metric", "hit rate"));
        if (!r) return moe_fail(err, "out of memory");
        repro_verdict(tb, r, "NOT COMPARABLE");
        repro_set_reason(r, "no trace matches %s", pat);
    } else
        globfree(&g);
    return 0;
}

/* ---- kind = quality -------------------------------------------------------- */

static int run_quality(repro_table *tb, const char *exp, const moe_ini *ini, const char *sec, moe_error *err) {
    const char *db = opt(ini, sec, "db", "results/quality.db"), *qexp = opt(ini, sec, "experiment", "quality");
    const char *claim = need(ini, sec, "claim", err), *metric = need(ini, sec, "metric", err);
    const char *config = need(ini, sec, "config", err), *versus = moe_ini_get(ini, sec, "versus");
    const char *label = opt(ini, sec, "label", metric ? metric : "?");
    double pub, tol;
    if (!claim || !metric || !config) return -1;
    if (moe_ini_get_double(ini, sec, "published", NAN, -1e300, 1e300, &pub, err) ||
        moe_ini_get_double(ini, sec, "tolerance", 0.1, 0, 1e300, &tol, err))
        return -1;
    int ratio = !strcmp(claim, "ratio"), below = !strcmp(claim, "below"), lower = !strcmp(claim, "lower");
    if (!ratio && !below && !lower) return moe_fail(err, "%s: [%s]: claim '%s' (ratio, below, lower)", ini->path, sec, claim);
    if ((ratio || lower) && !versus) return moe_fail(err, "%s: [%s]: claim %s needs versus", ini->path, sec, claim);
    if ((ratio || below) && isnan(pub)) return moe_fail(err, "%s: [%s]: claim %s needs published", ini->path, sec, claim);
    repro_row *r = add_row(tb, exp, ini, sec, label);
    if (!r) return moe_fail(err, "out of memory");
    if (access(db, R_OK)) {
        repro_verdict(tb, r, "NOT COMPARABLE");
        repro_set_reason(r, "%s not found: `make quality` measures it (several minutes)", db);
        return 0;
    }
    moe_str_list caps = {0};
    const char *cs = moe_ini_get(ini, sec, "capacities");
    if (cs && moe_split_specs(cs, "capacities", &caps, err)) return -1;
    size_t nc = caps.n ? caps.n : 1;
    double a = NAN, b = NAN, worst = -INFINITY;
    int na = 0, nb = 0, all_lower = 1, missing = 0;
    char ca[600], cb[600], detail[900] = "";
    for (size_t i = 0; i < nc; i++) {
        cli_subst(config, "{cap}", caps.n ? caps.v[i] : "", ca, sizeof ca);
        if (versus) cli_subst(versus, "{cap}", caps.n ? caps.v[i] : "", cb, sizeof cb);
        if (moe_quality_mean(db, qexp, ca, metric, &a, &na, err) ||
            (versus && moe_quality_mean(db, qexp, cb, metric, &b, &nb, err))) {
            moe_str_list_free(&caps);
            return -1;
        }
        if (!na || (versus && !nb)) missing = 1;
        if (lower && na && nb) {
            all_lower &= a < b;
            if (a - b > worst) worst = a - b;
            size_t o = strlen(detail);
            snprintf(detail + o, sizeof detail - o, "%s%s%s %.4g vs %.4g", o ? "; " : "", caps.n ? "capacity " : "",
                     caps.n ? caps.v[i] : "", a, b);
        }
    }
    moe_str_list_free(&caps);
    if (missing) {
        repro_verdict(tb, r, "NOT COMPARABLE");
        repro_set_reason(r, "%s has no quality runs of '%s'%s%s in experiment %s: run `make quality`", db, ca,
                   versus ? " or " : "", versus ? cb : "", qexp);
        return 0;
    }
    if (ratio) {
        int inv = !strcmp(opt(ini, sec, "ratio", "versus/config"), "config/versus");
        double ours = inv ? a / b : b / a;
        snprintf(r->pub, sizeof r->pub, "%.3g", pub);
        snprintf(r->ours, sizeof r->ours, "%.3g", ours);
        r->pub_v = pub, r->ours_v = ours;
        snprintf(r->diff, sizeof r->diff, "%+.1f%%", 100 * (ours / pub - 1));
        repro_verdict(tb, r, fabs(ours / pub - 1) <= tol ? "PASS" : "FAIL");
        repro_set_reason(r, "%s: %s %.4g / %s %.4g (means over %d texts); tolerance %.0f%%", metric, inv ? ca : cb,
                   inv ? a : b, inv ? cb : ca, inv ? b : a, na, 100 * tol);
    } else if (below) {
        snprintf(r->pub, sizeof r->pub, "< %.3g", pub);
        snprintf(r->ours, sizeof r->ours, "%.4g", a);
        r->pub_v = pub, r->ours_v = a;
        snprintf(r->diff, sizeof r->diff, "%+.4g", a - pub);
        repro_verdict(tb, r, a < pub ? "PASS" : "FAIL");
        repro_set_reason(r, "%s of %s, mean over %d texts; the threshold was stated before measuring", metric, ca, na);
    } else {
        snprintf(r->pub, sizeof r->pub, "lower");
        snprintf(r->ours, sizeof r->ours, "%+.4g", worst);
        r->ours_v = worst;
        snprintf(r->diff, sizeof r->diff, "-");
        repro_verdict(tb, r, all_lower ? "PASS" : "FAIL");
        repro_set_reason(r, "%s, mean over %d texts, first config vs versus: %s", metric, na, detail);
    }
    return 0;
}

/* ---- driver --------------------------------------------------------------- */

static int run_file(repro_table *tb, const char *path, moe_error *err) {
    char where[4096];
    path = moe_data_path(path, where, sizeof where);
    moe_ini *ini = moe_ini_load(path, err);
    if (!ini) return -1;
    const char *exp = moe_ini_get(ini, "experiment", "name");
    if (!exp) {
        moe_ini_free(ini);
        return moe_fail(err, "%s: missing [experiment] name", path);
    }
    if (repro_add_experiment(tb, exp, moe_ini_get(ini, "experiment", "title"), moe_ini_get(ini, "experiment", "source"))) {
        moe_ini_free(ini);
        return moe_fail(err, "out of memory");
    }
    int rc = 0, n = 0;
    for (size_t i = 0; i < ini->n_sections && !rc; i++) {
        const char *sec = ini->sections[i].name;
        if (strncasecmp(sec, "check ", 6)) continue;
        const char *kind = moe_ini_get(ini, sec, "kind");
        if (!kind) rc = moe_fail(err, "%s:%u: [%s] has no kind", path, ini->sections[i].line, sec);
        else if (!strcmp(kind, "lrc")) rc = run_lrc(tb, exp, ini, sec, err);
        else if (!strcmp(kind, "lrc_order")) rc = run_lrc_order(tb, exp, ini, sec, err);
        else if (!strcmp(kind, "eliseev")) rc = run_eliseev(tb, exp, ini, sec, err);
        else if (!strcmp(kind, "mlx_tiers")) rc = run_mlx_tiers(tb, exp, ini, sec, err);
        else if (!strcmp(kind, "layer_hits")) rc = run_layer_hits(tb, exp, ini, sec, err);
        else if (!strcmp(kind, "quality")) rc = run_quality(tb, exp, ini, sec, err);
        else rc = moe_fail(err, "%s:%u: [%s]: unknown kind '%s' (lrc, lrc_order, eliseev, mlx_tiers, layer_hits, quality)", path,
                           moe_ini_find(ini, sec, "kind")->line, sec, kind);
        n++;
    }
    if (!rc && n == 0) rc = moe_fail(err, "%s: no [check ...] sections", path);
    moe_ini_free(ini);
    return rc;
}

int cmd_reproduce(int argc, char **argv) {
    static const struct option opts[] = {{"strict", no_argument, 0, 's'}, {"csv", no_argument, 0, 'c'},
                                         {"json", no_argument, 0, 'j'},   {"width", required_argument, 0, 'w'},
                                         {"help", no_argument, 0, 'h'},   {0, 0, 0, 0}};
    int strict = 0, csv = 0, json = 0, c;
    uint64_t width = 100;
    moe_error err = {{0}};
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (c == 's') strict = 1;
        else if (c == 'c') csv = 1;
        else if (c == 'j') json = 1;
        else if (c == 'w') {
            if (cli_parse_u64("--width", optarg, 100000, &width, &err)) return cli_error("reproduce", &err);
            if (width < 80) {
                fprintf(stderr, "moesim reproduce: --width %llu: the table needs at least 80 columns\n",
                        (unsigned long long)width);
                return 2;
            }
        } else if (c == 'h') return fputs(reproduce_usage, stdout), 0;
        else return fputs(reproduce_usage, stderr), 2;
    }
    if (csv && json) {
        fprintf(stderr, "moesim reproduce: --csv and --json: choose one\n%s", reproduce_usage);
        return 2;
    }
    glob_t g = {0};
    char **files = argv + optind;
    size_t nf = (size_t)(argc - optind);
    if (nf == 0) {
        if (moe_data_glob("experiments/repro_*.ini", &g) || g.gl_pathc == 0) {
            char dirs[2048];
            moe_data_dirs_text(dirs, sizeof dirs);
            fprintf(stderr, "moesim reproduce: no experiments/repro_*.ini here or in %s; give experiment files\n", dirs);
            globfree(&g);
            return 2;
        }
        files = g.gl_pathv, nf = g.gl_pathc;
    }
    repro_table tb = {0};
    int rc = 0;
    for (size_t i = 0; i < nf && !rc; i++)
        if (run_file(&tb, files[i], &err)) rc = cli_error("reproduce", &err);
    /* nothing is printed until every check ran: a broken file gives no half table */
    if (!rc) {
        if (csv) repro_print_csv(&tb, stdout);
        else if (!json) repro_print_table(&tb, stdout, (int)width);
        else if (repro_print_json(&tb, stdout)) rc = moe_fail(&err, "out of memory"), cli_error("reproduce", &err);
    }
    if (!rc && strict && tb.fails) rc = 1;
    repro_table_free(&tb);
    globfree(&g);
    return rc;
}

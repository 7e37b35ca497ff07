/* cmd_plan.c: `moesim plan` — the capacity planner. Given a routing trace,
 * a model profile, a RAM budget and a device, it predicts tok/s for every
 * expert-cache size, for each cache scope (per-layer and global) and each
 * listed policy, and says which is best within the budget, with the trace's
 * own miss-ratio curve behind the number (in the spirit of MLX-Flash's tier
 * optimiser, which works from assumed hit rates). Its options are `moesim
 * run`'s (--precision, --scope, --policy, sizes with units).
 *
 * Method:
 *  1. RAM: dense bytes = (layers x dense_params + head_params) x dense_bits/8
 *     from the model profile (KV cache and activations are not counted:
 *     leave headroom, or lower --ram); experts cached = floor((RAM - dense)
 *     / bytes per expert at the precision), at most layers x experts; in
 *     per-layer scope the same room split evenly, floor(experts / layers)
 *     per layer.
 *  2. LRU hit counts at EVERY capacity in one pass per scope (core/mrc.h,
 *     Mattson stack distances; exact for capacities >= the largest set per
 *     step); Belady (the offline bound) by replaying `belady` at the rows.
 *  3. tok/s per capacity C, a closed form over the timing model's pricing
 *     (core/device_profile.h):
 *       time/token = layers x (dense_s + k x expert_s) + head_s
 *                  + misses/token x (io_latency + bytes/expert / io_bandwidth) / io_channels
 *     misses/token = (accesses - hits(C)) / tokens of the trace. It assumes
 *     no overlap of I/O with compute and one token per step (batch-1
 *     decode). Per scope, the choice maximises it within the budget (ties:
 *     the smallest cache); the "knee" is the smallest cache within 5% of it.
 *  4. The comparison: every (scope, policy) at the largest cache the budget
 *     holds, replayed twice: the plain replay's hits priced by the closed
 *     form, and the full timing model (sim/replay_ext.h: event timeline,
 *     same device, model and precision), whose tok/s ranks them. Oracles
 *     (policies that read the future) are shown as bounds, never chosen;
 *     a policy the timing model cannot run (belady) has its closed form
 *     only, and the reason is printed. */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/device_profile.h"
#include "../core/mrc.h"
#include "../core/policy.h"
#include "../core/precision.h"
#include "../core/units.h"
#include "cli.h"
#include "commands.h"
#include "experiment.h"
#include "../sim/replay.h"
#include "../sim/replay_check.h"
#include "../sim/replay_ext.h"

static const char plan_usage[] =
    "usage: moesim plan --trace F --model M --device D --ram SIZE [options]\n"
    "\n"
    "Pick the expert cache that maximises predicted tok/s within a RAM budget:\n"
    "for each scope, the trace's one-pass LRU miss-ratio curve (Belady as the\n"
    "bound) priced by the device and model profiles; then every scope and policy\n"
    "at the budget through the timing model, and which is best.\n"
    "\n"
    "  --trace F          routing trace (.moetrace or .csv)\n"
    "  --model M          model profile (experiments/models.ini), M[:dense_bits=4,...]\n"
    "  --device D         device profile (experiments/devices.ini)\n"
    "  --ram SIZE         memory for weights, dense part + expert cache, with a unit:\n"
    "                     16GiB, 512MiB, 24GB (B, KB, MB, GB, TB, KiB, MiB, GiB, TiB)\n"
    "  --precision S      expert precision, one size for every expert:\n"
    "                     uniform:bits=32|16|8|4|3|2 (default uniform:bits=16)\n"
    "  --scope LIST       per-layer, global, or both (default per-layer,global)\n"
    "  --policy LIST      policies to compare, e.g. lru,s3fifo,sieve or all\n"
    "                     (default lru; `moesim policies` lists them)\n"
    "  --cold-per-seq     empty the cache at each new sequence (default: warm)\n"
    "  --seed N           seed for randomised policies (default 1)\n"
    "  --rows N           curve rows besides the choice and the knee (default 10)\n"
    "  --devices F, --models F   other profile files\n"
    "  -h, --help         this text\n"
    "\n"
    "Old spellings: --bits B is now --precision uniform:bits=B; --ram takes a unit\n"
    "(a bare number was GiB: write 16GiB).\n";

typedef struct planner {
    moe_device_profile d;
    moe_model_profile m;
    int tier;
    double compute_s, read_s, tokens, eb, dense, budget;
    uint32_t L, E;
    int cold;
    uint64_t seed;
} planner;

static double tok_s_of(const planner *p, double misses) {
    double t = p->compute_s + misses / p->tokens * p->read_s / p->d.io_channels;
    return t > 0 ? 1.0 / t : INFINITY;
}

static const char *gib(double bytes, char *buf, size_t n) { return moe_bytes_text(bytes, buf, n); }

/* Largest cache, in experts in all, that the budget holds in this scope
 * (per-layer: a multiple of the layers); 0 when not even one per layer
 * (per-layer) or one (global) fits. */
static uint32_t room_experts(const planner *p, int scope) {
    double fit = floor((p->budget - p->dense) / p->eb);
    uint32_t total = p->L * p->E, c = fit >= total ? total : fit > 0 ? (uint32_t)fit : 0;
    return scope == MOE_SCOPE_PER_LAYER ? c / p->L * p->L : c;
}

/* Hits of a plain replay of spec at capacity cap (count, in the scope's unit). */
static int plain_hits(const moe_trace *t, const planner *p, const char *spec, int scope, uint32_t cap, uint64_t *hits,
                      uint64_t *accesses, char *canonical, size_t canon_cap, moe_error *err) {
    moe_replay_config cfg = {.policy = spec, .capacity = cap, .scope = scope, .cold_per_seq = p->cold, .seed = p->seed};
    moe_replay_result r;
    if (moe_replay(t, &cfg, &r, err)) return -1;
    *hits = r.hits;
    *accesses = r.accesses;
    if (canonical) snprintf(canonical, canon_cap, "%s", r.policy);
    moe_replay_result_free(&r);
    return 0;
}

typedef struct plan_opts {
    const char *trace, *model, *device, *precision, *devices, *models;
    uint64_t rows;
    int scopes[2], n_scopes;
} plan_opts;

/* One scope's curve, choice and knee (LRU, closed form); returns the
 * choice in experts in all, or -1 on error. */
static long scope_curve(const moe_trace *t, const planner *p, const plan_opts *o, int scope, moe_error *err) {
    const uint32_t L = p->L, total = p->L * p->E, cmax = room_experts(p, scope);
    const int pl = scope == MOE_SCOPE_PER_LAYER;
    moe_mrc mrc = {0};
    cli_progress pr;
    cli_progress_start(&pr, "plan", "miss-ratio curve", "k steps", 1e3);
    int mrc_rc = moe_mrc_compute_progress(t, scope, p->cold, cli_progress_update, &pr, &mrc, err);
    cli_progress_clear(&pr);
    if (mrc_rc) return -1;
    uint64_t acc = mrc.accesses;
    /* hits of LRU at C experts in all */
#define LRU_HITS(C) (pl ? mrc.hits[(C) / L] : mrc.hits[C])
    uint32_t step = pl ? L : 1, best = 0, knee;
    double best_tps = -1;
    for (uint32_t C = 0; C <= cmax; C += step) {
        double v = tok_s_of(p, (double)(acc - LRU_HITS(C)));
        if (v > best_tps * (1 + 1e-12)) best_tps = v, best = C;
    }
    knee = best;
    for (uint32_t C = 0; C <= best; C += step)
        if (tok_s_of(p, (double)(acc - LRU_HITS(C))) >= 0.95 * best_tps) {
            knee = C;
            break;
        }
    printf("\nLRU curve, %s scope (closed form; Belady = the offline bound)\n", moe_scope_name(scope));
    printf("%-10s %-9s %-10s %-9s %-12s %-9s %-12s\n", "experts", "per-layer", "RAM", "LRU hit", "LRU tok/s", "Belady",
           "Belady tok/s");
    /* rows: evenly spaced over 0..total, plus the knee and the choice */
    uint32_t n_rows = (uint32_t)o->rows, nc = 0;
    uint32_t *cs = malloc((n_rows + 3) * sizeof *cs);
    if (!cs) {
        moe_mrc_free(&mrc);
        return moe_fail(err, "out of memory");
    }
    for (uint32_t i = 0; i <= n_rows; i++) {
        uint32_t C = n_rows ? (uint32_t)((uint64_t)total * i / n_rows) : total;
        cs[nc++] = C / step * step;
    }
    cs[nc++] = knee, cs[nc++] = best;
    for (uint32_t i = 1; i < nc; i++) /* insertion sort, then skip duplicates */
        for (uint32_t j = i; j > 0 && cs[j] < cs[j - 1]; j--) {
            uint32_t x = cs[j];
            cs[j] = cs[j - 1], cs[j - 1] = x;
        }
    long rc = best;
    for (uint32_t i = 0; i < nc; i++) {
        if (i && cs[i] == cs[i - 1]) continue;
        uint32_t C = cs[i];
        uint64_t bh = 0, ba = 0;
        if (plain_hits(t, p, "belady", scope, pl ? C / L : C, &bh, &ba, NULL, 0, err)) {
            rc = -1;
            break;
        }
        double lh = (double)LRU_HITS(C) / (double)acc, bhr = (double)bh / (double)acc;
        char ram[32];
        printf("%-10u %-9u %-10s %-9.4f %-12.3f %-9.4f %-12.3f %s%s%s\n", C, C / L, gib(p->dense + C * p->eb, ram, sizeof ram),
               lh, tok_s_of(p, (double)(acc - LRU_HITS(C))), bhr, tok_s_of(p, (double)(acc - bh)),
               C == best ? "<- choice " : "", C == knee && knee != best ? "<- knee (95% of best) " : "",
               C > cmax ? "over budget" : "");
    }
    free(cs);
    if (rc >= 0) {
        char a[32], b[32];
        printf("choice (%s): cache %u experts (%u per layer), %s of %s RAM: LRU hit rate %.1f%%, %.3f tok/s (closed form)\n",
               moe_scope_name(scope), best, best / L, gib(p->dense + best * p->eb, a, sizeof a), gib(p->budget, b, sizeof b),
               100.0 * LRU_HITS(best) / acc, best_tps);
        if (knee != best)
            printf("knee (%s):   %u experts (%s) already give %.3f tok/s (>= 95%% of the best)\n", moe_scope_name(scope),
                   knee, gib(p->dense + knee * p->eb, a, sizeof a), tok_s_of(p, (double)(acc - LRU_HITS(knee))));
        if (mrc.exact_from > (pl ? best / L : best))
            printf("note: LRU hits below %u experts%s are the stack model's approximation (core/mrc.h)\n", mrc.exact_from,
                   pl ? " per layer" : "");
    }
#undef LRU_HITS
    moe_mrc_free(&mrc);
    return rc;
}

typedef struct row {
    int scope, oracle, timed;
    const char *spec; /* as written (shown) */
    char policy[256]; /* canonical (the identity) */
    uint32_t experts; /* in all */
    double hit_rate, closed_tps, timed_tps;
    char why[sizeof(((moe_error *)0)->msg)]; /* why the timing model did not run it */
} row;

/* Every (scope, policy) at the largest cache of the budget. */
static int compare(const moe_trace *t, const planner *p, const plan_opts *o, const moe_str_list *policies, row *rows,
                   size_t *n_rows, moe_error *err) {
    size_t n = 0;
    for (int si = 0; si < o->n_scopes; si++) {
        int scope = o->scopes[si];
        uint32_t cmax = room_experts(p, scope);
        if (!cmax) continue;
        uint32_t cap = scope == MOE_SCOPE_PER_LAYER ? cmax / p->L : cmax;
        for (size_t k = 0; k < policies->n; k++) {
            row *r = &rows[n++];
            memset(r, 0, sizeof *r);
            r->scope = scope;
            r->spec = policies->v[k];
            r->experts = cmax;
            uint64_t hits, acc;
            if (plain_hits(t, p, policies->v[k], scope, cap, &hits, &acc, r->policy, sizeof r->policy, err))
                return moe_fail_prefix(err, "policy %s", policies->v[k]);
            r->oracle = moe_policy_is_oracle(r->policy);
            r->hit_rate = acc ? (double)hits / (double)acc : 0;
            r->closed_tps = tok_s_of(p, (double)(acc - hits));
            moe_replay_config cfg = {.policy = r->policy, .capacity = cap, .scope = scope, .cold_per_seq = p->cold,
                                     .seed = p->seed, .device = o->device, .model = o->model,
                                     .precision = o->precision, .devices_path = o->devices, .models_path = o->models};
            moe_error why = {{0}};
            if (moe_replay_check(t, &cfg, &why)) {
                snprintf(r->why, sizeof r->why, "%s", why.msg);
                continue;
            }
            moe_replay_result res;
            if (moe_replay(t, &cfg, &res, err)) return moe_fail_prefix(err, "policy %s", r->policy);
            r->timed = res.ext != NULL;
            r->timed_tps = res.ext ? res.ext->tok_s : NAN;
            moe_replay_result_free(&res);
        }
    }
    *n_rows = n;
    return 0;
}

static int by_tps_desc(const void *a, const void *b) {
    const row *x = *(const row *const *)a, *y = *(const row *const *)b;
    if (x->timed_tps != y->timed_tps) return x->timed_tps > y->timed_tps ? -1 : 1;
    return x < y ? -1 : x > y; /* table order */
}

static void print_comparison(const planner *p, const row *rows, size_t n) {
    int w = 8; /* the policy column fits the longest spec */
    for (size_t i = 0; i < n; i++)
        if ((int)strlen(rows[i].spec) > w) w = (int)strlen(rows[i].spec);
    printf("\nat the budget (each scope's largest cache; tok/s from the closed form and from a timing-model replay)\n");
    printf("%-10s %-*s %-17s %-9s %-12s %-12s\n", "scope", w, "policy", "experts", "hit rate", "closed form", "timing model");
    const row *best = NULL;
    for (size_t i = 0; i < n; i++) {
        const row *r = &rows[i];
        char ex[32], tm[32];
        if (r->scope == MOE_SCOPE_PER_LAYER) snprintf(ex, sizeof ex, "%u (%u/layer)", r->experts, r->experts / p->L);
        else snprintf(ex, sizeof ex, "%u", r->experts);
        if (r->timed) snprintf(tm, sizeof tm, "%.3f", r->timed_tps);
        else snprintf(tm, sizeof tm, "n/a");
        printf("%-10s %-*s %-17s %-9.4f %-12.3f %-12s%s\n", moe_scope_name(r->scope), w, r->spec, ex, r->hit_rate,
               r->closed_tps, tm, r->oracle ? " oracle (a bound)" : "");
        if (r->timed && !r->oracle && (!best || r->timed_tps > best->timed_tps)) best = r;
    }
    for (size_t i = 0; i < n; i++) /* each reason once */
        if (rows[i].why[0]) {
            int seen = 0;
            for (size_t j = 0; j < i; j++) seen |= !strcmp(rows[j].why, rows[i].why);
            if (!seen) printf("n/a: %s\n", rows[i].why);
        }
    if (!best) {
        printf("\nbest: none (no policy that can be deployed ran through the timing model)\n");
        return;
    }
    char a[32], b[32];
    printf("\nbest: %s %s, %.3f tok/s (timing model): cache %u experts", moe_scope_name(best->scope), best->spec,
           best->timed_tps, best->experts);
    if (best->scope == MOE_SCOPE_PER_LAYER) printf(" (%u per layer)", best->experts / p->L);
    printf(", %s of %s RAM\n", gib(p->dense + best->experts * p->eb, a, sizeof a), gib(p->budget, b, sizeof b));
    if (strcmp(best->policy, best->spec)) printf("      (%s)\n", best->policy);
    /* the others, fastest first (ties in table order), against the best */
    const row **order = malloc(n * sizeof *order);
    size_t m = 0;
    if (!order) return;
    for (size_t i = 0; i < n; i++)
        if (&rows[i] != best && rows[i].timed) order[m++] = &rows[i];
    qsort(order, m, sizeof *order, by_tps_desc);
    size_t close = 0;
    for (size_t i = 0; i < m; i++) {
        double d = order[i]->timed_tps / best->timed_tps - 1;
        close += !order[i]->oracle && fabs(d) < 0.01;
        printf("  vs  %-9s %s: %.3f tok/s (%+.2f%%)%s\n", moe_scope_name(order[i]->scope), order[i]->spec,
               order[i]->timed_tps, 100 * d, order[i]->oracle ? ", an oracle: not a choice" : "");
    }
    /* a margin this small is a tie for any purpose the timing model serves */
    if (close)
        printf("note: %zu other configuration%s within 1%% of the best: as good a choice, as far as the timing "
               "model can tell\n", close, close == 1 ? " is" : "s are");
    free(order);
}

int cmd_plan(int argc, char **argv) {
    static const struct option opts[] = {
        {"trace", required_argument, 0, 't'},   {"model", required_argument, 0, 'm'},
        {"ram", required_argument, 0, 'r'},     {"device", required_argument, 0, 'd'},
        {"precision", required_argument, 0, 'q'}, {"bits", required_argument, 0, 'b'},
        {"scope", required_argument, 0, 's'},   {"policy", required_argument, 0, 'p'},
        {"policies", required_argument, 0, 'p'}, {"cold-per-seq", no_argument, 0, 'C'},
        {"seed", required_argument, 0, 'S'},    {"rows", required_argument, 0, 'n'},
        {"devices", required_argument, 0, 'D'}, {"models", required_argument, 0, 'M'},
        {"help", no_argument, 0, 'h'},          {0, 0, 0, 0},
    };
    plan_opts o = {.precision = "uniform:bits=16", .devices = MOE_DEVICES_INI, .models = MOE_MODELS_INI, .rows = 10};
    moe_experiment pols = {0}; /* its policy list: the sweep's parser, "all" included */
    uint64_t ram = 0;
    int c, rc = 2, cold = 0, have_scope = 0;
    uint64_t seed = 1;
    moe_error err = {{0}};
    moe_trace *t = NULL;
    row *rows = NULL;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 't': o.trace = optarg; break;
        case 'm': o.model = optarg; break;
        case 'd': o.device = optarg; break;
        case 'D': o.devices = optarg; break;
        case 'M': o.models = optarg; break;
        case 'q': o.precision = optarg; break;
        case 'b':
            fprintf(stderr, "moesim plan: --bits is now --precision uniform:bits=%s (the spelling `moesim run` takes)\n",
                    optarg);
            goto out;
        case 'r': {
            int r = moe_bytes_parse("--ram", optarg, NULL, &ram, &err);
            if (r > 0) {
                fprintf(stderr, "moesim plan: --ram %s: give a unit, e.g. --ram %sGiB (a bare number no longer means "
                                "GiB)\n", optarg, optarg);
                goto out;
            }
            if (r < 0) goto misuse;
            break;
        }
        case 's': {
            moe_str_list items = {0};
            if (moe_split_specs(optarg, "--scope", &items, &err)) {
                moe_str_list_free(&items);
                goto misuse;
            }
            o.n_scopes = 0;
            have_scope = 1;
            for (size_t i = 0; i < items.n; i++) {
                int sc;
                if (moe_scope_parse(items.v[i], &sc, &err)) {
                    moe_str_list_free(&items);
                    moe_fail_prefix(&err, "--scope");
                    goto misuse;
                }
                if (!(o.n_scopes == 1 && o.scopes[0] == sc) && o.n_scopes < 2) o.scopes[o.n_scopes++] = sc;
            }
            moe_str_list_free(&items);
            break;
        }
        case 'p':
            if (moe_experiment_add_policies(&pols, optarg, &err)) { /* "policies: ..." */
                fprintf(stderr, "moesim plan: --%s\n", err.msg);
                goto out;
            }
            break;
        case 'C': cold = 1; break;
        case 'S':
            if (cli_parse_u64("--seed", optarg, UINT64_MAX, &seed, &err)) goto misuse;
            break;
        case 'n':
            if (cli_parse_u64("--rows", optarg, 1000, &o.rows, &err)) goto misuse;
            break;
        case 'h':
            fputs(plan_usage, stdout);
            rc = 0;
            goto out;
        default: fputs(plan_usage, stderr); goto out;
        }
    }
    if (optind != argc || !o.trace || !o.model || !o.device || !ram) {
        if (optind != argc) fprintf(stderr, "moesim plan: unexpected argument '%s'\n", argv[optind]);
        else fprintf(stderr, "moesim plan: --trace, --model, --device and --ram are required\n");
        fputs(plan_usage, stderr);
        goto out;
    }
    if (!have_scope) o.scopes[0] = MOE_SCOPE_PER_LAYER, o.scopes[1] = MOE_SCOPE_GLOBAL, o.n_scopes = 2;
    if (!pols.policies.n && moe_experiment_add_policies(&pols, "lru", &err)) goto misuse;
    planner p;
    memset(&p, 0, sizeof p);
    p.cold = cold;
    p.seed = seed;
    char canon[512];
    if (moe_precision_canonical(o.precision, canon, sizeof canon, &err)) {
        moe_fail_prefix(&err, "--precision");
        goto misuse;
    }
    /* the closed form prices one expert size; schemes that mix sizes need the replay */
    if ((p.tier = moe_precision_uniform_tier(o.precision)) < 0) {
        fprintf(stderr, "moesim plan: --precision %s gives experts different sizes; the planner prices one size "
                        "(uniform:bits=B). Compare such schemes with `moesim sweep --precision ... --capacities "
                        "SIZE --device ...`\n", canon);
        goto out;
    }
    /* Everything below is work: errors exit 1. */
    rc = 1;
    if (moe_device_profile_load(o.devices, o.device, &p.d, &err) || moe_model_profile_load(o.models, o.model, &p.m, &err))
        goto fail;
    if (!(t = moe_trace_load(o.trace, &err))) goto fail;
    if (moe_model_profile_bind_trace(&p.m, t, &err)) goto fail;
    p.L = t->n_layers, p.E = t->n_experts;
    p.eb = (double)p.m.expert_bytes[p.tier];
    p.dense = (p.L * p.m.dense_params + p.m.head_params) * p.m.dense_bits / 8;
    p.budget = (double)ram;
    if (!(p.eb > 0)) {
        moe_fail(&err, "model %s has no bytes per expert at %s", p.m.name, moe_prec_name[p.tier]);
        goto fail;
    }
    char a[32], b[32], d1[32], d2[32];
    int fits = 0;
    for (int i = 0; i < o.n_scopes; i++) fits |= room_experts(&p, o.scopes[i]) > 0;
    if (!fits) {
        int pl = o.n_scopes == 1 && o.scopes[0] == MOE_SCOPE_PER_LAYER;
        moe_fail(&err, "--ram %s is below the dense weights (%s: %u layers x %.0f + head %.0f params at %g bits) "
                       "plus one expert per %s (%s); nothing is left for the expert cache",
                 gib(p.budget, a, sizeof a), gib(p.dense, b, sizeof b), p.L, p.m.dense_params, p.m.head_params,
                 p.m.dense_bits, pl ? "layer" : "model", gib((pl ? p.L : 1) * p.eb, d1, sizeof d1));
        goto fail;
    }
    p.tokens = (double)t->n_tokens;
    p.compute_s = p.L * (moe_profile_dense_s(&p.d, &p.m, 1, 0) + t->top_k * moe_profile_expert_s(&p.d, &p.m, p.tier, 1)) +
                  moe_profile_head_s(&p.d, &p.m, 1);
    p.read_s = p.d.io_latency_s + p.eb / p.d.io_bandwidth_Bps;

    printf("plan: %s on %s, %s; RAM %s, experts at %s\n", p.m.name, p.d.name, o.trace, gib(p.budget, a, sizeof a), canon);
    printf("trace: %u layers x %u experts, top-%u, %llu tokens; %s\n", p.L, p.E, t->top_k,
           (unsigned long long)t->n_tokens, cold ? "cold per sequence" : "warm");
    printf("bytes: dense %s (%g bits), expert %s, all experts %s; cache room %s = %u experts",
           gib(p.dense, a, sizeof a), p.m.dense_bits, gib(p.eb, b, sizeof b), gib(p.L * p.E * p.eb, d1, sizeof d1),
           gib(p.budget - p.dense, d2, sizeof d2), room_experts(&p, MOE_SCOPE_GLOBAL));
    if (room_experts(&p, MOE_SCOPE_GLOBAL) == p.L * p.E) printf(" (the whole model fits)");
    printf(", %u per layer\n", room_experts(&p, MOE_SCOPE_PER_LAYER) / p.L);
    printf("time/token = compute %s + misses/token x %s per read / %u channel(s)  (closed form, see moesim plan source)\n",
           moe_duration_text(p.compute_s, a, sizeof a), moe_duration_text(p.read_s, b, sizeof b), p.d.io_channels);
    for (int i = 0; i < o.n_scopes; i++) {
        if (!room_experts(&p, o.scopes[i])) {
            printf("\n%s scope: the room holds fewer experts than the %u layers; left out\n", moe_scope_name(o.scopes[i]), p.L);
            continue;
        }
        if (scope_curve(t, &p, &o, o.scopes[i], &err) < 0) goto fail;
    }
    size_t n_rows = 0;
    if (!(rows = calloc((size_t)o.n_scopes * pols.policies.n, sizeof *rows))) {
        moe_fail(&err, "out of memory");
        goto fail;
    }
    if (compare(t, &p, &o, &pols.policies, rows, &n_rows, &err)) goto fail;
    print_comparison(&p, rows, n_rows);
    rc = 0;
    goto out;
misuse:
    fprintf(stderr, "moesim plan: %s\n", err.msg);
    rc = 2;
    goto out;
fail:
    cli_error("plan", &err);
    rc = 1;
out:
    free(rows);
    moe_trace_free(t);
    moe_experiment_free(&pols);
    return rc;
}

/* cmd_plan.c: `moesim plan` — the capacity planner. Given a routing trace,
 * a model profile, a RAM budget and a device, it predicts tok/s for every
 * expert-cache size and picks the best one that fits, with the trace's own
 * miss-ratio curve behind the number (in the spirit of MLX-Flash's tier
 * optimiser, which works from assumed hit rates).
 *
 * Method:
 *  1. LRU hit counts at EVERY capacity in one pass (core/mrc.h, Mattson
 *     stack distances; exact for capacities >= the largest set per step);
 *     Belady (the offline bound) by replaying `belady` at the table's rows.
 *  2. RAM: dense bytes = (layers x dense_params + head_params) x dense_bits/8
 *     from the model profile (KV cache and activations are not counted:
 *     leave headroom, or lower --ram); experts cached = floor((RAM - dense)
 *     / bytes per expert at --bits), at most layers x experts.
 *  3. tok/s per capacity C, a closed form over the timing model's pricing
 *     (core/device_profile.h):
 *       time/token = layers x (dense_s + k x expert_s) + head_s
 *                  + misses/token x (io_latency + bytes/expert / io_bandwidth) / io_channels
 *     misses/token = (accesses - hits(C)) / tokens of the trace. It assumes
 *     no overlap of I/O with compute and one token per step (batch-1
 *     decode). The chosen capacity is then replayed through the full
 *     timing model (sim/replay_ext.h: event timeline, same device and
 *     model) and both numbers are printed.
 *  4. The choice maximises predicted tok/s within the budget (ties: the
 *     smallest cache); the "knee" is the smallest cache within 5% of it. */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/device_profile.h"
#include "../core/mrc.h"
#include "cli.h"
#include "commands.h"
#include "../sim/replay.h"
#include "../sim/replay_ext.h"

static const char plan_usage[] =
    "usage: moesim plan --trace F --model PROFILE --ram GiB --device D [options]\n"
    "\n"
    "Pick the expert-cache size that maximises predicted tok/s within a RAM\n"
    "budget, from the trace's one-pass LRU miss-ratio curve (Belady as the bound)\n"
    "and the device/model profiles; print the choice and the curve.\n"
    "\n"
    "  --trace F        routing trace (.moetrace or .csv)\n"
    "  --model M        model profile (experiments/models.ini), M[:dense_bits=4,...]\n"
    "  --ram GiB        memory for weights: dense part + expert cache\n"
    "  --device D       device profile (experiments/devices.ini)\n"
    "  --bits B         expert precision: 32, 16, 8, 4, 3 or 2 (default 16)\n"
    "  --scope S        global (one pool, default) or per-layer (budget split evenly)\n"
    "  --cold-per-seq   empty the cache at each new sequence (default: warm)\n"
    "  --rows N         curve rows besides the choice (default 10)\n"
    "  --devices F --models F   other profile files\n"
    "  -h, --help       this text\n";

#define GiB 1073741824.0

typedef struct planner {
    moe_device_profile d;
    moe_model_profile m;
    int tier;
    double compute_s, read_s, tokens;
    uint64_t accesses;
} planner;

static double tok_s_of(const planner *p, double misses) {
    double t = p->compute_s + misses / p->tokens * p->read_s / p->d.io_channels;
    return t > 0 ? 1.0 / t : INFINITY;
}

static int belady_hits(const moe_trace *t, int scope, int cold, uint32_t cap, uint64_t *hits, moe_error *err) {
    moe_replay_config cfg = {.policy = "belady", .capacity = cap, .scope = scope, .cold_per_seq = cold, .seed = 1};
    moe_replay_result r;
    if (moe_replay(t, &cfg, &r, err)) return -1;
    *hits = r.hits;
    moe_replay_result_free(&r);
    return 0;
}

int cmd_plan(int argc, char **argv) {
    static const struct option opts[] = {
        {"trace", required_argument, 0, 't'},  {"model", required_argument, 0, 'm'},
        {"ram", required_argument, 0, 'r'},    {"device", required_argument, 0, 'd'},
        {"bits", required_argument, 0, 'b'},   {"scope", required_argument, 0, 's'},
        {"cold-per-seq", no_argument, 0, 'C'}, {"rows", required_argument, 0, 'n'},
        {"devices", required_argument, 0, 'D'}, {"models", required_argument, 0, 'M'},
        {"help", no_argument, 0, 'h'},         {0, 0, 0, 0},
    };
    const char *trace_path = NULL, *model = NULL, *device = NULL;
    const char *devices = MOE_DEVICES_INI, *models = MOE_MODELS_INI;
    double ram = -1;
    uint64_t bits = 16, rows = 10;
    int scope = MOE_SCOPE_GLOBAL, cold = 0, c;
    moe_error err = {{0}};
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 't': trace_path = optarg; break;
        case 'm': model = optarg; break;
        case 'd': device = optarg; break;
        case 'D': devices = optarg; break;
        case 'M': models = optarg; break;
        case 'r': {
            char *end;
            ram = strtod(optarg, &end);
            if (!*optarg || *end || !(ram > 0 && ram < 1e9)) {
                fprintf(stderr, "moesim plan: --ram: expected a positive number of GiB, got '%s'\n", optarg);
                return 2;
            }
            break;
        }
        case 'b':
            if (cli_parse_u64("--bits", optarg, 64, &bits, &err)) return cli_error("plan", &err);
            break;
        case 's':
            if (moe_scope_parse(optarg, &scope, &err)) return cli_error("plan", &err);
            break;
        case 'C': cold = 1; break;
        case 'n':
            if (cli_parse_u64("--rows", optarg, 1000, &rows, &err)) return cli_error("plan", &err);
            break;
        case 'h': fputs(plan_usage, stdout); return 0;
        default: fputs(plan_usage, stderr); return 2;
        }
    }
    if (optind != argc || !trace_path || !model || !device || ram < 0) {
        fprintf(stderr, "moesim plan: --trace, --model, --ram and --device are required\n%s", plan_usage);
        return 2;
    }
    planner p;
    memset(&p, 0, sizeof p);
    p.tier = moe_prec_of_bits((long)bits);
    if (p.tier < 0) {
        fprintf(stderr, "moesim plan: --bits %llu: expected 32, 16, 8, 4, 3 or 2\n", (unsigned long long)bits);
        return 2;
    }
    if (moe_device_profile_load(devices, device, &p.d, &err) || moe_model_profile_load(models, model, &p.m, &err))
        return cli_error("plan", &err);
    moe_trace *t = moe_trace_load(trace_path, &err);
    if (!t) return cli_error("plan", &err);
    int rc = 0;
    moe_mrc mrc = {0};
    if (moe_model_profile_bind_trace(&p.m, t, &err)) {
        rc = cli_error("plan", &err);
        goto out;
    }
    const uint32_t L = t->n_layers, E = t->n_experts;
    double eb = (double)p.m.expert_bytes[p.tier];
    double dense = (L * p.m.dense_params + p.m.head_params) * p.m.dense_bits / 8;
    double budget = ram * GiB;
    if (!(eb > 0)) {
        moe_fail(&err, "model %s has no bytes per expert at %llu bits", p.m.name, (unsigned long long)bits);
        rc = cli_error("plan", &err);
        goto out;
    }
    if (budget < dense + (scope == MOE_SCOPE_PER_LAYER ? L : 1) * eb) {
        moe_fail(&err, "--ram %.3g GiB is below the dense weights (%.3f GiB: %u layers x %.0f + head %.0f params at %g bits) "
                       "plus one expert per %s (%.3f GiB); nothing is left for the expert cache",
                 ram, dense / GiB, L, p.m.dense_params, p.m.head_params, p.m.dense_bits,
                 scope == MOE_SCOPE_PER_LAYER ? "layer" : "model",
                 (scope == MOE_SCOPE_PER_LAYER ? L : 1) * eb / GiB);
        rc = cli_error("plan", &err);
        goto out;
    }
    /* capacities in experts in all; per-layer scope caches floor(C / L) per layer */
    uint32_t total = L * E;
    double fit = floor((budget - dense) / eb);
    uint32_t cmax = fit >= total ? total : (uint32_t)fit;
    if (scope == MOE_SCOPE_PER_LAYER) cmax = cmax / L * L;
    cli_progress pr;
    cli_progress_start(&pr, "plan", "miss-ratio curve", "k steps", 1e3);
    int mrc_rc = moe_mrc_compute_progress(t, scope, cold, cli_progress_update, &pr, &mrc, &err);
    cli_progress_clear(&pr);
    if (mrc_rc) {
        rc = cli_error("plan", &err);
        goto out;
    }
    p.accesses = mrc.accesses;
    p.tokens = (double)t->n_tokens;
    p.compute_s = L * (moe_profile_dense_s(&p.d, &p.m, 1, 0) + t->top_k * moe_profile_expert_s(&p.d, &p.m, p.tier, 1)) +
                  moe_profile_head_s(&p.d, &p.m, 1);
    p.read_s = p.d.io_latency_s + eb / p.d.io_bandwidth_Bps;
    /* hits of LRU at C experts in all */
#define LRU_HITS(C) (scope == MOE_SCOPE_PER_LAYER ? mrc.hits[(C) / L] : mrc.hits[C])
    uint32_t step = scope == MOE_SCOPE_PER_LAYER ? L : 1;
    uint32_t best = 0;
    double best_tps = -1;
    for (uint32_t C = 0; C <= cmax; C += step) {
        double v = tok_s_of(&p, (double)(p.accesses - LRU_HITS(C)));
        if (v > best_tps * (1 + 1e-12)) best_tps = v, best = C;
    }
    uint32_t knee = best;
    for (uint32_t C = 0; C <= best; C += step)
        if (tok_s_of(&p, (double)(p.accesses - LRU_HITS(C))) >= 0.95 * best_tps) { knee = C; break; }

    printf("plan: %s on %s, %s; RAM %.2f GiB\n", p.m.name, p.d.name, trace_path, ram);
    printf("trace: %u layers x %u experts, top-%u, %llu tokens, %llu unique (step, layer, expert) accesses; %s scope, %s\n",
           L, E, t->top_k, (unsigned long long)t->n_tokens, (unsigned long long)p.accesses, moe_scope_name(scope),
           cold ? "cold per sequence" : "warm");
    printf("bytes: dense %.3f GiB (%g bits), expert %.2f MiB at %s, all experts %.2f GiB; cache room %.3f GiB = %u experts%s\n",
           dense / GiB, p.m.dense_bits, eb / 1048576, moe_prec_name[p.tier], total * eb / GiB, (budget - dense) / GiB,
           cmax, cmax == total ? " (the whole model fits)" : "");
    printf("time/token = compute %.3f ms + misses/token x %.3f ms per read / %u channel(s)  (closed form, see moesim plan source)\n",
           p.compute_s * 1e3, p.read_s * 1e3, p.d.io_channels);
    printf("\n%-10s %-9s %-9s %-9s %-12s %-9s %-12s %s\n", "experts", "per-layer", "RAM GiB", "LRU hit", "LRU tok/s",
           "Belady", "Belady tok/s", "");
    /* rows: evenly spaced over 0..total, plus the knee and the choice */
    uint32_t n_rows = (uint32_t)rows;
    uint32_t *cs = malloc((n_rows + 3) * sizeof *cs), nc = 0;
    if (!cs) {
        moe_fail(&err, "out of memory");
        rc = cli_error("plan", &err);
        goto out;
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
    for (uint32_t i = 0; i < nc; i++) {
        if (i && cs[i] == cs[i - 1]) continue;
        uint32_t C = cs[i];
        uint64_t bh = 0;
        uint32_t cap = scope == MOE_SCOPE_PER_LAYER ? C / L : C;
        if (belady_hits(t, scope, cold, cap, &bh, &err)) {
            free(cs);
            rc = cli_error("plan", &err);
            goto out;
        }
        double lh = (double)LRU_HITS(C) / (double)p.accesses, bhr = (double)bh / (double)p.accesses;
        printf("%-10u %-9u %-9.3f %-9.4f %-12.3f %-9.4f %-12.3f %s%s%s\n", C, C / L, (dense + C * eb) / GiB, lh,
               tok_s_of(&p, (double)(p.accesses - LRU_HITS(C))), bhr, tok_s_of(&p, (double)(p.accesses - bh)),
               C == best ? "<- choice " : "", C == knee && knee != best ? "<- knee (95% of best) " : "",
               C > cmax ? "over budget" : "");
    }
    free(cs);
    /* the choice through the full timing model */
    moe_replay_config cfg = {.policy = "lru", .capacity = scope == MOE_SCOPE_PER_LAYER ? best / L : best,
                             .scope = scope, .cold_per_seq = cold, .seed = 1, .device = device, .model = model,
                             .devices_path = devices, .models_path = models};
    char prec[32];
    snprintf(prec, sizeof prec, "uniform:bits=%llu", (unsigned long long)bits);
    cfg.precision = prec;
    moe_replay_result res;
    double tl = NAN;
    if (moe_replay(t, &cfg, &res, &err)) {
        rc = cli_error("plan", &err);
        goto out;
    }
    if (res.ext) tl = res.ext->tok_s;
    moe_replay_result_free(&res);
    printf("\nchoice: cache %u experts (%u per layer), %.2f GiB of %.2f GiB RAM: LRU hit rate %.1f%%, predicted %.3f tok/s "
           "(closed form), %.3f tok/s (timing-model replay)\n",
           best, best / L, (dense + best * eb) / GiB, ram, 100.0 * LRU_HITS(best) / p.accesses, best_tps, tl);
    if (knee != best)
        printf("knee:   %u experts (%.2f GiB) already give %.3f tok/s (>= 95%% of the best)\n", knee,
               (dense + knee * eb) / GiB, tok_s_of(&p, (double)(p.accesses - LRU_HITS(knee))));
    if (mrc.exact_from > (scope == MOE_SCOPE_PER_LAYER ? best / L : best))
        printf("note: LRU hits below %u experts%s are the stack model's approximation (core/mrc.h)\n", mrc.exact_from,
               scope == MOE_SCOPE_PER_LAYER ? " per layer" : "");
#undef LRU_HITS
out:
    moe_mrc_free(&mrc);
    moe_trace_free(t);
    return rc;
}

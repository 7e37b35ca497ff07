/* cmd_quality.c: `moesim quality` — what a precision scheme does to the
 * model's predictions, against the full-precision model on the same text. */
#include <cjson/cJSON.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../backend/capture.h"
#include "../backend/engine.h"
#include "../backend/expert_quant.h"
#include "../backend/quality.h"
#include "../backend/readfile.h"
#include "../backend/tokenizer.h"
#include "../core/cache_state.h"
#include "../core/device_profile.h"
#include "../core/on_miss.h"
#include "../core/results.h"
#include "../core/precision.h"
#include "../core/ini.h"
#include "cli.h"
#include "commands.h"
#include "experiment.h"
#include "offload_opts.h"
#include "offload_run.h"

static const char quality_usage[] =
    "usage: moesim quality --model DIR --text-file F [--precision SPEC]... [--threads N] [--json]\n"
    "       moesim quality --grid experiments/quality.ini [--db F] [--experiment NAME]\n"
    "       moesim quality --model DIR --text-file F --offload PACK|auto --capacity C\n"
    "                      [--on-miss wait|skip|substitute] [offload options] [--json]\n"
    "\n"
    "How much a constrained model's predictions differ from the full model's on\n"
    "the same text. Both read the text from its first byte and predict every next\n"
    "byte given the true bytes before it (teacher-forced); per position:\n"
    "  delta_nats_per_byte  -log q(next) + log p(next), averaged (p: full model,\n"
    "                       q: constrained; > 0 means the constrained one is worse)\n"
    "  kl_mean              KL(p || q) of the next-byte distributions, nats, averaged\n"
    "  top1_agreement       share of positions where both rank the same byte first\n"
    "                       (ties: the lower byte)\n"
    "\n"
    "  --model DIR        model directory (config.json + model.safetensors)\n"
    "  --text-file F      the text (held out from training, for an honest figure)\n"
    "  --precision SPEC   each routed expert's precision (`moesim policies` lists the\n"
    "                     schemes): uniform:bits=8|4|3|2 quantizes every expert,\n"
    "                     mlx-tiers and hot-cold by a routing profile (profile=TRACE,\n"
    "                     from other texts; profile=oracle, their default, profiles\n"
    "                     this very text). Quantized: groups of 64 inputs, bf16 scale\n"
    "                     and bias (docs/pack-format.md). 16 and 32 bits keep the model's\n"
    "                     own weights. hobbit:hi=H,lo=L runs each token slot on the\n"
    "                     high copy, the low one or not at all by the gate weight of\n"
    "                     the slots before it (both copies held). Default\n"
    "                     uniform:bits=16 (no change)\n"
    "  --threads N        worker threads (default: online CPUs)\n"
    "  --generate N       also generate N bytes greedily after the text's first\n"
    "                     --prompt-bytes (default 24) with the full and each\n"
    "                     constrained model: first_divergence (the first generated\n"
    "                     byte that differs, N if none) and repetition (share of\n"
    "                     the output's 16-byte windows seen earlier in it; the\n"
    "                     full model's as repetition_full); tok_s: decode speed\n"
    "                     measured while generating\n"
    "  --text-offset B    compare from byte B of the text on (skip a part that a\n"
    "                     profile was made from)\n"
    "  --pin N --pin-profile TRACE   offloaded: flash-moe's universal experts: the N\n"
    "                     experts per layer TRACE routes to most are loaded first and\n"
    "                     never evicted (policy pin:n=N,profile=TRACE, LRU for the rest)\n"
    "  --db F             store each row as a run in the results database F\n"
    "                     (kind=quality; its trace: the text's routing under the\n"
    "                     full model); --experiment NAME labels them\n"
    "  --json             one JSON object per scheme (a line each) instead of the table\n"
    "  -h, --help         this text\n"
    "\n"
    "--precision may be given up to 16 times: the full model runs once for all.\n"
    "Columns: experts quantized, MiB of all routed experts at these precisions,\n"
    "how many times smaller than at 16 bits, nats per byte, delta, kl_mean,\n"
    "top-1 agreement (%%), the scheme.\n"
    "\n"
    "Offloaded (--offload), the constrained model is the same model streaming its\n"
    "experts through a bounded cache, each miss handled as --on-miss says: wait\n"
    "gives the full model's numbers exactly; skip and substitute show what they\n"
    "cost. The text runs as one sequence in steps of 32 bytes; stderr gets what the\n"
    "cache did.\n"
    "\n"
    "%s";

#define QCHUNK 256

/* The text's own routing under the full model (profile=oracle). */
static moe_trace *capture_text(moe_engine *e, const moe_model *m, const int *ids, int n, moe_error *err) {
    moe_capture *cap = moe_capture_new(m, 0, 0, QCHUNK);
    if (!cap) {
        moe_fail(err, "out of memory");
        return NULL;
    }
    moe_engine_reset(e);
    for (int t0 = 0; t0 < n; t0 += QCHUNK) {
        int T = n - t0 < QCHUNK ? n - t0 : QCHUNK;
        if (moe_engine_forward(e, ids + t0, T, NULL, 0, moe_capture_routing(cap), err) ||
            moe_capture_step(cap, t0 ? MOE_PHASE_DECODE : MOE_PHASE_PREFILL, 0, t0, T, err)) {
            moe_capture_abort(cap);
            return NULL;
        }
    }
    return moe_capture_finish(cap, "profile=oracle (moesim quality)", err);
}

/* The full engine and every constrained one over the text, chunk by chunk:
 * the full model's logits are computed once for all of them. With an
 * offloaded constrained engine (off), chunks are steps of at most
 * MOE_ENGINE_MAX_STEP tokens (chunking changes no number). */
static int compare(moe_engine *ef, moe_engine **ec, int nc, moe_offload *off, const int *ids, int n, int V,
                   moe_quality *q, moe_error *err) {
    int chunk = off ? MOE_ENGINE_MAX_STEP : QCHUNK;
    float *lf = malloc((size_t)QCHUNK * V * sizeof *lf), *lc = malloc((size_t)QCHUNK * V * sizeof *lc);
    int rc = 0;
    if (!lf || !lc) rc = moe_fail(err, "out of memory");
    moe_engine_reset(ef);
    for (int k = 0; k < nc; k++) moe_engine_reset(ec[k]), memset(&q[k], 0, sizeof q[k]);
    for (int t0 = 0; !rc && t0 < n - 1; t0 += chunk) {
        int T = n - 1 - t0 < chunk ? n - 1 - t0 : chunk;
        if (moe_engine_forward(ef, ids + t0, T, lf, 1, NULL, err)) rc = -1;
        for (int k = 0; !rc && k < nc; k++) {
            if ((off && moe_offload_step_begin(off, 0, MOE_PHASE_PREFILL, (uint32_t)t0, (uint32_t)T, err)) ||
                moe_engine_forward(ec[k], ids + t0, T, lc, 1, NULL, err) || (off && moe_offload_step_end(off, err)))
                rc = -1;
            for (int t = 0; !rc && t < T; t++)
                moe_quality_add(&q[k], lf + (size_t)t * V, lc + (size_t)t * V, V, ids[t0 + t + 1]);
        }
    }
    free(lf), free(lc);
    return rc;
}

/* Free generation: the text's first P bytes as the prompt, then N greedy
 * bytes (the most probable; ties: the lower byte) into out[0..N). An
 * offloaded engine (off) runs the prompt in steps of MOE_ENGINE_MAX_STEP and
 * each generated byte as a step of its own, as sequence 1. */
static int generate(moe_engine *e, moe_offload *off, const int *prompt, int P, int N, int V, int *out,
                    double *decode_s, moe_error *err) {
    float *lg = malloc((size_t)V * sizeof *lg);
    if (!lg) return moe_fail(err, "out of memory");
    moe_engine_reset(e);
    int rc = 0, chunk = off ? MOE_ENGINE_MAX_STEP : QCHUNK;
    for (int p0 = 0; !rc && p0 < P; p0 += chunk) {
        int T = P - p0 < chunk ? P - p0 : chunk;
        rc = (off && moe_offload_step_begin(off, 1, MOE_PHASE_PREFILL, (uint32_t)p0, (uint32_t)T, err)) ||
             moe_engine_forward(e, prompt + p0, T, lg, 0, NULL, err) || (off && moe_offload_step_end(off, err));
    }
    double t0 = moe_engine_now();
    for (int i = 0; !rc && i < N; i++) {
        int best = 0;
        for (int v = 1; v < V; v++)
            if (lg[v] > lg[best]) best = v;
        out[i] = best;
        if (i + 1 < N) /* the last byte needs no forward pass */
            rc = (off && moe_offload_step_begin(off, 1, MOE_PHASE_DECODE, (uint32_t)(P + i), 1, err)) ||
                 moe_engine_forward(e, &best, 1, lg, 0, NULL, err) || (off && moe_offload_step_end(off, err));
    }
    *decode_s = moe_engine_now() - t0;
    free(lg);
    return rc ? -1 : 0;
}

/* What free generation measured for one constrained model. */
typedef struct gen_result {
    int on, n;            /* generated bytes (0: not asked) */
    int diverge;          /* first byte that differs from the full model's, n if none */
    double rep_full, rep; /* moe_repetition of the full and the constrained output */
    double tok_s_full, tok_s; /* decode speed measured: N - 1 forward passes over their wall time */
} gen_result;

/* Offloaded, the packs hold the experts at their precisions: the report
 * needs the plan's tiers only, so nothing is quantized in RAM. */
static moe_qexperts *tiers_only(const moe_model *m, const uint8_t *tier, moe_error *err) {
    size_t n = (size_t)m->cfg.n_moe_layers * m->cfg.n_experts;
    uint8_t *unquantized = malloc(n ? n : 1);
    if (!unquantized) return moe_fail(err, "out of memory"), NULL;
    memset(unquantized, MOE_PREC_F16, n);
    moe_qexperts *q = moe_qexperts_new(m, unquantized, err);
    if (q) memcpy(q->tier, tier, n);
    free(unquantized);
    return q;
}

/* Bytes of every routed expert at the scheme's precisions (HOBBIT holds two
 * copies of each), and how many experts are quantized. */
static uint64_t scheme_bytes(const moe_model *m, const moe_qexperts *qx, uint64_t *quantized) {
    uint64_t all = (uint64_t)qx->n_layers * qx->n_experts, bytes = 0;
    *quantized = 0;
    for (uint64_t i = 0; i < all; i++) {
        *quantized += moe_tier_bits(qx->tier[i]) != 0;
        bytes += moe_expert_bytes_at(m->cfg.hidden, m->cfg.expert_inter, qx->tier[i]);
        if (qx->dynamic) bytes += moe_expert_bytes_at(m->cfg.hidden, m->cfg.expert_inter, qx->low_tier);
    }
    return bytes;
}

/* One scheme's row: text (a table row) or a JSON line. */
static int print_row(int json, const char *text_path, size_t n, const moe_model *m, const moe_qexperts *qx,
                     const char *canonical, const char *precision, const moe_quality *q, const gen_result *g,
                     moe_error *err) {
    double P = (double)q->positions, d = (q->nll_con - q->nll_full) / P;
    uint64_t quantized, all = (uint64_t)qx->n_layers * qx->n_experts, bytes = scheme_bytes(m, qx, &quantized);
    uint64_t bytes16 = all * moe_expert_bytes_at(m->cfg.hidden, m->cfg.expert_inter, MOE_PREC_F16);
    if (!json) {
        printf("%6llu %8.2f %7.2fx %9.6f %+9.6f %9.6f %7.2f", (unsigned long long)quantized, bytes / 1048576.0,
               (double)bytes16 / (double)bytes, q->nll_con / P, d, q->kl / P, 100.0 * (double)q->top1_agree / P);
        if (g->on) printf(" %7d %6.3f %7.0f", g->diverge, g->rep, g->tok_s);
        printf("  %s\n", canonical);
        return 0;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "text", text_path);
    cJSON_AddNumberToObject(o, "bytes", (double)n);
    cJSON_AddNumberToObject(o, "positions", P);
    cJSON_AddStringToObject(o, "constraint", canonical);
    cJSON_AddStringToObject(o, "precision", precision);
    cJSON_AddNumberToObject(o, "experts_quantized", (double)quantized);
    cJSON_AddNumberToObject(o, "experts", (double)all);
    cJSON_AddNumberToObject(o, "expert_bytes", (double)bytes);
    cJSON_AddNumberToObject(o, "expert_bytes_16bit", (double)bytes16);
    cJSON_AddNumberToObject(o, "nats_per_byte_full", q->nll_full / P);
    cJSON_AddNumberToObject(o, "nats_per_byte", q->nll_con / P);
    cJSON_AddNumberToObject(o, "delta_nats_per_byte", d);
    cJSON_AddNumberToObject(o, "kl_mean", q->kl / P);
    cJSON_AddNumberToObject(o, "top1_agreement", (double)q->top1_agree / P);
    if (g->on) {
        cJSON_AddNumberToObject(o, "generated_bytes", g->n);
        cJSON_AddNumberToObject(o, "first_divergence", g->diverge);
        cJSON_AddNumberToObject(o, "repetition_full", g->rep_full);
        cJSON_AddNumberToObject(o, "repetition", g->rep);
        cJSON_AddNumberToObject(o, "tok_s_full", g->tok_s_full);
        cJSON_AddNumberToObject(o, "tok_s", g->tok_s);
    }
    char *s = cJSON_PrintUnformatted(o);
    if (s) puts(s);
    cJSON_free(s);
    cJSON_Delete(o);
    return s ? 0 : moe_fail(err, "out of memory");
}

/* The pinned set of --pin N --pin-profile TRACE as a cache state in a
 * temporary file (path out): per MoE layer the N experts the profile routes
 * to most (ties: the lower id; pin.c's rule), least used first. */
static int write_pin_state(const moe_model *m, const char *profile, uint32_t n_pin, char *out, size_t cap,
                           moe_error *err) {
    uint32_t L = (uint32_t)m->cfg.n_moe_layers, E = (uint32_t)m->cfg.n_experts;
    moe_trace *t = moe_trace_load(profile, err);
    if (!t) return moe_fail_prefix(err, "--pin-profile");
    double *freq = malloc((size_t)L * E * sizeof *freq);
    uint32_t *keys = malloc((size_t)L * E * sizeof *keys);
    size_t nk = 0;
    int rc = 0;
    if (!freq || !keys) rc = moe_fail(err, "out of memory");
    else if (t->n_layers != L || t->n_experts != E)
        rc = moe_fail(err, "--pin-profile %s: %u layers x %u experts, the model %u x %u", profile, t->n_layers,
                      t->n_experts, L, E);
    else rc = moe_precision_frequency(t, freq, err);
    if (n_pin > E) n_pin = E;
    for (uint32_t l = 0; !rc && l < L; l++) {
        /* ranks are distinct: the top n_pin, written from the least used up */
        for (uint32_t e = 0; e < E; e++) {
            uint32_t r = moe_precision_rank(freq + (size_t)l * E, E, e);
            if (r < n_pin) keys[nk + n_pin - 1 - r] = l * E + e;
        }
        nk += n_pin;
    }
    const char *tmp = getenv("TMPDIR");
    snprintf(out, cap, "%s/moesim-pin-%ld.state", tmp && *tmp ? tmp : "/tmp", (long)getpid());
    if (!rc) rc = moe_cache_state_save(out, L, E, keys, nk, err);
    if (rc) *out = 0;
    free(freq), free(keys);
    moe_trace_free(t);
    return rc;
}

/* The constraint with every profile=PATH written profile=P: the same
 * configuration on texts that each bring their own profile. */
static void configuration_of(const char *in, char *out, size_t cap) {
    size_t o = 0;
    for (const char *c = in; *c && o + 1 < cap;) {
        if (!strncmp(c, "profile=", 8)) {
            o += (size_t)snprintf(out + o, cap - o, "profile=P");
            c += 8;
            while (*c && *c != ',') c++;
        } else out[o++] = *c++;
    }
    out[o < cap ? o : cap - 1] = 0;
}

/* Store one row as a run of the results store: its trace is the text's
 * routing under the full model (so runs on one text share it), its
 * configuration says what was constrained, its metrics what it cost. */
static int store_row(moe_db *db, const char *experiment, const char *thash, const char *model, const char *text_path,
                     const char *canonical, const moe_offload_config *oc, int offloaded, int P, const moe_quality *q,
                     const gen_result *g, const moe_qexperts *qx, const moe_model *m, double seconds, moe_error *err) {
    char cfg[2048];
    char conf[600];
    configuration_of(canonical, conf, sizeof conf);
    int k = snprintf(cfg, sizeof cfg, "kind=quality\nmodel=%s\ntext=%s\nconstraint=%s\nconfiguration=%s\n", model,
                     text_path, canonical, conf);
    if (offloaded)
        k += snprintf(cfg + k, sizeof cfg - (size_t)k, "on_miss=%s\nprefetch=%s\nload_state=%s\nseed=%llu\n",
                      moe_on_miss_name(oc->on_miss), oc->prefetch ? oc->prefetch : "none",
                      oc->load_state ? oc->load_state : "none", (unsigned long long)oc->seed);
    if (g->on) snprintf(cfg + k, sizeof cfg - (size_t)k, "generate=%d\nprompt_bytes=%d\n", g->n, P);
    double Pn = (double)q->positions;
    uint64_t quantized, bytes = scheme_bytes(m, qx, &quantized);
    moe_metric mt[16];
    size_t n = 0;
    mt[n++] = (moe_metric){"delta_nats_per_byte", (q->nll_con - q->nll_full) / Pn};
    mt[n++] = (moe_metric){"kl_mean", q->kl / Pn};
    mt[n++] = (moe_metric){"top1_agreement", (double)q->top1_agree / Pn};
    mt[n++] = (moe_metric){"nats_per_byte", q->nll_con / Pn};
    mt[n++] = (moe_metric){"nats_per_byte_full", q->nll_full / Pn};
    mt[n++] = (moe_metric){"expert_bytes", (double)bytes};
    if (g->on) {
        mt[n++] = (moe_metric){"first_divergence", g->diverge};
        mt[n++] = (moe_metric){"repetition", g->rep};
        mt[n++] = (moe_metric){"repetition_full", g->rep_full};
        mt[n++] = (moe_metric){"tok_s", g->tok_s};
        mt[n++] = (moe_metric){"tok_s_full", g->tok_s_full};
    }
    moe_run_record rec = {.experiment = experiment ? experiment : "", .trace_hash = thash, .config_text = cfg,
                          .seconds = seconds, .metrics = mt, .n_metrics = n};
    return moe_db_store_run(db, &rec, err);
}

#define MAX_SCHEMES 16

int cmd_quality(int argc, char **argv);

/* --grid FILE (experiments/quality.ini documents the format): per [text
 * NAME] section one resident run with every [resident] precision scheme,
 * then one offloaded run per [offload] capacity x on_miss x pin, each a call
 * of this command with the options written out (and `pass`, the options
 * given beside --grid: --db, --experiment, --threads, --offload, --io). */
static int run_grid(const char *path, char **pass, int n_pass, moe_error *err) {
    moe_ini *ini = moe_ini_load(path, err);
    if (!ini) return -1;
    static const char *const kq[] = {"model", "generate", "prompt_bytes", NULL};
    static const char *const kt[] = {"file", "offset", "profile", NULL};
    static const char *const kr[] = {"precision", NULL};
    static const char *const ko[] = {"capacities", "on_miss", "pin", "prefetch", "policy", "low_pack", NULL};
    moe_str_list prec = {0}, caps = {0}, modes = {0}, pins = {0};
    int rc = moe_ini_check_keys(ini, "quality", kq, err) || moe_ini_check_keys(ini, "resident", kr, err) ||
             moe_ini_check_keys(ini, "offload", ko, err);
    const char *model = moe_ini_get(ini, "quality", "model"), *gen = moe_ini_get(ini, "quality", "generate");
    const char *pb = moe_ini_get(ini, "quality", "prompt_bytes"), *pf = moe_ini_get(ini, "offload", "prefetch");
    const char *pol = moe_ini_get(ini, "offload", "policy"), *low_pack = moe_ini_get(ini, "offload", "low_pack");
    const char *s;
    if (!rc && !model) rc = moe_fail(err, "%s: [quality] needs model = DIR", path);
    if (!rc && (s = moe_ini_get(ini, "resident", "precision"))) rc = moe_split_specs(s, "precision", &prec, err);
    if (!rc && (s = moe_ini_get(ini, "offload", "capacities"))) rc = moe_split_specs(s, "capacities", &caps, err);
    if (!rc && (s = moe_ini_get(ini, "offload", "on_miss"))) rc = moe_split_specs(s, "on_miss", &modes, err);
    if (!rc && (s = moe_ini_get(ini, "offload", "pin"))) rc = moe_split_specs(s, "pin", &pins, err);
    if (!rc && prec.n > MAX_SCHEMES) rc = moe_fail(err, "%s: [resident] at most %d precision schemes", path, MAX_SCHEMES);
    int texts = 0, failed = 0;
    for (size_t i = 0; !rc && i < ini->n_sections; i++) {
        const char *sec = ini->sections[i].name;
        if (strncmp(sec, "text ", 5)) {
            if (strcmp(sec, "quality") && strcmp(sec, "resident") && strcmp(sec, "offload"))
                rc = moe_fail(err, "%s:%u: unknown section [%s] (quality, text NAME, resident, offload)", path,
                              ini->sections[i].line, sec);
            continue;
        }
        if ((rc = moe_ini_check_keys(ini, sec, kt, err))) break;
        const char *file = moe_ini_get(ini, sec, "file"), *off = moe_ini_get(ini, sec, "offset");
        const char *profile = moe_ini_get(ini, sec, "profile");
        if (!file) {
            rc = moe_fail(err, "%s:%u: [%s] needs file = PATH", path, ini->sections[i].line, sec);
            break;
        }
        texts++;
        /* argv: fixed part, then the run's own options */
        char val[MAX_SCHEMES + 16][1400];
        char *av[96];
        int nv = 0;
        int runs = prec.n ? 1 : 0;
        runs += (int)(caps.n * (modes.n ? modes.n : 1) * (pins.n ? pins.n : 1));
        for (int r = 0; r < runs && !rc; r++) {
            int ac = 0;
            nv = 0;
            av[ac++] = "quality";
            av[ac++] = "--model", av[ac++] = (char *)model;
            av[ac++] = "--text-file", av[ac++] = (char *)file;
            if (off) av[ac++] = "--text-offset", av[ac++] = (char *)off;
            if (gen) av[ac++] = "--generate", av[ac++] = (char *)gen;
            if (pb) av[ac++] = "--prompt-bytes", av[ac++] = (char *)pb;
            int offloaded = !(prec.n && r == 0);
            for (int k = 0; k < n_pass; k++)
                if (offloaded || (strcmp(pass[k], "--offload") && strcmp(pass[k], "--io") &&
                                  (k == 0 || (strcmp(pass[k - 1], "--offload") && strcmp(pass[k - 1], "--io")))))
                    av[ac++] = pass[k];
            if (!offloaded) {
                for (size_t j = 0; j < prec.n; j++) {
                    if (strstr(prec.v[j], "{profile}") && !profile) {
                        rc = moe_fail(err, "%s: [%s] has no profile = TRACE for %s", path, sec, prec.v[j]);
                        break;
                    }
                    cli_subst(prec.v[j], "{profile}", profile ? profile : "", val[nv], sizeof val[nv]);
                    av[ac++] = "--precision", av[ac++] = val[nv++];
                }
            } else {
                int o = r - (prec.n ? 1 : 0), np = pins.n ? (int)pins.n : 1, nm = modes.n ? (int)modes.n : 1;
                const char *pin = pins.n ? pins.v[o % np] : "0", *mode = modes.n ? modes.v[(o / np) % nm] : "wait";
                av[ac++] = "--capacity", av[ac++] = caps.v[o / (np * nm)];
                av[ac++] = "--on-miss", av[ac++] = (char *)mode;
                if (pf) av[ac++] = "--prefetch", av[ac++] = (char *)pf;
                if (pol) av[ac++] = "--policy", av[ac++] = (char *)pol;
                if (strcmp(pin, "0")) {
                    if (!profile) {
                        rc = moe_fail(err, "%s: [%s] has no profile = TRACE to pin from", path, sec);
                        break;
                    }
                    av[ac++] = "--pin", av[ac++] = (char *)pin;
                    av[ac++] = "--pin-profile", av[ac++] = (char *)profile;
                }
                const char *packs = "auto";
                for (int k = 0; k + 1 < n_pass; k++)
                    if (!strcmp(pass[k], "--offload")) packs = pass[k + 1];
                if (!strncmp(mode, "lowbit", 6)) { /* the low copies' pack beside the one read */
                    if (!low_pack) {
                        rc = moe_fail(err, "%s: [offload] on_miss %s needs low_pack = PATH (a quantized pack: "
                                           "`moesim model pack DIR --dtype q2`)", path, mode);
                        break;
                    }
                    char base[1024];
                    moe_offload_opts bo;
                    moe_offload_opts_init(&bo);
                    bo.pack = packs;
                    if ((rc = moe_offload_pack_path(&bo, model, base, sizeof base, err))) break;
                    snprintf(val[nv], sizeof val[nv], "%s,%s", base, low_pack);
                    av[ac++] = "--offload", av[ac++] = val[nv++];
                } else if (!strcmp(packs, "auto")) {
                    av[ac++] = "--offload", av[ac++] = "auto";
                }
            }
            av[ac] = NULL;
            if (rc) break;
            fprintf(stderr, "moesim quality: [%s] run %d of %d\n", sec, r + 1, runs);
            fflush(stdout);
            if (cmd_quality(ac, av)) failed++;
        }
    }
    if (!rc && !texts) rc = moe_fail(err, "%s: no [text NAME] sections", path);
    if (!rc && failed) rc = moe_fail(err, "%s: %d run(s) failed (said above)", path, failed);
    moe_str_list_free(&prec), moe_str_list_free(&caps), moe_str_list_free(&modes), moe_str_list_free(&pins);
    moe_ini_free(ini);
    return rc;
}

int cmd_quality(int argc, char **argv) {
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'},     {"text-file", required_argument, 0, 'f'},
        {"precision", required_argument, 0, 'p'}, {"threads", required_argument, 0, 'j'},
        {"json", no_argument, 0, 'J'},            {"help", no_argument, 0, 'h'},
        {"generate", required_argument, 0, 'g'},  {"prompt-bytes", required_argument, 0, 'P'},
        {"db", required_argument, 0, 'D'},        {"experiment", required_argument, 0, 'E'},
        {"text-offset", required_argument, 0, 'O'}, {"pin", required_argument, 0, 'N'},
        {"pin-profile", required_argument, 0, 'R'},  {"grid", required_argument, 0, 'G'},
        MOE_OFFLOAD_LONGOPTS,                     {"seed", required_argument, 0, 'X'},
        {0, 0, 0, 0},
    };
    const char *model = NULL, *text_path = NULL, *spec[MAX_SCHEMES], *db_path = NULL, *experiment = NULL;
    int ns = 0;
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    uint64_t threads = ncpu > 0 ? (uint64_t)ncpu : 1;
    int json = 0, c, idx = 0;
    uint64_t gen_n = 0, prompt_bytes = 24; /* 24 + 1000 generated: the tiny model's 1024 positions */
    uint64_t text_offset = 0, pin_n = 0;
    const char *pin_profile = NULL, *grid = NULL;
    moe_error err = {{0}};
    moe_offload_opts off;
    moe_offload_opts_init(&off);
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, &idx)) != -1) {
        switch (c) {
        case 'X':
            if (moe_offload_opt_set(&off, opts[idx].name, optarg, &err)) return cli_error("quality", &err);
            /* the reference engine runs the same model resident */
            if (off.stream_dense || off.dense_pack) {
                moe_fail(&err, "--%s: quality compares against a resident run of the same model; streaming the dense "
                               "weights changes no number (infer and ppl give it bit for bit)", opts[idx].name);
                return cli_error("quality", &err);
            }
            break;
        case 'm': model = optarg; break;
        case 'f': text_path = optarg; break;
        case 'p':
            if (ns == MAX_SCHEMES) {
                moe_fail(&err, "--precision: at most %d schemes in one run", MAX_SCHEMES);
                return cli_error("quality", &err);
            }
            spec[ns++] = optarg;
            break;
        case 'J': json = 1; break;
        case 'D': db_path = optarg; break;
        case 'O':
            if (cli_parse_u64("--text-offset", optarg, 1u << 30, &text_offset, &err)) return cli_error("quality", &err);
            break;
        case 'N':
            if (cli_parse_u64("--pin", optarg, 65534, &pin_n, &err)) return cli_error("quality", &err);
            break;
        case 'R': pin_profile = optarg; break;
        case 'G': grid = optarg; break;
        case 'E': experiment = optarg; break;
        case 'g':
            if (cli_parse_u64("--generate", optarg, 1u << 20, &gen_n, &err)) return cli_error("quality", &err);
            break;
        case 'P':
            if (cli_parse_u64("--prompt-bytes", optarg, 1u << 20, &prompt_bytes, &err)) return cli_error("quality", &err);
            if (!prompt_bytes) {
                moe_fail(&err, "--prompt-bytes: at least 1");
                return cli_error("quality", &err);
            }
            break;
        case 'j':
            if (cli_parse_u64("--threads", optarg, 256, &threads, &err)) return cli_error("quality", &err);
            if (!threads) threads = 1;
            break;
        case 'h': printf(quality_usage, moe_offload_opts_help); return 0;
        default: fprintf(stderr, quality_usage, moe_offload_opts_help); return 2;
        }
    }
    if (grid) {
        /* only the options that apply to every run travel with --grid */
        char *pass[16];
        int np = 0;
        for (int i = 1; i < argc; i++) {
            const char *a = argv[i];
            int val = !strcmp(a, "--db") || !strcmp(a, "--experiment") || !strcmp(a, "--threads") ||
                      !strcmp(a, "--offload") || !strcmp(a, "--io");
            if (!strcmp(a, "--grid")) {
                i++;
                continue;
            }
            if (!strncmp(a, "--grid=", 7)) continue;
            if ((!val && strcmp(a, "--json")) || (val && i + 1 >= argc) || np + 2 > 16) {
                fprintf(stderr, "moesim quality: with --grid, the file says what to run; give only --db, "
                                "--experiment, --threads, --offload, --io, --json (not '%s')\n", a);
                return 2;
            }
            pass[np++] = argv[i];
            if (val) pass[np++] = argv[++i];
        }
        if (run_grid(grid, pass, np, &err)) return cli_error("quality", &err);
        return 0;
    }
    if (optind < argc || !model || !text_path) {
        fprintf(stderr, "moesim quality: --model and --text-file are required\n");
        fprintf(stderr, quality_usage, moe_offload_opts_help);
        return 2;
    }
    if (!off.pack && off.n_set) {
        fprintf(stderr, "moesim quality: --%s applies to offloaded runs: add --offload PACK|auto\n", off.first_set);
        return 2;
    }
    if ((pin_n || pin_profile) && !(pin_n && pin_profile && off.pack)) {
        moe_fail(&err, "--pin N and --pin-profile TRACE go together, with --offload");
        return cli_error("quality", &err);
    }
    if (pin_n && strcmp(off.policy, "lru")) {
        moe_fail(&err, "--pin sets the policy (pin:n=N,profile=TRACE, LRU for the rest): drop --policy %s", off.policy);
        return cli_error("quality", &err);
    }
    if (off.pack && ns > 1) {
        moe_fail(&err, "--offload runs one --precision scheme (it picks each expert's pack); compare several "
                       "resident (without --offload)");
        return cli_error("quality", &err);
    }
    if (off.pack && ns) off.precision = spec[0]; /* each expert read from the pack of its tier */
    if (!ns) spec[ns++] = "uniform:bits=16";
    /* every scheme is checked before anything is loaded */
    char canonical[MAX_SCHEMES][512];
    int need_oracle = 0;
    for (int k = 0; k < ns; k++) {
        if (moe_precision_canonical(spec[k], canonical[k], sizeof canonical[k], &err)) {
            moe_fail_prefix(&err, "--precision %s", spec[k]);
            return cli_error("quality", &err);
        }
        need_oracle |= strstr(canonical[k], "profile=oracle") != NULL;
    }
    size_t n = 0;
    unsigned char *text = moe_backend_read_file(text_path, &n, &err);
    if (!text) return cli_error("quality", &err);
    if (text_offset >= n && text_offset) {
        free(text);
        moe_fail(&err, "%s: --text-offset %llu is past its %zu bytes", text_path, (unsigned long long)text_offset, n);
        return cli_error("quality", &err);
    }
    memmove(text, text + text_offset, n - text_offset); /* the part held out from any profile */
    n -= text_offset;
    if (n < 2 || n > (1u << 24)) {
        free(text);
        moe_fail(&err, "%s: %zu bytes; between 2 and 16 MiB are compared", text_path, n);
        return cli_error("quality", &err);
    }
    moe_model *m = moe_model_load(model, &err);
    if (!m) {
        free(text);
        return cli_error("quality", &err);
    }
    int rc = 1, V = m->cfg.vocab, P = (int)prompt_bytes, N = (int)gen_n;
    int ctx = gen_n && P + N > (int)n ? P + N : (int)n;
    int *ids = moe_tok_encode_bytes(text, n);
    moe_engine *ef = NULL, *ec[MAX_SCHEMES] = {0};
    moe_trace *oracle = NULL;
    moe_qexperts *qx[MAX_SCHEMES] = {0};
    moe_precision_plan plan = {0};
    moe_quality q[MAX_SCHEMES];
    moe_offload *ol = NULL;
    moe_offload_config oc = {0};
    char pin_policy[1200], pin_state[600] = "";
    double t_start = moe_engine_now();
    /* the plans need the geometry, and an oracle profile the text's routing */
    moe_trace geom = {.n_layers = (uint32_t)m->cfg.n_moe_layers, .n_experts = (uint32_t)m->cfg.n_experts};
    if (!moe_tok_is_bytes(V)) moe_fail(&err, "%s: vocabulary of %d is not byte-level", model, V);
    else if (!ids) moe_fail(&err, "out of memory");
    else if (gen_n && prompt_bytes > n)
        moe_fail(&err, "--prompt-bytes %llu: the text has %zu bytes", (unsigned long long)prompt_bytes, n);
    else if ((ef = moe_engine_new(m, (int)threads, ctx, &err)) &&
             (!need_oracle || (oracle = capture_text(ef, m, ids, (int)n, &err)))) {
        int ok = 1;
        for (int k = 0; k < ns && ok; k++) {
            ok = !moe_precision_plan_new(spec[k], oracle ? oracle : &geom, &plan, &err) &&
                 (qx[k] = off.pack      ? tiers_only(m, plan.tier, &err)
                          : plan.dynamic ? moe_qexperts_new_hobbit(m, plan.high, plan.low, plan.hi, plan.lo, &err)
                                         : moe_qexperts_new(m, plan.tier, &err)) &&
                 (ec[k] = moe_engine_new(m, (int)threads, ctx, &err)) &&
                 !moe_engine_set_quantized(ec[k], qx[k], &err);
            if (ok && off.pack && plan.dynamic) /* the report counts HOBBIT's two copies (the packs hold them) */
                qx[k]->dynamic = 1, qx[k]->low_tier = plan.low;
            moe_precision_plan_free(&plan);
            if (!ok) moe_fail_prefix(&err, "--precision %s", canonical[k]);
        }
        if (ok && off.pack) { /* the constrained engine streams its experts */
            char pack[2048];
            if (pin_n) { /* flash-moe's universal experts: pinned, and resident from the start */
                snprintf(pin_policy, sizeof pin_policy, "pin:n=%llu,profile=%s", (unsigned long long)pin_n, pin_profile);
                off.policy = pin_policy;
                ok = !write_pin_state(m, pin_profile, (uint32_t)pin_n, pin_state, sizeof pin_state, &err);
                if (ok) off.load_state = pin_state;
            }
            ok = ok && !moe_offload_pack_path(&off, model, pack, sizeof pack, &err) &&
                 !moe_offload_config_of(&off, pack, m, &oc, &err);
            /* the teacher-forced text, then the generation (its own sequence) */
            oc.max_tokens = (uint32_t)(n - 1) + (N ? (uint32_t)(P + N) : 0);
            oc.max_steps = (uint32_t)((n - 1 + MOE_ENGINE_MAX_STEP - 1) / MOE_ENGINE_MAX_STEP) +
                           (N ? (uint32_t)((P + MOE_ENGINE_MAX_STEP - 1) / MOE_ENGINE_MAX_STEP + N) : 0);
            ok = ok && (ol = moe_offload_new(m, &oc, &err)) &&
                 !moe_engine_set_expert_source(ec[0], moe_offload_source(ol), &err);
            if (ok) oc.on_miss = moe_offload_on_miss(ol); /* lowbit: with its bits */
            int pack_bits = ok ? moe_pack_dtype_bits(moe_offload_pack_dtype(ol)) : 0;
            if (pack_bits && !off.precision) /* the report's tiers (bytes, experts quantized); the source computes */
                memset(qx[0]->tier, moe_prec_of_bits(pack_bits), (size_t)qx[0]->n_layers * qx[0]->n_experts);
            if (ok)
                snprintf(canonical[0], sizeof canonical[0], "offload %s, capacity %u%s, on-miss %s%s%s%s%s",
                         moe_offload_policy(ol), oc.capacity, oc.global ? " in all" : " per layer",
                         moe_on_miss_name(oc.on_miss), off.skip ? ", skip " : "", off.skip ? off.skip : "",
                         off.precision ? ", precision " : pack_bits ? ", pack " : "",
                         off.precision ? off.precision : pack_bits ? moe_pack_dtype_name(moe_offload_pack_dtype(ol)) : "");
        }
        const moe_offload_stats *st;
        gen_result g[MAX_SCHEMES] = {{0}};
        int *gf = N ? malloc((size_t)N * sizeof *gf) : NULL, *gc = N ? malloc((size_t)N * sizeof *gc) : NULL;
        if (N && (!gf || !gc)) ok = 0, moe_fail(&err, "out of memory");
        ok = ok && !compare(ef, ec, ns, ol, ids, (int)n, V, q, &err);
        if (ok && N) { /* free generation: the full model's output once, each constrained one against it */
            double sf = 0, sc = 0;
            ok = !generate(ef, NULL, ids, P, N, V, gf, &sf, &err);
            for (int k = 0; ok && k < ns; k++) {
                ok = !generate(ec[k], ol, ids, P, N, V, gc, &sc, &err);
                g[k] = (gen_result){.on = 1, .n = N, .diverge = N, .rep_full = moe_repetition(gf, N, MOE_REPETITION_GRAM),
                                    .rep = moe_repetition(gc, N, MOE_REPETITION_GRAM),
                                    .tok_s_full = sf > 0 ? (N - 1) / sf : 0, .tok_s = sc > 0 ? (N - 1) / sc : 0};
                for (int i = 0; i < N && g[k].diverge == N; i++)
                    if (gf[i] != gc[i]) g[k].diverge = i;
            }
        }
        free(gf), free(gc);
        if (ok && (!ol || !moe_offload_finish(ol, &st, &err))) {
            if (ol) moe_offload_print_cache(stderr, "quality", moe_offload_policy(ol), &oc, st);
            if (!json) {
                printf("text %s: %zu bytes, %llu predictions; full model %.6f nats/byte", text_path, n,
                       (unsigned long long)q[0].positions, q[0].nll_full / (double)q[0].positions);
                if (N)
                    printf("; %d bytes generated after %d: full model's repetition %.3f, %.0f tok/s", N, P, g[0].rep_full,
                           g[0].tok_s_full);
                printf("\n%6s %8s %8s %9s %9s %9s %7s", "quant", "MiB", "smaller", "nats/B", "delta", "kl_mean", "top1 %");
                if (N) printf(" %7s %6s %7s", "diverge", "rep", "tok/s");
                printf("  %s\n", "constraint");
            }
            rc = 0;
            char pack_precision[32] = "uniform:bits=16";
            if (ol && moe_pack_dtype_bits(moe_offload_pack_dtype(ol)))
                snprintf(pack_precision, sizeof pack_precision, "uniform:bits=%d",
                         moe_pack_dtype_bits(moe_offload_pack_dtype(ol)));
            if (db_path) { /* stored first: a row printed is a row kept */
                moe_db *db = moe_db_open(db_path, &err);
                char thash[65];
                if (!db || (!oracle && !(oracle = capture_text(ef, m, ids, (int)n, &err))) ||
                    moe_db_add_trace(db, oracle, text_path, thash, &err))
                    rc = -1;
                for (int k = 0; k < ns && !rc; k++)
                    rc = store_row(db, experiment, thash, m->name, text_path, canonical[k], &oc, ol != NULL, P, &q[k],
                                   &g[k], qx[k], m, moe_engine_now() - t_start, &err);
                if (db && moe_db_close(db, rc ? NULL : &err)) rc = -1;
            }
            for (int k = 0; k < ns && !rc; k++) rc = print_row(json, text_path, n, m, qx[k], canonical[k], ol && !off.precision ? pack_precision : ol ? off.precision : canonical[k], &q[k], &g[k],
                               &err);
        }
    }
    if (rc) cli_error("quality", &err);
    if (*pin_state) unlink(pin_state);
    moe_offload_free(ol);
    moe_engine_free(ef);
    for (int k = 0; k < ns; k++) moe_engine_free(ec[k]), moe_qexperts_free(qx[k]);
    moe_trace_free(oracle);
    moe_model_free(m);
    free(ids), free(text);
    return rc;
}

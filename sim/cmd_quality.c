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
#include "../core/precision.h"
#include "cli.h"
#include "commands.h"

static const char quality_usage[] =
    "usage: moesim quality --model DIR --text-file F [--precision SPEC] [--threads N] [--json]\n"
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
    "                     and bias (backend/quant.h). 16 and 32 bits keep the model's\n"
    "                     own weights. Default uniform:bits=16 (no change)\n"
    "  --threads N        worker threads (default: online CPUs)\n"
    "  --json             one JSON object instead of the table\n"
    "  -h, --help         this text\n";

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

/* Both engines over the text, chunk by chunk, comparing every position. */
static int compare(moe_engine *ef, moe_engine *ec, const int *ids, int n, int V, moe_quality *q, moe_error *err) {
    float *lf = malloc((size_t)QCHUNK * V * sizeof *lf), *lc = malloc((size_t)QCHUNK * V * sizeof *lc);
    int rc = 0;
    if (!lf || !lc) rc = moe_fail(err, "out of memory");
    moe_engine_reset(ef);
    moe_engine_reset(ec);
    memset(q, 0, sizeof *q);
    for (int t0 = 0; !rc && t0 < n - 1; t0 += QCHUNK) {
        int T = n - 1 - t0 < QCHUNK ? n - 1 - t0 : QCHUNK;
        if (moe_engine_forward(ef, ids + t0, T, lf, 1, NULL, err) || moe_engine_forward(ec, ids + t0, T, lc, 1, NULL, err))
            rc = -1;
        for (int t = 0; !rc && t < T; t++)
            moe_quality_add(q, lf + (size_t)t * V, lc + (size_t)t * V, V, ids[t0 + t + 1]);
    }
    free(lf), free(lc);
    return rc;
}

int cmd_quality(int argc, char **argv) {
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'},     {"text-file", required_argument, 0, 'f'},
        {"precision", required_argument, 0, 'p'}, {"threads", required_argument, 0, 'j'},
        {"json", no_argument, 0, 'J'},            {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    const char *model = NULL, *text_path = NULL, *spec = "uniform:bits=16";
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    uint64_t threads = ncpu > 0 ? (uint64_t)ncpu : 1;
    int json = 0, c;
    moe_error err = {{0}};
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'm': model = optarg; break;
        case 'f': text_path = optarg; break;
        case 'p': spec = optarg; break;
        case 'J': json = 1; break;
        case 'j':
            if (cli_parse_u64("--threads", optarg, 256, &threads, &err)) return cli_error("quality", &err);
            if (!threads) threads = 1;
            break;
        case 'h': fputs(quality_usage, stdout); return 0;
        default: fputs(quality_usage, stderr); return 2;
        }
    }
    if (optind < argc || !model || !text_path) {
        fprintf(stderr, "moesim quality: --model and --text-file are required\n%s", quality_usage);
        return 2;
    }
    /* the scheme is checked before anything is loaded */
    char canonical[512];
    if (moe_precision_canonical(spec, canonical, sizeof canonical, &err)) {
        moe_fail_prefix(&err, "--precision");
        return cli_error("quality", &err);
    }
    if (!strncmp(canonical, "hobbit", 6)) {
        moe_fail(&err, "--precision %s: HOBBIT chooses a precision per token; the backend runs per-expert "
                       "schemes only (uniform, mlx-tiers, hot-cold)", canonical);
        return cli_error("quality", &err);
    }
    size_t n = 0;
    unsigned char *text = moe_backend_read_file(text_path, &n, &err);
    if (!text) return cli_error("quality", &err);
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
    int rc = 1, V = m->cfg.vocab;
    int *ids = moe_tok_encode_bytes(text, n);
    moe_engine *ef = NULL, *ec = NULL;
    moe_trace *oracle = NULL;
    moe_qexperts *qx = NULL;
    moe_precision_plan plan = {0};
    moe_quality q;
    if (!moe_tok_is_bytes(V)) moe_fail(&err, "%s: vocabulary of %d is not byte-level", model, V);
    else if (!ids) moe_fail(&err, "out of memory");
    else if ((ef = moe_engine_new(m, (int)threads, (int)n, &err)) && (ec = moe_engine_new(m, (int)threads, (int)n, &err))) {
        /* the plan needs the geometry, and for an oracle profile the text's routing */
        moe_trace geom = {.n_layers = (uint32_t)m->cfg.n_moe_layers, .n_experts = (uint32_t)m->cfg.n_experts};
        int need_oracle = strstr(canonical, "profile=oracle") != NULL;
        if ((!need_oracle || (oracle = capture_text(ef, m, ids, (int)n, &err))) &&
            !moe_precision_plan_new(spec, oracle ? oracle : &geom, &plan, &err) &&
            (qx = moe_qexperts_new(m, plan.tier, &err)) && !moe_engine_set_quantized(ec, qx, &err) &&
            !compare(ef, ec, ids, (int)n, V, &q, &err)) {
            double P = (double)q.positions, d = (q.nll_con - q.nll_full) / P;
            uint64_t quantized = 0, all = (uint64_t)qx->n_layers * qx->n_experts;
            for (uint64_t i = 0; i < all; i++) quantized += moe_tier_bits(qx->tier[i]) != 0;
            if (json) {
                cJSON *o = cJSON_CreateObject();
                cJSON_AddStringToObject(o, "text", text_path);
                cJSON_AddNumberToObject(o, "bytes", (double)n);
                cJSON_AddNumberToObject(o, "positions", P);
                cJSON_AddStringToObject(o, "precision", plan.canonical);
                cJSON_AddNumberToObject(o, "experts_quantized", (double)quantized);
                cJSON_AddNumberToObject(o, "experts", (double)all);
                cJSON_AddNumberToObject(o, "packed_bytes", (double)qx->packed_bytes);
                cJSON_AddNumberToObject(o, "nats_per_byte_full", q.nll_full / P);
                cJSON_AddNumberToObject(o, "nats_per_byte", q.nll_con / P);
                cJSON_AddNumberToObject(o, "delta_nats_per_byte", d);
                cJSON_AddNumberToObject(o, "kl_mean", q.kl / P);
                cJSON_AddNumberToObject(o, "top1_agreement", (double)q.top1_agree / P);
                char *s = cJSON_PrintUnformatted(o);
                if (s) puts(s);
                else moe_fail(&err, "out of memory");
                cJSON_free(s);
                cJSON_Delete(o);
                if (!s) goto done;
            }
            else
                printf("text                 %s (%zu bytes, %llu predictions)\n"
                       "precision            %s (%llu of %llu experts quantized, %.2f MiB packed)\n"
                       "nats_per_byte        %.6f full, %.6f constrained\n"
                       "delta_nats_per_byte  %+.6f\n"
                       "kl_mean              %.6f nats\n"
                       "top1_agreement       %.2f %%\n",
                       text_path, n, (unsigned long long)q.positions, plan.canonical, (unsigned long long)quantized,
                       (unsigned long long)all, qx->packed_bytes / 1048576.0, q.nll_full / P, q.nll_con / P, d,
                       q.kl / P, 100.0 * (double)q.top1_agree / P);
            rc = 0;
        }
    }
done:
    if (rc) cli_error("quality", &err);
    moe_engine_free(ef), moe_engine_free(ec);
    moe_qexperts_free(qx);
    moe_precision_plan_free(&plan);
    moe_trace_free(oracle);
    moe_model_free(m);
    free(ids), free(text);
    return rc;
}

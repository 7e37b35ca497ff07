/* cmd_ppl.c: `moesim ppl` — perplexity of a text file, per byte of text. */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../backend/engine.h"
#include "../backend/nll.h"
#include "../backend/readfile.h"
#include "../backend/tokenizer.h"
#include "cli.h"
#include "offload_opts.h"
#include "offload_run.h"
#include "commands.h"

static const char ppl_usage[] =
    "usage: moesim ppl --model DIR --text-file F [--threads N] [--offload PACK|auto --capacity C ...]\n"
    "\n"
    "Perplexity of a text: the whole file is one sequence from position 0; the\n"
    "negative log-likelihood of tokens 1..N-1, each given all tokens before it, is\n"
    "summed and divided by the bytes of text those tokens cover. Prints nats per\n"
    "byte and ppl = exp(nats per byte), so models with different tokenizers compare.\n"
    "Tokens: DIR/tokenizer.json when present (with the special tokens its template\n"
    "adds, e.g. a BOS; then also tokens and nats_per_token), else one per byte\n"
    "(byte-level models, 256 tokens).\n"
    "\n"
    "  --model DIR      model directory (config.json + model.safetensors or its\n"
    "                   shards, optional tokenizer.json)\n"
    "  --text-file F    the text\n"
    "  --threads N      worker threads (default: online CPUs)\n"
    "  -h, --help       this text\n"
    "\n"
    "%s"
    "Offloaded, the text runs in steps of 32 tokens (one sequence, prefill) and the result\n"
    "is the resident one, digit for digit; stderr gets what the cache did.\n";

/* Bytes of text the first token stands for: it is not predicted, so they
 * are not in the per-byte average. None when the tokenizer's template put
 * it there (a BOS); else its decoded bytes (one for byte-level models). */
static size_t first_token_bytes(const moe_tokenizer *tok, int id, int n_lead) {
    if (n_lead > 0) return 0;
    moe_detok d;
    const char *p;
    size_t len = 0;
    moe_detok_init(&d, tok);
    if (moe_detok_next(&d, id, &p, &len) != 0) len = 0;
    moe_detok_free(&d);
    return len;
}

/* Step brackets of an offloaded run (nll.h). */
static int ppl_begin(void *ctx, int pos0, int n, moe_error *err) {
    return moe_offload_step_begin(ctx, 0, MOE_PHASE_PREFILL, (uint32_t)pos0, (uint32_t)n, err);
}
static int ppl_end(void *ctx, moe_error *err) { return moe_offload_step_end(ctx, err); }

int cmd_ppl(int argc, char **argv) {
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'},
        {"text-file", required_argument, 0, 'f'},
        {"threads", required_argument, 0, 'j'},
        {"help", no_argument, 0, 'h'},
        MOE_OFFLOAD_LONGOPTS,
        {"seed", required_argument, 0, 'X'},
        {0, 0, 0, 0},
    };
    const char *model = NULL, *text_path = NULL;
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    uint64_t threads = ncpu > 0 ? (uint64_t)ncpu : 1;
    moe_error err = {{0}};
    moe_offload_opts off;
    moe_offload_opts_init(&off);
    int c, idx = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, &idx)) != -1) {
        switch (c) {
        case 'X':
            if (moe_offload_opt_set(&off, opts[idx].name, optarg, &err)) return cli_error("ppl", &err);
            break;
        case 'm': model = optarg; break;
        case 'f': text_path = optarg; break;
        case 'j':
            if (cli_parse_u64("--threads", optarg, 256, &threads, &err)) return cli_error("ppl", &err);
            if (!threads) threads = 1;
            break;
        case 'h': printf(ppl_usage, moe_offload_opts_help); return 0;
        default: fprintf(stderr, ppl_usage, moe_offload_opts_help); return 2;
        }
    }
    if (optind < argc || !model || !text_path) {
        fprintf(stderr, "moesim ppl: --model and --text-file are required\n");
        fprintf(stderr, ppl_usage, moe_offload_opts_help);
        return 2;
    }
    if (!off.pack && off.n_set) {
        fprintf(stderr, "moesim ppl: --%s applies to offloaded runs: add --offload PACK|auto\n", off.first_set);
        return 2;
    }
    size_t n = 0;
    unsigned char *text = moe_backend_read_file(text_path, &n, &err);
    if (!text) return cli_error("ppl", &err);
    if (n > (1u << 30)) {
        free(text);
        moe_fail(&err, "%s: too large", text_path);
        return cli_error("ppl", &err);
    }
    moe_model *m = moe_model_load_ex(model, off.pack ? moe_offload_load_flags(&off) : 0, &err);
    if (!m) {
        free(text);
        return cli_error("ppl", &err);
    }
    int rc = 1, V = m->cfg.vocab, n_ids = 0, n_lead = 0;
    int *ids = NULL;
    size_t covered = 0; /* bytes of text the predicted tokens stand for */
    moe_tokenizer *tok = moe_tokenizer_open(model, V, &err);
    if (!tok && !err.msg[0])
        moe_fail(&err, "%s: no tokenizer.json, and a vocabulary of %d is not byte-level", model, V);
    else if (tok && !moe_tokenizer_encode(tok, text, n, 1, &ids, &n_ids, &n_lead, &err)) {
        if (n_ids < 2) moe_fail(&err, "%s: %zu bytes make %d token%s; at least 2 are needed", text_path, n, n_ids, n_ids == 1 ? "" : "s");
        else if (!(covered = n - first_token_bytes(tok, ids[0], n_lead)))
            moe_fail(&err, "%s: the first token covers the whole text; no byte of it is predicted", text_path);
    }
    moe_engine *eng = NULL;
    moe_offload *ol = NULL;
    moe_offload_config oc;
    moe_step_hooks hooks = {.max_step = MOE_ENGINE_MAX_STEP, .begin = ppl_begin, .end = ppl_end};
    char pack[2048], dense[2048];
    double nll;
    if (ids && !err.msg[0]) eng = moe_engine_new(m, (int)threads, n_ids - 1, &err);
    if (eng && off.pack) {
        if (moe_offload_pack_path(&off, model, pack, sizeof pack, &err) ||
            moe_offload_dense_path(&off, model, dense, sizeof dense, &err) ||
            moe_offload_config_of(&off, pack, m, &oc, &err)) {
            moe_engine_free(eng);
            eng = NULL;
        } else {
            oc.dense_pack = dense;
            oc.max_tokens = (uint32_t)(n_ids - 1);
            oc.max_steps = (uint32_t)((n_ids - 1 + MOE_ENGINE_MAX_STEP - 1) / MOE_ENGINE_MAX_STEP);
            if (!(ol = moe_offload_new(m, &oc, &err)) ||
                moe_engine_set_expert_source(eng, moe_offload_source(ol), &err)) {
                moe_engine_free(eng);
                eng = NULL;
            }
            hooks.ctx = ol;
        }
    }
    if (eng) {
        if (n_ids - 1 > m->cfg.max_pos)
            fprintf(stderr, "moesim ppl: warning: %d tokens exceed max_position_embeddings (%d)\n", n_ids - 1, m->cfg.max_pos);
        const moe_offload_stats *st;
        if (!moe_sequence_nll_hooked(eng, ids, n_ids, ol ? &hooks : NULL, &nll, &err) &&
            (!ol || (!moe_offload_finish(ol, &st, &err) &&
                     (!off.save_state || !moe_offload_save_state(ol, off.save_state, &err)) &&
                     (!off.steps_out || !moe_offload_write_steps(off.steps_out, st, NULL, &err))))) {
            double npb = nll / (double)covered;
            printf("bytes %zu\n", n);
            if (strcmp(moe_tokenizer_kind(tok), "bytes"))
                printf("tokens %d\nnats_per_token %.6f\n", n_ids, nll / (double)(n_ids - 1));
            printf("nats_per_byte %.6f\nppl %.6f\n", npb, exp(npb));
            if (ol) moe_offload_print_cache(stderr, "ppl", moe_offload_policy(ol), &oc, st);
            rc = 0;
        }
    }
    if (rc) cli_error("ppl", &err);
    moe_engine_free(eng);
    moe_offload_free(ol);
    moe_model_free(m);
    moe_tokenizer_free(tok);
    free(ids);
    free(text);
    return rc;
}

/* cmd_infer.c: `moesim infer` — generate text with the real backend and
 * optionally capture the routing trace. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../backend/capture.h"
#include "../backend/engine.h"
#include "../backend/readfile.h"
#include "../backend/sample.h"
#include "../backend/tokenizer.h"
#include "cli.h"
#include "offload_opts.h"
#include "offload_run.h"
#include "../sim/replay_ext.h"
#include "commands.h"

static const char infer_usage[] =
    "usage: moesim infer --model DIR (--prompt TEXT | --prompt-file F | --prompt-ids LIST) [options]\n"
    "       moesim infer --model DIR --offload PACK --route-from TRACE --capacity C [options]\n"
    "\n"
    "Run a Hugging Face MoE model (mixtral, qwen2_moe, qwen3_moe, olmoe; config.json +\n"
    "model.safetensors, or its shards and model.safetensors.index.json, in DIR) on the\n"
    "CPU and print the generated text.\n"
    "\n"
    "Text is tokenized with DIR/tokenizer.json when the directory has one (Hugging\n"
    "Face BPE: byte-level as Qwen and OLMoE ship it, or Metaspace with byte fallback\n"
    "as Mixtral does; the prompt gets the special tokens its template adds, e.g. a\n"
    "BOS), else one token per byte when the vocabulary has 256 entries (the shipped\n"
    "model). A tokenizer.json with parts this does not implement is refused by name.\n"
    "\n"
    "  --model DIR          model directory\n"
    "  --prompt TEXT        prompt\n"
    "  --prompt-file F      prompt read from a file\n"
    "  --prompt-ids LIST    token ids, e.g. 1,2,3 (models without a tokenizer: generated\n"
    "                       ids are then printed as a comma-separated list)\n"
    "  --no-special-tokens  tokenize the prompt without the template's special tokens\n"
    "  --max-tokens N       tokens to generate (default 128)\n"
    "  --temperature T      0 = greedy (default); > 0 samples from softmax(logits / T)\n"
    "  --top-p P            nucleus sampling mass in (0, 1] (default 1 = off)\n"
    "  --seed S             seed of the sampler and, with --offload, of randomised\n"
    "                       eviction policies (default 1)\n"
    "  --threads N          worker threads (default: online CPUs)\n"
    "  --trace-out F        write the routing trace (.moetrace): the prefill as one step,\n"
    "                       each generated token as one step, gate weights always\n"
    "  --prefill-chunk N    prefill in chunks of N prompt tokens, one step each (as a\n"
    "                       chunked-prefill server does; 1 = token by token); default:\n"
    "                       the whole prompt in one step. Results are bit-identical.\n"
    "  --lookahead D        also store, per token and layer l, the top-k of layer l+d's\n"
    "                       router applied to layer l's MoE input, d = 1..D\n"
    "  --router-logits      also store the full router logits\n"
    "  -h, --help           this text\n"
    "\n"
    "%s"
    "With --offload the output is the same, token for token; stderr then also gets\n"
    "what the cache did and where the time went (measured).\n"
    "Timing goes to stderr; stdout carries only the generated text.\n";

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int parse_float(const char *opt, const char *s, double lo, double hi, float *out, moe_error *err) {
    char *end;
    double v = strtod(s, &end);
    if (end == s || *end || !(v >= lo && v <= hi)) return moe_fail(err, "%s: expected a number in [%g, %g], got '%s'", opt, lo, hi, s);
    *out = (float)v;
    return 0;
}

typedef struct infer_opts {
    const char *model, *prompt, *prompt_file, *prompt_ids, *trace_out;
    uint64_t max_tokens, seed, threads, lookahead;
    float temperature, top_p;
    int router_logits, no_special;
    uint64_t prefill_chunk; /* 0 = whole prompt in one forward call */
    moe_offload_opts off;   /* off.pack != NULL: offloaded run */
} infer_opts;

/* Generated tokens to stdout as they come: their text, or their ids when the
 * model has no tokenizer. */
typedef struct printer {
    moe_detok d;
    int have_tok;
    uint64_t n;
} printer;

static void print_token(void *ctx, int tok) {
    printer *p = ctx;
    if (!p->have_tok) printf("%s%d", p->n ? "," : "", tok);
    else {
        const char *s;
        size_t len;
        int rc = moe_detok_next(&p->d, tok, &s, &len);
        if (rc == 0) fwrite(s, 1, len, stdout);
        /* an id past the tokenizer's (padding rows of the embedding) prints nothing, as transformers' decode */
        else if (rc < 0) fprintf(stderr, "moesim infer: out of memory decoding token %d\n", tok);
    }
    p->n++;
    fflush(stdout);
}

/* The offloaded run: same sampling and output, experts streamed from a pack. */
static int run_offloaded(const infer_opts *o, const moe_model *m, const int *ids, int n_prompt, printer *pr,
                         moe_error *err) {
    char pack[2048], dense[2048];
    moe_offload_job job = {.model = m, .prompt = ids, .n_prompt = n_prompt, .max_tokens = o->max_tokens,
                           .threads = (int)o->threads, .temperature = o->temperature, .top_p = o->top_p,
                           .sample_seed = o->seed, .capture_lookahead = (int)o->lookahead,
                           .save_state = o->off.save_state, .on_token = print_token, .on_token_ctx = pr};
    /* one --seed: the sampler's and, offloaded, a randomised policy's */
    if (o->prefill_chunk > MOE_ENGINE_MAX_STEP)
        return moe_fail(err, "--prefill-chunk %llu: an offloaded step holds at most %d tokens",
                        (unsigned long long)o->prefill_chunk, MOE_ENGINE_MAX_STEP);
    job.prefill_chunk = o->prefill_chunk ? (int)o->prefill_chunk : MOE_ENGINE_MAX_STEP;
    if (moe_offload_pack_path(&o->off, o->model, pack, sizeof pack, err) ||
        moe_offload_dense_path(&o->off, o->model, dense, sizeof dense, err) ||
        moe_offload_config_of(&o->off, pack, m, &job.oc, err))
        return -1;
    job.oc.dense_pack = dense;
    job.oc.seed = o->seed;
    if (o->off.route_from) {
        if (!(job.route_from = moe_route_from_open(o->off.route_from, m, o->off.route_steps, o->off.route_truncate, err))) return -1;
        job.route_steps = o->off.route_steps;
        job.on_token = NULL; /* the tokens fed are placeholders: nothing to show */
    }
    moe_offload_out out;
    int grc = moe_offload_generate(&job, &out, err);
    moe_trace_free((moe_trace *)job.route_from);
    if (grc) return -1;
    if (!o->off.route_from) putchar('\n');
    moe_replay_result res;
    int rc = moe_offload_result(&out, moe_offload_policy(out.off), moe_offload_prefetcher(out.off), &res, err);
    if (!rc) {
        const moe_replay_ext *x = res.ext;
        moe_offload_print_cache(stderr, "infer", moe_offload_policy(out.off), &job.oc, out.stats);
        moe_offload_memory mem = moe_offload_memory_of(m, &job.oc, out.stats);
        moe_offload_print_memory(stderr, "infer", &mem);
        fprintf(stderr,
                "moesim infer: measured: %.1f tok/s decode, TTFT %.1f ms, TPOT p50 %.2f ms; stall %.1f ms "
                "(miss %.1f, late prefetch %.1f), compute %.1f ms (dense %.1f, experts %.1f), I/O busy %.0f%%\n",
                x->tok_s,
                1e3 * x->ttft_mean_s, 1e3 * x->tpot_p50_s, 1e3 * x->stall_s, 1e3 * x->stall_miss_s,
                1e3 * x->stall_late_s, 1e3 * x->compute_s, 1e3 * x->dense_s, 1e3 * x->expert_s, 100 * x->io_util);
        moe_replay_result_free(&res);
    }
    if (!rc && o->trace_out) rc = moe_trace_save(out.trace, o->trace_out, err);
    if (!rc && o->off.steps_out) rc = moe_offload_write_steps(o->off.steps_out, out.stats, NULL, err);
    moe_offload_out_free(&out);
    return rc;
}

/* The whole run once options are parsed; returns the exit status. */
static int run_infer(const infer_opts *o) {
    moe_error err = {{0}};
    int rc = 1, n_prompt = 0, *ids = NULL, by_ids = o->prompt_ids != NULL;
    moe_engine *eng = NULL;
    moe_capture *cap = NULL;
    moe_sampler smp = {0};
    float *logits = NULL;
    if (o->off.pack && o->router_logits) {
        moe_fail(&err, "--router-logits is not captured in offloaded runs");
        return cli_error("infer", &err);
    }
    moe_model *m = moe_model_load_ex(o->model, o->off.pack ? moe_offload_load_flags(&o->off) : 0, &err);
    if (!m) return cli_error("infer", &err);
    const moe_model_config *c = &m->cfg;
    printer pr = {0};
    moe_tokenizer *tok = NULL;
    if (o->off.route_from) { /* the trace gives the steps; no prompt */
        rc = run_offloaded(o, m, NULL, 0, &pr, &err) ? 1 : 0;
        goto out;
    }
    tok = moe_tokenizer_open(o->model, c->vocab, &err);
    if (tok) {
        pr.have_tok = 1;
        moe_detok_init(&pr.d, tok);
    }
    if (err.msg[0]) {
        /* the tokenizer.json is unusable: nothing below runs */
    } else if (by_ids) {
        ids = moe_tok_parse_ids(o->prompt_ids, c->vocab, &n_prompt, &err);
    } else if (!tok) {
        moe_fail(&err, "%s: no tokenizer.json, and a vocabulary of %d is not byte-level; use --prompt-ids",
                 o->model, c->vocab);
    } else {
        size_t len = o->prompt ? strlen(o->prompt) : 0;
        unsigned char *text = o->prompt_file ? moe_backend_read_file(o->prompt_file, &len, &err) : NULL;
        const char *what = o->prompt_file ? o->prompt_file : "--prompt";
        if (o->prompt_file && !text) {
            /* err says why */
        } else if (len == 0) moe_fail(&err, "%s: empty prompt", what);
        else if (moe_tokenizer_encode(tok, text ? text : (const unsigned char *)o->prompt, len, !o->no_special, &ids,
                                      &n_prompt, NULL, &err))
            moe_fail_prefix(&err, "%s", what);
        else if (n_prompt == 0) {
            moe_fail(&err, "%s: the prompt makes no tokens", what);
            free(ids);
            ids = NULL;
        }
        free(text);
    }
    if (!ids) goto out;
    if (o->lookahead >= (uint64_t)c->n_moe_layers) {
        moe_fail(&err, "--lookahead: %llu must be below the number of MoE layers (%d)", (unsigned long long)o->lookahead,
                 c->n_moe_layers);
        goto out;
    }
    if (o->off.pack) {
        rc = run_offloaded(o, m, ids, n_prompt, &pr, &err) ? 1 : 0;
        goto out;
    }
    int ctx = n_prompt + (int)o->max_tokens;
    if (ctx > c->max_pos)
        fprintf(stderr, "moesim infer: warning: %d tokens exceed max_position_embeddings (%d)\n", ctx, c->max_pos);
    eng = moe_engine_new(m, (int)o->threads, ctx, &err);
    if (!eng) goto out;
    if (o->trace_out) {
        cap = moe_capture_new(m, o->router_logits, (int)o->lookahead, n_prompt);
        if (!cap) { moe_fail(&err, "out of memory"); goto out; }
    }
    logits = malloc((size_t)c->vocab * sizeof *logits);
    if (!logits || moe_sampler_init(&smp, c->vocab, o->temperature, o->top_p, o->seed)) {
        moe_fail(&err, "out of memory");
        goto out;
    }
    double t0 = now();
    int chunk = o->prefill_chunk && o->prefill_chunk < (uint64_t)n_prompt ? (int)o->prefill_chunk : n_prompt;
    for (int p0 = 0; p0 < n_prompt; p0 += chunk) {
        int n = n_prompt - p0 < chunk ? n_prompt - p0 : chunk;
        /* The engine is bit-identical in batch and token by token, so chunking
         * changes the trace's step boundaries and nothing else. */
        if (moe_engine_forward(eng, ids + p0, n, logits, 0, cap ? moe_capture_routing(cap) : NULL, &err) ||
            (cap && moe_capture_step(cap, MOE_PHASE_PREFILL, 0, p0, n, &err)))
            goto out;
    }
    double t1 = now();
    uint64_t generated = 0;
    while (generated < o->max_tokens) {
        int next = moe_sample(&smp, logits);
        print_token(&pr, next); /* an end-of-sequence token is printed too, then generation stops */
        int stop = 0;
        for (int i = 0; i < c->n_eos; i++) stop |= next == c->eos[i];
        if (++generated == o->max_tokens || stop) break; /* the last token needs no forward pass */
        int pos = moe_engine_pos(eng);
        if (moe_engine_forward(eng, &next, 1, logits, 0, cap ? moe_capture_routing(cap) : NULL, &err) ||
            (cap && moe_capture_step(cap, MOE_PHASE_DECODE, 0, pos, 1, &err)))
            goto out;
    }
    double t2 = now();
    putchar('\n');
    fprintf(stderr, "moesim infer: %s, %d threads: prefill %d tokens %.1f tok/s, decode %llu tokens %.1f tok/s\n",
            m->name, (int)o->threads, n_prompt, n_prompt / (t1 - t0), (unsigned long long)generated,
            generated > 1 ? (generated - 1) / (t2 - t1) : 0.0);
    if (cap) {
        char meta[512];
        snprintf(meta, sizeof meta,
                 "model_dir=%s\narch=%s\nweights_dtype=%s\nprompt_tokens=%d\ngenerated=%llu\ntemperature=%g\ntop_p=%g\n"
                 "seed=%llu\nlookahead_hidden=post_attention_layernorm output of layer l (MoE block input)\n",
                 o->model, c->model_type, m->dtype, n_prompt, (unsigned long long)generated, o->temperature, o->top_p,
                 (unsigned long long)o->seed);
        moe_trace *t = moe_capture_finish(cap, meta, &err);
        cap = NULL;
        if (!t) goto out;
        int bad = moe_trace_save(t, o->trace_out, &err);
        moe_trace_free(t);
        if (bad) goto out;
    }
    rc = 0;
out:
    if (rc) cli_error("infer", &err);
    moe_capture_abort(cap);
    moe_sampler_free(&smp);
    free(logits);
    free(ids);
    moe_engine_free(eng);
    moe_model_free(m);
    moe_detok_free(&pr.d);
    moe_tokenizer_free(tok);
    return rc;
}

int cmd_infer(int argc, char **argv) {
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'},       {"prompt", required_argument, 0, 'p'},
        {"prompt-file", required_argument, 0, 'f'}, {"prompt-ids", required_argument, 0, 'i'},
        {"max-tokens", required_argument, 0, 'n'},  {"seed", required_argument, 0, 's'},
        {"temperature", required_argument, 0, 'T'}, {"top-p", required_argument, 0, 'P'},
        {"threads", required_argument, 0, 'j'},     {"trace-out", required_argument, 0, 'o'},
        {"lookahead", required_argument, 0, 'D'},   {"router-logits", no_argument, 0, 'R'},
        {"prefill-chunk", required_argument, 0, 'C'}, {"help", no_argument, 0, 'h'},
        {"no-special-tokens", no_argument, 0, 'S'},
        /* --seed and --prefill-chunk are infer's own (above); it seeds the policy too */
        MOE_OFFLOAD_LONGOPTS,
        {0, 0, 0, 0},
    };
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    infer_opts o = {.max_tokens = 128, .seed = 1, .threads = ncpu > 0 ? (uint64_t)ncpu : 1, .top_p = 1};
    moe_error err = {{0}};
    int c, idx = 0;
    moe_offload_opts_init(&o.off);
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, &idx)) != -1) {
        int bad = 0;
        switch (c) {
        case 'X': bad = moe_offload_opt_set(&o.off, opts[idx].name, optarg, &err) != 0; break;
        case 'm': o.model = optarg; break;
        case 'p': o.prompt = optarg; break;
        case 'f': o.prompt_file = optarg; break;
        case 'i': o.prompt_ids = optarg; break;
        case 'n': bad = cli_parse_u64("--max-tokens", optarg, 1 << 20, &o.max_tokens, &err); break;
        case 's': bad = cli_parse_u64("--seed", optarg, UINT64_MAX, &o.seed, &err); break;
        case 'T': bad = parse_float("--temperature", optarg, 0, 100, &o.temperature, &err); break;
        case 'P': bad = parse_float("--top-p", optarg, 1e-6, 1, &o.top_p, &err); break;
        case 'j': bad = cli_parse_u64("--threads", optarg, 256, &o.threads, &err) || (o.threads == 0 && moe_fail(&err, "--threads: must be at least 1")); break;
        case 'o': o.trace_out = optarg; break;
        case 'D': bad = cli_parse_u64("--lookahead", optarg, 64, &o.lookahead, &err); break;
        case 'R': o.router_logits = 1; break;
        case 'S': o.no_special = 1; break;
        case 'C': bad = cli_parse_u64("--prefill-chunk", optarg, 1 << 20, &o.prefill_chunk, &err); break;
        case 'h': printf(infer_usage, moe_offload_opts_help); return 0;
        default: fprintf(stderr, infer_usage, moe_offload_opts_help); return 2;
        }
        if (bad) return cli_error("infer", &err);
    }
    if (optind < argc) {
        fprintf(stderr, "moesim infer: unexpected argument '%s'\n", argv[optind]);
        fprintf(stderr, infer_usage, moe_offload_opts_help);
        return 2;
    }
    if (!o.off.pack && o.off.n_set) {
        fprintf(stderr, "moesim infer: --%s applies to offloaded runs: add --offload PACK|auto\n", o.off.first_set);
        return 2;
    }
    if (o.off.route_from && (o.prompt || o.prompt_file || o.prompt_ids)) {
        fprintf(stderr, "moesim infer: --route-from replaces the prompt: drop --prompt, --prompt-file and --prompt-ids\n");
        return 2;
    }
    if (!o.model || (!!o.prompt + !!o.prompt_file + !!o.prompt_ids) != !o.off.route_from) {
        fprintf(stderr, "moesim infer: --model and exactly one of --prompt, --prompt-file, --prompt-ids are required\n");
        fprintf(stderr, infer_usage, moe_offload_opts_help);
        return 2;
    }
    return run_infer(&o);
}

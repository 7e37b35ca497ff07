/* reproduce_fit.c: `moesim trace fit` — calibrate the synthetic generator to
 * published moe-lrc hit-rate curves and write the trace plus a sidecar .ini
 * with its parameters (method: core/trace_fit.h). Lives beside the
 * reproductions because its main use is to stand in for traces we do not
 * have; dispatched from cli/cmd_trace.c. */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/trace_fit.h"
#include "cli.h"
#include "reproduce.h"

static const char fit_usage[] =
    "usage: moesim trace fit -o OUT.moetrace --layers L --experts E --top-k K\n"
    "                        --rho R1,R2,.. [--lru H1,H2,..] [--belady H1,H2,..] [options]\n"
    "\n"
    "Tune the generator's Zipf exponent, locality, cross-layer correlation and\n"
    "topic-switch interval (GSL Nelder-Mead, squared error of both curves, fixed\n"
    "seed) so that its moe-lrc hit rates (global cache of floor(rho*L*k) keys,\n"
    "cold per 512-token sequence: docs/reference.md) match the targets; write the trace\n"
    "and OUT.ini (targets, achieved curves, parameters, the equivalent `trace gen`\n"
    "command). The parameters also go into the trace's meta.\n"
    "\n"
    "  -o, --output F     output .moetrace (sidecar: F with .moetrace -> .ini)\n"
    "  --layers N --experts N --top-k N   geometry\n"
    "  --rho LIST         relative cache sizes, comma-separated\n"
    "  --lru LIST         target LRU hit rates, one per rho ('-' = none)\n"
    "  --belady LIST      target Belady hit rates, one per rho ('-' = none)\n"
    "  --model NAME       model name stored in the trace (default fit)\n"
    "  --seqs N           sequences in the written trace (default 20)\n"
    "  --fit-seqs N       sequences in the fitting trace (default 20)\n"
    "  --seq-len N        tokens per sequence = moe-lrc chunk (default 512)\n"
    "  --max-iter N       Nelder-Mead iterations in all (default 120)\n"
    "  --seed N           generator seed (default 1)\n"
    "  --weights          store gate weights (Dirichlet(1)) in the written trace\n"
    "  --lookahead D      give the written trace lookahead predictions of depth D\n"
    "  --lookahead-acc P  P(a prediction is right) (default 0.8; an assumption, not fitted)\n"
    "  -v, --verbose      one line per iteration on stderr\n"
    "  -h, --help         this text\n";

int repro_parse_list(const char *opt, const char *s, double *out, uint32_t max, uint32_t *n, moe_error *err) {
    *n = 0;
    const char *p = s;
    while (*p) {
        if (*n == max) return moe_fail(err, "%s: more than %u values", opt, max);
        char *end;
        if (p[0] == '-' && (p[1] == ',' || p[1] == 0)) {
            out[(*n)++] = NAN;
            end = (char *)p + 1;
        } else {
            out[*n] = strtod(p, &end);
            if (end == p || !isfinite(out[*n])) return moe_fail(err, "%s: bad number at '%s'", opt, p);
            (*n)++;
        }
        if (*end == ',') end++;
        else if (*end) return moe_fail(err, "%s: bad number at '%s'", opt, p);
        p = end;
    }
    if (*n == 0) return moe_fail(err, "%s: empty list", opt);
    return 0;
}

static void join(char *buf, size_t cap, const double *v, uint32_t n, const char *fmt) {
    size_t o = 0;
    buf[0] = 0;
    for (uint32_t i = 0; i < n && o < cap; i++) {
        if (i) o += (size_t)snprintf(buf + o, cap - o, ",");
        if (o >= cap) break;
        if (isnan(v[i])) o += (size_t)snprintf(buf + o, cap - o, "-");
        else o += (size_t)snprintf(buf + o, cap - o, fmt, v[i]);
    }
}

static int write_sidecar(const char *path, const char *out, const moe_fit_target *tg, const moe_fit_result *r,
                         const moe_gen_params *p, const double *lru, const double *bel, moe_error *err) {
    FILE *f = fopen(path, "w");
    if (!f) return moe_fail(err, "%s: cannot write: %m", path);
    char b[1024], gen[1024];
    fprintf(f, "# %s: parameters of the calibrated synthetic trace %s (moesim trace fit).\n", path, out);
    fprintf(f, "# Hit rates are moe-lrc's cache hit rate mode (core/lrc.h): global cache of\n"
               "# floor(rho*L*k) keys, cold per %u-token sequence.\n", p->seq_len);
    fprintf(f, "[fit]\nmodel = %s\nlayers = %u\nexperts = %u\ntop_k = %u\n", p->model, tg->layers, tg->experts, tg->top_k);
    join(b, sizeof b, tg->rho, tg->n_rho, "%g"), fprintf(f, "rho = %s\n", b);
    join(b, sizeof b, tg->lru, tg->n_rho, "%.3f"), fprintf(f, "target_lru = %s\n", b);
    join(b, sizeof b, tg->belady, tg->n_rho, "%.3f"), fprintf(f, "target_belady = %s\n", b);
    join(b, sizeof b, lru, tg->n_rho, "%.4f"), fprintf(f, "lru = %s\n", b);
    join(b, sizeof b, bel, tg->n_rho, "%.4f"), fprintf(f, "belady = %s\n", b);
    join(b, sizeof b, r->lru, tg->n_rho, "%.4f"), fprintf(f, "fit_trace_lru = %s\n", b);
    join(b, sizeof b, r->belady, tg->n_rho, "%.4f"), fprintf(f, "fit_trace_belady = %s\n", b);
    fprintf(f, "fit_sse = %.6g\niterations = %u\nevaluations = %u\nseconds = %.1f\n", r->sse, r->iterations,
            r->evaluations, r->seconds);
    fprintf(f, "gen_command = moesim trace gen -o %s --steps %llu --layers %u --experts %u --top-k %u --zipf %.17g "
               "--locality %.17g --cross-layer %.17g --topic-every %llu --seq-len %u --prefill %u%s --lookahead %u --lookahead-acc %.6g --model %s --seed %llu\n",
            out, (unsigned long long)p->steps, p->layers, p->experts, p->top_k, p->zipf_s, p->locality, p->cross_layer,
            (unsigned long long)p->topic_every, p->seq_len, p->prefill, p->with_weights ? "" : " --no-weights", p->lookahead, p->lookahead_acc, p->model,
            (unsigned long long)p->seed);
    moe_gen_describe(p, gen, sizeof gen);
    fprintf(f, "\n[generator]\n");
    for (char *s = gen; *s;) { /* "key=value" lines -> "key = value" */
        char *nl = strchr(s, '\n'), *eq = strchr(s, '=');
        if (!nl) nl = s + strlen(s);
        if (eq && eq < nl) fprintf(f, "%.*s = %.*s\n", (int)(eq - s), s, (int)(nl - eq - 1), eq + 1);
        s = *nl ? nl + 1 : nl;
    }
    if (fclose(f)) return moe_fail(err, "%s: write failed: %m", path);
    return 0;
}

int cmd_trace_fit(int argc, char **argv) {
    static const struct option opts[] = {
        {"output", required_argument, 0, 'o'},  {"layers", required_argument, 0, 'L'},
        {"experts", required_argument, 0, 'E'}, {"top-k", required_argument, 0, 'K'},
        {"rho", required_argument, 0, 'r'},     {"lru", required_argument, 0, 'U'},
        {"belady", required_argument, 0, 'B'},  {"model", required_argument, 0, 'm'},
        {"seqs", required_argument, 0, 'n'},    {"fit-seqs", required_argument, 0, 'f'},
        {"seq-len", required_argument, 0, 'q'}, {"max-iter", required_argument, 0, 'i'},
        {"seed", required_argument, 0, 's'},    {"weights", no_argument, 0, 'w'},
        {"verbose", no_argument, 0, 'v'},       {"help", no_argument, 0, 'h'},
        {"lookahead", required_argument, 0, 'D'}, {"lookahead-acc", required_argument, 0, 'A'},
        {0, 0, 0, 0},
    };
    moe_fit_target tg;
    memset(&tg, 0, sizeof tg);
    moe_fit_opts o;
    moe_fit_opts_defaults(&o);
    const char *out = NULL, *model = "fit";
    uint32_t n_lru = 0, n_bel = 0, seqs = 20;
    int weights = 0, c;
    uint32_t lookahead = 0;
    double la_acc = 0.8;
    uint64_t v;
    moe_error err = {{0}};
    for (uint32_t i = 0; i < MOE_FIT_MAX_RHO; i++) tg.lru[i] = tg.belady[i] = NAN;
    optind = 1;
    while ((c = getopt_long(argc, argv, "o:vh", opts, NULL)) != -1) {
        int bad = 0;
        switch (c) {
        case 'o': out = optarg; break;
        case 'L': bad = cli_parse_u64("--layers", optarg, 4096, &v, &err), tg.layers = (uint32_t)v; break;
        case 'E': bad = cli_parse_u64("--experts", optarg, 65534, &v, &err), tg.experts = (uint32_t)v; break;
        case 'K': bad = cli_parse_u64("--top-k", optarg, 64, &v, &err), tg.top_k = (uint32_t)v; break;
        case 'r': bad = repro_parse_list("--rho", optarg, tg.rho, MOE_FIT_MAX_RHO, &tg.n_rho, &err); break;
        case 'U': bad = repro_parse_list("--lru", optarg, tg.lru, MOE_FIT_MAX_RHO, &n_lru, &err); break;
        case 'B': bad = repro_parse_list("--belady", optarg, tg.belady, MOE_FIT_MAX_RHO, &n_bel, &err); break;
        case 'm': model = optarg; break;
        case 'n': bad = cli_parse_u64("--seqs", optarg, 100000, &v, &err), seqs = (uint32_t)v; break;
        case 'f': bad = cli_parse_u64("--fit-seqs", optarg, 100000, &v, &err), o.fit_seqs = (uint32_t)v; break;
        case 'q': bad = cli_parse_u64("--seq-len", optarg, 1u << 20, &v, &err), o.seq_len = (uint32_t)v; break;
        case 'i': bad = cli_parse_u64("--max-iter", optarg, 100000, &v, &err), o.max_iter = (uint32_t)v; break;
        case 's': bad = cli_parse_u64("--seed", optarg, UINT64_MAX, &o.seed, &err); break;
        case 'w': weights = 1; break;
        case 'D': bad = cli_parse_u64("--lookahead", optarg, 16, &v, &err), lookahead = (uint32_t)v; break;
        case 'A': {
            char *end;
            la_acc = strtod(optarg, &end);
            if (!*optarg || *end || !(la_acc >= 0 && la_acc <= 1))
                bad = moe_fail(&err, "--lookahead-acc: expected a probability, got '%s'", optarg);
            break;
        }
        case 'v': o.verbose = 1; break;
        case 'h': fputs(fit_usage, stdout); return 0;
        default: fputs(fit_usage, stderr); return 2;
        }
        if (bad) return cli_error("trace fit", &err);
    }
    if (optind != argc || !out || !tg.layers || !tg.experts || !tg.top_k || !tg.n_rho || (!n_lru && !n_bel)) {
        fprintf(stderr, "moesim trace fit: need -o OUT, --layers, --experts, --top-k, --rho and --lru and/or --belady\n%s",
                fit_usage);
        return 2;
    }
    if ((n_lru && n_lru != tg.n_rho) || (n_bel && n_bel != tg.n_rho)) {
        fprintf(stderr, "moesim trace fit: --lru and --belady need one value per --rho value (%u)\n", tg.n_rho);
        return 2;
    }
    if (seqs == 0) {
        fprintf(stderr, "moesim trace fit: --seqs must be at least 1\n");
        return 2;
    }
    size_t ol = strlen(out);
    char side[1024];
    if (ol > 9 && !strcmp(out + ol - 9, ".moetrace")) snprintf(side, sizeof side, "%.*s.ini", (int)(ol - 9), out);
    else snprintf(side, sizeof side, "%s.ini", out);

    moe_fit_result r;
    if (moe_trace_fit(&tg, &o, &r, &err)) return cli_error("trace fit", &err);

    /* the written trace: the best parameters, the requested size */
    moe_gen_params p;
    moe_fit_params(&tg, &o, seqs, r.params.zipf_s, r.params.locality, r.params.cross_layer, r.params.topic_every, &p);
    p.with_weights = weights;
    p.lookahead = lookahead, p.lookahead_acc = la_acc;
    snprintf(p.model, sizeof p.model, "%s", model);
    moe_trace *t = moe_trace_generate(&p, &err);
    double lru[MOE_FIT_MAX_RHO], bel[MOE_FIT_MAX_RHO];
    if (!t || moe_fit_curves(t, o.seq_len, tg.rho, tg.n_rho, lru, bel, &err)) {
        moe_trace_free(t);
        return cli_error("trace fit", &err);
    }
    /* meta = the generator's parameters + the fit's targets and outcome */
    char meta[4096], b1[512], b2[512], b3[512], b4[512];
    moe_gen_describe(&p, meta, sizeof meta);
    join(b1, sizeof b1, tg.rho, tg.n_rho, "%g"), join(b2, sizeof b2, tg.lru, tg.n_rho, "%.3f");
    join(b3, sizeof b3, tg.belady, tg.n_rho, "%.3f");
    size_t ml = strlen(meta);
    snprintf(meta + ml, sizeof meta - ml, "fit=moesim trace fit (moe-lrc mode, chunk %u)\nfit_rho=%s\nfit_target_lru=%s\n"
             "fit_target_belady=%s\n", o.seq_len, b1, b2, b3);
    join(b1, sizeof b1, lru, tg.n_rho, "%.4f"), join(b2, sizeof b2, bel, tg.n_rho, "%.4f");
    ml = strlen(meta);
    snprintf(meta + ml, sizeof meta - ml, "fit_lru=%s\nfit_belady=%s\n", b1, b2);
    (void)b4;
    free(t->meta);
    t->meta = strdup(meta);
    int rc = 0;
    if (!t->meta) rc = moe_fail(&err, "out of memory");
    if (!rc) rc = moe_trace_save(t, out, &err);
    if (!rc) rc = write_sidecar(side, out, &tg, &r, &p, lru, bel, &err);
    moe_trace_free(t);
    if (rc) return cli_error("trace fit", &err);

    printf("fit: %u layers x %u experts, top-%u; %u iterations, %u evaluations, %.1f s (fitting trace %u x %u tokens)\n",
           tg.layers, tg.experts, tg.top_k, r.iterations, r.evaluations, r.seconds, o.fit_seqs, o.seq_len);
    printf("parameters: zipf %.4f  locality %.4f  cross_layer %.4f  topic_every %llu  (seed %llu)\n", p.zipf_s,
           p.locality, p.cross_layer, (unsigned long long)p.topic_every, (unsigned long long)p.seed);
    printf("%-6s %-8s %8s %8s %8s\n", "rho", "policy", "target", "achieved", "diff");
    double sse = 0, mx = 0;
    for (uint32_t i = 0; i < tg.n_rho; i++)
        for (int pol = 0; pol < 2; pol++) {
            double tv = pol ? tg.belady[i] : tg.lru[i], av = pol ? bel[i] : lru[i];
            if (isnan(tv)) printf("%-6g %-8s %8s %8.4f %8s\n", tg.rho[i], pol ? "belady" : "lru", "-", av, "-");
            else {
                printf("%-6g %-8s %8.3f %8.4f %+8.4f\n", tg.rho[i], pol ? "belady" : "lru", tv, av, av - tv);
                sse += (av - tv) * (av - tv);
                if (fabs(av - tv) > mx) mx = fabs(av - tv);
            }
        }
    printf("written trace: %u sequences, sse %.5f, largest |diff| %.4f -> %s, %s\n", seqs, sse, mx, out, side);
    return 0;
}

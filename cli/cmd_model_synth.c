/* cmd_model_synth.c: `moesim model synth` — a random-weight model of a real
 * geometry (backend/synth.h), for validating the timing model at real
 * expert sizes with --route-from. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>

#include "../backend/pack.h"
#include "../backend/synth.h"
#include "../core/datadir.h"
#include "../core/device_profile.h"
#include "../core/ini.h"
#include "../core/units.h"
#include "cli.h"

int model_synth(int argc, char **argv);

static const char synth_usage[] =
    "usage: moesim model synth (--geometry NAME | --arch A --layers L --experts E --top-k K\n"
    "                          --hidden H --inter I --heads N --kv-heads N [--head-dim D]\n"
    "                          [--vocab V] [--shared-inter S]) -o DIR [options]\n"
    "\n"
    "Write a model of that geometry with seeded random weights: DIR/config.json,\n"
    "DIR/model.safetensors (every weight but the routed experts, bf16) and\n"
    "DIR/experts.pack (the routed experts), streamed to disk one expert at a time.\n"
    "Compute and I/O cost depend on shapes and bytes, not on values, so such a model\n"
    "measures what a real one of that geometry costs; run it offloaded with\n"
    "`--offload DIR/experts.pack --route-from TRACE` (infer, validate) to execute a\n"
    "real routing trace. Its own router routes at random.\n"
    "\n"
    "  --geometry NAME    a section of experiments/models.ini that has the backend's\n"
    "                     keys (arch, heads, kv_heads, head_dim, vocab, expert_inter):\n"
    "                     Mixtral-8x7B, Qwen3-30B-A3B, OLMoE-1B-7B, tinymix\n"
    "  --models FILE      model profiles (default experiments/models.ini)\n"
    "  --arch A           mixtral, qwen2_moe (needs --shared-inter), qwen3_moe, olmoe\n"
    "  --layers L --experts E --top-k K --hidden H --inter I (one expert's\n"
    "  intermediate size) --heads N --kv-heads N --head-dim D (default H / heads)\n"
    "  --vocab V (default 32000) --shared-inter S: the geometry by hand; with\n"
    "                     --geometry they override the profile's values\n"
    "  --keep-layers N    only the first N layers (a truncated model, for geometries\n"
    "                     whose experts do not fit the disk; --route-from then needs\n"
    "                     --route-truncate)\n"
    "  --dtype D          the experts' dtype in the pack: bf16 (default), q8, q4, q3, q2\n"
    "  --seed S           weights' seed (default 1); same seed, same bytes\n"
    "  -o, --output DIR   the model directory (created; must not hold a config.json)\n"
    "  --force            overwrite a model already in DIR\n"
    "  -h, --help         this text\n"
    "\n"
    "Refused up front when the disk lacks the space (the message says how much).\n";

typedef struct synth_opts {
    moe_synth_spec s;
    const char *geometry, *models, *out;
    uint64_t keep;
    int force, arch_set;
} synth_opts;

static int arch_parse(const char *v, moe_arch *a, moe_error *err) {
    static const struct { const char *n; moe_arch a; } t[] = {
        {"mixtral", MOE_ARCH_MIXTRAL}, {"qwen2_moe", MOE_ARCH_QWEN2_MOE}, {"qwen3_moe", MOE_ARCH_QWEN3_MOE},
        {"olmoe", MOE_ARCH_OLMOE}};
    for (size_t i = 0; i < sizeof t / sizeof *t; i++)
        if (!strcmp(v, t[i].n)) return *a = t[i].a, 0;
    return moe_fail(err, "architecture '%s': the backend runs mixtral, qwen2_moe, qwen3_moe and olmoe", v);
}

/* The geometry of models.ini section NAME into s (fields still 0 only). */
static int geometry_load(synth_opts *o, moe_error *err) {
    char where[4096];
    const char *path = moe_data_path(o->models, where, sizeof where);
    moe_ini *ini = moe_ini_load(path, err);
    if (!ini) return -1;
    int rc = -1;
    const moe_ini_section *sec = moe_ini_find_section(ini, o->geometry);
    moe_synth_spec *s = &o->s;
    if (!sec) {
        moe_fail(err, "%s: no model [%s]", path, o->geometry);
        goto out;
    }
    const char *n = sec->name, *arch = moe_ini_get(ini, n, "arch");
    if (!arch) {
        moe_fail(err, "%s:%u: [%s] has no 'arch' key: not a geometry the backend runs (the sections with arch, "
                      "heads, kv_heads, head_dim, vocab and expert_inter are)", path, sec->line, n);
        goto out;
    }
    uint64_t v[10];
    static const char *const keys[] = {"layers", "experts", "top_k", "hidden", "expert_inter", "heads",
                                       "kv_heads", "head_dim", "vocab", "shared_inter"};
    int *dst[] = {&s->layers, &s->experts, &s->top_k, &s->hidden, &s->inter, &s->heads,
                  &s->kv_heads, &s->head_dim, &s->vocab, &s->shared_inter};
    for (int i = 0; i < 10; i++) {
        if (moe_ini_get_u64(ini, n, keys[i], 0, 0, 1u << 30, &v[i], err)) goto out;
        if (!*dst[i]) *dst[i] = (int)v[i];
    }
    if (!o->arch_set && arch_parse(arch, &s->arch, err)) goto out;
    double ep = 0;
    if (moe_ini_get_double(ini, n, "expert_params", 0, 0, 1e15, &ep, err)) goto out;
    if (ep > 0 && ep != 3.0 * (double)v[3] * (double)v[4]) {
        moe_fail(err, "%s:%u: [%s] expert_params %.0f is not 3 x hidden x expert_inter = %.0f", path, sec->line, n, ep,
                 3.0 * (double)v[3] * (double)v[4]);
        goto out;
    }
    snprintf(s->name, sizeof s->name, "%s", n);
    rc = 0;
out:
    moe_ini_free(ini);
    return rc;
}

typedef struct bar {
    double t0;
    int tty, printed;
} bar;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* "experts.pack: 3.2 GiB of 12.0 GiB, 410 MiB/s, 23 s left" */
static void synth_progress(void *ctx, uint64_t done, uint64_t total) {
    bar *b = ctx;
    double dt = now_s() - b->t0, rate = dt > 0 ? (double)done / dt : 0;
    char a[32], t[32], r[32];
    fprintf(stderr, "%sexperts.pack: %s of %s, %s/s, %.0f s left%s", b->tty ? "\r" : "", moe_bytes_text((double)done, a, sizeof a),
            moe_bytes_text((double)total, t, sizeof t), moe_bytes_text(rate, r, sizeof r),
            rate > 0 ? (double)(total - done) / rate : 0, b->tty && done < total ? "   " : "\n");
    b->printed = 1;
}

static int run_synth(synth_opts *o) {
    moe_error err = {{0}};
    moe_synth_spec *s = &o->s;
    if (o->geometry && geometry_load(o, &err)) return cli_error("model synth", &err);
    if (!o->geometry) snprintf(s->name, sizeof s->name, "custom");
    if (!s->vocab) s->vocab = 32000;
    if (!s->head_dim && s->heads) s->head_dim = s->hidden / s->heads;
    if (o->keep) {
        if (o->keep >= (uint64_t)s->layers) {
            moe_fail(&err, "--keep-layers %llu: the geometry has %d layers", (unsigned long long)o->keep, s->layers);
            return cli_error("model synth", &err);
        }
        s->truncated_from = s->layers;
        s->layers = (int)o->keep;
    }
    if (moe_synth_check(s, &err)) return cli_error("model synth", &err);
    char cfg[4096];
    struct stat sb;
    if (mkdir(o->out, 0755) && stat(o->out, &sb)) {
        moe_fail(&err, "%s: cannot create the directory", o->out);
        return cli_error("model synth", &err);
    }
    snprintf(cfg, sizeof cfg, "%s/config.json", o->out);
    if (!o->force && stat(cfg, &sb) == 0) {
        moe_fail(&err, "%s: a model is already there (--force overwrites it)", cfg);
        return cli_error("model synth", &err);
    }
    uint64_t need = moe_synth_dense_bytes(s) + moe_synth_pack_bytes(s);
    struct statvfs fs;
    char a[32], b[32];
    if (statvfs(o->out, &fs) == 0 && (double)fs.f_bavail * (double)fs.f_frsize < (double)need) {
        moe_fail(&err, "%s: needs %s, the disk has %s free", o->out, moe_bytes_text((double)need, a, sizeof a),
                 moe_bytes_text((double)fs.f_bavail * (double)fs.f_frsize, b, sizeof b));
        return cli_error("model synth", &err);
    }
    fprintf(stderr, "moesim model synth: %s geometry, %d layers x %d experts (top-%d), %s per expert, %s in all\n",
            s->name, s->layers, s->experts, s->top_k,
            moe_bytes_text((double)moe_synth_pack_bytes(s) / ((double)s->layers * s->experts), a, sizeof a),
            moe_bytes_text((double)need, b, sizeof b));
    bar br = {.t0 = now_s(), .tty = cli_is_tty(2)};
    if (moe_synth_write(s, o->out, synth_progress, &br, &err)) {
        if (br.printed && br.tty) fputc('\n', stderr);
        return cli_error("model synth", &err);
    }
    char st[4096];
    snprintf(st, sizeof st, "%s/model.safetensors", o->out);
    printf("wrote %s: config.json, model.safetensors (%s), experts.pack (%s, %s)\n", o->out,
           moe_bytes_text(stat(st, &sb) == 0 ? (double)sb.st_size : 0, a, sizeof a),
           moe_bytes_text((double)moe_synth_pack_bytes(s), b, sizeof b), moe_pack_dtype_name((uint32_t)s->pack_dtype));
    return 0;
}

int model_synth(int argc, char **argv) {
    static const struct option opts[] = {
        {"geometry", required_argument, 0, 'g'}, {"models", required_argument, 0, 'M'},
        {"arch", required_argument, 0, 'a'},     {"layers", required_argument, 0, 'L'},
        {"experts", required_argument, 0, 'E'},  {"top-k", required_argument, 0, 'k'},
        {"hidden", required_argument, 0, 'H'},   {"inter", required_argument, 0, 'I'},
        {"heads", required_argument, 0, 'n'},    {"kv-heads", required_argument, 0, 'v'},
        {"head-dim", required_argument, 0, 'd'}, {"vocab", required_argument, 0, 'V'},
        {"shared-inter", required_argument, 0, 'S'}, {"keep-layers", required_argument, 0, 'K'},
        {"dtype", required_argument, 0, 't'},    {"seed", required_argument, 0, 's'},
        {"output", required_argument, 0, 'o'},   {"force", no_argument, 0, 'f'},
        {"help", no_argument, 0, 'h'},           {0, 0, 0, 0},
    };
    synth_opts o = {.models = MOE_MODELS_INI, .s = {.arch = 0, .pack_dtype = MOE_PACK_BF16, .seed = 1}};
    int c, idx = 0;
    moe_error err = {{0}};
    optind = 1;
    while ((c = getopt_long(argc, argv, "o:h", opts, &idx)) != -1) {
        uint64_t v = 0;
        int bad = 0;
        int *field = NULL;
        switch (c) {
        case 'g': o.geometry = optarg; break;
        case 'M': o.models = optarg; break;
        case 'a': bad = arch_parse(optarg, &o.s.arch, &err) != 0, o.arch_set = 1; break;
        case 'L': field = &o.s.layers; break;
        case 'E': field = &o.s.experts; break;
        case 'k': field = &o.s.top_k; break;
        case 'H': field = &o.s.hidden; break;
        case 'I': field = &o.s.inter; break;
        case 'n': field = &o.s.heads; break;
        case 'v': field = &o.s.kv_heads; break;
        case 'd': field = &o.s.head_dim; break;
        case 'V': field = &o.s.vocab; break;
        case 'S': field = &o.s.shared_inter; break;
        case 'K': bad = cli_parse_u64("--keep-layers", optarg, 1 << 20, &o.keep, &err) ||
                        (!o.keep && moe_fail(&err, "--keep-layers: at least 1"));
                  break;
        case 't':
            if (!strcmp(optarg, "bf16")) o.s.pack_dtype = MOE_PACK_BF16;
            else if (!strcmp(optarg, "q8")) o.s.pack_dtype = MOE_PACK_Q8;
            else if (!strcmp(optarg, "q4")) o.s.pack_dtype = MOE_PACK_Q4;
            else if (!strcmp(optarg, "q3")) o.s.pack_dtype = MOE_PACK_Q3;
            else if (!strcmp(optarg, "q2")) o.s.pack_dtype = MOE_PACK_Q2;
            else bad = moe_fail(&err, "--dtype: expected bf16, q8, q4, q3 or q2, got '%s'", optarg) != 0;
            break;
        case 's': bad = cli_parse_u64("--seed", optarg, UINT64_MAX, &o.s.seed, &err) != 0; break;
        case 'o': o.out = optarg; break;
        case 'f': o.force = 1; break;
        case 'h': fputs(synth_usage, stdout); return 0;
        default: fputs(synth_usage, stderr); return 2;
        }
        if (field) {
            char name[32];
            snprintf(name, sizeof name, "--%s", opts[idx].name);
            bad = cli_parse_u64(name, optarg, 1u << 30, &v, &err) ||
                  (!v && c != 'S' && moe_fail(&err, "%s: at least 1", name));
            *field = (int)v;
        }
        if (bad) return cli_error("model synth", &err);
    }
    if (optind < argc) {
        fprintf(stderr, "moesim model synth: unexpected argument '%s'\n%s", argv[optind], synth_usage);
        return 2;
    }
    if (!o.out) {
        fprintf(stderr, "moesim model synth: -o DIR is required\n%s", synth_usage);
        return 2;
    }
    if (!o.geometry && (!o.arch_set || !o.s.layers || !o.s.experts || !o.s.top_k || !o.s.hidden || !o.s.inter ||
                        !o.s.heads || !o.s.kv_heads)) {
        fprintf(stderr, "moesim model synth: give --geometry NAME, or --arch, --layers, --experts, --top-k, --hidden, "
                        "--inter, --heads and --kv-heads\n%s", synth_usage);
        return 2;
    }
    return run_synth(&o);
}

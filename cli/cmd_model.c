/* cmd_model.c: `moesim model pack|info|verify` — expert packs, a model's
 * routed experts laid out for streaming from disk (backend/pack.h,
 * docs/pack-format.md). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../backend/dense_pack.h"
#include "../backend/pack.h"
#include "../core/sha256.h"
#include "../core/units.h"
#include "cli.h"
#include "commands.h"

int model_synth(int argc, char **argv); /* cmd_model_synth.c */

static const char model_usage[] =
    "usage: moesim model <pack|info|verify|synth> [options]   (moesim model <sub> --help)\n"
    "\n"
    "  pack     lay a model's routed experts out as an expert pack (one 4 KiB-aligned,\n"
    "           checksummed block per expert) for streaming from disk\n"
    "  info     print a pack's header: dtype, geometry, bytes per expert, model id\n"
    "  verify   read every expert of a pack and check it (and, with --model, that the\n"
    "           pack belongs to that model)\n"
    "  synth    write a model of a real geometry with seeded random weights (config,\n"
    "           dense safetensors, expert pack) to measure cost at real expert sizes\n"
    "\n"
    "The format is described byte by byte in docs/pack-format.md.\n";

static const char pack_usage[] =
    "usage: moesim model pack DIR [-o FILE] [--dtype bf16|f32|q8|q4|q3|q2]\n"
    "       moesim model pack DIR --dense [-o FILE]\n"
    "\n"
    "Write every routed expert of the model in DIR (config.json + model.safetensors)\n"
    "into one file: each expert is one contiguous block aligned to 4096 bytes (gate\n"
    "rows, up rows, down rows) with a check value, so a cache miss is one pread. The\n"
    "pack records the model's identity, and a pack of another model is refused.\n"
    "The file is written atomically: on error nothing is left behind.\n"
    "\n"
    "  -o, --output FILE  the pack (default DIR/experts.pack)\n"
    "  --dtype D          bf16 or f32, or q8, q4, q3, q2: quantized to that many bits\n"
    "                     (docs/pack-format.md; an offloaded run computes on them as\n"
    "                     read). Default: the dtype of the model's expert tensors; an\n"
    "                     F16 model is packed as f32 (exact). bf16 from f32 rounds\n"
    "                     to nearest even.\n"
    "  --dense            write the dense pack instead (default DIR/dense.pack): per\n"
    "                     layer one block with its norms, attention and shared\n"
    "                     expert, as the model holds them (routers stay in RAM), for\n"
    "                     --stream-dense\n"
    "  -h, --help         this text\n";

static const char info_usage[] =
    "usage: moesim model info FILE\n"
    "\n"
    "Validate an expert pack's header and index and print its dtype, geometry,\n"
    "bytes per expert, layout and the identity (model id) of the model it was made\n"
    "from. Expert blocks are not read: `moesim model verify` reads them. A dense\n"
    "pack (`model pack --dense`): its layers, block bytes and tensor table.\n";

static const char verify_usage[] =
    "usage: moesim model verify FILE [--model DIR] [--io direct|buffered|mmap]\n"
    "\n"
    "Read every expert block of an expert pack and check its check value. Exit 1\n"
    "with the file, layer and expert at the first failure.\n"
    "\n"
    "  --model DIR   also check that the pack was made from the model in DIR\n"
    "                (geometry and model id)\n"
    "  --io MODE     how blocks are read: direct (O_DIRECT), buffered (page cache,\n"
    "                default) or mmap\n"
    "  -h, --help    this text\n";

/* "108.0 KiB": the one byte formatter (core/units.h). */
static const char *human(uint64_t b, char *buf, size_t n) { return moe_bytes_text((double)b, buf, n); }

static const char *dtype_name(uint32_t d) { return moe_pack_dtype_name(d); }

/* What getopt's -h or an unknown option ends with: the exit status. */
static int help_or_usage(int c, const char *usage) {
    if (c == 'h') return fputs(usage, stdout), 0;
    return fputs(usage, stderr), 2;
}

/* ---- pack ---------------------------------------------------------------- */

typedef struct progress {
    const char *out;
    int open_line; /* a progress line without its newline is on stderr */
} progress;

static void pack_progress(void *ctx, uint32_t done, uint32_t layers) {
    progress *pr = ctx;
    fprintf(stderr, "\r%s: layer %u/%u", pr->out, done, layers);
    pr->open_line = done < layers;
    if (!pr->open_line) fputc('\n', stderr);
}

/* The model file's expert dtype as a pack dtype: F16 has no pack dtype and
 * widens to f32 exactly. */
static int default_dtype(const moe_model *m) { return !strcmp(m->dtype, "BF16") ? MOE_PACK_BF16 : MOE_PACK_F32; }

/* --dense: the model without its experts (a dense pack leaves them out). */
static int pack_dense(const char *dir, const char *out, moe_error *err) {
    moe_model *m = moe_model_load_ex(dir, MOE_LOAD_NO_EXPERTS, err);
    if (!m) return -1;
    moe_dense_pack p;
    int rc = moe_dense_pack_write(m, out, err) || moe_dense_pack_open(&p, out, MOE_IO_BUFFERED, err) ? -1 : 0;
    moe_model_free(m);
    if (rc) return -1;
    char a[32], b[32];
    /* reopened: the summary reports the pack as a reader sees it */
    printf("wrote %s: %u layers, %u tensors each, %llu B per layer (%s), %s\n", out, p.n_layers, p.n_tensors,
           (unsigned long long)p.block_bytes, human(p.block_bytes, a, sizeof a), human(p.file_size, b, sizeof b));
    moe_dense_pack_close(&p);
    return 0;
}

static int model_pack(int argc, char **argv) {
    static const struct option opts[] = {
        {"output", required_argument, 0, 'o'},
        {"dtype", required_argument, 0, 'd'},
        {"dense", no_argument, 0, 'D'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    const char *out = NULL;
    int dtype = -1, c, dense = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, "o:h", opts, NULL)) != -1) {
        if (c == 'o') out = optarg;
        else if (c == 'D') dense = 1;
        else if (c == 'd' && !strcmp(optarg, "bf16")) dtype = MOE_PACK_BF16;
        else if (c == 'd' && !strcmp(optarg, "f32")) dtype = MOE_PACK_F32;
        else if (c == 'd' && !strcmp(optarg, "q8")) dtype = MOE_PACK_Q8;
        else if (c == 'd' && !strcmp(optarg, "q4")) dtype = MOE_PACK_Q4;
        else if (c == 'd' && !strcmp(optarg, "q3")) dtype = MOE_PACK_Q3;
        else if (c == 'd' && !strcmp(optarg, "q2")) dtype = MOE_PACK_Q2;
        else if (c == 'd') {
            fprintf(stderr, "moesim model pack: --dtype: expected bf16, f32, q8, q4, q3 or q2, got '%s'\n%s", optarg,
                    pack_usage);
            return 2;
        } else return help_or_usage(c, pack_usage);
    }
    if (optind != argc - 1) {
        fprintf(stderr, "moesim model pack: need exactly one model directory\n%s", pack_usage);
        return 2;
    }
    if (dense && dtype >= 0) {
        fprintf(stderr, "moesim model pack: --dtype applies to expert packs; a dense pack keeps the model's dtypes\n");
        return 2;
    }
    const char *dir = argv[optind];
    size_t n = strlen(dir) + sizeof "/experts.pack";
    char *def = malloc(n);
    if (!def) return fputs("moesim model pack: out of memory\n", stderr), 1;
    snprintf(def, n, "%s/%s", dir, dense ? "dense.pack" : "experts.pack");
    if (!out) out = def;
    moe_error err = {{0}};
    if (dense) {
        int rc = pack_dense(dir, out, &err);
        free(def);
        return rc ? cli_error("model pack", &err) : 0;
    }
    moe_model *m = moe_model_load(dir, &err);
    int rc = 1;
    if (m) {
        if (dtype < 0) dtype = default_dtype(m);
        progress pr = {.out = out};
        int wrc = moe_pack_write(m, out, dtype, cli_is_tty(2) ? pack_progress : NULL, &pr, &err);
        if (pr.open_line) fputc('\n', stderr);
        moe_pack p;
        /* reopened: the summary reports the pack as a reader sees it */
        if (wrc == 0 && moe_pack_open(&p, out, MOE_IO_BUFFERED, &err) == 0) {
            char a[32], b[32];
            printf("wrote %s: %u layers x %u experts, %s, %llu B per expert (%s), %s\n", out, p.n_layers, p.n_experts,
                   dtype_name(p.dtype), (unsigned long long)p.expert_bytes, human(p.expert_bytes, a, sizeof a),
                   human(p.file_size, b, sizeof b));
            moe_pack_close(&p);
            rc = 0;
        }
    }
    if (rc) cli_error("model pack", &err);
    if (m) moe_model_free(m);
    free(def);
    return rc;
}

/* ---- info ---------------------------------------------------------------- */

/* Whether FILE starts with the dense pack's magic (else: an expert pack, or an error). */
static int is_dense_pack(const char *path) {
    char magic[8];
    FILE *f = fopen(path, "rb");
    int yes = f && fread(magic, 1, 8, f) == 8 && !memcmp(magic, "MOEDENSE", 8);
    if (f) fclose(f);
    return yes;
}

static int dense_info(const char *path) {
    moe_error err = {{0}};
    moe_dense_pack p;
    if (moe_dense_pack_open(&p, path, MOE_IO_BUFFERED, &err)) return cli_error("model info", &err);
    char a[32], b[32], id[65];
    moe_sha256_hex(p.model_id, id);
    printf("file          %s\n", p.path);
    printf("format        dense pack v%d\n", MOE_DENSE_PACK_VERSION);
    printf("layers        %u (decoder layers)\n", p.n_layers);
    printf("block_bytes   %llu (%s)\n", (unsigned long long)p.block_bytes, human(p.block_bytes, a, sizeof a));
    printf("stride        %llu\n", (unsigned long long)p.stride);
    printf("data_offset   %llu\n", (unsigned long long)p.data_offset);
    printf("file_size     %llu (%s)\n", (unsigned long long)p.file_size, human(p.file_size, b, sizeof b));
    printf("model_id      %s\n", id);
    static const char *const dt[3] = {"f32", "f16", "bf16"};
    for (uint32_t i = 0; i < p.n_tensors; i++)
        printf("tensor        %-26s %-4s %u x %u at %llu\n", moe_dense_kind_name(p.table[i].kind), dt[p.table[i].dtype],
               p.table[i].rows, p.table[i].cols, (unsigned long long)p.table[i].offset);
    moe_dense_pack_close(&p);
    return 0;
}

static int model_info(int argc, char **argv) {
    static const struct option opts[] = {{"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) return help_or_usage(c, info_usage);
    if (optind != argc - 1) {
        fprintf(stderr, "moesim model info: need exactly one pack file\n%s", info_usage);
        return 2;
    }
    moe_error err = {{0}};
    if (is_dense_pack(argv[optind])) return dense_info(argv[optind]);
    moe_pack p;
    if (moe_pack_open(&p, argv[optind], MOE_IO_BUFFERED, &err)) return cli_error("model info", &err);
    char a[32], b[32], id[65];
    moe_sha256_hex(p.model_id, id);
    printf("file          %s\n", p.path);
    printf("format        expert pack v%d\n", MOE_PACK_VERSION);
    printf("dtype         %s\n", dtype_name(p.dtype));
    printf("layers        %u (MoE layers)\n", p.n_layers);
    printf("experts       %u per layer\n", p.n_experts);
    printf("hidden        %u\n", p.hidden);
    printf("inter         %u\n", p.inter);
    printf("expert_bytes  %llu (%s)\n", (unsigned long long)p.expert_bytes, human(p.expert_bytes, a, sizeof a));
    printf("stride        %llu\n", (unsigned long long)p.stride);
    printf("data_offset   %llu\n", (unsigned long long)p.data_offset);
    printf("file_size     %llu (%s)\n", (unsigned long long)p.file_size, human(p.file_size, b, sizeof b));
    printf("model_id      %s\n", id);
    moe_pack_close(&p);
    return 0;
}

/* ---- verify -------------------------------------------------------------- */

/* Every block read and checked; 0 or -1 with err at the first failure. */
static int verify_blocks(const moe_pack *p, moe_error *err) {
    void *blk = moe_pack_alloc_block(p);
    if (!blk) return moe_fail(err, "%s: out of memory", p->path);
    int tty = cli_is_tty(2), rc = 0;
    for (uint32_t l = 0; l < p->n_layers && !rc; l++) {
        for (uint32_t e = 0; e < p->n_experts && !rc; e++) rc = moe_pack_read(p, l, e, blk, err);
        if (tty) fprintf(stderr, "\r%s: layer %u/%u%s", p->path, l + 1, p->n_layers, rc || l + 1 == p->n_layers ? "\n" : "");
    }
    free(blk);
    return rc;
}

static int model_verify(int argc, char **argv) {
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'},
        {"io", required_argument, 0, 'i'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    const char *model = NULL;
    int io = MOE_IO_BUFFERED, c;
    moe_error err = {{0}};
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (c == 'm') model = optarg;
        else if (c == 'i') {
            if (moe_io_mode_parse(optarg, &io, &err)) {
                fprintf(stderr, "moesim model verify: --io: %s\n%s", err.msg, verify_usage);
                return 2;
            }
        } else return help_or_usage(c, verify_usage);
    }
    if (optind != argc - 1) {
        fprintf(stderr, "moesim model verify: need exactly one pack file\n%s", verify_usage);
        return 2;
    }
    moe_pack p;
    if (moe_pack_open(&p, argv[optind], io, &err)) return cli_error("model verify", &err);
    moe_model *m = NULL;
    int rc = 1;
    /* the model's experts are not needed: its identity leaves them out */
    int ok = !model || ((m = moe_model_load_ex(model, MOE_LOAD_NO_EXPERTS, &err)) && !moe_pack_check_model(&p, m, &err));
    if (ok && verify_blocks(&p, &err) == 0) {
        char a[32];
        printf("%s: ok: %llu experts verified (%s of payload)", p.path, (unsigned long long)p.n_layers * p.n_experts,
               human(p.expert_bytes * p.n_layers * p.n_experts, a, sizeof a));
        if (m) printf(", made from %s", model);
        printf("\n");
        rc = 0;
    }
    if (rc) cli_error("model verify", &err);
    if (m) moe_model_free(m);
    moe_pack_close(&p);
    return rc;
}

int cmd_model(int argc, char **argv) {
    if (argc < 2) return fputs(model_usage, stderr), 2;
    const char *sub = argv[1];
    if (!strcmp(sub, "--help") || !strcmp(sub, "-h") || !strcmp(sub, "help")) return fputs(model_usage, stdout), 0;
    if (!strcmp(sub, "pack")) return model_pack(argc - 1, argv + 1);
    if (!strcmp(sub, "info")) return model_info(argc - 1, argv + 1);
    if (!strcmp(sub, "verify")) return model_verify(argc - 1, argv + 1);
    if (!strcmp(sub, "synth")) return model_synth(argc - 1, argv + 1);
    fprintf(stderr, "moesim model: unknown subcommand '%s'\n%s", sub, model_usage);
    return 2;
}

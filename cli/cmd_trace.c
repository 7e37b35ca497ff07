/* cmd_trace.c: `moesim trace import|export|info|gen` — convert, inspect and
 * generate routing traces. */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <strings.h>

#include "../core/results.h"
#include "../core/trace_formats.h"
#include "../core/trace_gen.h"
#include "cli.h"
#include "commands.h"

static const char trace_usage[] =
    "usage: moesim trace <import|export|info|gen|stats> [options]   (moesim trace <sub> --help)\n"
    "\n"
    "  import   convert a CSV, JSONL routing log or libCacheSim trace to .moetrace\n"
    "  export   write any trace as CSV (step,seq,token,layer,slot,expert,weight)\n"
    "  info     print a trace's geometry, counts, meta and checksum\n"
    "  gen      generate a synthetic trace (seeded, reproducible)\n"
    "  stats    popularity, reuse distances, lookahead accuracy, moe-lrc metrics\n"
    "  fit      tune the generator to target LRU/Belady hit-rate curves (moe-lrc mode)\n";

static const char import_usage[] =
    "usage: moesim trace import [--format F] IN -o OUT.moetrace [options]\n"
    "\n"
    "Convert a trace to the binary .moetrace format (see traces/README.md).\n"
    "An option that does not apply to the format is an error.\n"
    "\n"
    "  --format F         csv | jsonl-mixtral | jsonl-qwen | lcs-csv | lcs-oracle\n"
    "                     (default: sniffed from the name and content: .jsonl by its\n"
    "                     first line, a CSV by its header (moesim's or a libCacheSim\n"
    "                     header naming obj_id), libCacheSim oracleGeneral by its\n"
    "                     size and records; anything else needs --format)\n"
    "  -o, --output F     output .moetrace (written atomically)\n"
    "  --model NAME       model name stored in the header\n"
    "  --strict           jsonl, lcs-csv: a warning (empty records, a suspicious\n"
    "                     key column) is an error\n"    "  --max-memory GiB   stop with an error, before it is allocated, when the\n"
    "                     import would hold more (csv: the trace; jsonl: the rows;\n"
    "                     libCacheSim: the key table); 'none' for no cap; default:\n"
    "                     this machine's memory (or ulimit -v, when lower)\n"
    "geometry (csv, jsonl; default: largest value seen + 1):\n"
    "  --layers N  --experts N  --top-k N\n"
    "jsonl:\n"
    "  --field NAME=KEY   read logical field NAME (seq, layer, token, experts, weights,\n"
    "                     step) from JSON key KEY; repeatable. Defaults: mixtral\n"
    "                     problem_id, layer, token_pos|token_idx, experts, gating_probs;\n"
    "                     qwen req_id, layer, token_idx, topk_ids, topk_weights\n"
    "  --order O          mixtral: exec (new pass when layer decreases; default with\n"
    "                     token_pos) or sorted (problem/layer/token order, one step\n"
    "                     per token; default with token_idx)\n"
    "  --pass-by RULE     qwen: how route rows form forward passes (steps); a pass's\n"
    "                     rows with distinct (req_id, token_idx) are its tokens:\n"
    "                     token   consecutive rows of one (req_id, token_idx) are a\n"
    "                             token, each token its own pass (default)\n"
    "                     wrap    a pass starts where the layer goes down or a\n"
    "                             (req_id, token_idx, layer) repeats within it\n"
    "                     rows=N  every N route rows form a pass\n"
    "                     key=KEY a pass starts where JSON key KEY changes value\n"
    "                     (not with --field step=KEY, the older form of key=KEY)\n"
    "  --keep-warmup      qwen: keep the warm-up. By default the leading passes are\n"
    "                     warm-up, dropped with a note, when 8 or more in a row\n"
    "                     route every layer to the same experts (the union over a\n"
    "                     pass's tokens) and a later pass differs\n"
    "  --skip-warmup N    qwen: instead, drop the first N route rows\n"
    "  --warmup-prefix P  qwen: instead, drop route rows whose req_id starts with P\n"
    "                     (with --skip-warmup: the rows either names)\n"
    "  phases (qwen): if every row has one req_id and a pass holds several tokens\n"
    "                     or token_idx restarts, prefill and decode cannot be told\n"
    "                     apart: every step is labelled decode (note, meta)\n"
    "lcs-csv (libCacheSim CSV; replay the result with --scope global):\n"
    "  --obj-col N        1-based column of the object id (default 1; a default\n"
    "                     column that looks like a time/version/size column is an\n"
    "                     error, a chosen one a warning)\n"
    "  --has-header       the first line is a header\n"
    "  --delimiter C      field delimiter (default ',')\n"
    "  -h, --help         this text\n";

static const char export_usage[] =
    "usage: moesim trace export IN -o OUT.csv\n"
    "\n"
    "Write a trace (.moetrace, .csv, .jsonl) as CSV, rows sorted by step, token,\n"
    "seq, layer, slot. Lookahead, logits and header strings are not exported.\n";

static const char info_usage[] =
    "usage: moesim trace info F\n"
    "\n"
    "Print geometry, steps, tokens, sequences, phases, weights, lookahead depth,\n"
    "meta, (for .moetrace) the verified checksum, and the content hash that\n"
    "identifies the trace in results databases.\n";

static const char gen_usage[] =
    "usage: moesim trace gen -o F [options]\n"
    "\n"
    "Generate a synthetic routing trace (the model: docs/reference.md, Synthetic\n"
    "traces). Same options and seed give a byte-identical file.\n"
    "\n"
    "  -o, --output F       output .moetrace\n"
    "  --steps N            forward passes (default 1000)\n"
    "  --layers N           MoE layers (default 32)\n"
    "  --experts N          experts per layer (default 8)\n"
    "  --top-k N            experts per token and layer (default 2)\n"
    "  --zipf S             Zipf exponent of expert popularity (default 1.0)\n"
    "  --locality P         P(reuse an expert of the previous token) (default 0.3)\n"
    "  --cross-layer P      P(follow the previous layer's choice) (default 0.3)\n"
    "  --topic-every N      mean tokens between topic switches, 0 = never (default 64)\n"
    "  --seq-len N          tokens per sequence (default 256)\n"
    "  --prefill N          tokens in each sequence's prefill step (default 32)\n"
    "  --lookahead D        lookahead depth, 0 = none (default 0)\n"
    "  --lookahead-acc P    P(lookahead prediction is right) (default 0.8)\n"
    "  --alpha A            Dirichlet concentration of gate weights (default 1)\n"
    "  --no-weights         do not store gate weights\n"
    "  --model NAME         model name in the header (default synthetic)\n"
    "  --seed N             random seed (default 1)\n"
    "  -h, --help           this text\n"
    "\n"
    "example:\n"
    "  moesim trace gen -o synth.moetrace --steps 400 --layers 8 --experts 16 --top-k 2 --lookahead 1\n";

static int parse_prob(const char *opt, const char *s, double lo, double hi, double *out, moe_error *err) {
    char *end;
    double v = strtod(s, &end);
    if (!*s || *end || !(v >= lo && v <= hi)) return moe_fail(err, "%s: expected a number in %g..%g, got '%s'", opt, lo, hi, s);
    *out = v;
    return 0;
}

static int u32opt(const char *opt, const char *s, uint32_t *out, moe_error *err) {
    uint64_t v;
    if (cli_parse_u64(opt, s, UINT32_MAX, &v, err)) return -1;
    *out = (uint32_t)v;
    return 0;
}

/* ---- import ------------------------------------------------------------- */

static int has_ext(const char *p, const char *e) {
    size_t n = strlen(p), m = strlen(e);
    return n > m && !strcasecmp(p + n - m, e);
}

/* The formats, as bits, and which of them each format-specific option
 * applies to; every other pairing is an error (never silently ignored). */
enum { FMT_CSV = 1, FMT_MIXTRAL = 2, FMT_QWEN = 4, FMT_LCS_CSV = 8, FMT_LCS_ORACLE = 16 };
static const char *const fmt_name[] = {"csv", "jsonl-mixtral", "jsonl-qwen", "lcs-csv", "lcs-oracle"};
#define FMT_LIST "csv, jsonl-mixtral, jsonl-qwen, lcs-csv, lcs-oracle"

static const struct {
    int id;
    const char *name;
    int formats;
} import_scope[] = {
    {'L', "--layers", FMT_CSV | FMT_MIXTRAL | FMT_QWEN},
    {'E', "--experts", FMT_CSV | FMT_MIXTRAL | FMT_QWEN},
    {'K', "--top-k", FMT_CSV | FMT_MIXTRAL | FMT_QWEN},
    {'F', "--field", FMT_MIXTRAL | FMT_QWEN},
    {'O', "--order", FMT_MIXTRAL},
    {'w', "--skip-warmup", FMT_QWEN},
    {'W', "--warmup-prefix", FMT_QWEN},
    {'k', "--keep-warmup", FMT_QWEN},
    {'P', "--pass-by", FMT_QWEN},
    {'c', "--obj-col", FMT_LCS_CSV},
    {'H', "--has-header", FMT_LCS_CSV},
    {'d', "--delimiter", FMT_LCS_CSV},
    {'S', "--strict", FMT_MIXTRAL | FMT_QWEN | FMT_LCS_CSV},
};
#define N_SCOPE (sizeof import_scope / sizeof *import_scope)

static int fmt_bit(const char *format) {
    for (int i = 0; i < 5; i++)
        if (!strcmp(format, fmt_name[i])) return 1 << i;
    return 0;
}

/* Progress of an import on a terminal (cli/cli.h). */
static cli_progress prog;

static void import_say(void *ctx, int is_warning, const char *msg) {
    (void)ctx;
    cli_progress_clear(&prog);
    fprintf(stderr, "moesim trace import: %s: %s\n", is_warning ? "warning" : "note", msg);
}

/* The format of `in` when --format is not given: by name, then by content.
 * Returns the format's name, or NULL after printing why not (*rc set). A
 * sniffed libCacheSim CSV also sets lo->has_header and (unless given)
 * lo->obj_col; a note names what was chosen, except for the two cases
 * moesim always sniffed (.csv with moesim's header, .jsonl). */
static const char *sniff_format(const char *in, moe_lcs_opts *lo, int *rc) {
    moe_error err = {{0}};
    *rc = 2;
    if (has_ext(in, ".jsonl")) {
        int l = moe_jsonl_sniff(in, &err);
        if (l < 0) return *rc = cli_error("trace import", &err), NULL;
        return l == MOE_JSONL_QWEN ? "jsonl-qwen" : "jsonl-mixtral";
    }
    FILE *f = fopen(in, "rb");
    if (!f) {
        moe_fail(&err, "%s: cannot open: %s", in, strerror(errno));
        return *rc = cli_error("trace import", &err), NULL;
    }
    char head[4096];
    size_t n = fread(head, 1, sizeof head - 1, f);
    fclose(f);
    head[n] = 0;
    int binary = memchr(head, 0, n) != NULL;
    size_t eol = strcspn(head, "\r\n");
    char first[161];
    snprintf(first, sizeof first, "%.*s", (int)(eol < 160 ? eol : 160), head);
    int csv_ext = has_ext(in, ".csv");
    if (n >= 8 && !memcmp(head, MOE_BIN_MAGIC, 8)) {
        fprintf(stderr, "moesim trace import: %s: already a .moetrace trace; nothing to import\n", in);
        return NULL;
    }
    /* a UTF-8 byte order mark (the readers strip it) does not hide the header */
    const char *h = n >= 3 && !memcmp(head, "\xEF\xBB\xBF", 3) ? head + 3 : head;
    if (!strncmp(h, "step,seq,", 9)) { /* moesim's CSV; its reader checks the whole header */
        if (!csv_ext) fprintf(stderr, "moesim trace import: note: %s: read as --format csv (moesim's CSV header)\n", in);
        return "csv";
    }
    if (!csv_ext && !binary) {
        size_t k = strspn(head, " \t\r\n");
        if (head[k] == '{') {
            int l = moe_jsonl_sniff(in, &err);
            if (l < 0) return *rc = cli_error("trace import", &err), NULL;
            const char *fm = l == MOE_JSONL_QWEN ? "jsonl-qwen" : "jsonl-mixtral";
            fprintf(stderr, "moesim trace import: note: %s: read as --format %s (JSON lines%s)\n", in, fm,
                    l == MOE_JSONL_QWEN ? ", a first \"type\": \"meta\" line" : "");
            return fm;
        }
    }
    if (!csv_ext) {
        int o = moe_lcs_oracle_sniff(in, &err);
        if (o < 0) return *rc = cli_error("trace import", &err), NULL;
        if (o) {
            fprintf(stderr, "moesim trace import: note: %s: read as --format lcs-oracle (libCacheSim oracleGeneral: "
                    "a multiple of 24-byte records with sane next-access times)\n", in);
            return "lcs-oracle";
        }
    }
    uint32_t col = binary ? 0 : moe_lcs_csv_header_obj_col(first, lo->delim);
    if (col) {
        lo->has_header = 1;
        if (!lo->obj_col) lo->obj_col = col;
        fprintf(stderr, "moesim trace import: note: %s: read as --format lcs-csv --has-header --obj-col %u "
                "(libCacheSim CSV: its header names the object id in column %u)\n", in, lo->obj_col, col);
        return "lcs-csv";
    }
    if (binary)
        fprintf(stderr, "moesim trace import: %s: cannot tell the format: binary, but not libCacheSim oracleGeneral "
                "(a non-zero multiple of 24-byte records with sane next-access times); pass --format F, one of: "
                FMT_LIST "\n", in);
    else
        fprintf(stderr, "moesim trace import: %s:1: cannot tell the format: the first line '%s' is not moesim's CSV "
                "header (step,seq,token,layer,slot,expert,weight), a libCacheSim CSV header naming the object id "
                "(obj_id, object_id, objid, key or id)%s; pass --format F, one of: " FMT_LIST "\n", in, first,
                csv_ext ? "" : ", a JSON object, or part of a libCacheSim oracleGeneral file");
    return NULL;
}

static int trace_import(int argc, char **argv) {
    static const struct option opts[] = {
        {"format", required_argument, 0, 'f'},  {"output", required_argument, 0, 'o'},
        {"model", required_argument, 0, 'm'},   {"layers", required_argument, 0, 'L'},
        {"experts", required_argument, 0, 'E'}, {"top-k", required_argument, 0, 'K'},
        {"field", required_argument, 0, 'F'},   {"order", required_argument, 0, 'O'},
        {"skip-warmup", required_argument, 0, 'w'}, {"warmup-prefix", required_argument, 0, 'W'},
        {"keep-warmup", no_argument, 0, 'k'},   {"pass-by", required_argument, 0, 'P'},
        {"obj-col", required_argument, 0, 'c'}, {"has-header", no_argument, 0, 'H'},
        {"delimiter", required_argument, 0, 'd'}, {"strict", no_argument, 0, 'S'},
        {"max-memory", required_argument, 0, 'M'},
        {"help", no_argument, 0, 'h'},          {0, 0, 0, 0},
    };
    const char *format = NULL, *out = NULL, *model = NULL;
    moe_csv_opts co = {0};
    moe_jsonl_opts jo = {0};
    moe_lcs_opts lo = {0};
    moe_import_report rep = {.say = import_say, .progress = cli_progress_update, .ctx = &prog};
    int max_given = 0;
    moe_error err = {{0}};
    int given[N_SCOPE] = {0};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "o:h", opts, NULL)) != -1) {
        for (size_t i = 0; i < N_SCOPE; i++)
            if (import_scope[i].id == c) given[i] = 1;
        switch (c) {
        case 'f': format = optarg; break;
        case 'o': out = optarg; break;
        case 'm': model = optarg; break;
        case 'L': if (u32opt("--layers", optarg, &co.layers, &err)) return cli_error("trace import", &err); break;
        case 'E': if (u32opt("--experts", optarg, &co.experts, &err)) return cli_error("trace import", &err); break;
        case 'K': if (u32opt("--top-k", optarg, &co.top_k, &err)) return cli_error("trace import", &err); break;
        case 'F': if (moe_jsonl_map_field(&jo, optarg, &err)) return cli_error("trace import", &err); break;
        case 'O':
            if (!strcmp(optarg, "exec")) jo.order = MOE_ORDER_EXEC;
            else if (!strcmp(optarg, "sorted")) jo.order = MOE_ORDER_SORTED;
            else { fprintf(stderr, "moesim trace import: --order: expected exec or sorted, got '%s'\n", optarg); return 2; }
            break;
        case 'w': if (cli_parse_u64("--skip-warmup", optarg, UINT64_MAX, &jo.skip_warmup, &err)) return cli_error("trace import", &err); break;
        case 'W': jo.warmup_prefix = optarg; break;
        case 'k': jo.keep_warmup = 1; break;
        case 'P': if (moe_jsonl_pass_by(&jo, optarg, &err)) return cli_error("trace import", &err), 2; break;
        case 'c':
            if (u32opt("--obj-col", optarg, &lo.obj_col, &err)) return cli_error("trace import", &err);
            if (lo.obj_col == 0) { fputs("moesim trace import: --obj-col is 1-based\n", stderr); return 2; }
            break;
        case 'H': lo.has_header = 1; break;
        case 'd':
            if (strlen(optarg) != 1) { fprintf(stderr, "moesim trace import: --delimiter: one character, got '%s'\n", optarg); return 2; }
            lo.delim = optarg[0];
            break;
        case 'S': rep.strict = 1; break;
        case 'M': {
            if (!strcmp(optarg, "none")) {
                rep.max_bytes = 0, max_given = 1;
                break;
            }
            char *end;
            double gib = strtod(optarg, &end);
            if (end == optarg || *end || !(gib > 0) || gib > 1e6) {
                fprintf(stderr, "moesim trace import: --max-memory: expected a positive number of GiB or 'none', got '%s'\n", optarg);
                return 2;
            }
            rep.max_bytes = (uint64_t)(gib * 1073741824.0);
            if (!rep.max_bytes) rep.max_bytes = 1;
            max_given = 1;
            break;
        }
        case 'h': fputs(import_usage, stdout); return 0;
        default: fputs(import_usage, stderr); return 2;
        }
    }
    if (!max_given) rep.max_bytes = moe_default_memory_cap(), rep.max_is_default = 1;
    if (optind != argc - 1 || !out) {
        fprintf(stderr, "moesim trace import: need exactly one input file and -o OUT\n%s", import_usage);
        return 2;
    }
    const char *in = argv[optind];
    int sniffed = !format;
    if (format && !fmt_bit(format)) {
        fprintf(stderr, "moesim trace import: unknown --format '%s'\n%s", format, import_usage);
        return 2;
    }
    if (!format) {
        int rc;
        moe_lcs_opts sl = lo; /* the sniffer may fill header and column */
        if (!(format = sniff_format(in, &sl, &rc))) return rc;
        if (!strcmp(format, "lcs-csv")) lo = sl;
    }
    int bit = fmt_bit(format);
    for (size_t i = 0; i < N_SCOPE; i++) {
        if (!given[i] || (import_scope[i].formats & bit)) continue;
        fprintf(stderr, "moesim trace import: %s does not apply to %s%s (it applies to", import_scope[i].name,
                sniffed ? "" : "--format ", format);
        for (int k = 0, first = 1; k < 5; k++)
            if (import_scope[i].formats & (1 << k)) fprintf(stderr, "%s %s", first ? "" : ",", fmt_name[k]), first = 0;
        fprintf(stderr, ")%s\n", sniffed ? "; the format was sniffed from the file: pass --format to choose another" : "");
        return 2;
    }
    jo.layers = co.layers, jo.experts = co.experts, jo.top_k = co.top_k;
    if ((bit & (FMT_MIXTRAL | FMT_QWEN)) && moe_jsonl_check_opts(&jo, &err)) {
        fprintf(stderr, "moesim trace import: %s\n", err.msg);
        return 2;
    }
    cli_progress_start(&prog, "trace import", in, "MB", 1e6);
    co.rep = &rep;
    if (bit & (FMT_LCS_CSV | FMT_LCS_ORACLE)) { /* key sequences stream straight to the file */
        uint64_t nr = 0, nk = 0;
        int lrc = moe_lcs_import(in, bit == FMT_LCS_ORACLE, &lo, &rep, model, out, &nr, &nk, &err);
        cli_progress_clear(&prog);
        if (lrc) return cli_error("trace import", &err);
        printf("%s: %llu requests over %llu keys (key sequence) -> %s\n", in, (unsigned long long)nr,
               (unsigned long long)nk, out);
        return 0;
    }
    moe_trace *t;
    if (bit == FMT_CSV) t = moe_trace_load_csv(in, &co, &err);
    else if (bit == FMT_MIXTRAL) jo.layout = MOE_JSONL_MIXTRAL, t = moe_trace_load_jsonl_report(in, &jo, &rep, &err);
    else jo.layout = MOE_JSONL_QWEN, t = moe_trace_load_jsonl_report(in, &jo, &rep, &err);
    cli_progress_clear(&prog);
    if (!t) {
        int rc = cli_error("trace import", &err);
        char first[512] = "";
        FILE *f = bit == FMT_CSV ? fopen(in, "rb") : NULL;
        if (f && fgets(first, sizeof first, f) && strncmp(first, "step,seq,", 9) && moe_lcs_csv_header_obj_col(first, 0))
            fprintf(stderr, "moesim trace import: %s: the header names an object id: a libCacheSim CSV? (--format lcs-csv, "
                    "or no --format to sniff it)\n", in);
        if (f) fclose(f);
        return rc;
    }
    if (model) snprintf(t->model, sizeof t->model, "%s", model);
    int rc = moe_trace_save(t, out, &err) ? cli_error("trace import", &err) : 0;
    if (!rc)
        printf("%s: %llu steps, %llu tokens, %u layers x %u experts, top-%u -> %s\n", in,
               (unsigned long long)t->n_steps, (unsigned long long)t->n_tokens, t->n_layers, t->n_experts, t->top_k, out);
    moe_trace_free(t);
    return rc;
}

/* ---- export ------------------------------------------------------------- */

static int trace_export(int argc, char **argv) {
    static const struct option opts[] = {
        {"output", required_argument, 0, 'o'}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    const char *out = NULL;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "o:h", opts, NULL)) != -1) {
        if (c == 'o') out = optarg;
        else if (c == 'h') return fputs(export_usage, stdout), 0;
        else return fputs(export_usage, stderr), 2;
    }
    if (optind != argc - 1 || !out) {
        fprintf(stderr, "moesim trace export: need exactly one input file and -o OUT\n%s", export_usage);
        return 2;
    }
    moe_error err = {{0}};
    moe_trace *t = moe_trace_load(argv[optind], &err);
    if (!t) return cli_error("trace export", &err);
    int rc = moe_trace_save_csv(t, out, &err) ? cli_error("trace export", &err) : 0;
    moe_trace_free(t);
    return rc;
}

/* ---- info --------------------------------------------------------------- */

static int cmp_u32(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* The lines every `trace info` ends with: checksum (and how it was
 * verified), the hash runs are stored under in SQLite, the meta text. */
static void print_identity(const moe_trace *t, const char *path) {
    moe_error err = {{0}};
    uint64_t sum;
    if (t->map && moe_trace_bin_checksum(path, &sum, &err) == 0)
        printf("checksum     %016llx (%s)\n", (unsigned long long)sum,
               t->checksum_recalled ? "verified when first opened; file unchanged since" : "verified");
    char hash[65];
    moe_trace_hash(t, hash);
    printf("hash         %s\n", hash);
    printf("meta\n");
    for (const char *m = t->meta ? t->meta : ""; *m;) {
        const char *nl = strchr(m, '\n');
        int n = nl ? (int)(nl - m) : (int)strlen(m);
        printf("  %.*s\n", n, m);
        m += n + (nl != NULL);
    }
}

/* A key sequence has no routing to describe: requests, keys, identity. */
static int keys_info(const moe_trace *t, const char *path) {
    printf("file         %s\n", path);
    printf("format       %s\n", t->map ? "moetrace v2 (binary, key sequence)" : "text (imported on load)");
    printf("model        %s\n", t->model);
    printf("source       %s\n", t->source);
    printf("kind         key sequence (one key per request, one key space: run with any --scope)\n");
    printf("requests     %llu\n", (unsigned long long)t->n_tokens);
    printf("keys         %u distinct\n", t->n_experts);
    print_identity(t, path);
    return 0;
}

static int trace_info(int argc, char **argv) {
    if (argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) return fputs(info_usage, stdout), 0;
    if (argc != 2 || argv[1][0] == '-') {
        fprintf(stderr, "moesim trace info: need exactly one trace file\n%s", info_usage);
        return 2;
    }
    const char *path = argv[1];
    moe_error err = {{0}};
    moe_trace *t = moe_trace_load_ex(path, MOE_LOAD_KEYS, &err);
    if (!t) return cli_error("trace info", &err);
    if (t->keys) {
        int rc = keys_info(t, path);
        moe_trace_free(t);
        return rc;
    }
    uint64_t prefill = 0, seqs = 0;
    for (uint64_t s = 0; s < t->n_steps; s++) prefill += t->step_phase[s] == MOE_PHASE_PREFILL;
    uint32_t *sq = malloc(t->n_tokens * sizeof *sq);
    if (sq) {
        memcpy(sq, t->token_seq, t->n_tokens * sizeof *sq);
        qsort(sq, t->n_tokens, sizeof *sq, cmp_u32);
        for (uint64_t i = 0; i < t->n_tokens; i++) seqs += !i || sq[i] != sq[i - 1];
        free(sq);
    }
    uint64_t slots = moe_trace_count_slots(t);
    printf("file         %s\n", path);
    printf("format       %s\n", t->map ? "moetrace v1 (binary)" : "text (imported on load)");
    printf("model        %s\n", t->model);
    printf("source       %s\n", t->source);
    printf("layers       %u\n", t->n_layers);
    printf("experts      %u routed per layer, %u shared\n", t->n_experts, t->n_shared);
    printf("top_k        %u\n", t->top_k);
    printf("steps        %llu (prefill %llu, decode %llu)\n", (unsigned long long)t->n_steps,
           (unsigned long long)prefill, (unsigned long long)(t->n_steps - prefill));
    printf("tokens       %llu\n", (unsigned long long)t->n_tokens);
    printf("sequences    %llu\n", (unsigned long long)seqs);
    printf("slots        %llu filled of %llu\n", (unsigned long long)slots,
           (unsigned long long)(t->n_tokens * t->n_layers * t->top_k));
    printf("weights      %s\n", t->weights ? "yes" : "no");
    printf("logits       %s\n", t->router_logits ? "yes" : "no");
    if (t->lookahead_depth) printf("lookahead    depth %u\n", t->lookahead_depth);
    else printf("lookahead    none\n");
    static const char *const prec[MOE_PREC_COUNT] = {"f32", "f16", "q8", "q4", "q3", "q2"};
    for (int i = 0; i < MOE_PREC_COUNT; i++)
        if (t->expert_bytes[i]) printf("bytes/%-6s %llu per expert\n", prec[i], (unsigned long long)t->expert_bytes[i]);
    print_identity(t, path);
    moe_trace_free(t);
    return 0;
}

/* ---- gen ---------------------------------------------------------------- */

static int trace_gen(int argc, char **argv) {
    static const struct option opts[] = {
        {"output", required_argument, 0, 'o'},   {"steps", required_argument, 0, 'n'},
        {"layers", required_argument, 0, 'L'},   {"experts", required_argument, 0, 'E'},
        {"top-k", required_argument, 0, 'K'},    {"zipf", required_argument, 0, 'z'},
        {"locality", required_argument, 0, 'l'}, {"cross-layer", required_argument, 0, 'x'},
        {"topic-every", required_argument, 0, 'T'}, {"seq-len", required_argument, 0, 'q'},
        {"prefill", required_argument, 0, 'P'},  {"lookahead", required_argument, 0, 'D'},
        {"lookahead-acc", required_argument, 0, 'A'}, {"alpha", required_argument, 0, 'a'},
        {"no-weights", no_argument, 0, 'N'},     {"model", required_argument, 0, 'm'},
        {"seed", required_argument, 0, 's'},     {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    moe_gen_params p;
    moe_gen_defaults(&p);
    const char *out = NULL;
    moe_error err = {{0}};
    int c, bad = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, "o:h", opts, NULL)) != -1) {
        switch (c) {
        case 'o': out = optarg; break;
        case 'n': bad = cli_parse_u64("--steps", optarg, UINT32_MAX, &p.steps, &err); break;
        case 'L': bad = u32opt("--layers", optarg, &p.layers, &err); break;
        case 'E': bad = u32opt("--experts", optarg, &p.experts, &err); break;
        case 'K': bad = u32opt("--top-k", optarg, &p.top_k, &err); break;
        case 'z': bad = parse_prob("--zipf", optarg, 0, 10, &p.zipf_s, &err); break;
        case 'l': bad = parse_prob("--locality", optarg, 0, 1, &p.locality, &err); break;
        case 'x': bad = parse_prob("--cross-layer", optarg, 0, 1, &p.cross_layer, &err); break;
        case 'T': bad = cli_parse_u64("--topic-every", optarg, UINT64_MAX, &p.topic_every, &err); break;
        case 'q': bad = u32opt("--seq-len", optarg, &p.seq_len, &err); break;
        case 'P': bad = u32opt("--prefill", optarg, &p.prefill, &err); break;
        case 'D': bad = u32opt("--lookahead", optarg, &p.lookahead, &err); break;
        case 'A': bad = parse_prob("--lookahead-acc", optarg, 0, 1, &p.lookahead_acc, &err); break;
        case 'a': bad = parse_prob("--alpha", optarg, 1e-6, 1e6, &p.alpha, &err); break;
        case 'N': p.with_weights = 0; break;
        case 'm': snprintf(p.model, sizeof p.model, "%s", optarg); break;
        case 's': bad = cli_parse_u64("--seed", optarg, UINT64_MAX, &p.seed, &err); break;
        case 'h': fputs(gen_usage, stdout); return 0;
        default: fputs(gen_usage, stderr); return 2;
        }
        if (bad) return cli_error("trace gen", &err);
    }
    if (optind != argc || !out) {
        fprintf(stderr, "moesim trace gen: need -o OUT and no other arguments\n%s", gen_usage);
        return 2;
    }
    moe_trace *t = moe_trace_generate(&p, &err);
    if (!t) return cli_error("trace gen", &err);
    int rc = moe_trace_save(t, out, &err) ? cli_error("trace gen", &err) : 0;
    if (!rc)
        printf("%s: %llu steps, %llu tokens, %u layers x %u experts, top-%u\n", out, (unsigned long long)t->n_steps,
               (unsigned long long)t->n_tokens, t->n_layers, t->n_experts, t->top_k);
    moe_trace_free(t);
    return rc;
}

int cmd_trace(int argc, char **argv) {
    if (argc < 2) return fputs(trace_usage, stderr), 2;
    const char *sub = argv[1];
    if (!strcmp(sub, "--help") || !strcmp(sub, "-h") || !strcmp(sub, "help")) return fputs(trace_usage, stdout), 0;
    if (!strcmp(sub, "import")) return trace_import(argc - 1, argv + 1);
    if (!strcmp(sub, "export")) return trace_export(argc - 1, argv + 1);
    if (!strcmp(sub, "info")) return trace_info(argc - 1, argv + 1);
    if (!strcmp(sub, "gen")) return trace_gen(argc - 1, argv + 1);
    if (!strcmp(sub, "stats")) return cmd_trace_stats(argc - 1, argv + 1);
    if (!strcmp(sub, "fit")) { extern int cmd_trace_fit(int, char **); return cmd_trace_fit(argc - 1, argv + 1); }
    fprintf(stderr, "moesim trace: unknown subcommand '%s'\n%s", sub, trace_usage);
    return 2;
}

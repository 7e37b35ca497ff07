/* cmd_ppl.c: `moesim ppl` — perplexity of a text file under a byte-level model. */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "../backend/engine.h"
#include "../backend/nll.h"
#include "../backend/readfile.h"
#include "../backend/tokenizer.h"
#include "cli.h"
#include "commands.h"

static const char ppl_usage[] =
    "usage: moesim ppl --model DIR --text-file F [--threads N]\n"
    "\n"
    "Perplexity of a text under a byte-level model: the whole file is one sequence\n"
    "from position 0; the negative log-likelihood of bytes 1..N-1, each given all\n"
    "bytes before it, is averaged. Prints nats per byte and ppl = exp(nats per byte).\n"
    "\n"
    "  --model DIR      model directory (config.json + model.safetensors)\n"
    "  --text-file F    the text\n"
    "  --threads N      worker threads (default: online CPUs)\n"
    "  -h, --help       this text\n";

int cmd_ppl(int argc, char **argv) {
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'},
        {"text-file", required_argument, 0, 'f'},
        {"threads", required_argument, 0, 'j'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    const char *model = NULL, *text_path = NULL;
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    uint64_t threads = ncpu > 0 ? (uint64_t)ncpu : 1;
    moe_error err = {{0}};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'm': model = optarg; break;
        case 'f': text_path = optarg; break;
        case 'j':
            if (cli_parse_u64("--threads", optarg, 256, &threads, &err)) return cli_error("ppl", &err);
            if (!threads) threads = 1;
            break;
        case 'h': fputs(ppl_usage, stdout); return 0;
        default: fputs(ppl_usage, stderr); return 2;
        }
    }
    if (optind < argc || !model || !text_path) {
        fprintf(stderr, "moesim ppl: --model and --text-file are required\n%s", ppl_usage);
        return 2;
    }
    size_t n = 0;
    unsigned char *text = moe_backend_read_file(text_path, &n, &err);
    if (!text) return cli_error("ppl", &err);
    if (n < 2) {
        free(text);
        moe_fail(&err, "%s: %zu bytes; at least 2 are needed", text_path, n);
        return cli_error("ppl", &err);
    }
    if (n > (1u << 30)) {
        free(text);
        moe_fail(&err, "%s: too large", text_path);
        return cli_error("ppl", &err);
    }
    moe_model *m = moe_model_load(model, &err);
    if (!m) {
        free(text);
        return cli_error("ppl", &err);
    }
    int rc = 1, V = m->cfg.vocab;
    int *ids = moe_tok_encode_bytes(text, n);
    moe_engine *eng = NULL;
    double nll;
    if (!moe_tok_is_bytes(V)) moe_fail(&err, "%s: vocabulary of %d is not byte-level", model, V);
    else if (!ids) moe_fail(&err, "out of memory");
    else eng = moe_engine_new(m, (int)threads, (int)n - 1, &err);
    if (eng) {
        if ((int)n - 1 > m->cfg.max_pos)
            fprintf(stderr, "moesim ppl: warning: %zu tokens exceed max_position_embeddings (%d)\n", n - 1, m->cfg.max_pos);
        if (!moe_sequence_nll(eng, ids, (int)n, &nll, &err)) {
            double npb = nll / (double)(n - 1);
            printf("bytes %zu\nnats_per_byte %.6f\nppl %.6f\n", n, npb, exp(npb));
            rc = 0;
        }
    }
    if (rc) cli_error("ppl", &err);
    moe_engine_free(eng);
    moe_model_free(m);
    free(ids);
    free(text);
    return rc;
}

/* cmd_run.c: `moesim run` — one replay, printed and optionally stored. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/results.h"
#include "cli.h"
#include "commands.h"
#include "../sim/replay.h"
#include "../sim/replay_opts.h"
#include "../sim/runrec.h"

static const char run_usage[] =
    "usage: moesim run --trace F --capacity C [options]\n"
    "\n"
    "Replay a routing trace against one eviction policy and print the hit counts.\n"
    "\n"
    "  --trace F          trace file (.moetrace or .csv)\n"
    "  --policy P         policy spec, e.g. lru, lfu, s3fifo:small=0.1 (default lru;\n"
    "                     `moesim policies` lists them)\n"
    "  --scope S          per-layer (default) or global\n"
    "  --cold-per-seq     empty the cache whenever a new sequence starts\n"
    "  --seed N           seed for randomised policies (default 1)\n"
    "%s"
    "  --db F             also store the run in SQLite database F\n"
    "  --experiment NAME  experiment label stored with the run\n"
    "  --json             print one JSON object instead of the summary\n"
    "  -h, --help         this text\n";

int cmd_run(int argc, char **argv) {
    static const struct option opts[] = {
        {"trace", required_argument, 0, 't'},     {"policy", required_argument, 0, 'p'},
        {"capacity", required_argument, 0, 'c'},  {"scope", required_argument, 0, 's'},
        {"cold-per-seq", no_argument, 0, 'C'},    {"seed", required_argument, 0, 'S'},
        {"db", required_argument, 0, 'd'},        {"experiment", required_argument, 0, 'e'},
        {"json", no_argument, 0, 'j'},            {"help", no_argument, 0, 'h'},
        /* issue-4 options: handed to moe_replay_opt_set by name */
        {"prefetch", required_argument, 0, 'X'},  {"speculate", no_argument, 0, 'X'},
        {"skip", required_argument, 0, 'X'},      {"on-miss", required_argument, 0, 'X'},      {"precision", required_argument, 0, 'X'},
        {"stream-dense", optional_argument, 0, 'X'},
        {"device", required_argument, 0, 'X'},    {"model", required_argument, 0, 'X'},
        {"devices", required_argument, 0, 'X'},   {"models", required_argument, 0, 'X'},
        {"split", required_argument, 0, 'X'},     {"load-state", required_argument, 0, 'X'},
        {"save-state", required_argument, 0, 'X'}, {"count-from", required_argument, 0, 'X'},
        {0, 0, 0, 0},
    };
    const char *trace_path = NULL, *db_path = NULL, *experiment = "";
    moe_replay_config cfg = {.policy = "lru", .seed = 1, .scope = MOE_SCOPE_PER_LAYER};
    int json = 0, have_capacity = 0, c, idx = 0;
    moe_error err = {{0}};
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, &idx)) != -1) {
        switch (c) {
        case 't': trace_path = optarg; break;
        case 'p': cfg.policy = optarg; break;
        case 'c':
            if (moe_replay_parse_capacity(&cfg, optarg, &err)) return cli_error("run", &err);
            have_capacity = 1;
            break;
        case 'X':
            if (moe_replay_opt_set(&cfg, opts[idx].name, optarg, &err)) return cli_error("run", &err);
            break;
        case 's':
            if (moe_scope_parse(optarg, &cfg.scope, &err)) return cli_error("run", &err);
            break;
        case 'C': cfg.cold_per_seq = 1; break;
        case 'S':
            if (cli_parse_u64("--seed", optarg, UINT64_MAX, &cfg.seed, &err)) return cli_error("run", &err);
            break;
        case 'd': db_path = optarg; break;
        case 'e': experiment = optarg; break;
        case 'j': json = 1; break;
        case 'h': printf(run_usage, moe_replay_opts_help); return 0;
        default: fprintf(stderr, run_usage, moe_replay_opts_help); return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "moesim run: unexpected argument '%s'\n", argv[optind]);
        fprintf(stderr, run_usage, moe_replay_opts_help);
        return 2;
    }
    if (!trace_path || !have_capacity) {
        fprintf(stderr, "moesim run: --trace and --capacity are required\n");
        fprintf(stderr, run_usage, moe_replay_opts_help);
        return 2;
    }
    /* profiles and specs are checked before the trace is loaded */
    if (moe_replay_config_check(&cfg, &err)) return cli_error("run", &err);
    moe_trace *t = moe_trace_load_ex(trace_path, MOE_LOAD_KEYS, &err);
    if (!t) return cli_error("run", &err);
    moe_replay_result res;
    int rc = 0;
    if (moe_replay(t, &cfg, &res, &err)) {
        moe_trace_free(t);
        return cli_error("run", &err);
    }
    if (db_path) {
        char hash[65];
        moe_db *db = moe_db_open(db_path, &err);
        if (!db || moe_db_add_trace(db, t, trace_path, hash, &err) ||
            moe_run_store(db, experiment, hash, &cfg, &res, &err) || moe_db_close(db, &err)) {
            if (db) moe_db_close(db, NULL);
            rc = cli_error("run", &err);
        }
    }
    if (rc == 0) {
        if (json) {
            char *s = moe_run_json(&cfg, &res, trace_path);
            puts(s);
            free(s);
        } else {
            moe_run_print(&cfg, &res, trace_path);
        }
    }
    moe_replay_result_free(&res);
    moe_trace_free(t);
    return rc;
}

/* cmd_validate.c: `moesim validate` — run the backend offloaded, replay the
 * captured trace in the simulator with the same configuration and the
 * calibrated device profile, and set measured against predicted. */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../backend/engine.h"
#include "../backend/pack.h"
#include "../backend/readfile.h"
#include "../backend/tokenizer.h"
#include "../core/device_profile.h"
#include "../core/ini.h"
#include "../core/results.h"
#include "../core/sha256.h"
#include "../core/units.h"
#include "calib_probe.h"
#include "host_steal.h"
#include "cli.h"
#include "commands.h"
#include "offload_opts.h"
#include "offload_run.h"
#include "../sim/replay_ext.h"
#include "../sim/runrec.h"

static const char validate_usage[] =
    "usage: moesim validate --model DIR --prompt-file F --capacity C [options]\n"
    "       moesim validate --model DIR --route-from TRACE --capacity C [options]\n"
    "       moesim validate --grid FILE [options]   (experiments/validate.ini)\n"
    "\n"
    "Measure the simulator against the real backend: run DIR offloaded (experts streamed\n"
    "from an expert pack into the cache), then replay the captured trace in the simulator\n"
    "with the same policy, capacity, scope and prefetcher and the calibrated device\n"
    "profile, and print measured and predicted figures side by side with the relative\n"
    "error of each ((predicted - measured) / measured).\n"
    "\n"
    "  --model DIR          model directory (config.json + model.safetensors)\n"
    "  --prompt-file F      the prompt (byte-level tokenizer)\n"
    "  --max-tokens N       tokens to generate, greedily (default 64)\n"
    "  --device NAME        calibrated device profile (default this-machine)\n"
    "  --devices FILE       profiles file (default results/devices.local.ini, written\n"
    "                       by `moesim calibrate`)\n"
    "  --threads N          compute threads (default: the profile's, else online CPUs)\n"
    "  --repeat N           run the backend N times, keep the run of median decode time\n"
    "                       (default 1)\n"
    "  --recalibrate[=W]    just before each configuration runs, measure the machine\n"
    "                       again and predict with that: io (demand reads of the pack,\n"
    "                       as calibrate does: the profile's read time scaled to it,\n"
    "                       io_wake_us and io_resume_us replaced) or all (default: io,\n"
    "                       and calibrate's compute passes). The profile file is\n"
    "                       left as it is; the factors are printed (read x, cpu x)\n"
    "                       and stored with the predicted run\n"
    "  --trace-out F        keep the captured trace\n"
    "  --db F               store the measured and the predicted run, linked by one\n"
    "                       validation id (`moesim results list` shows their kind)\n"
    "  --experiment NAME    experiment label stored with both runs\n"
    "  --json               one JSON object: validation, measured, predicted,\n"
    "                       predicted_online, error, exact (and warm_start)\n"

    "  --grid FILE          run the [validate] grid of FILE (policies x capacities x\n"
    "                       prefetchers on one prompt), one row each, then the error\n"
    "                       statistics and Kendall tau of the policies' ranking\n"
    "  --section NAME       the grid's section (default validate; experiments/\n"
    "                       validate_scale.ini has one per geometry)\n"
    "  --passes N           run the whole grid N times (default: the grid's passes\n"
    "                       key, else 1), each pass starting further round, every\n"
    "                       run priced by its own --recalibrate; a row's figures are\n"
    "                       the medians over its passes\n"
    "  -h, --help           this text\n"
    "\n"
    "%s"
    "--offload defaults to auto. I/O threads default to the profile's io_channels.\n"
    "With a prefetcher, `predicted` replays the backend's own predictions (its prefetch\n"
    "log), so hits and bytes must match exactly; `predicted_online` runs the simulator's\n"
    "prefetcher on the trace alone. --steps-out F adds each step's predicted duration to the\n"
    "measured ones. With --save-state F, a second launch starts from the\n"
    "state the first saved (pre-read before its first step): TTFT cold and warm, measured\n"
    "and predicted. Exit status 1 if a count that must be equal is not.\n";

/* The figures compared, by the metric names `moesim run --json` uses. */
static const char *const figures[] = {
    "hits", "misses", "bypasses", "bytes_read", "bytes_demand", "bytes_prefetch", "prefetch_issued",
    "skipped_slots", "substituted_slots", "lowbit_slots", "lowbit_activations", "bytes_dense", "reads_dense", "tok_s",
    "ttft_mean_s", "tpot_mean_s", "tpot_p50_s", "tpot_p99_s", "total_s", "compute_s", "dense_s",
    "expert_s", "stall_s", "stall_miss_s", "stall_late_prefetch_s", "stall_dense_s", "io_utilisation", NULL};
/* Those that are counts of the cache's behaviour: must be equal. */
static int exact_figure(const char *name) {
    return !strcmp(name, "hits") || !strcmp(name, "misses") || !strcmp(name, "bypasses") ||
           !strncmp(name, "bytes_", 6) || !strcmp(name, "prefetch_issued") || !strcmp(name, "skipped_slots") ||
           !strcmp(name, "substituted_slots") || !strcmp(name, "lowbit_slots") || !strcmp(name, "lowbit_activations") ||
           !strcmp(name, "reads_dense");
}

static double metric(const moe_replay_result *r, const char *name) {
    moe_metric m[128];
    size_t n = moe_run_metrics(r, m, 128);
    for (size_t i = 0; i < n; i++)
        if (!strcmp(m[i].name, name)) return m[i].value;
    return NAN;
}

static int same(double a, double b) { return a == b || (isnan(a) && isnan(b)); }

static double rel_err(double pred, double meas) {
    if (meas == 0) return pred == 0 ? 0 : INFINITY;
    return (pred - meas) / meas;
}

typedef struct vopts {
    const char *model, *prompt_file, *device, *devices, *trace_out, *db, *experiment;
    uint64_t max_tokens, threads, repeat;
    int json;
    moe_offload_opts off;
    moe_trace *route;          /* --route-from, loaded by load_setup */
    const char *section;       /* --section: the grid's section (default validate) */
    int device_set;            /* --device given: wins over the grid's device key */
    int threads_set;           /* --threads given, else the profile's */
    int recal, recal_set;      /* --recalibrate: RECAL_*; given (wins over the grid's key) */
    moe_model *calib_m;        /* the model as calibrate computes it (RECAL_ALL), loaded once */
    uint64_t passes;           /* --passes (0: the grid's key, else 1) */
    uint64_t pass;             /* --grid with passes: this row's pass, 1-based (0: no passes), stored */
} vopts;

/* --recalibrate: what is measured again before each configuration. */
enum { RECAL_NONE = 0, RECAL_IO = 1, RECAL_ALL = 2 };

static int parse_recal(const char *s, int *out, moe_error *err) {
    if (!strcmp(s, "none")) *out = RECAL_NONE;
    else if (!strcmp(s, "io")) *out = RECAL_IO;
    else if (!strcmp(s, "all")) *out = RECAL_ALL;
    else return moe_fail(err, "expected none, io or all, got '%s'", s);
    return 0;
}

/* Unit for the table: times and bytes in the unit a person reads (core/units.h). */
static void fmt(char *buf, size_t cap, const char *name, double v) {
    size_t n = strlen(name);
    if (isnan(v)) snprintf(buf, cap, "-");
    else if (!strcmp(name, "tok_s")) snprintf(buf, cap, "%.1f", v);
    else if (n > 2 && !strcmp(name + n - 2, "_s")) moe_duration_text(v, buf, cap);
    else if (!strncmp(name, "bytes_", 6)) moe_bytes_text(v, buf, cap);
    else if (!strcmp(name, "io_utilisation")) snprintf(buf, cap, "%.1f %%", 100 * v);
    else if (!strcmp(name, "tok_s")) snprintf(buf, cap, "%.1f", v);
    else snprintf(buf, cap, "%.0f", v);
}

static void print_table(const char *vid, const moe_replay_result *meas, const moe_replay_result *pred,
                        const moe_replay_result *online) {
    printf("validation %s\n%-22s %14s %14s %9s", vid, "figure", "measured", "predicted", "error");
    if (online) printf(" %14s", "pred. online");
    printf("\n");
    for (int i = 0; figures[i]; i++) {
        double m = metric(meas, figures[i]), p = metric(pred, figures[i]);
        char a[32], b[32], e[32], o[32];
        fmt(a, sizeof a, figures[i], m);
        fmt(b, sizeof b, figures[i], p);
        double er = rel_err(p, m);
        if (isinf(er)) snprintf(e, sizeof e, "inf");
        else snprintf(e, sizeof e, "%+.1f%%", 100 * er);
        if (exact_figure(figures[i])) snprintf(e, sizeof e, "%s", same(m, p) ? "exact" : "DIFFERS");
        printf("%-22s %14s %14s %9s", figures[i], a, b, e);
        if (online) {
            fmt(o, sizeof o, figures[i], metric(online, figures[i]));
            printf(" %14s", o);
        }
        printf("\n");
    }
}

static void json_obj(FILE *f, const moe_replay_result *r) {
    moe_metric m[128];
    size_t n = moe_run_metrics(r, m, 128);
    fputc('{', f);
    for (size_t i = 0; i < n; i++) fprintf(f, "%s\"%s\":%.17g", i ? "," : "", m[i].name, isfinite(m[i].value) ? m[i].value : 0);
    fputc('}', f);
}

/* Keep the run whose decode time is the median of the repeats; *steal is
 * the host's share of the CPUs during it, *spread the slowest repeat's
 * time over the fastest's, less 1 (NaN for one run): how far the same
 * configuration moves from run to run on this machine, the floor under
 * any prediction's error. */
static int run_repeats(const vopts *o, const moe_offload_job *job, moe_offload_out *keep, double *steal,
                       double *spread, moe_error *err) {
    moe_offload_out *runs = calloc(o->repeat, sizeof *runs);
    double *dt = calloc(o->repeat, sizeof *dt), *st = calloc(o->repeat, sizeof *st);
    if (!runs || !dt || !st) {
        free(runs);
        free(dt);
        free(st);
        return moe_fail(err, "out of memory");
    }
    int rc = 0;
    for (uint64_t r = 0; r < o->repeat && !rc; r++) {
        if (o->repeat > 1 && cli_is_tty(2)) fprintf(stderr, "\rmoesim validate: run %llu/%llu", (unsigned long long)r + 1, (unsigned long long)o->repeat);
        double s0 = moe_host_steal_s(), t0 = moe_engine_now();
        rc = moe_offload_generate(job, &runs[r], err);
        st[r] = moe_host_steal_share(s0, moe_host_steal_s(), moe_engine_now() - t0);
        if (!rc)
            for (uint64_t s = 0; s < runs[r].stats->n_steps; s++) dt[r] += runs[r].stats->step_s[s];
    }
    if (o->repeat > 1 && cli_is_tty(2)) fputc('\n', stderr);
    if (!rc) {
        /* index of the median total time */
        uint64_t best = 0;
        for (uint64_t i = 0; i < o->repeat; i++) {
            uint64_t below = 0;
            for (uint64_t j = 0; j < o->repeat; j++) below += dt[j] < dt[i] || (dt[j] == dt[i] && j < i);
            if (below == o->repeat / 2) best = i;
        }
        *keep = runs[best];
        *steal = st[best];
        double lo = dt[0], hi = dt[0];
        for (uint64_t i = 1; i < o->repeat; i++) {
            lo = dt[i] < lo ? dt[i] : lo;
            hi = dt[i] > hi ? dt[i] : hi;
        }
        *spread = o->repeat > 1 && lo > 0 ? hi / lo - 1 : NAN;
        memset(&runs[best], 0, sizeof runs[best]);
    }
    for (uint64_t r = 0; r < o->repeat; r++) moe_offload_out_free(&runs[r]);
    free(runs);
    free(dt);
    free(st);
    return rc;
}

/* One validation's outcome. */
typedef struct vresult {
    char vid[32];
    moe_replay_result meas, pred, online;
    int have_meas, have_pred, have_online, exact_ok;
    uint32_t capacity;  /* in experts, as run */
    char policy[256];
    double k_read, k_cpu; /* --recalibrate: read time and compute per token now / the profile's (NaN: not measured) */
    double steal;         /* share of the CPUs' time the host took during the kept run (host_steal.h) */
    double spread;        /* the repeats' slowest time over their fastest, less 1 (NaN: one run) */
    double tok_p_file;    /* --recalibrate: tok/s predicted with the profile file instead (NaN: not recalibrated) */
} vresult;

static void vresult_free(vresult *v) {
    if (v->have_meas) moe_replay_result_free(&v->meas);
    if (v->have_pred) moe_replay_result_free(&v->pred);
    if (v->have_online) moe_replay_result_free(&v->online);
    memset(v, 0, sizeof *v);
}

/* "warm_start": the run from the saved state, measured and predicted. */
static void print_json_warm(const vresult *warm) {
    printf(",\"warm_start\":{\"validation\":\"%s\",\"measured\":", warm->vid);
    json_obj(stdout, &warm->meas);
    printf(",\"predicted\":");
    json_obj(stdout, &warm->pred);
    printf(",\"exact\":%s}", warm->exact_ok ? "true" : "false");
}

/* One JSON object: the validation id, measured, predicted (and
 * predicted_online), the relative error of each figure, exactness, and the
 * state of the machine (recalibrated factors, steal, spread). */
static void print_json(const vresult *v, const vresult *warm) {
    printf("{\"validation\":\"%s\",\"measured\":", v->vid);
    json_obj(stdout, &v->meas);
    printf(",\"predicted\":");
    json_obj(stdout, &v->pred);
    if (v->have_online) {
        printf(",\"predicted_online\":");
        json_obj(stdout, &v->online);
    }
    printf(",\"error\":{");
    for (int i = 0; figures[i]; i++) {
        /* null where the figure is absent (a run without prefetch) or the
         * measured value is 0 (a relative error is undefined) */
        double e = rel_err(metric(&v->pred, figures[i]), metric(&v->meas, figures[i]));
        if (isfinite(e)) printf("%s\"%s\":%.17g", i ? "," : "", figures[i], e);
        else printf("%s\"%s\":null", i ? "," : "", figures[i]);
    }
    printf("},\"exact\":%s", v->exact_ok ? "true" : "false");
    /* --recalibrate: read time and compute per token just before the run, over the profile file's */
    if (!isnan(v->k_read)) {
        printf(",\"recalibrated\":{\"read\":%.6g", v->k_read);
        if (!isnan(v->k_cpu)) printf(",\"cpu\":%.6g", v->k_cpu);
        printf("}");
    }
    if (!isnan(v->steal)) printf(",\"steal\":%.6g", v->steal);
    if (!isnan(v->spread)) printf(",\"spread\":%.6g", v->spread);
    if (warm) print_json_warm(warm);
    printf("}\n");
}

/* --recalibrate: measure the machine as calibrate does, now, into `d`, the
 * profile that prices this configuration (held in memory: the profile file
 * is left as it is).
 * Reads: demand reads of the pack through the backend's queue; the
 * profile's read (idle and beside a busy core) is scaled by the ratio of
 * that read time to its own at one expert, so what calibrate fitted over
 * block sizes and queue depths keeps its shape. Compute (RECAL_ALL):
 * calibrate's compute passes, whose fitted terms replace the profile's.
 * This VM's disk and CPU drift by a third within minutes
 * (calib_probe.h): measured before the run, the profile describes the
 * machine the run meets, and the factors say how far it had moved. */
static int recalibrate(vopts *o, const moe_model *m, const char *pack, int io_mode, moe_device_profile *now,
                       vresult *v, moe_error *err) {
    moe_device_profile base, d;
    moe_pack pk;
    if (strchr(pack, ','))
        return moe_fail(err, "--recalibrate reads one pack; this run has several (%s)", pack);
    if (moe_device_profile_load(o->devices, o->device, &base, err) || moe_pack_open(&pk, pack, MOE_IO_BUFFERED, err))
        return -1;
    uint64_t block = pk.stride;
    moe_pack_close(&pk);
    d = base;
    calib_reads rd;
    if (calib_pack_reads(m, pack, io_mode, block, NULL, &rd, err)) return -1;
    double was = base.io_latency_s + (double)block / base.io_bandwidth_Bps, k = rd.read_s > 0 ? rd.read_s / was : 1;
    d.io_latency_s *= k;
    d.io_bandwidth_Bps /= k;
    d.io_busy_latency_s *= k;
    d.io_busy_bandwidth_Bps /= k;
    d.io_wake_s = rd.wake_s;
    d.io_resume_s = rd.resume_s;
    v->k_read = k;
    v->k_cpu = NAN;
    if (o->recal == RECAL_ALL) {
        if (!o->calib_m && !(o->calib_m = calib_load_model(o->model, err))) return -1;
        /* a short pass first: where calibrate's passes would be short too
         * (tinymix: ~0.3 s) they refit every term; where they would take
         * minutes (Mixtral's 336 MiB experts: ~15 s for the short one) the
         * short pass scales the profile's terms by how far the machine
         * has moved from them */
        double k, secs;
        if (calib_compute_scale(o->model, o->calib_m, (int)o->threads, &base, &k, &secs, err)) return -1;
        /* MOESIM_RECAL_SCALE=1 takes the scaling at any size (the tests' way to reach it) */
        const char *force = getenv("MOESIM_RECAL_SCALE");
        if (!(force && !strcmp(force, "1")) && secs * CALIB_PASS_TOKENS / CALIB_SCALE_TOKENS < 5.0) {
            calib_compute_fit cf;
            if (calib_compute(o->model, o->calib_m, (int)o->threads, NULL, &cf, err)) return -1;
            calib_set_compute(&d, &cf);
            double a = d.dense_us_per_token + d.expert_us_per_token, b = base.dense_us_per_token + base.expert_us_per_token;
            v->k_cpu = b > 0 ? a / b : NAN;
        } else {
            calib_scale_compute(&d, k);
            v->k_cpu = k;
        }
    }
    moe_device_profile_canonicalize(&d);
    *now = d;
    return 0;
}

/* Run the backend offloaded on ids, replay its trace, store both. */
static int validate_one(vopts *o, const moe_model *m, const int *ids, int n_ids, vresult *v, moe_error *err) {
    int rc = -1;
    moe_offload_out out = {0};
    char pack[2048], dense[2048], logpath[4096] = "", extra_m[512], extra_p[512], extra_o[512];
    moe_device_profile now; /* --recalibrate: the profile measured just before the run */
    memset(&now, 0, sizeof now);
    memset(v, 0, sizeof *v);
    v->k_read = v->k_cpu = v->steal = v->spread = v->tok_p_file = NAN;
    if (moe_offload_pack_path(&o->off, o->model, pack, sizeof pack, err)) goto out;
    moe_offload_job job = {.model = m, .prompt = ids, .n_prompt = n_ids, .max_tokens = o->max_tokens,
                           .threads = (int)o->threads, .sample_seed = 1,
                           .prefill_chunk = o->off.prefill_chunk ? (int)o->off.prefill_chunk : MOE_ENGINE_MAX_STEP,
                           .save_state = o->off.save_state, .route_from = o->route,
                           .route_steps = o->off.route_steps};
    if (moe_offload_dense_path(&o->off, o->model, dense, sizeof dense, err) ||
        moe_offload_config_of(&o->off, pack, m, &job.oc, err))
        goto out;
    job.oc.dense_pack = dense;
    /* the backend's predictions go to a log that the simulator replays */
    if (o->off.prefetch) {
        if (o->off.prefetch_log) snprintf(logpath, sizeof logpath, "%s", o->off.prefetch_log);
        else {
            const char *tmp = getenv("TMPDIR");
            snprintf(logpath, sizeof logpath, "%s/moesim-prefetch-%ld.log", tmp && *tmp ? tmp : "/tmp", (long)getpid());
        }
        job.oc.prefetch_log = logpath;
        const char *a = strstr(o->off.prefetch, "ahead=");
        job.capture_lookahead = a ? atoi(a + 6) : 1;
        if (job.capture_lookahead < 1) job.capture_lookahead = 1;
    }
    /* measured last thing before the run it prices */
    if (o->recal && recalibrate(o, m, pack, job.oc.io_mode, &now, v, err)) goto out;
    if (run_repeats(o, &job, &out, &v->steal, &v->spread, err)) goto out;
    snprintf(v->policy, sizeof v->policy, "%s", moe_offload_policy(out.off));
    v->capacity = job.oc.capacity;
    if (moe_offload_result(&out, v->policy, moe_offload_prefetcher(out.off), &v->meas, err)) goto out;
    v->have_meas = 1;

    /* the validation id: content of the trace, the configuration, the time */
    char thash[65];
    moe_trace_hash(out.trace, thash);
    {
        char seed[512], h[65];
        static unsigned counter;
        snprintf(seed, sizeof seed, "%s %s %u %d %ld %d %u", thash, v->policy, job.oc.capacity, job.oc.global,
                 (long)time(NULL), (int)getpid(), counter++);
        moe_sha256_buf_hex(seed, strlen(seed), h);
        snprintf(v->vid, sizeof v->vid, "v%.12s", h);
    }
    /* predicted: the same configuration in the simulator */
    char logspec[4200];
    moe_replay_config cfg = {.policy = v->policy, .capacity = job.oc.capacity,
                             .scope = job.oc.global ? MOE_SCOPE_GLOBAL : MOE_SCOPE_PER_LAYER,
                             .cold_per_seq = job.oc.cold_per_seq, .seed = job.oc.seed, .split = job.oc.split,
                             .device = o->device, .devices_path = o->devices, .load_state = job.oc.load_state,
                             .on_miss = job.oc.on_miss, .skip = o->off.skip,
                             /* the dense stream as run: its budget and the pack's block bytes */
                             .stream_dense = job.oc.stream_dense, .dense_bytes = out.stats->dense_block_bytes,
                             .device_profile = o->recal ? &now : NULL};
    cfg.on_miss = moe_offload_on_miss(out.off); /* lowbit: with the bits its packs gave */
    /* the pack's precision prices reads and bytes */
    /* (a quantized pack's blocks are the trace header's bytes of that tier) */
    static const char *const tier_spec[MOE_PREC_COUNT] = {"uniform:bits=32", NULL, "uniform:bits=8", "uniform:bits=4",
                                                          "uniform:bits=3", "uniform:bits=2"};
    for (int p = 0; p < MOE_PREC_COUNT; p++)
        if (tier_spec[p] && out.stats->expert_bytes == out.trace->expert_bytes[p]) cfg.precision = tier_spec[p];
    if (o->off.precision) cfg.precision = o->off.precision; /* several packs: the plan chose each read's tier */
    snprintf(extra_p, sizeof extra_p, "kind=predicted\nvalidation=%s", v->vid);
    if (o->pass) { /* a grid's pass: which of the row's validations this is */
        size_t n = strlen(extra_p);
        snprintf(extra_p + n, sizeof extra_p - n, "\npass=%llu", (unsigned long long)o->pass);
    }
    if (o->recal) { /* how far the machine had moved from the profile file */
        size_t n = strlen(extra_p);
        snprintf(extra_p + n, sizeof extra_p - n, "\nrecalibrated=%s\nrecal_read=%.4f", o->recal == RECAL_ALL ? "all" : "io",
                 v->k_read);
        n = strlen(extra_p);
        if (o->recal == RECAL_ALL) snprintf(extra_p + n, sizeof extra_p - n, "\nrecal_cpu=%.4f", v->k_cpu);
    }
    cfg.extra_config = extra_p;
    if (o->off.prefetch) {
        snprintf(logspec, sizeof logspec, "log:file=%s", logpath);
        cfg.prefetch = logspec;
    }
    if (moe_replay(out.trace, &cfg, &v->pred, err)) goto out;
    v->have_pred = 1;
    if (o->recal) { /* the same replay priced with the profile file, for the comparison only (not stored) */
        moe_replay_config cfg_file = cfg;
        moe_replay_result r;
        cfg_file.device_profile = NULL;
        if (moe_replay(out.trace, &cfg_file, &r, err)) goto out;
        v->tok_p_file = metric(&r, "tok_s");
        moe_replay_result_free(&r);
    }
    moe_replay_config cfg_online = cfg;
    if (o->off.prefetch) {
        cfg_online.prefetch = o->off.prefetch;
        snprintf(extra_o, sizeof extra_o, "kind=predicted-online\nvalidation=%s", v->vid);
        cfg_online.extra_config = extra_o;
        if (moe_replay(out.trace, &cfg_online, &v->online, err)) goto out;
        v->have_online = 1;
    }
    /* exactness of the cache's counts */
    v->exact_ok = 1;
    for (int i = 0; figures[i]; i++)
        if (exact_figure(figures[i]) && !same(metric(&v->meas, figures[i]), metric(&v->pred, figures[i]))) v->exact_ok = 0;
    if (o->db) {
        moe_replay_config cfg_m = cfg;
        cfg_m.device = NULL; /* measured: no profile priced it */
        cfg_m.device_profile = NULL;
        cfg_m.precision = NULL;
        cfg_m.prefetch = o->off.prefetch;
        snprintf(extra_m, sizeof extra_m, "io=%s\nio_threads=%u\nkind=measured\nsteal=%.4f\nthreads=%llu\nvalidation=%s",
                 moe_io_mode_name(job.oc.io_mode), job.oc.io_threads, v->steal, (unsigned long long)o->threads, v->vid);
        if (o->pass) {
            size_t n = strlen(extra_m);
            snprintf(extra_m + n, sizeof extra_m - n, "\npass=%llu", (unsigned long long)o->pass);
        }
        cfg_m.extra_config = extra_m;
        moe_db *db = moe_db_open(o->db, err);
        const char *tpath = o->trace_out ? o->trace_out : "(captured by validate)";
        if (!db || moe_db_add_trace(db, out.trace, tpath, thash, err) ||
            moe_run_store(db, o->experiment, thash, &cfg_m, &v->meas, err) ||
            moe_run_store(db, o->experiment, thash, &cfg, &v->pred, err) ||
            (v->have_online && moe_run_store(db, o->experiment, thash, &cfg_online, &v->online, err)) ||
            moe_db_close(db, err)) {
            if (db) moe_db_close(db, NULL);
            goto out;
        }
    }
    if (o->trace_out && moe_trace_save(out.trace, o->trace_out, err)) goto out;
    /* measured and predicted per step, side by side */
    if (o->off.steps_out && moe_offload_write_steps(o->off.steps_out, out.stats, v->pred.ext->step_s, err)) goto out;
    rc = 0;
out:
    if (logpath[0] && !o->off.prefetch_log) unlink(logpath);
    moe_offload_out_free(&out);
    if (rc) vresult_free(v);
    return rc;
}

/* The profile and the model, checked against each other. */
static int load_setup(vopts *o, moe_device_profile *dev, moe_model **m, moe_error *err) {
    if (moe_device_profile_load(o->devices, o->device, dev, err)) {
        if (access(o->devices, R_OK))
            moe_fail(err, "%s: no calibrated device profiles (run `moesim calibrate --model %s` first)", o->devices,
                     o->model);
        return -1;
    }
    if (!dev->measured_compute)
        return moe_fail(err, "%s: device [%s] has no measured compute terms; validate needs a profile from "
                             "`moesim calibrate`", o->devices, o->device);
    if (!(*m = moe_model_load_ex(o->model, moe_offload_load_flags(&o->off), err))) return -1;
    if (strcmp(dev->model, (*m)->name))
        return moe_fail(err, "%s: device [%s] was calibrated with model %s, not %s", o->devices, o->device, dev->model,
                        (*m)->name);
    if (!o->off.pack) o->off.pack = "auto";
    if (!o->off.io_threads) o->off.io_threads = dev->io_channels;
    if (o->off.route_from) /* the trace routes: no prompt, any vocabulary */
        return (o->route = moe_route_from_open(o->off.route_from, *m, o->off.route_steps, o->off.route_truncate, err)) ? 0 : -1;
    if (!moe_tok_is_bytes((*m)->cfg.vocab))
        return moe_fail(err, "%s: vocabulary of %d is not byte-level; validate needs a byte-level model", o->model,
                        (*m)->cfg.vocab);
    return 0;
}

static int validate(vopts *o) {
    moe_error err = {{0}};
    int rc = 1;
    moe_model *m = NULL;
    int *ids = NULL;
    unsigned char *text = NULL;
    vresult v = {0}, warm = {0};
    int have_warm = 0;
    moe_device_profile dev;
    size_t len;
    if (load_setup(o, &dev, &m, &err)) goto out;
    if (o->route) len = 0;
    else if (!(text = moe_backend_read_file(o->prompt_file, &len, &err))) goto out;
    else if (!len) {
        moe_fail(&err, "%s: empty prompt", o->prompt_file);
        goto out;
    } else if (!(ids = moe_tok_encode_bytes(text, len))) {
        moe_fail(&err, "out of memory");
        goto out;
    }
    if (validate_one(o, m, ids, (int)len, &v, &err)) goto out;
    /* --save-state: a second launch from the state the first one saved
     * (the backend pre-reads it before the first step, the simulator
     * inserts it), for TTFT cold vs warm, measured and predicted */
    if (o->off.save_state && !o->off.load_state) {
        vopts warm_o = *o;
        warm_o.off.load_state = o->off.save_state;
        warm_o.off.save_state = NULL;
        warm_o.trace_out = NULL;
        if (validate_one(&warm_o, m, ids, (int)len, &warm, &err)) goto out;
        have_warm = 1;
    }
    if (o->json) {
        print_json(&v, have_warm ? &warm : NULL);
    } else {
        print_table(v.vid, &v.meas, &v.pred, v.have_online ? &v.online : NULL);
        if (!isnan(v.k_read)) {
            printf("recalibrated just before the run: read time x%.2f", v.k_read);
            if (!isnan(v.k_cpu)) printf(", compute per token x%.2f", v.k_cpu);
            printf(" of [%s] in %s\n", o->device, o->devices);
        }
        if (have_warm) {
            char d[4][32];
            printf("TTFT from the saved state (%s): measured %s, predicted %s (%+.1f%%); cold: measured %s, "
                   "predicted %s\n",
                   o->off.save_state, moe_duration_text(metric(&warm.meas, "ttft_mean_s"), d[0], 32),
                   moe_duration_text(metric(&warm.pred, "ttft_mean_s"), d[1], 32),
                   100 * rel_err(metric(&warm.pred, "ttft_mean_s"), metric(&warm.meas, "ttft_mean_s")),
                   moe_duration_text(metric(&v.meas, "ttft_mean_s"), d[2], 32),
                   moe_duration_text(metric(&v.pred, "ttft_mean_s"), d[3], 32));
        }
    }
    if (!v.exact_ok || (have_warm && !warm.exact_ok)) {
        moe_fail(&err, "the simulator's counts differ from the backend's (a bug: they share one cache)");
        goto out;
    }
    rc = 0;
out:
    if (rc) cli_error("validate", &err);
    vresult_free(&v);
    vresult_free(&warm);
    free(ids);
    free(text);
    moe_trace_free(o->route);
    moe_model_free(o->calib_m);
    moe_model_free(m);
    return rc;
}

/* ---- --grid: a grid of validations and its error statistics ---------- */

/* Whitespace-separated list (specs keep their commas) into out[]. */
static int split_ws(char *s, char **out, int cap) {
    int n = 0;
    for (char *tok = strtok(s, " \t"); tok && n < cap; tok = strtok(NULL, " \t")) out[n++] = tok;
    return n;
}

/* Kendall's tau-b between two rankings of n items (ties count as neither). */
static double kendall_tau(const double *a, const double *b, int n) {
    double conc = 0, disc = 0, ta = 0, tb = 0;
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++) {
            double x = a[i] - a[j], y = b[i] - b[j];
            if (x == 0 && y == 0) continue;
            if (x == 0) ta++;
            else if (y == 0) tb++;
            else if ((x > 0) == (y > 0)) conc++;
            else disc++;
        }
    double d = sqrt((conc + disc + ta) * (conc + disc + tb));
    return d > 0 ? (conc - disc) / d : 1;
}

static int cmp_abs(const void *a, const void *b) {
    double x = fabs(*(const double *)a), y = fabs(*(const double *)b);
    return x < y ? -1 : x > y;
}

/* The prompt: the first prompt_bytes of each file, joined by blank lines. */
static int *grid_prompt(const moe_ini *ini, const char *sec, int *n, moe_error *err) {
    const char *files = moe_ini_get(ini, sec, "prompt_files");
    uint64_t bytes;
    if (!files) return moe_fail(err, "%s: [%s] needs prompt_files", ini->path, sec), NULL;
    if (moe_ini_get_u64(ini, sec, "prompt_bytes", 128, 1, 1 << 20, &bytes, err)) return NULL;
    char list[2048], *f[16];
    snprintf(list, sizeof list, "%s", files);
    int nf = split_ws(list, f, 16);
    unsigned char *all = malloc((size_t)nf * (bytes + 2) + 1);
    size_t used = 0;
    if (!all) return moe_fail(err, "out of memory"), NULL;
    for (int i = 0; i < nf; i++) {
        size_t len;
        unsigned char *t = moe_backend_read_file(f[i], &len, err);
        if (!t) {
            free(all);
            return NULL;
        }
        if (i) {
            all[used++] = '\n';
            all[used++] = '\n';
        }
        size_t take = len < bytes ? len : bytes;
        memcpy(all + used, t, take);
        used += take;
        free(t);
    }
    int *ids = moe_tok_encode_bytes(all, used);
    free(all);
    if (!ids) return moe_fail(err, "out of memory"), NULL;
    *n = (int)used;
    return ids;
}

/* One row of the grid: a configuration, and its figures over the passes
 * (each the median of the passes' values; one pass: that pass's). */
typedef struct grid_row {
    const char *policy, *scope, *prefetch, *capacity_spec; /* as the grid gives them */
    int global;
    uint32_t capacity; /* in experts, as run */
    double tok_m, tok_p, ttft_m, ttft_p, err_tok, err_ttft;
    double io_ratio; /* I/O busy time measured / predicted (NaN: no reads) */
    double k_read, k_cpu; /* --recalibrate's factors (NaN: not measured) */
    double steal;         /* the host's share of the CPUs during the run */
    double spread;        /* run-to-run spread: over the passes, or one pass's repeats */
    double err_file;      /* --recalibrate: the tok/s error had the profile file priced the row */
    int exact;
    /* per pass: tok/s measured, predicted, with the profile file; TTFT measured,
     * predicted; I/O busy measured / predicted; factors; steal; spread */
    double *pass_v; /* n_passes x PV_COUNT */
} grid_row;

enum { PV_TOK_M, PV_TOK_P, PV_TOK_FILE, PV_TTFT_M, PV_TTFT_P, PV_IO, PV_K_READ, PV_K_CPU, PV_STEAL, PV_SPREAD, PV_COUNT };

/* Median of the finite values among v[0], v[stride], ... (n of them); the
 * mean of the middle two for an even count; NaN if none. */
static double median_of(const double *v, size_t n, size_t stride) {
    double buf[64];
    size_t k = 0;
    for (size_t i = 0; i < n && k < 64; i++)
        if (isfinite(v[i * stride])) buf[k++] = v[i * stride];
    if (!k) return NAN;
    for (size_t i = 1; i < k; i++) /* a handful of passes: insertion sort */
        for (size_t j = i; j > 0 && buf[j - 1] > buf[j]; j--) {
            double t = buf[j];
            buf[j] = buf[j - 1];
            buf[j - 1] = t;
        }
    return k % 2 ? buf[k / 2] : 0.5 * (buf[k / 2 - 1] + buf[k / 2]);
}

/* A --recalibrate factor for the table: "-" where not measured. */
static void factor_text(double k, char *buf, size_t cap) {
    if (isnan(k)) snprintf(buf, cap, "-");
    else snprintf(buf, cap, "%.2f", k);
}

/* The I/O channels' busy time of a run (utilisation x duration). */
static double io_busy_s(const moe_replay_result *r) { return metric(r, "io_utilisation") * metric(r, "total_s"); }

/* A row's figures from its passes: medians of the passes' values; the
 * spread is the passes' slowest over fastest (one pass: its repeats'). */
static void grid_row_finish(grid_row *r, uint64_t passes) {
    const double *v = r->pass_v;
    r->tok_m = median_of(v + PV_TOK_M, passes, PV_COUNT);
    r->tok_p = median_of(v + PV_TOK_P, passes, PV_COUNT);
    r->ttft_m = median_of(v + PV_TTFT_M, passes, PV_COUNT);
    r->ttft_p = median_of(v + PV_TTFT_P, passes, PV_COUNT);
    r->err_tok = rel_err(r->tok_p, r->tok_m);
    r->err_ttft = rel_err(r->ttft_p, r->ttft_m);
    r->io_ratio = median_of(v + PV_IO, passes, PV_COUNT);
    r->k_read = median_of(v + PV_K_READ, passes, PV_COUNT);
    r->k_cpu = median_of(v + PV_K_CPU, passes, PV_COUNT);
    r->steal = median_of(v + PV_STEAL, passes, PV_COUNT);
    r->err_file = rel_err(median_of(v + PV_TOK_FILE, passes, PV_COUNT), r->tok_m);
    if (passes == 1) {
        r->spread = v[PV_SPREAD];
        return;
    }
    double lo = v[PV_TOK_M], hi = lo;
    for (uint64_t p = 1; p < passes; p++) {
        double t = v[p * PV_COUNT + PV_TOK_M];
        lo = t < lo ? t : lo;
        hi = t > hi ? t : hi;
    }
    r->spread = lo > 0 ? hi / lo - 1 : NAN;
}

static void print_row(const grid_row *r) {
    char kr[16], kc[16], sp[16];
    factor_text(r->k_read, kr, sizeof kr);
    factor_text(r->k_cpu, kc, sizeof kc);
    if (isnan(r->spread)) snprintf(sp, sizeof sp, "-");
    else snprintf(sp, sizeof sp, "%.0f%%", 100 * r->spread);
    printf("%-40s %-9s %4u %-14s %9.1f %9.1f %+6.1f%% %9.1f %9.1f %+6.1f%% %6.2f %6s %6s %4.0f%% %6s %s\n", r->policy,
           r->scope, r->capacity, r->prefetch, r->tok_m, r->tok_p, 100 * r->err_tok, 1e3 * r->ttft_m, 1e3 * r->ttft_p,
           100 * r->err_ttft, r->io_ratio, kr, kc, 100 * r->steal, sp, r->exact ? "exact" : "DIFFER");
    fflush(stdout);
}

static int validate_grid(vopts *o, const char *path) {
    moe_error err = {{0}};
    int rc = 1, n_ids = 0, nrows = 0;
    moe_model *m = NULL;
    int *ids = NULL;
    grid_row *rows = NULL;
    double *pass_v = NULL; /* every row's per-pass figures */
    moe_device_profile dev;
    moe_ini *ini = moe_ini_load(path, &err);
    const char *sec = o->section ? o->section : "validate";
    if (!ini) goto out;
    if (!moe_ini_find_section(ini, sec)) {
        moe_fail(&err, "%s: no [%s] section", path, sec);
        goto out;
    }
    static const char *const keys[] = {"description", "model", "prompt_files", "prompt_bytes", "max_tokens",
                                       "repeat", "passes", "policies", "capacities", "global_capacities", "prefetch", "io",
                                       "route_from", "route_steps", "route_truncate", "device", "stream_dense", "recalibrate",
                                       NULL};
    if (moe_ini_check_keys(ini, sec, keys, &err)) goto out;
    if (!o->model) o->model = moe_ini_get(ini, sec, "model");
    if (!o->model) {
        moe_fail(&err, "%s: [%s] needs model (or give --model)", path, sec);
        goto out;
    }
    if (!o->device_set && moe_ini_get(ini, sec, "device")) {
        o->device = moe_ini_get(ini, sec, "device");
        moe_device_profile d; /* its compute terms were measured at its thread count */
        if (!o->threads_set && moe_device_profile_load(o->devices, o->device, &d, &err) == 0 && d.threads)
            o->threads = d.threads;
    }
    uint64_t trunc = 0;
    if (moe_ini_get_u64(ini, sec, "route_truncate", 0, 0, 1, &trunc, &err)) goto out;
    if (trunc) o->off.route_truncate = 1;
    const char *stream = moe_ini_get(ini, sec, "stream_dense");
    if (stream && moe_offload_opt_set(&o->off, "stream-dense", stream, &err) < 0) {
        moe_fail_prefix(&err, "%s: [%s] stream_dense", path, sec);
        goto out;
    }
    if (moe_ini_get_u64(ini, sec, "max_tokens", o->max_tokens, 1, 1 << 20, &o->max_tokens, &err) ||
        moe_ini_get_u64(ini, sec, "repeat", o->repeat, 1, 1000, &o->repeat, &err))
        goto out;
    const char *recal = moe_ini_get(ini, sec, "recalibrate");
    if (recal && !o->recal_set && parse_recal(recal, &o->recal, &err)) {
        moe_fail_prefix(&err, "%s: [%s] recalibrate", path, sec);
        goto out;
    }
    const char *io = moe_ini_get(ini, sec, "io");
    if (io && moe_io_mode_parse(io, &o->off.io_mode, &err)) goto out;
    if (!o->off.route_from) o->off.route_from = moe_ini_get(ini, sec, "route_from");
    if (moe_ini_get_u64(ini, sec, "route_steps", o->off.route_steps, 0, UINT32_MAX, &o->off.route_steps, &err)) goto out;
    if (o->off.route_from && moe_ini_get(ini, sec, "prompt_files")) {
        moe_fail(&err, "%s: [%s] has both route_from and prompt_files: the trace replaces the prompt", path, sec);
        goto out;
    }
    if (load_setup(o, &dev, &m, &err) || (!o->route && !(ids = grid_prompt(ini, sec, &n_ids, &err)))) goto out;
    char pl[4096], cl[512], gl[512], fl[1024], *pols[32], *caps[16], *gcaps[16], *pfs[16];
    snprintf(pl, sizeof pl, "%s", moe_ini_get(ini, sec, "policies") ? moe_ini_get(ini, sec, "policies") : "lru");
    snprintf(cl, sizeof cl, "%s", moe_ini_get(ini, sec, "capacities") ? moe_ini_get(ini, sec, "capacities") : "");
    snprintf(gl, sizeof gl, "%s", moe_ini_get(ini, sec, "global_capacities") ? moe_ini_get(ini, sec, "global_capacities") : "");
    snprintf(fl, sizeof fl, "%s", moe_ini_get(ini, sec, "prefetch") ? moe_ini_get(ini, sec, "prefetch") : "none");
    int np = split_ws(pl, pols, 32), nc = split_ws(cl, caps, 16), ng = split_ws(gl, gcaps, 16), nf = split_ws(fl, pfs, 16);
    int total = np * (nc + ng) * nf;
    if (!total) {
        moe_fail(&err, "%s: the grid is empty (policies x capacities x prefetch)", path);
        goto out;
    }
    uint64_t passes = o->passes;
    if (!passes && moe_ini_get_u64(ini, sec, "passes", 1, 1, 64, &passes, &err)) goto out;
    if (!(rows = calloc((size_t)total, sizeof *rows)) ||
        !(pass_v = calloc((size_t)total * passes * PV_COUNT, sizeof *pass_v))) {
        moe_fail(&err, "out of memory");
        goto out;
    }
    /* the rows in the table's order: by prefetcher, capacity, policy */
    for (int f = 0; f < nf; f++)
        for (int g = 0; g < nc + ng; g++)
            for (int p = 0; p < np; p++) {
                grid_row *r = &rows[nrows];
                r->policy = pols[p];
                r->global = g >= nc;
                r->scope = r->global ? "global" : "per-layer";
                r->capacity_spec = r->global ? gcaps[g - nc] : caps[g];
                r->prefetch = pfs[f];
                r->pass_v = pass_v + (size_t)nrows++ * passes * PV_COUNT;
            }
    char passes_text[64] = "";
    if (passes > 1) snprintf(passes_text, sizeof passes_text, " x %llu passes", (unsigned long long)passes);
    if (o->route)
        fprintf(stderr, "moesim validate: %d configurations x %llu runs%s, routing of %s (%llu steps)\n", total,
                (unsigned long long)o->repeat, passes_text, o->off.route_from,
                (unsigned long long)(o->off.route_steps && o->off.route_steps < o->route->n_steps ? o->off.route_steps
                                                                                                 : o->route->n_steps));
    else
        fprintf(stderr, "moesim validate: %d configurations x %llu runs%s, prompt %d bytes, %llu generated\n", total,
                (unsigned long long)o->repeat, passes_text, n_ids, (unsigned long long)o->max_tokens);
    /* io m/p: the I/O busy time measured over predicted, so a row whose
     * device ran slower or faster than calibrated (this VM's disk moved
     * between 1.2 and 4.2 GB/s on the same reads within minutes) can be
     * told from one the timing model got wrong */
    /* read x, cpu x (--recalibrate): the machine just before the row ran,
     * against the profile file: how far it had drifted */
    printf("%-40s %-9s %4s %-14s %9s %9s %7s %9s %9s %7s %6s %6s %6s %5s %6s %s\n", "policy", "scope", "cap", "prefetch",
           "tok/s", "pred", "err", "TTFT ms", "pred", "err", "io m/p", "read x", "cpu x", "steal", "spread", "counts");
    fflush(stdout);
    /* Passes: the whole grid again, each pass starting 1/passes further
     * round, so a row's runs are spread evenly over the grid's time. This
     * VM's speed moves by a fifth within seconds and back (the same
     * configuration's runs back to back differ by a median 22%), and a
     * probe just before a run follows it only loosely: a row measured and
     * predicted at several times, each run priced by the probe just before
     * it, is compared by the medians of both. */
    for (uint64_t pass = 0; pass < passes; pass++)
        for (int i = 0; i < total; i++) {
            grid_row *r = &rows[((uint64_t)i + pass * (uint64_t)total / passes) % (uint64_t)total];
            moe_offload_opts off = o->off;
            off.policy = r->policy;
            off.capacity = r->capacity_spec;
            off.global = r->global;
            if (moe_offload_opt_set(&off, "prefetch", r->prefetch, &err) < 0) goto out;
            vopts one = *o;
            one.off = off;
            one.pass = passes > 1 ? pass + 1 : 0;
            vresult v;
            if (validate_one(&one, m, ids, n_ids, &v, &err)) goto out;
            double *pv = r->pass_v + pass * PV_COUNT;
            pv[PV_TOK_M] = metric(&v.meas, "tok_s");
            pv[PV_TOK_P] = metric(&v.pred, "tok_s");
            pv[PV_TOK_FILE] = v.tok_p_file;
            pv[PV_TTFT_M] = metric(&v.meas, "ttft_mean_s");
            pv[PV_TTFT_P] = metric(&v.pred, "ttft_mean_s");
            pv[PV_IO] = io_busy_s(&v.pred) > 0 ? io_busy_s(&v.meas) / io_busy_s(&v.pred) : NAN;
            pv[PV_K_READ] = v.k_read;
            pv[PV_K_CPU] = v.k_cpu;
            pv[PV_STEAL] = v.steal;
            pv[PV_SPREAD] = v.spread;
            r->capacity = v.capacity;
            r->exact = pass ? r->exact && v.exact_ok : v.exact_ok;
            vresult_free(&v);
            if (passes == 1) {
                grid_row_finish(r, 1);
                print_row(r);
            } else
                fprintf(stderr, "moesim validate: pass %llu/%llu, %d/%d: %s %s %u %s: %.1f tok/s measured, %.1f "
                                "predicted (%+.1f%%)\n",
                        (unsigned long long)pass + 1, (unsigned long long)passes, i + 1, total, r->policy, r->scope,
                        r->capacity, r->prefetch, pv[PV_TOK_M], pv[PV_TOK_P],
                        100 * rel_err(pv[PV_TOK_P], pv[PV_TOK_M]));
        }
    if (passes > 1)
        for (int i = 0; i < nrows; i++) {
            grid_row_finish(&rows[i], passes);
            print_row(&rows[i]);
        }
    /* error statistics */
    double *e = malloc((size_t)nrows * sizeof *e), *et = malloc((size_t)nrows * sizeof *et);
    int within = 0, all_exact = 1;
    for (int i = 0; i < nrows; i++) {
        e[i] = rows[i].err_tok;
        et[i] = rows[i].err_ttft;
        within += fabs(e[i]) <= 0.15;
        all_exact &= rows[i].exact;
    }
    qsort(e, (size_t)nrows, sizeof *e, cmp_abs);
    qsort(et, (size_t)nrows, sizeof *et, cmp_abs);
    printf("\ntok/s: median |error| %.1f%%, max |error| %.1f%%, %d of %d within 15%%\n", 100 * fabs(e[nrows / 2]),
           100 * fabs(e[nrows - 1]), within, nrows);
    printf("TTFT:  median |error| %.1f%%, max |error| %.1f%%\n", 100 * fabs(et[nrows / 2]), 100 * fabs(et[nrows - 1]));
    /* the same over the rows whose I/O busy time was predicted within 15% */
    int n_io = 0, within_io = 0;
    for (int i = 0; i < nrows; i++)
        if (fabs(rows[i].io_ratio - 1) <= 0.15) {
            e[n_io++] = rows[i].err_tok;
            within_io += fabs(rows[i].err_tok) <= 0.15;
        }
    qsort(e, (size_t)n_io, sizeof *e, cmp_abs);
    if (n_io)
        printf("I/O busy time within 15%% of predicted in %d of %d; over those, tok/s median |error| %.1f%%, %d of %d "
               "within 15%%\n",
               n_io, nrows, 100 * fabs(e[n_io / 2]), within_io, n_io);
    else printf("I/O busy time within 15%% of predicted in 0 of %d\n", nrows);
    /* the machine's own noise: the same configuration's repeats, and what
     * the host took; an error inside a row's spread cannot be told from
     * noise on this machine */
    int n_sp = 0, inside = 0;
    double *st = malloc((size_t)nrows * sizeof *st);
    int n_st = 0;
    for (int i = 0; i < nrows; i++) {
        if (!isnan(rows[i].spread)) {
            e[n_sp++] = rows[i].spread;
            inside += fabs(rows[i].err_tok) <= rows[i].spread;
        }
        if (st && !isnan(rows[i].steal)) st[n_st++] = rows[i].steal;
    }
    if (n_sp) {
        qsort(e, (size_t)n_sp, sizeof *e, cmp_abs);
        printf("run-to-run spread (the %s slowest over fastest, less 1): median %.1f%%, max %.1f%%; tok/s error "
               "within the row's spread in %d of %d\n",
               passes > 1 ? "passes'" : "repeats'", 100 * e[n_sp / 2], 100 * e[n_sp - 1], inside, n_sp);
    }
    if (n_st) {
        qsort(st, (size_t)n_st, sizeof *st, cmp_abs);
        printf("host steal during the kept runs: median %.1f%%, max %.1f%% of the CPUs' time\n", 100 * st[n_st / 2],
               100 * st[n_st - 1]);
    }
    free(st);
    /* --recalibrate against not: the same rows priced with the profile file */
    int n_file = 0, within_file = 0;
    for (int i = 0; i < nrows; i++)
        if (!isnan(rows[i].err_file)) {
            e[n_file++] = rows[i].err_file;
            within_file += fabs(rows[i].err_file) <= 0.15;
        }
    if (n_file) {
        qsort(e, (size_t)n_file, sizeof *e, cmp_abs);
        printf("priced with the profile file instead of the measurement before each row: tok/s median |error| %.1f%%, "
               "max %.1f%%, %d of %d within 15%%\n",
               100 * fabs(e[n_file / 2]), 100 * fabs(e[n_file - 1]), within_file, n_file);
    }
    free(e);
    free(et);
    /* ranking of the policies at each (capacity, scope, prefetch) */
    double tau_sum = 0;
    int groups = 0;
    for (int i = 0; i < nrows; i += np) {
        double a[32], b[32];
        for (int k = 0; k < np; k++) {
            a[k] = rows[i + k].tok_m;
            b[k] = rows[i + k].tok_p;
        }
        double tau = kendall_tau(a, b, np);
        printf("Kendall tau (policies by tok/s), %s capacity %u, prefetch %s: %.2f\n", rows[i].scope,
               rows[i].capacity, rows[i].prefetch, tau);
        tau_sum += tau;
        groups++;
    }
    printf("mean Kendall tau %.2f over %d groups; hit and byte counts %s\n", groups ? tau_sum / groups : 0, groups,
           all_exact ? "exact in every configuration" : "DIFFER somewhere");
    rc = all_exact ? 0 : 1;
    if (!all_exact) moe_fail(&err, "the simulator's counts differ from the backend's in some configuration");
out:
    if (rc) cli_error("validate", &err);
    free(rows);
    free(pass_v);
    free(ids);
    moe_trace_free(o->route);
    moe_model_free(o->calib_m);
    moe_model_free(m);
    moe_ini_free(ini);
    return rc;
}


int cmd_validate(int argc, char **argv) {
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'},        {"prompt-file", required_argument, 0, 'f'},
        {"max-tokens", required_argument, 0, 'n'},   {"device", required_argument, 0, 'D'},
        {"devices", required_argument, 0, 'F'},      {"threads", required_argument, 0, 'j'},
        {"repeat", required_argument, 0, 'r'},       {"trace-out", required_argument, 0, 'o'},
        {"db", required_argument, 0, 'd'},           {"experiment", required_argument, 0, 'e'},
        {"json", no_argument, 0, 'J'},               {"help", no_argument, 0, 'h'},
        MOE_OFFLOAD_LONGOPTS,
        {"seed", required_argument, 0, 'X'},         {"prefill-chunk", required_argument, 0, 'X'},
        {"grid", required_argument, 0, 'g'},         {"section", required_argument, 0, 'G'},
        {"recalibrate", optional_argument, 0, 'R'}, {"passes", required_argument, 0, 'P'},
        {0, 0, 0, 0},
    };
    vopts o = {.device = "this-machine", .devices = MOE_LOCAL_DEVICES_INI, .max_tokens = 64, .repeat = 1,
               .experiment = ""};
    moe_offload_opts_init(&o.off);
    moe_error err = {{0}};
    int c, idx = 0;
    const char *grid = NULL;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, &idx)) != -1) {
        int bad = 0;
        switch (c) {
        case 'm': o.model = optarg; break;
        case 'f': o.prompt_file = optarg; break;
        case 'n': bad = cli_parse_u64("--max-tokens", optarg, 1 << 20, &o.max_tokens, &err); break;
        case 'D': o.device = optarg, o.device_set = 1; break;
        case 'G': o.section = optarg; break;
        case 'F': o.devices = optarg; break;
        case 'j':
            bad = cli_parse_u64("--threads", optarg, 256, &o.threads, &err) ||
                  (!o.threads && moe_fail(&err, "--threads: at least 1"));
            o.threads_set = 1;
            break;
        case 'r':
            bad = cli_parse_u64("--repeat", optarg, 1000, &o.repeat, &err) ||
                  (!o.repeat && moe_fail(&err, "--repeat: at least 1"));
            break;
        case 'o': o.trace_out = optarg; break;
        case 'd': o.db = optarg; break;
        case 'e': o.experiment = optarg; break;
        case 'J': o.json = 1; break;
        case 'g': grid = optarg; break;
        case 'P':
            bad = cli_parse_u64("--passes", optarg, 64, &o.passes, &err) ||
                  (!o.passes && moe_fail(&err, "--passes: at least 1"));
            break;
        case 'R':
            bad = parse_recal(optarg ? optarg : "all", &o.recal, &err) && moe_fail_prefix(&err, "--recalibrate");
            o.recal_set = 1;
            break;
        case 'X': bad = moe_offload_opt_set(&o.off, opts[idx].name, optarg, &err) != 0; break;
        case 'h': printf(validate_usage, moe_offload_opts_help); return 0;
        default: fprintf(stderr, validate_usage, moe_offload_opts_help); return 2;
        }
        if (bad) return cli_error("validate", &err);
    }
    if (o.passes && !grid) {
        fprintf(stderr, "moesim validate: --passes runs a --grid several times; for one configuration use --repeat\n");
        return 2;
    }
    if (o.off.route_from && o.prompt_file) {
        fprintf(stderr, "moesim validate: --route-from replaces the prompt: drop --prompt-file\n");
        return 2;
    }
    if (optind < argc || (!grid && (!o.model || (!o.prompt_file && !o.off.route_from) || !o.off.capacity))) {
        if (optind < argc) fprintf(stderr, "moesim validate: unexpected argument '%s'\n", argv[optind]);
        else fprintf(stderr, "moesim validate: --model, --prompt-file (or --route-from) and --capacity are required\n");
        fprintf(stderr, validate_usage, moe_offload_opts_help);
        return 2;
    }
    if (!o.threads_set) {
        /* the profile's compute terms were measured at its thread count */
        moe_device_profile d;
        o.threads = moe_device_profile_load(o.devices, o.device, &d, &err) == 0 && d.threads ? d.threads : 0;
        if (!o.threads) {
            long n = sysconf(_SC_NPROCESSORS_ONLN);
            o.threads = n > 0 ? (uint64_t)n : 1;
        }
    }
    return grid ? validate_grid(&o, grid) : validate(&o);
}

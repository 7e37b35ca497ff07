/* cmd_calibrate.c: `moesim calibrate` — measure this machine and the backend
 * and write a device profile the simulator prices runs with.
 *
 * I/O: O_DIRECT reads of expert-sized blocks of a scratch file, each followed
 * by the backend's own per-read work (checksum; an f32 block's copy), at
 * queue depths 1..N; the channel count is picked by moe_iobench_pick_channels
 * and latency + bandwidth per channel are fitted at that depth over four
 * block sizes, once with the CPU idle and once beside a busy core (the
 * timing model's contention term, core/timing.h). Short passes over all
 * points are interleaved and repeated, and each point keeps its median pass
 * (a burst from another tenant bends one pass, not the fit).
 * Compute: the backend itself (resident, same thread count) runs a
 * calibration text that is not any validation prompt (seeded pseudo-random
 * bytes) in prefill steps of 1..32 tokens and in decode steps, recording each
 * layer's dense part (tokens, attended keys, seconds), each layer's expert
 * block (experts run, token slots, seconds) and each step's LM head; least
 * squares then fits
 *   dense  = dense_us + dense_us_per_token * T + attn_ns_per_ctx * keys
 *   expert = expert_us + expert_us_per_token * n   (the block's fixed cost
 *            goes to dense_us, the simulator's per-layer term)
 *   head   = head_us (one row per step, as generation computes it)
 * after dropping the slowest 2% of samples (preemptions), which would
 * otherwise pull a fit on a shared two-core machine. */
#include <getopt.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <gsl/gsl_fit.h>
#include <gsl/gsl_multifit.h>

#include "../backend/engine.h"
#include "../backend/iobench.h"
#include "../backend/matmul.h"
#include "../backend/offload.h"
#include "../backend/pack.h"
#include "../core/device_profile.h"
#include "../core/timing.h"
#include "../core/trace_formats.h"
#include "cli.h"
#include "commands.h"

static const char calibrate_usage[] =
    "usage: moesim calibrate --model DIR [options]\n"
    "\n"
    "Measure this machine and the backend, and write a device profile (a section of an\n"
    "INI file) that `moesim validate`, `run --device` and `plan` price runs with:\n"
    "io_channels, io_latency_us, io_bandwidth_GBps from O_DIRECT reads of expert-sized\n"
    "blocks (plus the backend's checksum per read), io_busy_latency_us and\n"
    "io_busy_bandwidth_GBps from the same reads beside a busy core, io_wake_us and\n"
    "io_resume_us from demand reads of DIR's own pack through the backend's I/O thread (which\n"
    "also anchor the idle read time of one expert), mem_bandwidth_GBps, and\n"
    "the backend's own compute cost for DIR's model (dense_us, dense_us_per_token,\n"
    "attn_ns_per_ctx, expert_us, expert_us_per_token, head_us).\n"
    "\n"
    "  --model DIR        the model whose compute is measured (its expert size sets the\n"
    "                     read size)\n"
    "  --dir D            where the scratch file goes: the disk experts are read from\n"
    "                     (default: the model directory)\n"
    "  --size GiB         scratch file size (default 0.5, at least four expert blocks);\n"
    "                     larger than the page cache\n"
    "                     is not needed: reads are O_DIRECT\n"
    "  -o, --output FILE  profile file to write or update (default " MOE_LOCAL_DEVICES_INI ")\n"
    "  --name NAME        section name (default this-machine)\n"
    "  --threads N        compute threads (default: half the online CPUs); validate uses\n"
    "                     the same\n"
    "  --max-depth N      I/O queue depths tried, 1..N (default: the CPUs left over, so\n"
    "                     compute and I/O threads do not share a CPU)\n"
    "  --io MODE          direct (default), buffered or mmap\n"
    "  --seconds S        time per I/O point per pass (default 0.1; 12 passes)\n"

    "  -h, --help         this text\n"
    "\n"
    "Two calibrations in a row agree within about 10% on a quiet machine; the report\n"
    "prints each fit's residual so a noisy one can be seen.\n";

typedef struct copts {
    const char *model, *dir, *out, *name;
    double size_gib, seconds;
    uint64_t threads, max_depth;
    int io_mode;
} copts;

/* The backend's per-read work on a block, as its I/O thread does it
 * (offload.c): the checksum, plus the copy out of an f32 block; bf16 and
 * quantized blocks are computed on where they were read. */
typedef struct work_ctx {
    moe_pack fake;  /* geometry only: dtype, inter, hidden, expert_bytes */
    float *gu, *down;
    volatile uint64_t sink;
} work_ctx;

static int read_work(void *ctx, void *buf, uint64_t block) {
    work_ctx *w = ctx;
    w->sink ^= moe_pack_check64(buf, block < w->fake.expert_bytes ? block : w->fake.expert_bytes);
    if (w->fake.dtype == MOE_PACK_F32 && block >= w->fake.expert_bytes) moe_pack_to_f32(&w->fake, buf, w->gu, w->down);
    return 0;
}

static void progress(void *ctx, double f) {
    (void)ctx;
    if (cli_is_tty(2)) fprintf(stderr, "\rmoesim calibrate: writing the scratch file %3.0f%%", 100 * f);
}

/* ---- I/O ----------------------------------------------------------------- */

typedef struct io_fit {
    uint32_t channels;
    moe_iobench_fit fit, busy; /* CPU idle, CPU busy computing */
    moe_iobench_result depth[16];
    uint32_t n_depth;
} io_fit;

/* The busy core for the second set of reads: in the offloaded backend reads
 * overlap expert compute, and on a VM whose disk the host emulates
 * (Firecracker here) a busy guest CPU slows every read (by ~80 us of ~110 us
 * in our measurement). The load is what an expert MLP does: dot products
 * over a weight-sized array. */
typedef struct load_ctx {
    _Atomic int stop;
    float *w;
    size_t n;
    volatile float sink;
} load_ctx;

static void *load_main(void *p) {
    load_ctx *l = p;
    while (!atomic_load_explicit(&l->stop, memory_order_relaxed))
        for (size_t i = 0; i + 128 <= l->n; i += 128) l->sink += moe_dot(l->w + i, l->w, 128);
    return NULL;
}

static int start_load(load_ctx *l, pthread_t *th, moe_error *err) {
    atomic_store(&l->stop, 0);
    if (pthread_create(th, NULL, load_main, l)) return moe_fail(err, "cannot start the compute-load thread");
    return 0;
}

static void stop_load(load_ctx *l, pthread_t th) {
    atomic_store(&l->stop, 1);
    pthread_join(th, NULL);
}

/* Combine the passes of each block size and fit latency + bandwidth. */
static int fit_blocks(const moe_iobench_result *pb, int passes, int nb, moe_iobench_fit *fit, moe_error *err) {
    moe_iobench_result pts[8], v[32]; /* nb <= 8 block sizes, passes <= 32 */
    for (int b = 0; b < nb; b++) {
        for (int pass = 0; pass < passes; pass++) v[pass] = pb[(size_t)pass * nb + b];
        if (moe_iobench_combine(v, (uint32_t)passes, &pts[b], err)) return -1;
        /* the timeline adds read times up, so the mean read (tail included)
         * is the figure to fit, not the typical (median) one */
        pts[b].median_s = pts[b].mean_s;
    }
    return moe_iobench_fit_channel(pts, (uint32_t)nb, fit, err);
}

/* The depth sweep (CPU idle) picks the channel count; then reads of four
 * block sizes at that depth are timed with the CPU idle and under a compute
 * load, in interleaved passes, for the two rates of the timing model's
 * contention term. */
static int bench_io(const copts *o, uint64_t expert_block, work_ctx *wc, io_fit *f, moe_error *err) {
    char path[4096];
    const char *dir = o->dir ? o->dir : o->model;
    load_ctx load = {.n = 1 << 18};
    /* the largest block timed is twice an expert's; the file holds at least
     * two of those, so reads land at different offsets */
    uint64_t size = (uint64_t)(o->size_gib * 1073741824.0), need = 4 * ((expert_block + 4095) / 4096 * 4096);
    if (size < need) {
        fprintf(stderr, "moesim calibrate: scratch file %.2f GiB instead of --size %.2f: four expert blocks\n",
                (double)need / 1073741824.0, o->size_gib);
        size = need;
    }
    if (moe_iobench_prepare(dir, size, path, sizeof path, progress, NULL, err)) return -1;
    if (cli_is_tty(2)) fputc('\n', stderr);
    enum { PASSES = 12, NB = 4 }; /* many short interleaved passes: a burst from another tenant bends a few */
    uint64_t blocks[NB] = {expert_block / 4, expert_block / 2, expert_block, expert_block * 2};
    for (int i = 0; i < NB; i++) blocks[i] = (blocks[i] + 4095) / 4096 * 4096;
    uint32_t D = (uint32_t)o->max_depth;
    moe_iobench_result *pd = calloc((size_t)PASSES * D, sizeof *pd);
    moe_iobench_result pi[PASSES * NB], pl[PASSES * NB];
    int rc = -1;
    if (!pd || !(load.w = calloc(load.n, sizeof *load.w))) {
        moe_fail(err, "out of memory");
        goto out;
    }
    moe_iobench_params p = {.path = path, .mode = o->io_mode, .seconds = o->seconds, .work = read_work, .work_ctx = wc};
    for (int pass = 0; pass < PASSES; pass++)
        for (uint32_t d = 1; d <= D; d++) {
            p.block = expert_block;
            p.depth = d;
            p.seed = 1000u * (unsigned)pass + d;
            if (cli_is_tty(2)) fprintf(stderr, "\rmoesim calibrate: reads, pass %d/%d, depth %u      ", pass + 1, PASSES, d);
            if (moe_iobench_run(&p, &pd[(size_t)pass * D + (d - 1)], err)) goto out;
        }
    f->n_depth = D;
    for (uint32_t d = 0; d < D; d++) {
        moe_iobench_result v[PASSES];
        for (int pass = 0; pass < PASSES; pass++) v[pass] = pd[(size_t)pass * D + d];
        if (moe_iobench_combine(v, PASSES, &f->depth[d], err)) goto out;
    }
    if (moe_iobench_pick_channels(f->depth, D, &f->channels, err)) goto out;
    /* a pass hit by another tenant's burst can make a fit meaningless (read
     * time not growing with the block size): measure again, twice at most */
    for (int attempt = 0;; attempt++) {
        for (int pass = 0; pass < PASSES; pass++)
            for (int loaded = 0; loaded < 2; loaded++) {
                pthread_t th;
                if (loaded && start_load(&load, &th, err)) goto out;
                for (int b = 0; b < NB && rc == -1; b++) {
                    p.block = blocks[b];
                    p.depth = f->channels;
                    p.seed = 7000u + 1000u * (unsigned)attempt + 100u * (unsigned)pass + 10u * (unsigned)loaded + (unsigned)b;
                    if (cli_is_tty(2))
                        fprintf(stderr, "\rmoesim calibrate: reads, pass %d/%d, %llu KiB blocks%s   ", pass + 1, PASSES,
                                (unsigned long long)blocks[b] / 1024, loaded ? ", CPU busy" : "");
                    if (moe_iobench_run(&p, &(loaded ? pl : pi)[(size_t)pass * NB + b], err)) rc = -2;
                }
                if (loaded) stop_load(&load, th);
                if (rc == -2) {
                    rc = -1;
                    goto out;
                }
            }
        if (cli_is_tty(2)) fputc('\n', stderr);
        if (!fit_blocks(pi, PASSES, NB, &f->fit, err) && !fit_blocks(pl, PASSES, NB, &f->busy, err)) break;
        if (attempt == 2) goto out;
        fprintf(stderr, "moesim calibrate: %s; measuring the reads again\n", err->msg);
    }
    printf("I/O (%s, %s): queue depth -> throughput at %llu-byte reads:", moe_io_mode_name(o->io_mode), dir,
           (unsigned long long)expert_block);
    for (uint32_t d = 0; d < D; d++) printf(" %u: %.0f MB/s", d + 1, f->depth[d].throughput_Bps / 1e6);
    printf("\n  channels %u (smallest depth within 10%% of the best); per channel, CPU idle: latency %.1f us, "
           "bandwidth %.0f MB/s (max residual %.1f%%);\n  a CPU busy computing: latency %.1f us, bandwidth %.0f MB/s "
           "(max residual %.1f%%)\n",
           f->channels, f->fit.latency_s * 1e6, f->fit.bandwidth_Bps / 1e6, 100 * f->fit.max_rel_resid,
           f->busy.latency_s * 1e6, f->busy.bandwidth_Bps / 1e6, 100 * f->busy.max_rel_resid);
    rc = 0;
out:
    free(load.w);
    free(pd);
    moe_iobench_cleanup(path);
    return rc;
}

/* The backend's own read path for demand reads: issue through its queue,
 * its I/O thread reads, the waiting thread wakes. Bursts of 1, 2 and 4
 * reads 200 us apart, sleeping, as a decode step's misses are. Two lines
 * are fitted over the burst size n, on the medians:
 *   busy(n)   the I/O thread's own work (preads + checksums, its clock)
 *             = first + n * read: `read` is one expert read as the backend
 *             sees it; `first` is what the first read of a burst pays on
 *             top (on this VM ~100 us of ~250: a read that completes while
 *             every vCPU sleeps waits for the host to wake one; the reads
 *             queued behind it find one awake)
 *   beyond(n) the burst's time less busy(n) = thread + n * resume: the
 *             serving thread's wake-up once per burst, the waiting
 *             thread's once per read
 * io_wake_us = first + thread (a read issued to an idle channel), and
 * io_resume_us = resume. Fitting the thread terms on the wall time less
 * the scratch-file device fit instead left the device's noise in them (at
 * 336 MiB blocks io_resume_us came out 72-200 ms, against 29 us at
 * tinymix's 128 KiB). Reads of a pack of this model: DIR/experts.pack when
 * it is one, else a temporary one in --dir. */
static int bench_wake(const copts *o, const moe_model *m, uint64_t block, double *wake_s, double *resume_s,
                      double *read_s, moe_error *err) {
    char pack[4096], tmp[4096] = "";
    moe_pack p;
    snprintf(pack, sizeof pack, "%s/experts.pack", o->model);
    int usable = moe_pack_open(&p, pack, MOE_IO_BUFFERED, err) == 0;
    if (usable) {
        usable = moe_pack_check_model(&p, m, err) == 0;
        moe_pack_close(&p);
    }
    if (!usable) {
        snprintf(tmp, sizeof tmp, "%s/moesim-calibrate-%d.pack", o->dir ? o->dir : o->model, (int)getpid());
        if (moe_pack_write(m, tmp, strcmp(m->dtype, "BF16") ? MOE_PACK_F32 : MOE_PACK_BF16, NULL, NULL, err)) return -1;
        snprintf(pack, sizeof pack, "%s", tmp);
    }
    static const uint32_t sizes[] = {1, 2, 4};
    /* five rounds, the sizes taking turns in each: back to back, a drift of
     * the host over the seconds the probe takes went into one size only and
     * so into the slopes (the per-read time of two calibrations a minute
     * apart differed by 31%) */
    enum { ROUNDS = 5 };
    uint32_t bursts[3];
    for (int i = 0; i < 3; i++) {
        /* 30 bursts a round, or as many as read 2 GiB over the rounds (at
         * least 2): a burst of four 336 MiB experts takes ~0.4 s */
        uint64_t fit = (2ull << 30) / (block * sizes[i] * ROUNDS);
        bursts[i] = fit < 2 ? 2 : fit > 30 ? 30 : (uint32_t)fit;
    }
    moe_probe_point pt[3];
    int rc = moe_offload_probe_reads(m, pack, o->io_mode, sizes, bursts, 3, ROUNDS, 200e-6, pt, err);
    if (tmp[0]) unlink(tmp);
    if (rc) return -1;
    double x[3], wall[3], busy[3], beyond[3];
    for (int i = 0; i < 3; i++) {
        x[i] = sizes[i];
        wall[i] = pt[i].wall_s;
        busy[i] = pt[i].busy_s;
        beyond[i] = pt[i].beyond_s;
    }
    double first, read, thread, resume, cov00, cov01, cov11, ss;
    gsl_fit_linear(x, 1, busy, 1, 3, &first, &read, &cov00, &cov01, &cov11, &ss);
    gsl_fit_linear(x, 1, beyond, 1, 3, &thread, &resume, &cov00, &cov01, &cov11, &ss);
    /* a negative term is noise around zero, not a saving */
    *wake_s = (first > 0 ? first : 0) + (thread > 0 ? thread : 0);
    *resume_s = resume > 0 ? resume : 0;
    *read_s = read > 0 ? read : 0;
    printf("  demand reads of %s through the backend's queue, bursts of 1/2/4: %.0f/%.0f/%.0f us, the I/O thread "
           "busy %.0f/%.0f/%.0f us:\n  %.1f us per read, %.1f us more for a burst's first (the thread's wake-up "
           "%.1f us more: io_wake_us %.1f), %.1f us per wait (io_resume_us)\n",
           pack, wall[0] * 1e6, wall[1] * 1e6, wall[2] * 1e6, busy[0] * 1e6, busy[1] * 1e6, busy[2] * 1e6,
           *read_s * 1e6, (first > 0 ? first : 0) * 1e6, (thread > 0 ? thread : 0) * 1e6, *wake_s * 1e6,
           *resume_s * 1e6);
    return 0;
}

/* Anchor the idle read fit (a scratch file, read in a tight loop) at one
 * expert block on `read_s`, the backend's own read of the model's pack
 * (bench_wake): the two differ where the guest's disk is a file the host
 * caches (the pack runs live in the host's cache, a fresh scratch file
 * partly does not: 92 ms against 130 ms per 336 MiB expert) and in what a
 * read costs beside a sleeping CPU. A pack read that is slower goes to the
 * latency (a per-read cost); one that is faster scales the read (latency
 * and time per byte alike), and the busy bandwidth by the same factor (the
 * same cache serves both). One channel only: the probe reads at depth 1. */
static void anchor_reads(io_fit *io, uint64_t block, double read_s) {
    double fit = io->fit.latency_s + (double)block / io->fit.bandwidth_Bps;
    if (!(read_s > 0) || io->channels != 1) {
        printf("  idle read not anchored (%s): %.1f us per expert from the scratch file\n",
               io->channels != 1 ? "more than one channel" : "no per-read time from the pack", fit * 1e6);
        return;
    }
    if (read_s >= fit) io->fit.latency_s = read_s - (double)block / io->fit.bandwidth_Bps;
    else { /* the scale of the whole read: latency and time per byte alike */
        double k = read_s / fit;
        io->fit.latency_s *= k;
        io->fit.bandwidth_Bps /= k;
        io->busy.bandwidth_Bps /= k;
    }
    printf("  idle read anchored on the pack: %.1f us per expert (the scratch file's fit: %.1f us): latency %.1f us, "
           "bandwidth %.0f MB/s; busy bandwidth %.0f MB/s\n",
           read_s * 1e6, fit * 1e6, io->fit.latency_s * 1e6, io->fit.bandwidth_Bps / 1e6, io->busy.bandwidth_Bps / 1e6);
}

/* ---- compute -------------------------------------------------------------- */

/* Least squares y = X c over n rows of p columns, dropping rows whose y is
 * above the 98th percentile first. */
static int fit_ls(const double *X, const double *y, size_t n, size_t p, double *c, moe_error *err) {
    double *ys = malloc(n * sizeof *ys);
    if (!ys) return moe_fail(err, "out of memory");
    memcpy(ys, y, n * sizeof *ys);
    moe_time_stats st = moe_time_stats_of(ys, n); /* sorts */
    (void)st;
    double cut = ys[(size_t)(0.98 * (double)(n - 1))];
    free(ys);
    size_t m = 0;
    for (size_t i = 0; i < n; i++) m += y[i] <= cut;
    if (m < p + 2) return moe_fail(err, "calibration: too few samples (%zu) to fit %zu terms", m, p);
    gsl_matrix *A = gsl_matrix_alloc(m, p), *cov = gsl_matrix_alloc(p, p);
    gsl_vector *b = gsl_vector_alloc(m), *cv = gsl_vector_alloc(p);
    gsl_multifit_linear_workspace *ws = gsl_multifit_linear_alloc(m, p);
    int rc = -1;
    if (!A || !cov || !b || !cv || !ws) {
        moe_fail(err, "out of memory");
        goto out;
    }
    for (size_t i = 0, r = 0; i < n; i++) {
        if (y[i] > cut) continue;
        for (size_t j = 0; j < p; j++) gsl_matrix_set(A, r, j, X[i * p + j]);
        gsl_vector_set(b, r++, y[i]);
    }
    double chi2;
    if (gsl_multifit_linear(A, b, cv, cov, &chi2, ws)) {
        moe_fail(err, "calibration: least-squares fit failed");
        goto out;
    }
    for (size_t j = 0; j < p; j++) c[j] = gsl_vector_get(cv, j);
    rc = 0;
out:
    gsl_matrix_free(A);
    gsl_matrix_free(cov);
    gsl_vector_free(b);
    gsl_vector_free(cv);
    if (ws) gsl_multifit_linear_free(ws);
    return rc;
}

/* y = c0 + c1 * a + c2 * b over n samples (fit_ls). */
static int fit_samples(size_t n, const int *a, const double *b, const double *y, double c[3], moe_error *err) {
    double *X = malloc((n ? n : 1) * 3 * sizeof *X);
    if (!X) return moe_fail(err, "out of memory");
    for (size_t i = 0; i < n; i++) {
        X[i * 3] = 1;
        X[i * 3 + 1] = a[i];
        X[i * 3 + 2] = b[i];
    }
    int rc = fit_ls(X, y, n, 3, c, err);
    free(X);
    return rc;
}

typedef struct compute_fit {
    double dense[3], expert[2], head_us; /* seconds (head: us) */
    size_t n_dense, n_expert, n_head, n_fits;
} compute_fit;

/* Calibration text: seeded pseudo-random printable bytes (an xorshift), so
 * no validation prompt is ever part of the calibration. */
static void calib_tokens(int *ids, int n, int vocab) {
    uint64_t x = 0x9e3779b97f4a7c15ull;
    for (int i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        ids[i] = vocab >= 128 ? 32 + (int)(x % 95) : (int)(x % (uint64_t)vocab);
    }
}

/* Experts of a model whose weights are only in its pack (`moesim model
 * synth`): a pool of distinct experts read from the pack, served to the
 * engine as an expert source, so the compute measured is that of real
 * blocks at distinct addresses (as many as the pool holds: at least a
 * layer's experts, up to 1 GiB, so caches see what they would see). The
 * values do not change the cost. */
typedef struct expert_pool {
    int E, K;
    size_t n;
    void **raw;
    moe_mlp_w *w;
} expert_pool;

static int pool_layer(void *ctx, int m, int T, int *sel, float *selw, const float *logits, const uint16_t *la,
                      int *order, int *n, moe_error *err) {
    expert_pool *p = ctx;
    (void)m, (void)selw, (void)logits, (void)la, (void)err;
    *n = 0;
    for (int x = 0; x < p->E; x++) { /* each chosen expert once, ascending */
        int used = 0;
        for (int i = 0; i < T * p->K && !used; i++) used = sel[i] == x;
        if (used) order[(*n)++] = x;
    }
    return 0;
}

static const moe_mlp_w *pool_get(void *ctx, int m, int x, moe_error *err) {
    expert_pool *p = ctx;
    (void)err;
    return &p->w[((size_t)m * (size_t)p->E + (size_t)x) % p->n];
}

static void pool_free(expert_pool *p) {
    for (size_t i = 0; i < p->n && p->raw; i++) free(p->raw[i]);
    free(p->raw);
    free(p->w);
}

static int pool_load(expert_pool *p, const moe_model *m, const char *pack_path, moe_error *err) {
    moe_pack pk;
    memset(p, 0, sizeof *p);
    if (moe_pack_open(&pk, pack_path, MOE_IO_BUFFERED, err) || moe_pack_check_model(&pk, m, err)) return -1;
    int rc = -1;
    if (pk.dtype != MOE_PACK_BF16) {
        moe_fail(err, "%s: calibrating from a pack needs bf16 experts (this one is %s)", pack_path,
                 moe_pack_dtype_name(pk.dtype));
        goto out;
    }
    size_t all = (size_t)pk.n_layers * pk.n_experts, fit = (size_t)((1ull << 30) / pk.stride);
    p->E = (int)pk.n_experts;
    p->K = m->cfg.top_k;
    p->n = fit < all ? fit : all;
    if (p->n < pk.n_experts) p->n = pk.n_experts;
    p->raw = calloc(p->n, sizeof *p->raw);
    p->w = calloc(p->n, sizeof *p->w);
    if (!p->raw || !p->w) {
        moe_fail(err, "out of memory");
        goto out;
    }
    size_t I = pk.inter, H = pk.hidden;
    for (size_t i = 0; i < p->n; i++) {
        if (!(p->raw[i] = moe_pack_alloc_block(&pk))) {
            moe_fail(err, "out of memory");
            goto out;
        }
        if (moe_pack_read(&pk, (uint32_t)(i / pk.n_experts), (uint32_t)(i % pk.n_experts), p->raw[i], err)) goto out;
        const uint16_t *b = p->raw[i];
        p->w[i] = (moe_mlp_w){.inter = (int)I, .gate_up16 = b, .down16 = b + 2 * I * H};
    }
    rc = 0;
out:
    moe_pack_close(&pk);
    if (rc) pool_free(p);
    return rc;
}

/* Fit one pass's samples (the engine's dense, expert-block and head
 * times) into cf. */
static int fit_pass(moe_engine *e, int steps, compute_fit *cf, moe_error *err) {
    /* the head time includes the embedding lookup of the step (engine.h) */
    cf->n_head = (size_t)steps;
    cf->head_us = 1e6 * moe_engine_times_get(e).head_s / (double)steps;
    const int *tok, *nexp;
    const double *ctx, *slots, *sec;
    size_t n = moe_engine_dense_samples(e, &tok, &ctx, &sec);
    if (fit_samples(n, tok, ctx, sec, cf->dense, err)) return -1;
    cf->n_dense = n;
    n = moe_engine_expert_samples(e, &nexp, &slots, &sec);
    double ex[3];
    if (fit_samples(n, nexp, slots, sec, ex, err)) return -1;
    /* per layer: ex[0] (the block's fixed cost, counted with the dense part,
     * the simulator's per-layer term) + ex[1] per expert + ex[2] per token
     * slot (the sum of an expert's tokens over the layer's experts) */
    cf->dense[0] += ex[0];
    cf->expert[0] = ex[1];
    cf->expert[1] = ex[2];
    cf->n_expert = n;
    /* a negative intercept or slope is noise around zero, not a saving */
    for (int i = 0; i < 3; i++) cf->dense[i] = cf->dense[i] > 0 ? cf->dense[i] : 0;
    for (int i = 0; i < 2; i++) cf->expert[i] = cf->expert[i] > 0 ? cf->expert[i] : 0;
    return 0;
}

/* Median of one term over n fits (n <= 3). */
static double median_of(const compute_fit *f, int n, size_t offset) {
    double v[3];
    for (int i = 0; i < n; i++) v[i] = *(const double *)((const char *)&f[i] + offset);
    return moe_time_stats_of(v, (size_t)n).p50;
}

/* Every term of cf: the median of that term over the n fits. */
static void median_fit(const compute_fit *f, int n, compute_fit *cf) {
    *cf = f[0];
    for (int i = 0; i < 3; i++) cf->dense[i] = median_of(f, n, offsetof(compute_fit, dense) + i * sizeof(double));
    for (int i = 0; i < 2; i++) cf->expert[i] = median_of(f, n, offsetof(compute_fit, expert) + i * sizeof(double));
    cf->head_us = median_of(f, n, offsetof(compute_fit, head_us));
    cf->n_fits = (size_t)n;
}

static int bench_compute(const copts *o, const moe_model *m, compute_fit *cf, moe_error *err) {
    const int N = 512, decode = 96;
    moe_engine *e = moe_engine_new(m, (int)o->threads, N + decode, err);
    if (!e) return -1;
    expert_pool pool = {0};
    moe_expert_source src = {.ctx = &pool, .layer = pool_layer, .get = pool_get};
    if (!m->experts_loaded) {
        char pack[4096];
        snprintf(pack, sizeof pack, "%s/experts.pack", o->model);
        if (pool_load(&pool, m, pack, err) || moe_engine_set_expert_source(e, &src, err)) {
            pool_free(&pool);
            moe_engine_free(e);
            return -1;
        }
        printf("compute: experts from %s (%zu distinct blocks)\n", pack, pool.n);
    }
    int *ids = malloc((size_t)(N + decode) * sizeof *ids);
    float *logits = malloc((size_t)m->cfg.vocab * sizeof *logits);
    int rc = -1;
    if (!ids || !logits) {
        moe_fail(err, "out of memory");
        goto out;
    }
    calib_tokens(ids, N + decode, m->cfg.vocab);
    /* prefill in steps cycling through 1..32 tokens, then decode steps. The
     * first pass warms caches and is discarded; each pass after it is fitted
     * on its own, and every term is the median over those fits: on this
     * two-vCPU VM one pass in three or four ran ~25% faster than the rest
     * (2.8 against 3.6-3.9 us per token per layer: how the host scheduled
     * the vCPU; offloaded runs see the slower figure), and one such pass
     * made two calibrations in a row differ by 44%. Three fitted passes
     * where a pass is short (< 5 s; tinymix: ~0.3 s), one where it is
     * minutes (Mixtral-sized experts). */
    static const int sizes[] = {32, 1, 16, 2, 8, 4, 24, 3, 12, 6, 32, 1};
    enum { MAX_FITS = 3 };
    compute_fit fits[MAX_FITS];
    int n_fits = 0, want = 1;
    for (int pass = 0; n_fits < want; pass++) {
        double t0 = moe_engine_now();
        moe_engine_reset(e);
        moe_engine_record_experts(e, 1);
        moe_engine_times_reset(e);
        int pos = 0, k = 0, steps = 0;
        while (pos < N) {
            int T = sizes[k++ % (int)(sizeof sizes / sizeof *sizes)];
            if (T > N - pos) T = N - pos;
            if (moe_engine_forward(e, ids + pos, T, logits, 0, NULL, err)) goto out;
            pos += T;
            steps++;
        }
        for (int i = 0; i < decode; i++, steps++)
            if (moe_engine_forward(e, ids + N + i, 1, logits, 0, NULL, err)) goto out;
        if (pass == 0) {
            want = moe_engine_now() - t0 < 5.0 ? MAX_FITS : 1;
            continue;
        }
        if (fit_pass(e, steps, &fits[n_fits], err)) goto out;
        n_fits++;
    }
    median_fit(fits, n_fits, cf);
    printf("compute (%s, %llu threads, %zu layer samples, %zu expert-block samples per pass; the median of %d "
           "passes):\n",
           m->name, (unsigned long long)o->threads, cf->n_dense, cf->n_expert, n_fits);
    for (int i = 0; i < n_fits && n_fits > 1; i++)
        printf("  pass %d: dense %.3f us/token, expert %.3f us/token\n", i + 1, 1e6 * fits[i].dense[1],
               1e6 * fits[i].expert[1]);
    printf("  dense per layer %.2f us + %.3f us/token + %.3f ns/attended key; expert %.2f us + %.3f us/token; "
           "head %.2f us/step\n",
           1e6 * cf->dense[0], 1e6 * cf->dense[1], 1e9 * cf->dense[2], 1e6 * cf->expert[0], 1e6 * cf->expert[1],
           cf->head_us);
    rc = 0;
out:
    free(ids);
    free(logits);
    moe_engine_free(e);
    pool_free(&pool);
    return rc;
}

/* ---- the profile file ----------------------------------------------------- */

/* Write `section` into FILE, replacing a section of the same name and
 * keeping every other line; atomically. */
static int write_section(const char *path, const char *name, const char *section, moe_error *err) {
    size_t len = 0;
    char *old = access(path, F_OK) == 0 ? moe_read_file(path, &len, err) : NULL;
    if (!old && access(path, F_OK) == 0) return -1;
    moe_atomic_file af;
    if (moe_atomic_open(&af, path, err)) {
        free(old);
        return -1;
    }
    if (!old) fprintf(af.f, "# Device profiles measured on this machine by `moesim calibrate` (not committed:\n"
                            "# they describe this host). Keys: core/device_profile.h.\n");
    int skipping = 0, last_blank = 0;
    for (char *line = old, *next; line && *line; line = next) {
        next = strchr(line, '\n');
        if (next) *next++ = 0;
        if (line[0] == '[') {
            char *end = strchr(line, ']');
            skipping = end && (size_t)(end - line - 1) == strlen(name) && !strncasecmp(line + 1, name, strlen(name));
        }
        if (!skipping) {
            fprintf(af.f, "%s\n", line);
            last_blank = !*line;
        }
    }
    /* the section starts with a blank line: no more than one in a row */
    fputs(last_blank ? section + 1 : section, af.f);
    free(old);
    return moe_atomic_commit(&af, err);
}

static int calibrate(const copts *o) {
    moe_error err = {{0}};
    int rc = 1;
    /* a model whose experts are only in its pack (`model synth`) is
     * calibrated from the pack; any other loads whole */
    moe_model *m = moe_model_load_ex(o->model, MOE_LOAD_NO_EXPERTS, &err);
    if (m && strcmp(m->dtype, "pack")) {
        moe_model_free(m);
        m = moe_model_load(o->model, &err);
    }
    work_ctx wc;
    memset(&wc, 0, sizeof wc);
    if (!m) return cli_error("calibrate", &err);
    /* the read path's geometry: the pack auto-packing writes (bf16 stays bf16, else f32) */
    wc.fake.dtype = strcmp(m->dtype, "BF16") && strcmp(m->dtype, "pack") ? MOE_PACK_F32 : MOE_PACK_BF16;
    wc.fake.hidden = (uint32_t)m->cfg.hidden;
    wc.fake.inter = (uint32_t)m->cfg.expert_inter;
    wc.fake.expert_bytes = moe_expert_params(m) * (wc.fake.dtype == MOE_PACK_F32 ? 4 : 2);
    wc.fake.stride = (wc.fake.expert_bytes + MOE_PACK_ALIGN - 1) / MOE_PACK_ALIGN * MOE_PACK_ALIGN;
    wc.gu = malloc(2 * moe_expert_params(m) / 3 * sizeof(float));
    wc.down = malloc(moe_expert_params(m) / 3 * sizeof(float) + 16);
    io_fit io = {0};
    compute_fit cf;
    memset(&cf, 0, sizeof cf);
    if (!wc.gu || !wc.down) {
        moe_fail(&err, "out of memory");
        goto out;
    }
    /* the pack's reads first: writing and deleting the scratch file (on a
     * disk mounted with discard, the host then punches the hole) left the
     * pack's reads 2-3x slower for a while (OLMoE: 9-12 ms per expert
     * right after, 3.6 ms in a process of their own) */
    double wake = 0, resume = 0, read = 0;
    if (bench_wake(o, m, wc.fake.stride, &wake, &resume, &read, &err)) goto out;
    if (bench_io(o, wc.fake.stride, &wc, &io, &err)) goto out;
    anchor_reads(&io, wc.fake.stride, read);
    double mem = moe_iobench_mem_bandwidth(256ull << 20, 20);
    printf("memory: %.1f GB/s (memcpy, bytes read + written)\n", mem / 1e9);
    if (bench_compute(o, m, &cf, &err)) goto out;
    char host[128] = "?", when[64];
    gethostname(host, sizeof host - 1);
    time_t now = time(NULL);
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
    char sec[4096];
    snprintf(sec, sizeof sec,
             "\n[%s]\n"
             "description = measured by moesim calibrate on %s (%s reads of %llu-byte blocks, %s, %llu threads)\n"
             "calibrated = %s\nmodel = %s\nthreads = %llu\nio_mode = %s\n"
             "io_channels = %u\nio_latency_us = %.3f\nio_bandwidth_GBps = %.6f\n"
             "io_busy_latency_us = %.3f\nio_busy_bandwidth_GBps = %.6f\nio_wake_us = %.3f\nio_resume_us = %.3f\n"
             "mem_bandwidth_GBps = %.3f\n"
             "dense_us = %.4f\ndense_us_per_token = %.5f\nattn_ns_per_ctx = %.5f\n"
             "expert_us = %.4f\nexpert_us_per_token = %.5f\nhead_us = %.4f\n",
             o->name, host, moe_io_mode_name(o->io_mode), (unsigned long long)wc.fake.stride, m->name,
             (unsigned long long)o->threads, when, m->name, (unsigned long long)o->threads,
             moe_io_mode_name(o->io_mode), io.channels, io.fit.latency_s * 1e6, io.fit.bandwidth_Bps / 1e9,
             io.busy.latency_s * 1e6, io.busy.bandwidth_Bps / 1e9, wake * 1e6, resume * 1e6, mem / 1e9, 1e6 * cf.dense[0], 1e6 * cf.dense[1], 1e9 * cf.dense[2], 1e6 * cf.expert[0],
             1e6 * cf.expert[1], cf.head_us);
    if (write_section(o->out, o->name, sec, &err)) goto out;
    printf("wrote [%s] to %s\n", o->name, o->out);
    rc = 0;
out:
    if (rc) cli_error("calibrate", &err);
    free(wc.gu);
    free(wc.down);
    moe_model_free(m);
    return rc;
}

int cmd_calibrate(int argc, char **argv) {
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'},   {"dir", required_argument, 0, 'd'},
        {"size", required_argument, 0, 's'},    {"output", required_argument, 0, 'o'},
        {"name", required_argument, 0, 'n'},    {"threads", required_argument, 0, 'j'},
        {"max-depth", required_argument, 0, 'D'}, {"io", required_argument, 0, 'i'},
        {"seconds", required_argument, 0, 'S'}, {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    /* Defaults: compute threads and I/O threads get half the CPUs each, so
     * the I/O threads' per-read work (checksum, copies) does not take
     * time from compute (the timing model has no term for that sharing). */
    uint64_t cpus = ncpu > 0 ? (uint64_t)ncpu : 1;
    copts o = {.out = MOE_LOCAL_DEVICES_INI, .name = "this-machine", .size_gib = 0.5, .seconds = 0.1,
               .threads = cpus > 1 ? cpus / 2 : 1, .max_depth = 0, .io_mode = MOE_IO_DIRECT};
    moe_error err = {{0}};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "ho:", opts, NULL)) != -1) {
        int bad = 0;
        char *end;
        switch (c) {
        case 'm': o.model = optarg; break;
        case 'd': o.dir = optarg; break;
        case 's':
            o.size_gib = strtod(optarg, &end);
            if (end == optarg || *end || !(o.size_gib >= 0.01 && o.size_gib <= 1024))
                bad = moe_fail(&err, "--size: expected GiB in [0.01, 1024], got '%s'", optarg);
            break;
        case 'S':
            o.seconds = strtod(optarg, &end);
            if (end == optarg || *end || !(o.seconds > 0 && o.seconds <= 60))
                bad = moe_fail(&err, "--seconds: expected (0, 60], got '%s'", optarg);
            break;
        case 'o': o.out = optarg; break;
        case 'n':
            o.name = optarg;
            if (!*optarg || strpbrk(optarg, "[]\n=#;")) bad = moe_fail(&err, "--name: '%s' is not a section name", optarg);
            break;
        case 'j':
            bad = cli_parse_u64("--threads", optarg, 256, &o.threads, &err) ||
                  (!o.threads && moe_fail(&err, "--threads: at least 1"));
            break;
        case 'D':
            bad = cli_parse_u64("--max-depth", optarg, 16, &o.max_depth, &err) ||
                  (!o.max_depth && moe_fail(&err, "--max-depth: at least 1"));
            break;
        case 'i': bad = moe_io_mode_parse(optarg, &o.io_mode, &err); break;
        case 'h': fputs(calibrate_usage, stdout); return 0;
        default: fputs(calibrate_usage, stderr); return 2;
        }
        if (bad) return cli_error("calibrate", &err);
    }
    if (!o.max_depth) o.max_depth = cpus > o.threads ? cpus - o.threads : 1;
    if (o.max_depth > 16) o.max_depth = 16;
    if (optind < argc || !o.model) {
        if (optind < argc) fprintf(stderr, "moesim calibrate: unexpected argument '%s'\n", argv[optind]);
        else fprintf(stderr, "moesim calibrate: --model is required\n");
        fputs(calibrate_usage, stderr);
        return 2;
    }
    return calibrate(&o);
}

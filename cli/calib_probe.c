/* calib_probe.c: the parts of a calibration that re-measure the machine
 * quickly: demand reads of a model's pack through the backend's own read
 * path, and the backend's compute cost. `moesim calibrate` runs them once
 * (with the scratch-file sweep of I/O depths and block sizes around them);
 * `moesim validate --recalibrate` runs them again before each
 * configuration, because this VM's disk and CPU drift by a third within
 * minutes (calib_probe.h). */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <gsl/gsl_fit.h>
#include <gsl/gsl_multifit.h>

#include "../backend/engine.h"
#include "../backend/offload.h"
#include "../backend/pack.h"
#include "../core/timing.h"
#include "calib_probe.h"

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
 * tinymix's 128 KiB). */
int calib_pack_reads(const moe_model *m, const char *pack, int io_mode, uint64_t block, FILE *report,
                     calib_reads *out, moe_error *err) {
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
    if (moe_offload_probe_reads(m, pack, io_mode, sizes, bursts, 3, ROUNDS, 200e-6, pt, err)) return -1;
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
    out->wake_s = (first > 0 ? first : 0) + (thread > 0 ? thread : 0);
    out->resume_s = resume > 0 ? resume : 0;
    out->read_s = read > 0 ? read : 0;
    if (report)
        fprintf(report, "  demand reads of %s through the backend's queue, bursts of 1/2/4: %.0f/%.0f/%.0f us, the I/O thread "
           "busy %.0f/%.0f/%.0f us:\n  %.1f us per read, %.1f us more for a burst's first (the thread's wake-up "
           "%.1f us more: io_wake_us %.1f), %.1f us per wait (io_resume_us)\n",
           pack, wall[0] * 1e6, wall[1] * 1e6, wall[2] * 1e6, busy[0] * 1e6, busy[1] * 1e6, busy[2] * 1e6,
           out->read_s * 1e6, (first > 0 ? first : 0) * 1e6, (thread > 0 ? thread : 0) * 1e6, out->wake_s * 1e6,
           out->resume_s * 1e6);
    return 0;
}

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
static int fit_pass(moe_engine *e, int steps, calib_compute_fit *cf, moe_error *err) {
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
static double median_of(const calib_compute_fit *f, int n, size_t offset) {
    double v[3];
    for (int i = 0; i < n; i++) v[i] = *(const double *)((const char *)&f[i] + offset);
    return moe_time_stats_of(v, (size_t)n).p50;
}

/* Every term of cf: the median of that term over the n fits. */
static void median_fit(const calib_compute_fit *f, int n, calib_compute_fit *cf) {
    *cf = f[0];
    for (int i = 0; i < 3; i++) cf->dense[i] = median_of(f, n, offsetof(calib_compute_fit, dense) + i * sizeof(double));
    for (int i = 0; i < 2; i++) cf->expert[i] = median_of(f, n, offsetof(calib_compute_fit, expert) + i * sizeof(double));
    cf->head_us = median_of(f, n, offsetof(calib_compute_fit, head_us));
    cf->n_fits = (size_t)n;
}

/* What a compute measurement runs on: an engine (its experts from a pool
 * of the pack's blocks when the model has none loaded) and the seeded
 * calibration text. */
typedef struct calib_rig {
    moe_engine *e;
    expert_pool pool;
    moe_expert_source src;
    int *ids;
    float *logits;
} calib_rig;

static void rig_close(calib_rig *r) {
    free(r->ids);
    free(r->logits);
    moe_engine_free(r->e);
    pool_free(&r->pool);
}

/* n tokens of context; report: where to say where the experts came from. */
static int rig_open(calib_rig *r, const char *model_dir, const moe_model *m, int threads, int n, FILE *report,
                    moe_error *err) {
    memset(r, 0, sizeof *r);
    if (!(r->e = moe_engine_new(m, threads, n, err))) return -1;
    r->src = (moe_expert_source){.ctx = &r->pool, .layer = pool_layer, .get = pool_get};
    if (!m->experts_loaded) {
        char pack[4096];
        snprintf(pack, sizeof pack, "%s/experts.pack", model_dir);
        if (pool_load(&r->pool, m, pack, err) || moe_engine_set_expert_source(r->e, &r->src, err)) {
            rig_close(r);
            return -1;
        }
        if (report) fprintf(report, "compute: experts from %s (%zu distinct blocks)\n", pack, r->pool.n);
    }
    r->ids = malloc((size_t)n * sizeof *r->ids);
    r->logits = malloc((size_t)m->cfg.vocab * sizeof *r->logits);
    if (!r->ids || !r->logits) {
        rig_close(r);
        return moe_fail(err, "out of memory");
    }
    calib_tokens(r->ids, n, m->cfg.vocab);
    return 0;
}

/* One pass from an empty context, its samples recorded: a prefill of
 * `prefill` tokens in steps cycling through 1..32 tokens, then `decode`
 * steps of one token. *steps: the forward calls made. */
static int rig_pass(calib_rig *r, int prefill, int decode, int *steps, moe_error *err) {
    static const int sizes[] = {32, 1, 16, 2, 8, 4, 24, 3, 12, 6, 32, 1};
    moe_engine_reset(r->e);
    moe_engine_record_experts(r->e, 1);
    moe_engine_times_reset(r->e);
    int pos = 0, k = 0;
    *steps = 0;
    while (pos < prefill) {
        int T = sizes[k++ % (int)(sizeof sizes / sizeof *sizes)];
        if (T > prefill - pos) T = prefill - pos;
        if (moe_engine_forward(r->e, r->ids + pos, T, r->logits, 0, NULL, err)) return -1;
        pos += T;
        ++*steps;
    }
    for (int i = 0; i < decode; i++, ++*steps)
        if (moe_engine_forward(r->e, r->ids + prefill + i, 1, r->logits, 0, NULL, err)) return -1;
    return 0;
}

int calib_compute(const char *model_dir, const moe_model *m, int threads, FILE *report, calib_compute_fit *cf,
                  moe_error *err) {
    const int N = 512, decode = 96; /* CALIB_PASS_TOKENS */
    calib_rig r;
    if (rig_open(&r, model_dir, m, threads, N + decode, report, err)) return -1;
    int rc = -1;
    /* The first pass warms caches and is discarded; each pass after it is
     * fitted on its own, and every term is the median over those fits: on
     * this two-vCPU VM one pass in three or four ran ~25% faster than the
     * rest (2.8 against 3.6-3.9 us per token per layer: how the host
     * scheduled the vCPU; offloaded runs see the slower figure), and one
     * such pass made two calibrations in a row differ by 44%. Three fitted
     * passes where a pass is short (< 5 s; tinymix: ~0.3 s), one where it
     * is minutes (Mixtral-sized experts). */
    enum { MAX_FITS = 3 };
    calib_compute_fit fits[MAX_FITS];
    int n_fits = 0, want = 1;
    for (int pass = 0; n_fits < want; pass++) {
        double t0 = moe_engine_now();
        int steps;
        if (rig_pass(&r, N, decode, &steps, err)) goto out;
        if (pass == 0) {
            want = moe_engine_now() - t0 < 5.0 ? MAX_FITS : 1;
            continue;
        }
        if (fit_pass(r.e, steps, &fits[n_fits], err)) goto out;
        n_fits++;
    }
    median_fit(fits, n_fits, cf);
    if (report) {
    fprintf(report, "compute (%s, %d threads, %zu layer samples, %zu expert-block samples per pass; the median of %d "
           "passes):\n",
           m->name, threads, cf->n_dense, cf->n_expert, n_fits);
    for (int i = 0; i < n_fits && n_fits > 1; i++)
        fprintf(report, "  pass %d: dense %.3f us/token, expert %.3f us/token\n", i + 1, 1e6 * fits[i].dense[1],
               1e6 * fits[i].expert[1]);
    fprintf(report, "  dense per layer %.2f us + %.3f us/token + %.3f ns/attended key; expert %.2f us + %.3f us/token; "
           "head %.2f us/step\n",
           1e6 * cf->dense[0], 1e6 * cf->dense[1], 1e9 * cf->dense[2], 1e6 * cf->expert[0], 1e6 * cf->expert[1],
           cf->head_us);
    }
    rc = 0;
out:
    rig_close(&r);
    return rc;
}

int calib_compute_scale(const char *model_dir, const moe_model *m, int threads, const moe_device_profile *d,
                        double *k, double *seconds, moe_error *err) {
    /* a tenth of calibrate's pass (64 + 16 of 512 + 96 tokens), after two
     * steps that warm caches and are not counted */
    const int N = 64, decode = 16; /* CALIB_SCALE_TOKENS */
    calib_rig r;
    if (rig_open(&r, model_dir, m, threads, N + decode, NULL, err)) return -1;
    double t0 = moe_engine_now();
    int steps, rc = -1;
    if (rig_pass(&r, 2, 0, &steps, err) || rig_pass(&r, N, decode, &steps, err)) goto out;
    *seconds = moe_engine_now() - t0;
    /* the profile's price of the very layers and steps just run: the
     * simulator's formula (device_profile.h), whose per-layer term dense_us
     * holds the expert block's fixed cost too (calib_set_compute) */
    const int *tok, *nexp;
    const double *ctx, *slots, *sec;
    double meas = moe_engine_times_get(r.e).head_s, pred = 1e-6 * d->head_us * steps;
    size_t n = moe_engine_dense_samples(r.e, &tok, &ctx, &sec);
    for (size_t i = 0; i < n; i++) {
        meas += sec[i];
        pred += 1e-6 * (d->dense_us + d->dense_us_per_token * tok[i]) + 1e-9 * d->attn_ns_per_ctx * ctx[i];
    }
    n = moe_engine_expert_samples(r.e, &nexp, &slots, &sec);
    for (size_t i = 0; i < n; i++) {
        meas += sec[i];
        pred += 1e-6 * (d->expert_us * nexp[i] + d->expert_us_per_token * slots[i]);
    }
    if (!(pred > 0)) {
        moe_fail(err, "device [%s]: its compute terms price the calibration pass at 0 s", d->name);
        goto out;
    }
    *k = meas / pred;
    rc = 0;
out:
    rig_close(&r);
    return rc;
}

void calib_scale_compute(moe_device_profile *d, double k) {
    d->dense_us *= k;
    d->dense_us_per_token *= k;
    d->attn_ns_per_ctx *= k;
    d->expert_us *= k;
    d->expert_us_per_token *= k;
    d->head_us *= k;
}

void calib_set_compute(moe_device_profile *d, const calib_compute_fit *cf) {
    d->measured_compute = 1;
    d->dense_us = 1e6 * cf->dense[0];
    d->dense_us_per_token = 1e6 * cf->dense[1];
    d->attn_ns_per_ctx = 1e9 * cf->dense[2];
    d->expert_us = 1e6 * cf->expert[0];
    d->expert_us_per_token = 1e6 * cf->expert[1];
    d->head_us = cf->head_us;
}

int calib_section_text(const moe_device_profile *d, const char *description, int io_mode, char *buf, size_t cap) {
    char when[64];
    time_t now = time(NULL);
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
    int n = snprintf(buf, cap,
                     "\n[%s]\ndescription = %s\ncalibrated = %s\nmodel = %s\nthreads = %u\nio_mode = %s\n"
                     "io_channels = %u\nio_latency_us = %.3f\nio_bandwidth_GBps = %.6f\n"
                     "io_busy_latency_us = %.3f\nio_busy_bandwidth_GBps = %.6f\nio_wake_us = %.3f\nio_resume_us = %.3f\n"
                     "mem_bandwidth_GBps = %.3f\n"
                     "dense_us = %.4f\ndense_us_per_token = %.5f\nattn_ns_per_ctx = %.5f\n"
                     "expert_us = %.4f\nexpert_us_per_token = %.5f\nhead_us = %.4f\n",
                     d->name, description, when, d->model, d->threads, moe_io_mode_name(io_mode), d->io_channels,
                     d->io_latency_s * 1e6, d->io_bandwidth_Bps / 1e9, d->io_busy_latency_s * 1e6,
                     d->io_busy_bandwidth_Bps / 1e9, d->io_wake_s * 1e6, d->io_resume_s * 1e6,
                     d->mem_bandwidth_Bps / 1e9, d->dense_us, d->dense_us_per_token, d->attn_ns_per_ctx, d->expert_us,
                     d->expert_us_per_token, d->head_us);
    return n > 0 && (size_t)n < cap ? 0 : -1;
}

moe_model *calib_load_model(const char *dir, moe_error *err) {
    moe_model *m = moe_model_load_ex(dir, MOE_LOAD_NO_EXPERTS, err);
    if (m && strcmp(m->dtype, "pack")) {
        moe_model_free(m);
        m = moe_model_load(dir, err);
    }
    return m;
}

/* timing.c: the compute-lane / I/O-channel timeline (see timing.h). */
#include "timing.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int moe_tl_init(moe_timeline *tl, uint32_t channels, double latency_s, double bandwidth_Bps,
                moe_error *err) {
    memset(tl, 0, sizeof *tl);
    if (channels == 0) return moe_fail(err, "timing: at least one I/O channel is needed");
    if (!(latency_s >= 0) || !(bandwidth_Bps > 0))
        return moe_fail(err, "timing: latency must be >= 0 and bandwidth > 0");
    tl->ch_free = calloc(channels, sizeof *tl->ch_free);
    if (!tl->ch_free) return moe_fail(err, "out of memory");
    tl->n_channels = channels;
    tl->latency_s = latency_s;
    tl->bandwidth_Bps = bandwidth_Bps;
    return 0;
}

void moe_tl_free(moe_timeline *tl) {
    free(tl->ch_free);
    free(tl->seg);
    free(tl->rd);
    free(tl->ch_last);
    tl->ch_free = NULL;
    tl->seg = NULL;
    tl->rd = NULL;
    tl->ch_last = NULL;
}

int moe_tl_set_contention(moe_timeline *tl, double lat, double bw, moe_error *err) {
    if (!(lat >= 0) || !(bw > 0)) return moe_fail(err, "timing: busy latency must be >= 0 and bandwidth > 0");
    if (!(tl->ch_last = malloc(tl->n_channels * sizeof *tl->ch_last))) return moe_fail(err, "out of memory");
    for (uint32_t c = 0; c < tl->n_channels; c++) tl->ch_last[c] = -1;
    tl->contended = 1;
    tl->busy_latency_s = lat;
    tl->busy_bandwidth_Bps = bw;
    tl->last_id = -1;
    return 0;
}

void moe_tl_set_wake(moe_timeline *tl, double wake_s, double resume_s) {
    tl->wake_s = wake_s > 0 ? wake_s : 0;
    tl->resume_s = resume_s > 0 ? resume_s : 0;
}

/* First busy segment ending after t (binary search). */
static size_t seg_after(const moe_timeline *tl, double t) {
    size_t lo = 0, hi = tl->n_seg;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (tl->seg[2 * mid + 1] <= t) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

/* End of a read of `bytes` starting at `start`: one unit of work done at
 * 1 / (its duration at the idle rate) per second while the lane is idle and
 * at 1 / (its duration at the busy rate) while it computes; idle after the
 * last known segment. */
static double progress_end(const moe_timeline *tl, double start, uint64_t bytes) {
    double di = tl->latency_s + (isinf(tl->bandwidth_Bps) ? 0.0 : (double)bytes / tl->bandwidth_Bps);
    double db = tl->busy_latency_s + (double)bytes / tl->busy_bandwidth_Bps;
    double work = 1, t = start;
    for (size_t i = seg_after(tl, start); i < tl->n_seg; i++) {
        double a = tl->seg[2 * i], b = tl->seg[2 * i + 1];
        if (a > t) { /* idle gap */
            double w = (a - t) / di;
            if (w >= work) return t + work * di;
            work -= w;
            t = a;
        }
        double w = (b - t) / db;
        if (w >= work) return t + work * db;
        work -= w;
        t = b;
    }
    return t + work * di;
}

double moe_tl_ready(moe_timeline *tl, int64_t id) {
    if (!tl->contended || id < 0) return 0;
    moe_tl_io *r = &tl->rd[id];
    if (r->final) return r->end;
    double prev = r->prev >= 0 ? moe_tl_ready(tl, r->prev) : 0;
    double start = (prev > r->issue ? prev : r->issue) + r->wake;
    r->end = progress_end(tl, start, r->bytes);
    if (r->end <= tl->now && (r->prev < 0 || tl->rd[r->prev].final)) r->final = 1;
    return r->end;
}

void moe_tl_settle(moe_timeline *tl) {
    if (tl->contended)
        for (size_t i = 0; i < tl->n_rd; i++) moe_tl_ready(tl, (int64_t)i);
}

/* Contended read: queued on the channel whose last read ends first (as
 * estimated now), ties to the lowest; the end is estimated lazily. */
static double read_contended(moe_timeline *tl, uint64_t bytes, double issue) {
    if (tl->n_rd == tl->cap_rd) {
        size_t cap = tl->cap_rd ? tl->cap_rd * 2 : 1024;
        moe_tl_io *r2 = realloc(tl->rd, cap * sizeof *r2);
        if (!r2) return INFINITY; /* the caller's totals stay valid; this read never arrives */
        tl->rd = r2;
        tl->cap_rd = cap;
    }
    uint32_t best = 0;
    double best_end = INFINITY;
    for (uint32_t c = 0; c < tl->n_channels; c++) {
        double e = tl->ch_last[c] >= 0 ? moe_tl_ready(tl, tl->ch_last[c]) : 0;
        if (e < best_end) {
            best_end = e;
            best = c;
        }
    }
    int64_t id = (int64_t)tl->n_rd++;
    tl->rd[id] = (moe_tl_io){.issue = issue, .bytes = bytes, .prev = tl->ch_last[best],
                             .wake = best_end <= issue ? tl->wake_s : 0};
    tl->ch_last[best] = id;
    tl->last_id = id;
    return moe_tl_ready(tl, id);
}

void moe_tl_reset(moe_timeline *tl) {
    moe_timeline keep = *tl;
    memset(tl, 0, sizeof *tl);
    memset(keep.ch_free, 0, keep.n_channels * sizeof *keep.ch_free);
    tl->ch_free = keep.ch_free;
    tl->n_channels = keep.n_channels;
    tl->latency_s = keep.latency_s;
    tl->bandwidth_Bps = keep.bandwidth_Bps;
    tl->contended = keep.contended;
    tl->busy_latency_s = keep.busy_latency_s;
    tl->busy_bandwidth_Bps = keep.busy_bandwidth_Bps;
    tl->wake_s = keep.wake_s;
    tl->resume_s = keep.resume_s;
    tl->seg = keep.seg;
    tl->cap_seg = keep.cap_seg;
    tl->rd = keep.rd;
    tl->cap_rd = keep.cap_rd;
    tl->ch_last = keep.ch_last;
    if (tl->ch_last)
        for (uint32_t c = 0; c < tl->n_channels; c++) tl->ch_last[c] = -1;
    tl->last_id = -1;
}

/* Index of a read's or a stall's kind in the accounting arrays. */
static int kind_ix(int kind) { return kind == MOE_STALL_DENSE ? 2 : kind ? 1 : 0; }

double moe_tl_read(moe_timeline *tl, uint64_t bytes, double issue, int kind) {
    if (tl->contended) {
        tl->reads++;
        tl->bytes_read += bytes;
        tl->reads_kind[kind_ix(kind)]++;
        tl->bytes_kind[kind_ix(kind)] += bytes;
        return read_contended(tl, bytes, issue);
    }
    uint32_t best = 0;
    for (uint32_t c = 1; c < tl->n_channels; c++)
        if (tl->ch_free[c] < tl->ch_free[best]) best = c;
    double start = tl->ch_free[best] > issue ? tl->ch_free[best] : issue;
    double dur = tl->latency_s + (isinf(tl->bandwidth_Bps) ? 0.0 : (double)bytes / tl->bandwidth_Bps);
    if (tl->ch_free[best] <= issue) dur += tl->wake_s; /* 0 unless a profile measured it */
    tl->ch_free[best] = start + dur;
    tl->io_busy_s += dur;
    tl->reads++;
    tl->bytes_read += bytes;
    tl->reads_kind[kind_ix(kind)]++;
    tl->bytes_kind[kind_ix(kind)] += bytes;
    return start + dur;
}

double moe_tl_compute(moe_timeline *tl, double seconds, int kind) {
    if (tl->contended && seconds > 0) {
        /* one segment per run of back-to-back compute */
        if (tl->n_seg && tl->seg[2 * tl->n_seg - 1] == tl->now) {
            tl->seg[2 * tl->n_seg - 1] = tl->now + seconds;
        } else {
            if (tl->n_seg == tl->cap_seg) {
                size_t cap = tl->cap_seg ? tl->cap_seg * 2 : 1024;
                double *s2 = realloc(tl->seg, 2 * cap * sizeof *s2);
                if (s2) {
                    tl->seg = s2;
                    tl->cap_seg = cap;
                }
            }
            if (tl->n_seg < tl->cap_seg) { /* out of memory: the lane counts as idle here */
                tl->seg[2 * tl->n_seg] = tl->now;
                tl->seg[2 * tl->n_seg + 1] = tl->now + seconds;
                tl->n_seg++;
            }
        }
    }
    tl->now += seconds;
    tl->compute_s[kind] += seconds;
    return tl->now;
}

double moe_tl_wait(moe_timeline *tl, double ready, int kind) {
    if (ready <= tl->now) return 0.0;
    double d = ready - tl->now + tl->resume_s; /* a lane that waited resumes resume_s late */
    tl->now += d;
    tl->stall_s[kind_ix(kind)] += d;
    return d;
}

double moe_tl_io_utilisation(const moe_timeline *tl, double until) {
    double busy = tl->io_busy_s;
    if (tl->contended) { /* each read's service: from its start to its end */
        busy = 0;
        for (size_t i = 0; i < tl->n_rd; i++) {
            const moe_tl_io *r = &tl->rd[i];
            double prev = r->prev >= 0 ? tl->rd[r->prev].end : 0;
            busy += r->end - (prev > r->issue ? prev : r->issue); /* the wake-up included */
        }
    }
    return until > 0 ? busy / (until * tl->n_channels) : 0.0;
}

double moe_roofline_s(double bytes, double flops, double mem_bandwidth_Bps, double peak_flops,
                      double overhead_s) {
    double tm = mem_bandwidth_Bps > 0 && !isinf(mem_bandwidth_Bps) ? bytes / mem_bandwidth_Bps : 0.0;
    double tc = peak_flops > 0 && !isinf(peak_flops) ? flops / peak_flops : 0.0;
    return (tm > tc ? tm : tc) + overhead_s;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

moe_time_stats moe_time_stats_of(double *v, size_t n) {
    moe_time_stats s = {0};
    if (!n) return s;
    qsort(v, n, sizeof *v, cmp_double);
    for (size_t i = 0; i < n; i++) s.sum += v[i];
    s.n = n;
    s.mean = s.sum / (double)n;
    /* nearest rank: ceil(p * n), 1-based */
    size_t r50 = (size_t)ceil(0.50 * (double)n), r99 = (size_t)ceil(0.99 * (double)n);
    s.p50 = v[(r50 ? r50 : 1) - 1];
    s.p99 = v[(r99 ? r99 : 1) - 1];
    return s;
}

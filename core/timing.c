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
    tl->ch_free = NULL;
}

void moe_tl_reset(moe_timeline *tl) {
    double *ch = tl->ch_free;
    uint32_t n = tl->n_channels;
    double lat = tl->latency_s, bw = tl->bandwidth_Bps;
    memset(tl, 0, sizeof *tl);
    memset(ch, 0, n * sizeof *ch);
    tl->ch_free = ch;
    tl->n_channels = n;
    tl->latency_s = lat;
    tl->bandwidth_Bps = bw;
}

double moe_tl_read(moe_timeline *tl, uint64_t bytes, double issue, int kind) {
    uint32_t best = 0;
    for (uint32_t c = 1; c < tl->n_channels; c++)
        if (tl->ch_free[c] < tl->ch_free[best]) best = c;
    double start = tl->ch_free[best] > issue ? tl->ch_free[best] : issue;
    double dur = tl->latency_s + (isinf(tl->bandwidth_Bps) ? 0.0 : (double)bytes / tl->bandwidth_Bps);
    tl->ch_free[best] = start + dur;
    tl->io_busy_s += dur;
    tl->reads++;
    tl->bytes_read += bytes;
    tl->reads_kind[kind ? 1 : 0]++;
    tl->bytes_kind[kind ? 1 : 0] += bytes;
    return start + dur;
}

double moe_tl_compute(moe_timeline *tl, double seconds, int kind) {
    tl->now += seconds;
    tl->compute_s[kind] += seconds;
    return tl->now;
}

double moe_tl_wait(moe_timeline *tl, double ready, int kind) {
    if (ready <= tl->now) return 0.0;
    double d = ready - tl->now;
    tl->now = ready;
    tl->stall_s[kind ? 1 : 0] += d;
    return d;
}

double moe_tl_io_utilisation(const moe_timeline *tl, double until) {
    return until > 0 ? tl->io_busy_s / (until * tl->n_channels) : 0.0;
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

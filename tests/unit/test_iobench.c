/* test_iobench.c: the calibrate micro-benchmarks. Fits and the channel rule
 * on hand-made results; a real but tiny run (8 MiB scratch file in a
 * temporary directory, 0.2 s per point) for plausibility; scratch-file
 * errors name the directory and leave nothing behind. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../backend/iobench.h"
#include "check.h"

#define KIB 1024ull
#define MIB (1024ull * 1024ull)

static moe_iobench_result synth(uint64_t block, uint32_t depth, double median_s) {
    return (moe_iobench_result){.mode = MOE_IO_DIRECT, .block = block, .depth = depth, .reads = 100,
                                .bytes = 100 * block, .p10_s = median_s, .p25_s = median_s,
                                .median_s = median_s, .mean_s = median_s, .p90_s = median_s, .wall_s = 1,
                                .throughput_Bps = 100.0 * block};
}

static void test_fit_exact(void) {
    uint64_t blocks[3] = {28 * KIB, 108 * KIB, 432 * KIB};
    moe_iobench_result r[3];
    for (int i = 0; i < 3; i++) r[i] = synth(blocks[i], 1, 80e-6 + (double)blocks[i] / 400e6);
    moe_iobench_fit f;
    moe_error err;
    CHECK(moe_iobench_fit_channel(r, 3, &f, &err) == 0);
    CHECK_NEAR(f.latency_s / 80e-6, 1.0, 1e-9);
    CHECK_NEAR(f.bandwidth_Bps / 400e6, 1.0, 1e-9);
    CHECK(f.max_rel_resid < 1e-9);
    CHECK(!f.latency_clamped);
}

/* Each statistic is fitted from its own field: here p10 follows 50 us +
 * b / 1 GB/s and the mean 100 us + b / 200 MB/s, the median as before. */
static void test_fit_stat(void) {
    uint64_t blocks[2] = {64 * KIB, 256 * KIB};
    moe_iobench_result r[2];
    for (int i = 0; i < 2; i++) {
        double b = (double)blocks[i];
        r[i] = synth(blocks[i], 1, 80e-6 + b / 400e6);
        r[i].p10_s = 50e-6 + b / 1e9;
        r[i].p25_s = 60e-6 + b / 800e6;
        r[i].mean_s = 100e-6 + b / 200e6;
    }
    moe_iobench_fit f;
    moe_error err;
    CHECK(moe_iobench_fit_channel_stat(r, 2, MOE_IOBENCH_P10, &f, &err) == 0);
    CHECK_NEAR(f.latency_s / 50e-6, 1.0, 1e-9);
    CHECK_NEAR(f.bandwidth_Bps / 1e9, 1.0, 1e-9);
    CHECK(moe_iobench_fit_channel_stat(r, 2, MOE_IOBENCH_P25, &f, &err) == 0);
    CHECK_NEAR(f.latency_s / 60e-6, 1.0, 1e-9);
    CHECK(moe_iobench_fit_channel_stat(r, 2, MOE_IOBENCH_MEAN, &f, &err) == 0);
    CHECK_NEAR(f.bandwidth_Bps / 200e6, 1.0, 1e-9);
    CHECK(moe_iobench_fit_channel_stat(r, 2, MOE_IOBENCH_MEDIAN, &f, &err) == 0);
    CHECK_NEAR(f.latency_s / 80e-6, 1.0, 1e-9);
    CHECK(moe_iobench_fit_channel_stat(r, 2, 9, &f, &err) == -1);
    r[0].p10_s = 0;
    CHECK(moe_iobench_fit_channel_stat(r, 2, MOE_IOBENCH_P10, &f, &err) == -1);
    CHECK_STR_CONTAINS(err.msg, "no valid p10");
}

/* Noisy points whose free fit has a negative intercept: refit through zero. */
static void test_fit_clamps_latency(void) {
    moe_iobench_result r[2] = {synth(4096, 2, 1e-6), synth(1 << 20, 2, 1e-3)};
    moe_iobench_fit f;
    moe_error err;
    CHECK(moe_iobench_fit_channel(r, 2, &f, &err) == 0);
    CHECK(f.latency_clamped);
    CHECK(f.latency_s == 0);
    CHECK(f.bandwidth_Bps > 0);
    CHECK(f.max_rel_resid > 0);
}

static void test_fit_errors(void) {
    moe_iobench_fit f;
    moe_error err;
    moe_iobench_result one[2] = {synth(65536, 1, 1e-4), synth(65536, 1, 1.1e-4)};
    CHECK(moe_iobench_fit_channel(one, 2, &f, &err) == -1);
    CHECK_STR_CONTAINS(err.msg, "one block size");
    CHECK(moe_iobench_fit_channel(one, 1, &f, &err) == -1);
    moe_iobench_result mixed[2] = {synth(65536, 1, 1e-4), synth(131072, 2, 2e-4)};
    CHECK(moe_iobench_fit_channel(mixed, 2, &f, &err) == -1);
    CHECK_STR_CONTAINS(err.msg, "depths 1 and 2");
    moe_iobench_result flat[2] = {synth(65536, 1, 2e-4), synth(131072, 1, 1e-4)};
    CHECK(moe_iobench_fit_channel(flat, 2, &f, &err) == -1);
    CHECK_STR_CONTAINS(err.msg, "does not grow");
}

static void set_throughputs(moe_iobench_result *r, const double *tp, uint32_t n) {
    for (uint32_t i = 0; i < n; i++) {
        r[i] = synth(110592, i + 1, 1e-4);
        r[i].throughput_Bps = tp[i];
    }
}

static void test_pick_channels(void) {
    moe_iobench_result r[4];
    uint32_t ch = 0;
    moe_error err;
    /* best 250; 90% = 225: depth 3 (240) is the first to reach it */
    set_throughputs(r, (double[]){100, 180, 240, 250}, 4);
    CHECK(moe_iobench_pick_channels(r, 4, &ch, &err) == 0);
    CHECK_EQ_U(ch, 3);
    /* a plateau from depth 2 with noise: the argmax (3) is not taken */
    set_throughputs(r, (double[]){100, 200, 205, 190}, 4);
    CHECK(moe_iobench_pick_channels(r, 4, &ch, &err) == 0);
    CHECK_EQ_U(ch, 2);
    /* more depth hurts: depth 1 */
    set_throughputs(r, (double[]){300, 250, 200, 150}, 4);
    CHECK(moe_iobench_pick_channels(r, 4, &ch, &err) == 0);
    CHECK_EQ_U(ch, 1);
    /* exactly 90% counts */
    set_throughputs(r, (double[]){90, 100}, 2);
    CHECK(moe_iobench_pick_channels(r, 2, &ch, &err) == 0);
    CHECK_EQ_U(ch, 1);
    /* order of the results does not matter: depths are read from them */
    set_throughputs(r, (double[]){100, 180, 240, 250}, 4);
    moe_iobench_result rev[4] = {r[3], r[2], r[1], r[0]};
    CHECK(moe_iobench_pick_channels(rev, 4, &ch, &err) == 0);
    CHECK_EQ_U(ch, 3);
    r[1].block = 4096;
    CHECK(moe_iobench_pick_channels(r, 4, &ch, &err) == -1);
    CHECK_STR_CONTAINS(err.msg, "block sizes");
    CHECK(moe_iobench_pick_channels(r, 0, &ch, &err) == -1);
}

/* Median pass wins: one disturbed pass out of three does not move it. */
static void test_combine(void) {
    moe_iobench_result p[3] = {synth(65536, 2, 100e-6), synth(65536, 2, 400e-6), synth(65536, 2, 110e-6)};
    p[1].throughput_Bps = 1e6;
    p[0].p10_s = 90e-6;
    p[1].p10_s = 95e-6;
    p[2].p10_s = 300e-6;
    p[1].reads = 20;
    p[1].bytes = 20 * 65536ull;
    moe_iobench_result c;
    moe_error err;
    CHECK(moe_iobench_combine(p, 3, &c, &err) == 0);
    CHECK_NEAR(c.median_s, 110e-6, 1e-15);
    CHECK_NEAR(c.p90_s, 110e-6, 1e-15);
    CHECK_NEAR(c.p10_s, 95e-6, 1e-15); /* each quantile's own median pass */
    CHECK_NEAR(c.p25_s, 110e-6, 1e-15);
    CHECK_NEAR(c.throughput_Bps, 100.0 * 65536, 1e-6);
    CHECK_EQ_U(c.reads, 220);
    CHECK_EQ_U(c.bytes, 220 * 65536ull);
    CHECK_NEAR(c.wall_s, 3, 1e-12);
    CHECK_NEAR(c.mean_s, (100 * 100e-6 + 20 * 400e-6 + 100 * 110e-6) / 220, 1e-15);
    /* q25 = 105 us, q75 = 255 us of {100, 110, 400} */
    CHECK_NEAR(c.pass_spread, (255e-6 - 105e-6) / 110e-6, 1e-9);
    CHECK(c.foreign_bytes == 0);
    p[0].foreign_bytes = 5;
    p[2].foreign_bytes = 7;
    CHECK(moe_iobench_combine(p, 3, &c, &err) == 0);
    CHECK(c.foreign_bytes == 12);
    p[1].foreign_bytes = -1;
    CHECK(moe_iobench_combine(p, 3, &c, &err) == 0);
    CHECK(c.foreign_bytes == -1);
    CHECK(moe_iobench_combine(p, 1, &c, &err) == 0);
    CHECK(c.pass_spread == 0);
    p[2].depth = 3;
    CHECK(moe_iobench_combine(p, 3, &c, &err) == -1);
    CHECK_STR_CONTAINS(err.msg, "different points");
    CHECK(moe_iobench_combine(p, 0, &c, &err) == -1);
}

static char tmpdir[256];

static int make_tmpdir(void) {
    const char *base = getenv("TMPDIR");
    snprintf(tmpdir, sizeof tmpdir, "%s/moesim-iobench-test-XXXXXX", base && *base ? base : "/tmp");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int dir_entries(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return -1;
    int n = 0;
    for (struct dirent *e; (e = readdir(d));)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
    closedir(d);
    return n;
}

static void plausible(const moe_iobench_result *r, uint64_t block, uint32_t depth, int *ok) {
    *ok = r->reads >= (uint64_t)depth * MOE_IOBENCH_MIN_READS && r->bytes == r->reads * block &&
          r->block == block && r->depth == depth && r->p10_s > 0 && r->p10_s <= r->p25_s &&
          r->p25_s <= r->median_s && r->median_s <= r->p90_s &&
          r->mean_s > 0 && r->throughput_Bps > 0 && r->wall_s > 0 && r->busy_frac > 0 &&
          r->busy_frac <= 1.0 + 1e-6;
    if (!*ok)
        printf("  implausible: mode %d depth %u reads %llu bytes %llu median %g p90 %g tput %g busy %g\n",
               r->mode, depth, (unsigned long long)r->reads, (unsigned long long)r->bytes, r->median_s,
               r->p90_s, r->throughput_Bps, r->busy_frac);
}

static double progress_last;
static void progress_cb(void *ctx, double frac) {
    (*(int *)ctx)++;
    progress_last = frac;
}

static void test_real_run(void) {
    CHECK(make_tmpdir() == 0);
    char path[512];
    moe_error err;
    int calls = 0;
    CHECK(moe_iobench_prepare(tmpdir, 8 * MIB - 100, path, sizeof path, progress_cb, &calls, &err) == 0);
    struct stat st;
    CHECK(stat(path, &st) == 0);
    CHECK_EQ_U(st.st_size, 8 * MIB); /* rounded up to whole MiB */
    CHECK(calls >= 1);
    CHECK_NEAR(progress_last, 1.0, 1e-12);
    const uint64_t block = 64 * KIB;
    moe_iobench_result r;
    int ok = 0;
    for (uint32_t d = 1; d <= 2; d++) {
        CHECK(moe_iobench_reads(path, MOE_IO_BUFFERED, block, d, 0.2, 7, &r, &err) == 0);
        plausible(&r, block, d, &ok);
        CHECK(ok);
    }
    CHECK(moe_iobench_reads(path, MOE_IO_MMAP, block, 2, 0.02, 7, &r, &err) == 0);
    plausible(&r, block, 2, &ok);
    CHECK(ok);
    int fd = open(path, O_RDONLY | O_DIRECT);
    if (fd < 0 && errno == EINVAL) {
        CHECK(moe_iobench_reads(path, MOE_IO_DIRECT, block, 1, 0.2, 7, &r, &err) == -1);
        CHECK_STR_CONTAINS(err.msg, path);
        CHECK_STR_CONTAINS(err.msg, "--dir");
        printf("SKIP test_real_run direct part: %s does not support O_DIRECT\n", tmpdir);
    } else {
        CHECK(fd >= 0);
        close(fd);
        for (uint32_t d = 1; d <= 2; d++) {
            CHECK(moe_iobench_reads(path, MOE_IO_DIRECT, block, d, 0.2, 7, &r, &err) == 0);
            plausible(&r, block, d, &ok);
            CHECK(ok);
            CHECK(r.foreign_bytes >= -1); /* another process may read the same disk meanwhile */
        }
        /* where the device has counters, they saw at least our own reads */
        int64_t before = moe_iobench_device_read_bytes(path);
        CHECK(moe_iobench_reads(path, MOE_IO_DIRECT, block, 1, 0, 7, &r, &err) == 0);
        int64_t after = moe_iobench_device_read_bytes(path);
        if (before >= 0) CHECK(after - before >= (int64_t)r.bytes);
    }
    CHECK(moe_iobench_cleanup(path) == 0);
    CHECK(access(path, F_OK) == -1);
    CHECK(dir_entries(tmpdir) == 0);
    CHECK(rmdir(tmpdir) == 0);
}

typedef struct work_ctx {
    uint64_t calls, fail_at;
} work_ctx;

static int count_work(void *ctx, void *buf, uint64_t block) {
    work_ctx *w = ctx;
    (void)buf;
    (void)block;
    return ++w->calls == w->fail_at;
}

/* The hook runs once per read, warm-up included; its failure aborts the run. */
static void test_work_hook(void) {
    CHECK(make_tmpdir() == 0);
    char path[512];
    moe_error err;
    CHECK(moe_iobench_prepare(tmpdir, 1 * MIB, path, sizeof path, NULL, NULL, &err) == 0);
    work_ctx w = {0, 0};
    moe_iobench_params p = {.path = path, .mode = MOE_IO_BUFFERED, .block = 4096, .depth = 1,
                            .seconds = 0, .seed = 3, .min_reads = 10, .work = count_work, .work_ctx = &w};
    moe_iobench_result r;
    int rc = moe_iobench_run(&p, &r, &err);
    uint64_t reads = r.reads;
    w = (work_ctx){0, 20};
    p.min_reads = 100;
    int rc2 = moe_iobench_run(&p, &r, &err);
    moe_iobench_cleanup(path);
    rmdir(tmpdir);
    CHECK(rc == 0);
    CHECK_EQ_U(reads, 10);
    CHECK(rc2 == -1);
    CHECK_STR_CONTAINS(err.msg, "work failed");
}

static void test_bad_params(void) {
    moe_iobench_result r;
    moe_error err;
    CHECK(moe_iobench_reads("/nonexistent-moesim/f", MOE_IO_BUFFERED, 4096, 1, 0, 1, &r, &err) == -1);
    CHECK_STR_CONTAINS(err.msg, "/nonexistent-moesim/f");
    CHECK(moe_iobench_reads("x", MOE_IO_BUFFERED, 1000, 1, 0, 1, &r, &err) == -1);
    CHECK_STR_CONTAINS(err.msg, "multiple of 4096");
    CHECK(moe_iobench_reads("x", MOE_IO_BUFFERED, 4096, 0, 0, 1, &r, &err) == -1);
    CHECK(moe_iobench_reads("x", 7, 4096, 1, 0, 1, &r, &err) == -1);
}

static void test_prepare_missing_dir(void) {
    char path[512];
    moe_error err;
    const char *dir = "/nonexistent-moesim-dir/sub";
    CHECK(moe_iobench_prepare(dir, MIB, path, sizeof path, NULL, NULL, &err) == -1);
    CHECK_STR_CONTAINS(err.msg, dir);
    CHECK_STR_CONTAINS(err.msg, "No such file");
}

/* A write that fails part-way (here: a file-size limit, as a stand-in for a
 * full disk) reports the directory and removes the partial file. */
static void test_prepare_failure_leaves_nothing(void) {
    CHECK(make_tmpdir() == 0);
    struct rlimit old, lim;
    CHECK(getrlimit(RLIMIT_FSIZE, &old) == 0);
    lim = old;
    lim.rlim_cur = 2 * MIB;
    void (*prev)(int) = signal(SIGXFSZ, SIG_IGN);
    CHECK(setrlimit(RLIMIT_FSIZE, &lim) == 0);
    char path[512];
    moe_error err;
    int rc = moe_iobench_prepare(tmpdir, 8 * MIB, path, sizeof path, NULL, NULL, &err);
    setrlimit(RLIMIT_FSIZE, &old);
    signal(SIGXFSZ, prev);
    int left = dir_entries(tmpdir);
    rmdir(tmpdir);
    CHECK(rc == -1);
    CHECK_STR_CONTAINS(err.msg, tmpdir);
    CHECK_EQ_U(left, 0);
}

static void test_mem_bandwidth(void) {
    double bw = moe_iobench_mem_bandwidth(16 * MIB, 2);
    CHECK(bw > 1e8); /* any machine copies more than 100 MB/s */
    CHECK(isfinite(bw));
    CHECK(moe_iobench_mem_bandwidth(0, 1) == 0);
}

int main(void) {
    RUN(test_fit_exact);
    RUN(test_fit_stat);
    RUN(test_fit_clamps_latency);
    RUN(test_fit_errors);
    RUN(test_pick_channels);
    RUN(test_combine);
    RUN(test_real_run);
    RUN(test_work_hook);
    RUN(test_bad_params);
    RUN(test_prepare_missing_dir);
    RUN(test_prepare_failure_leaves_nothing);
    RUN(test_mem_bandwidth);
    CHECK_EXIT();
}

/* iobench.c: read-path and memory micro-benchmarks for calibrate (see iobench.h). */
#include "iobench.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#define MIB (1024ull * 1024ull)
#define MAX_DEPTH 1024u

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static uint64_t splitmix64(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static const char *mode_name(int mode) {
    switch (mode) {
    case MOE_IO_DIRECT: return "direct";
    case MOE_IO_BUFFERED: return "buffered";
    case MOE_IO_MMAP: return "mmap";
    default: return "?";
    }
}

/* ---- scratch file ---------------------------------------------------- */

static int write_all(int fd, const unsigned char *p, size_t n) {
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) return -1;
        if (w == 0) {
            errno = ENOSPC;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Fresh random words for every chunk: a repeated chunk could be deduplicated
 * or compressed by the file system, and reads of it would be too cheap. */
static void fill_random(uint64_t *w, size_t n, uint64_t *state) {
    for (size_t i = 0; i < n; i++) w[i] = splitmix64(state) | 1; /* never a zero word */
}

static int scratch_fail(moe_error *err, const char *dir, const char *what, int e) {
    const char *hint = e == ENOSPC   ? " (no space left: free some or pass another --dir)"
                       : e == EACCES || e == EPERM || e == EROFS ? " (not writable: pass another --dir)"
                       : e == ENOENT || e == ENOTDIR ? " (no such directory)"
                                                     : "";
    return moe_fail(err, "%s: %s: %s%s", dir, what, strerror(e), hint);
}

static int fill_file(int fd, const char *dir, uint64_t size,
                     void (*progress)(void *ctx, double frac), void *ctx, moe_error *err) {
    /* Reserve first so a full disk fails at once rather than after minutes of
     * writing; file systems without fallocate just go on to write. */
    int e = posix_fallocate(fd, 0, (off_t)size);
    if (e == ENOSPC || e == EFBIG) return scratch_fail(err, dir, "cannot reserve the scratch file", e);
    uint64_t *chunk = malloc(MIB);
    if (!chunk) return moe_fail(err, "%s: out of memory for the scratch file", dir);
    uint64_t state = 0x6D6F6573696D0001ull ^ size;
    int rc = 0;
    for (uint64_t done = 0; done < size; done += MIB) {
        fill_random(chunk, MIB / sizeof *chunk, &state);
        if (write_all(fd, (const unsigned char *)chunk, MIB)) {
            rc = scratch_fail(err, dir, "cannot write the scratch file", errno);
            break;
        }
        if (progress) progress(ctx, (double)(done + MIB) / (double)size);
    }
    free(chunk);
    if (!rc && fsync(fd)) rc = scratch_fail(err, dir, "cannot fsync the scratch file", errno);
    /* Clean pages can be dropped: the first reads then come from the device. */
    if (!rc) posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    return rc;
}

/* One untimed O_DIRECT pass over what was just written. Below a VM's guest
 * there can be a second cache (the host's page cache of the disk image):
 * measured here, a first O_DIRECT pass over a freshly written 12 GiB expert
 * pack ran at 0.9-1.3 GB/s and the next at 2.8-4.4 GB/s. A run reads the
 * same experts again and again, so its reads are of the second kind; timing
 * the first pass would price every read at the first kind's rate (Mixtral
 * geometry: 30% too slow). A file system without O_DIRECT reads it buffered;
 * either way a failed read only leaves the file as it was, so no error. */
static void read_once(const char *path, uint64_t size) {
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_DIRECT);
    if (fd < 0) fd = open(path, O_RDONLY | O_CLOEXEC);
    void *buf = NULL;
    if (fd < 0 || posix_memalign(&buf, 4096, 8 * MIB)) {
        if (fd >= 0) close(fd);
        return;
    }
    for (uint64_t at = 0; at < size;) {
        ssize_t r = pread(fd, buf, 8 * MIB, (off_t)at);
        if (r <= 0) break;
        at += (uint64_t)r;
    }
    free(buf);
    close(fd);
}

int moe_iobench_prepare(const char *dir, uint64_t bytes, char *path_out, size_t cap,
                        void (*progress)(void *ctx, double frac), void *progress_ctx,
                        moe_error *err) {
    if (!dir || !*dir) return moe_fail(err, "iobench: no scratch directory given");
    uint64_t size = (bytes + MIB - 1) / MIB * MIB;
    if (size == 0) size = MIB;
    char path[4096];
    int n = snprintf(path, sizeof path, "%s/moesim-iobench-XXXXXX", dir);
    if (n < 0 || (size_t)n >= sizeof path || (size_t)n >= cap)
        return moe_fail(err, "%s: directory name too long for a scratch file path", dir);
    int fd = mkostemp(path, O_CLOEXEC);
    if (fd < 0) return scratch_fail(err, dir, "cannot create a scratch file", errno);
    int rc = fill_file(fd, dir, size, progress, progress_ctx, err);
    if (close(fd) && !rc) rc = scratch_fail(err, dir, "cannot close the scratch file", errno);
    if (rc) {
        unlink(path);
        return -1;
    }
    read_once(path, size);
    memcpy(path_out, path, (size_t)n + 1);
    return 0;
}

int moe_iobench_cleanup(const char *path) { return unlink(path); }

/* ---- timed reads ----------------------------------------------------- */

/* Start line: every created thread finishes its warm-up before any starts
 * the clock, so early threads do not run alone. The count is known only
 * after creation (a pthread_create may fail), hence not a pthread_barrier. */
typedef struct gate {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    uint32_t arrived, expected;
    int known;
} gate;

static void gate_wait(gate *g) {
    pthread_mutex_lock(&g->mu);
    g->arrived++;
    pthread_cond_broadcast(&g->cv);
    while (!(g->known && g->arrived >= g->expected)) pthread_cond_wait(&g->cv, &g->mu);
    pthread_mutex_unlock(&g->mu);
}

static void gate_open(gate *g, uint32_t expected) {
    pthread_mutex_lock(&g->mu);
    g->expected = expected;
    g->known = 1;
    pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->mu);
}

typedef struct bench {
    const moe_iobench_params *p;
    int fd;
    const unsigned char *map;
    uint64_t n_offsets;     /* valid 4096-aligned start offsets */
    uint32_t min_reads;
    gate start;
    atomic_int abort;
} bench;

typedef struct worker {
    bench *b;
    uint32_t id;
    uint64_t rng;
    unsigned char *buf;
    double *t;              /* per-read service times */
    size_t n, cap;
    double start, end, busy;
    int failed;
    moe_error err;
} worker;

static int read_block(worker *w, uint64_t off) {
    const bench *b = w->b;
    uint64_t block = b->p->block;
    if (b->map) {
        memcpy(w->buf, b->map + off, block);
        return 0;
    }
    for (uint64_t got = 0; got < block;) {
        ssize_t r = pread(b->fd, w->buf + got, block - got, (off_t)(off + got));
        if (r < 0 && errno == EINTR) continue;
        if (r < 0 && errno == EINVAL && b->p->mode == MOE_IO_DIRECT)
            return moe_fail(&w->err, "%s: O_DIRECT read of %llu bytes at offset %llu rejected (EINVAL): "
                            "this file system does not support direct I/O; pass another --dir",
                            b->p->path, (unsigned long long)block, (unsigned long long)off);
        if (r < 0)
            return moe_fail(&w->err, "%s: read at offset %llu: %s", b->p->path,
                            (unsigned long long)(off + got), strerror(errno));
        if (r == 0)
            return moe_fail(&w->err, "%s: unexpected end of file at offset %llu", b->p->path,
                            (unsigned long long)(off + got));
        got += (uint64_t)r;
    }
    return 0;
}

/* One read (and the work hook) at the next offset of this thread's sequence;
 * returns its service time in seconds, or -1. */
static double one_read(worker *w) {
    const moe_iobench_params *p = w->b->p;
    uint64_t off = (splitmix64(&w->rng) % w->b->n_offsets) * MOE_IOBENCH_ALIGN;
    double t0 = now_s();
    if (read_block(w, off)) return -1;
    if (p->work && p->work(p->work_ctx, w->buf, p->block))
        return moe_fail(&w->err, "%s: the per-read work failed on the block at offset %llu", p->path,
                        (unsigned long long)off);
    return now_s() - t0;
}

static int record(worker *w, double t) {
    if (w->n == w->cap) {
        size_t cap = w->cap ? 2 * w->cap : 1024;
        double *nt = realloc(w->t, cap * sizeof *nt);
        if (!nt) return moe_fail(&w->err, "iobench: out of memory for read times");
        w->t = nt;
        w->cap = cap;
    }
    w->t[w->n++] = t;
    w->busy += t;
    return 0;
}

static void *worker_main(void *arg) {
    worker *w = arg;
    bench *b = w->b;
    for (int i = 0; i < MOE_IOBENCH_WARMUP && !w->failed; i++)
        if (one_read(w) < 0) w->failed = 1;
    if (w->failed) atomic_store(&b->abort, 1);
    gate_wait(&b->start);
    w->start = w->end = now_s();
    double deadline = w->start + b->p->seconds;
    while (!w->failed && !atomic_load(&b->abort)) {
        if (w->n >= b->min_reads && w->end >= deadline) break;
        double t = one_read(w);
        if (t < 0 || record(w, t)) {
            w->failed = 1;
            atomic_store(&b->abort, 1);
            break;
        }
        w->end = now_s();
    }
    return NULL;
}

static int check_params(const moe_iobench_params *p, moe_error *err) {
    if (!p->path) return moe_fail(err, "iobench: no file given");
    if (p->mode != MOE_IO_DIRECT && p->mode != MOE_IO_BUFFERED && p->mode != MOE_IO_MMAP)
        return moe_fail(err, "%s: unknown I/O mode %d", p->path, p->mode);
    if (p->block == 0 || p->block % MOE_IOBENCH_ALIGN)
        return moe_fail(err, "%s: block of %llu bytes is not a positive multiple of %d", p->path,
                        (unsigned long long)p->block, MOE_IOBENCH_ALIGN);
    if (p->depth < 1 || p->depth > MAX_DEPTH)
        return moe_fail(err, "%s: depth %u is outside 1..%u", p->path, p->depth, MAX_DEPTH);
    if (!(p->seconds >= 0) || !isfinite(p->seconds))
        return moe_fail(err, "%s: seconds must be finite and >= 0", p->path);
    return 0;
}

static int open_file(bench *b, uint64_t *size, moe_error *err) {
    const moe_iobench_params *p = b->p;
    int flags = O_RDONLY | O_CLOEXEC | (p->mode == MOE_IO_DIRECT ? O_DIRECT : 0);
    b->fd = open(p->path, flags);
    if (b->fd < 0 && errno == EINVAL && p->mode == MOE_IO_DIRECT)
        return moe_fail(err, "%s: this file system does not support O_DIRECT; "
                        "pass a --dir on another file system", p->path);
    if (b->fd < 0) return moe_fail(err, "%s: cannot open (%s): %s", p->path, mode_name(p->mode), strerror(errno));
    struct stat st;
    if (fstat(b->fd, &st)) return moe_fail(err, "%s: %s", p->path, strerror(errno));
    *size = (uint64_t)st.st_size;
    if (*size < p->block)
        return moe_fail(err, "%s: file of %llu bytes is smaller than one block of %llu", p->path,
                        (unsigned long long)*size, (unsigned long long)p->block);
    b->n_offsets = (*size - p->block) / MOE_IOBENCH_ALIGN + 1;
    /* Random offsets: tell the kernel, so read-ahead neither helps nor wastes bandwidth. */
    if (p->mode == MOE_IO_BUFFERED) posix_fadvise(b->fd, 0, 0, POSIX_FADV_RANDOM);
    if (p->mode == MOE_IO_MMAP) {
        void *m = mmap(NULL, *size, PROT_READ, MAP_SHARED, b->fd, 0);
        if (m == MAP_FAILED) return moe_fail(err, "%s: mmap: %s", p->path, strerror(errno));
        madvise(m, *size, MADV_RANDOM);
        b->map = m;
    }
    return 0;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Quantile of sorted v, linear between order statistics (R type 7, GSL's). */
static double quantile(const double *v, size_t n, double q) {
    double h = q * (double)(n - 1);
    size_t lo = (size_t)h;
    if (lo + 1 >= n) return v[n - 1];
    return v[lo] + (h - (double)lo) * (v[lo + 1] - v[lo]);
}

static int summarise(const bench *b, const worker *w, uint32_t nw, moe_iobench_result *out, moe_error *err) {
    const moe_iobench_params *p = b->p;
    size_t total = 0;
    double start = INFINITY, end = -INFINITY, busy = 0;
    for (uint32_t i = 0; i < nw; i++) {
        total += w[i].n;
        busy += w[i].busy;
        if (w[i].start < start) start = w[i].start;
        if (w[i].end > end) end = w[i].end;
    }
    double *all = malloc((total ? total : 1) * sizeof *all);
    if (!all) return moe_fail(err, "iobench: out of memory");
    size_t k = 0;
    for (uint32_t i = 0; i < nw; i++) {
        memcpy(all + k, w[i].t, w[i].n * sizeof *all);
        k += w[i].n;
    }
    qsort(all, total, sizeof *all, cmp_double);
    *out = (moe_iobench_result){.mode = p->mode, .block = p->block, .depth = nw, .reads = total,
                                .bytes = (uint64_t)total * p->block, .wall_s = end - start};
    if (total) {
        out->p10_s = quantile(all, total, 0.1);
        out->p25_s = quantile(all, total, 0.25);
        out->median_s = quantile(all, total, 0.5);
        out->p90_s = quantile(all, total, 0.9);
        out->mean_s = busy / (double)total;
    }
    if (out->wall_s > 0) {
        out->throughput_Bps = (double)out->bytes / out->wall_s;
        out->busy_frac = busy / ((double)nw * out->wall_s);
    }
    free(all);
    return 0;
}

static int run_threads(bench *b, worker *w, moe_iobench_result *out, moe_error *err) {
    const moe_iobench_params *p = b->p;
    pthread_t *tid = calloc(p->depth, sizeof *tid);
    if (!tid) return moe_fail(err, "iobench: out of memory");
    uint32_t made = 0;
    int rc = 0;
    for (; made < p->depth; made++) {
        w[made] = (worker){.b = b, .id = made, .rng = p->seed ^ (0xA0761D6478BD642Full * (made + 1))};
        if (posix_memalign((void **)&w[made].buf, MOE_IOBENCH_ALIGN, p->block)) {
            rc = moe_fail(err, "iobench: out of memory for a %llu-byte buffer", (unsigned long long)p->block);
            break;
        }
        int e = pthread_create(&tid[made], NULL, worker_main, &w[made]);
        if (e) {
            free(w[made].buf);
            rc = moe_fail(err, "iobench: cannot start I/O thread %u: %s", made, strerror(e));
            break;
        }
    }
    if (rc) atomic_store(&b->abort, 1);
    gate_open(&b->start, made);
    for (uint32_t i = 0; i < made; i++) pthread_join(tid[i], NULL);
    for (uint32_t i = 0; i < made && !rc; i++)
        if (w[i].failed) rc = moe_fail(err, "%s", w[i].err.msg);
    if (!rc) rc = summarise(b, w, made, out, err);
    for (uint32_t i = 0; i < made; i++) {
        free(w[i].buf);
        free(w[i].t);
    }
    free(tid);
    return rc;
}

int64_t moe_iobench_device_read_bytes(const char *path) {
    struct stat st;
    if (stat(path, &st) || major(st.st_dev) == 0) return -1; /* 0: no block device (tmpfs, NFS, overlay) */
    char sys[64];
    snprintf(sys, sizeof sys, "/sys/dev/block/%u:%u/stat", major(st.st_dev), minor(st.st_dev));
    FILE *f = fopen(sys, "r");
    if (!f) return -1;
    unsigned long long ios, merges, sectors;
    int n = fscanf(f, "%llu %llu %llu", &ios, &merges, &sectors);
    fclose(f);
    return n == 3 ? (int64_t)(sectors * 512ull) : -1; /* the kernel counts 512-byte sectors */
}

int moe_iobench_run(const moe_iobench_params *p, moe_iobench_result *out, moe_error *err) {
    if (check_params(p, err)) return -1;
    bench b = {.p = p, .fd = -1, .min_reads = p->min_reads ? p->min_reads : MOE_IOBENCH_MIN_READS};
    atomic_init(&b.abort, 0);
    pthread_mutex_init(&b.start.mu, NULL);
    pthread_cond_init(&b.start.cv, NULL);
    uint64_t size = 0;
    int rc = open_file(&b, &size, err);
    worker *w = rc ? NULL : calloc(p->depth, sizeof *w);
    if (!rc && !w) rc = moe_fail(err, "iobench: out of memory");
    int64_t dev0 = moe_iobench_device_read_bytes(p->path);
    if (!rc) rc = run_threads(&b, w, out, err);
    int64_t dev1 = moe_iobench_device_read_bytes(p->path);
    if (!rc) {
        int64_t own = (int64_t)(out->bytes + (uint64_t)out->depth * MOE_IOBENCH_WARMUP * p->block);
        out->foreign_bytes = dev0 < 0 || dev1 < 0 ? -1 : dev1 - dev0 > own ? dev1 - dev0 - own : 0;
    }
    free(w);
    if (b.map) munmap((void *)b.map, size);
    if (b.fd >= 0) close(b.fd);
    pthread_cond_destroy(&b.start.cv);
    pthread_mutex_destroy(&b.start.mu);
    return rc;
}

int moe_iobench_reads(const char *path, int mode, uint64_t block, uint32_t depth, double seconds,
                      uint64_t seed, moe_iobench_result *out, moe_error *err) {
    moe_iobench_params p = {.path = path, .mode = mode, .block = block, .depth = depth,
                            .seconds = seconds, .seed = seed};
    return moe_iobench_run(&p, out, err);
}

/* ---- repeated passes ------------------------------------------------- */

/* Quantile q of n values picked by `get` (copied and sorted; n <= 64). */
static double quantile_of(const moe_iobench_result *r, uint32_t n, double (*get)(const moe_iobench_result *),
                          double q) {
    double v[64];
    for (uint32_t i = 0; i < n; i++) v[i] = get(&r[i]);
    qsort(v, n, sizeof *v, cmp_double);
    return quantile(v, n, q);
}

static double median_of(const moe_iobench_result *r, uint32_t n, double (*get)(const moe_iobench_result *)) {
    return quantile_of(r, n, get, 0.5);
}

static double get_p10(const moe_iobench_result *r) { return r->p10_s; }
static double get_p25(const moe_iobench_result *r) { return r->p25_s; }
static double get_median(const moe_iobench_result *r) { return r->median_s; }
static double get_p90(const moe_iobench_result *r) { return r->p90_s; }
static double get_tput(const moe_iobench_result *r) { return r->throughput_Bps; }
static double get_busy(const moe_iobench_result *r) { return r->busy_frac; }

int moe_iobench_combine(const moe_iobench_result *passes, uint32_t n, moe_iobench_result *out,
                        moe_error *err) {
    if (n == 0 || n > 64) return moe_fail(err, "iobench: %u passes to combine (1..64)", n);
    const moe_iobench_result *a = &passes[0];
    moe_iobench_result c = {.mode = a->mode, .block = a->block, .depth = a->depth};
    double busy_s = 0;
    for (uint32_t i = 0; i < n; i++) {
        const moe_iobench_result *r = &passes[i];
        if (r->mode != a->mode || r->block != a->block || r->depth != a->depth)
            return moe_fail(err, "iobench: passes of different points (block %llu depth %u vs block %llu depth %u)",
                            (unsigned long long)a->block, a->depth, (unsigned long long)r->block, r->depth);
        c.reads += r->reads;
        c.bytes += r->bytes;
        c.wall_s += r->wall_s;
        c.foreign_bytes = c.foreign_bytes < 0 || r->foreign_bytes < 0 ? -1 : c.foreign_bytes + r->foreign_bytes;
        busy_s += r->mean_s * (double)r->reads;
    }
    c.mean_s = c.reads ? busy_s / (double)c.reads : 0;
    c.p10_s = median_of(passes, n, get_p10);
    c.p25_s = median_of(passes, n, get_p25);
    c.median_s = median_of(passes, n, get_median);
    c.p90_s = median_of(passes, n, get_p90);
    c.throughput_Bps = median_of(passes, n, get_tput);
    c.busy_frac = median_of(passes, n, get_busy);
    if (c.median_s > 0)
        c.pass_spread = (quantile_of(passes, n, get_median, 0.75) - quantile_of(passes, n, get_median, 0.25)) /
                        c.median_s;
    *out = c;
    return 0;
}

/* ---- fits ------------------------------------------------------------ */

/* The statistic a fit explains, of one result. */
static double stat_of(const moe_iobench_result *r, int stat) {
    switch (stat) {
    case MOE_IOBENCH_P25: return r->p25_s;
    case MOE_IOBENCH_P10: return r->p10_s;
    case MOE_IOBENCH_MEAN: return r->mean_s;
    default: return r->median_s;
    }
}

static const char *stat_name(int stat) {
    static const char *const names[] = {"median", "p25", "p10", "mean"};
    return stat >= 0 && stat <= MOE_IOBENCH_MEAN ? names[stat] : "?";
}

static int check_fit_input(const moe_iobench_result *r, uint32_t n, int stat, moe_error *err) {
    if (stat < 0 || stat > MOE_IOBENCH_MEAN) return moe_fail(err, "iobench fit: unknown statistic %d", stat);
    if (n < 2) return moe_fail(err, "iobench fit: %u result(s); at least 2 block sizes are needed", n);
    int distinct = 0;
    for (uint32_t i = 0; i < n; i++) {
        double t = stat_of(&r[i], stat);
        if (r[i].depth != r[0].depth)
            return moe_fail(err, "iobench fit: results at depths %u and %u; one depth per fit",
                            r[0].depth, r[i].depth);
        if (!(t > 0) || !isfinite(t) || r[i].block == 0)
            return moe_fail(err, "iobench fit: result %u (block %llu) has no valid %s", i,
                            (unsigned long long)r[i].block, stat_name(stat));
        if (r[i].block != r[0].block) distinct = 1;
    }
    if (!distinct) return moe_fail(err, "iobench fit: all results are at one block size; need >= 2");
    return 0;
}

/* Weighted least squares of t = a + b * block with weights 1/t^2 (t: the
 * chosen statistic), centred for accuracy; through the origin (a = 0) when
 * origin is set. */
static void wls(const moe_iobench_result *r, uint32_t n, int stat, int origin, double *a, double *b) {
    double W = 0, sx = 0, sy = 0;
    for (uint32_t i = 0; i < n; i++) {
        double y = stat_of(&r[i], stat), w = 1.0 / (y * y);
        W += w;
        sx += w * (double)r[i].block;
        sy += w * y;
    }
    double mx = origin ? 0 : sx / W, my = origin ? 0 : sy / W, sxx = 0, sxy = 0;
    for (uint32_t i = 0; i < n; i++) {
        double y = stat_of(&r[i], stat), w = 1.0 / (y * y), dx = (double)r[i].block - mx;
        sxx += w * dx * dx;
        sxy += w * dx * (y - my);
    }
    *b = sxy / sxx;
    *a = my - *b * mx;
}

int moe_iobench_fit_channel_stat(const moe_iobench_result *r, uint32_t n, int stat, moe_iobench_fit *out,
                                 moe_error *err) {
    if (check_fit_input(r, n, stat, err)) return -1;
    double a, b;
    wls(r, n, stat, 0, &a, &b);
    int clamped = 0;
    if (a < 0) { /* noise at the small blocks; a negative latency would be nonsense */
        wls(r, n, stat, 1, &a, &b);
        a = 0;
        clamped = 1;
    }
    if (!(b > 0))
        return moe_fail(err, "iobench fit: service time does not grow with block size at depth %u "
                        "(slope %g s/byte); measure larger blocks or longer", r[0].depth, b);
    double worst = 0;
    for (uint32_t i = 0; i < n; i++) {
        double y = stat_of(&r[i], stat), rel = fabs(y - (a + b * (double)r[i].block)) / y;
        if (rel > worst) worst = rel;
    }
    *out = (moe_iobench_fit){.latency_s = a, .bandwidth_Bps = 1.0 / b, .max_rel_resid = worst,
                             .latency_clamped = clamped};
    return 0;
}

int moe_iobench_fit_channel(const moe_iobench_result *r, uint32_t n, moe_iobench_fit *out,
                            moe_error *err) {
    return moe_iobench_fit_channel_stat(r, n, MOE_IOBENCH_MEDIAN, out, err);
}

int moe_iobench_pick_channels(const moe_iobench_result *by_depth, uint32_t n, uint32_t *channels,
                              moe_error *err) {
    if (n == 0) return moe_fail(err, "iobench: no results to pick a channel count from");
    double best = 0;
    for (uint32_t i = 0; i < n; i++) {
        const moe_iobench_result *r = &by_depth[i];
        if (r->block != by_depth[0].block || r->mode != by_depth[0].mode)
            return moe_fail(err, "iobench: channel results mix block sizes or modes (%llu vs %llu bytes)",
                            (unsigned long long)by_depth[0].block, (unsigned long long)r->block);
        if (!(r->throughput_Bps > 0) || !isfinite(r->throughput_Bps) || r->depth == 0)
            return moe_fail(err, "iobench: result at depth %u has no valid throughput", r->depth);
        for (uint32_t j = 0; j < i; j++)
            if (by_depth[j].depth == r->depth)
                return moe_fail(err, "iobench: depth %u appears twice", r->depth);
        if (r->throughput_Bps > best) best = r->throughput_Bps;
    }
    uint32_t pick = 0;
    for (uint32_t i = 0; i < n; i++)
        if (by_depth[i].throughput_Bps >= MOE_IOBENCH_PICK_FRAC * best && (!pick || by_depth[i].depth < pick))
            pick = by_depth[i].depth;
    *channels = pick;
    return 0;
}

/* ---- memory ---------------------------------------------------------- */

double moe_iobench_mem_bandwidth(uint64_t bytes, int repeats) {
    if (bytes == 0) return 0;
    if (repeats < 1) repeats = 1;
    unsigned char *src = malloc(bytes), *dst = malloc(bytes);
    if (!src || !dst) {
        free(src);
        free(dst);
        return 0;
    }
    /* Touch every page first: the timed copies must not pay page faults. */
    memset(src, 0x5A, bytes);
    memset(dst, 0xA5, bytes);
    double best = INFINITY;
    for (int i = 0; i < repeats; i++) {
        src[(size_t)i % bytes] = (unsigned char)i;
        double t0 = now_s();
        memcpy(dst, src, bytes);
        double t = now_s() - t0;
        /* A read of the copy keeps the compiler from eliding it. */
        if (((volatile unsigned char *)dst)[(size_t)i % bytes] != (unsigned char)i) t = INFINITY;
        if (t < best) best = t;
    }
    free(src);
    free(dst);
    return best > 0 && isfinite(best) ? 2.0 * (double)bytes / best : 0;
}

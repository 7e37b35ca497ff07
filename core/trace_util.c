/* trace_util.c: helpers shared by the trace readers and writers: a streamed
 * 64-bit checksum, atomic file replacement, whole-file reads, and the phase
 * rule for formats that do not record phases. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "trace_formats.h"
#include "units.h"

/* ---- checksum ------------------------------------------------------------
 * The byte stream is cut into 8-byte little-endian words (the last one
 * zero-padded); each word is multiplied into a running state, and the final
 * state is mixed with the length so that trailing zero bytes still count.
 * One multiply-rotate-multiply per word keeps it at several GB/s, which
 * matters because every open of a trace verifies it. Not cryptographic: it
 * detects truncation, bit rot and stray edits, not tampering. */
#define H_K1 0x9E3779B97F4A7C15ull /* 2^64 / golden ratio, odd */
#define H_K2 0xC2B2AE3D27D4EB4Full /* an odd constant with mixed bit pattern */

static inline uint64_t rotl64(uint64_t x, unsigned r) { return (x << r) | (x >> (64 - r)); }

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
static inline uint64_t load_le64(const unsigned char *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}
#endif

static inline uint64_t hash_word(uint64_t h, uint64_t w) {
    h ^= rotl64(w * H_K1, 31);
    return rotl64(h, 27) * H_K2 + 0x52DCE729u;
}

void moe_hash64_init(moe_hash64 *s) { memset(s, 0, sizeof *s), s->h = 0x6A09E667F3BCC908ull; }

void moe_hash64_update(moe_hash64 *s, const void *p, size_t n) {
    const unsigned char *b = p;
    s->total += n;
    while (n && s->n_carry) { /* finish a word left open by the last call */
        s->carry |= (uint64_t)*b++ << (8 * s->n_carry++);
        n--;
        if (s->n_carry == 8) {
            s->h = hash_word(s->h, s->carry);
            s->carry = 0, s->n_carry = 0;
        }
    }
    uint64_t h = s->h;
    for (; n >= 8; n -= 8, b += 8) {
        uint64_t w;
        memcpy(&w, b, 8); /* little-endian host checked by the callers */
#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
        w = load_le64(b);
#endif
        h = hash_word(h, w);
    }
    s->h = h;
    while (n--) s->carry |= (uint64_t)*b++ << (8 * s->n_carry++);
}

uint64_t moe_hash64_final(const moe_hash64 *s) {
    uint64_t h = s->h;
    if (s->n_carry) h = hash_word(h, s->carry);
    h ^= s->total * H_K2;
    h ^= h >> 33, h *= H_K1, h ^= h >> 29, h *= H_K2, h ^= h >> 32;
    return h;
}

/* ---- atomic replacement ---------------------------------------------- */

int moe_atomic_open(moe_atomic_file *a, const char *path, moe_error *err) {
    memset(a, 0, sizeof a[0]);
    /* Renaming over a device or directory would replace it with a file
     * (think /dev/null as root): only regular files are replaced. */
    struct stat st;
    if (stat(path, &st) == 0 && !S_ISREG(st.st_mode))
        return moe_fail(err, "%s: exists and is not a regular file", path);
    size_t n = strlen(path);
    a->final_path = strdup(path);
    a->tmp_path = malloc(n + 16);
    if (!a->final_path || !a->tmp_path) {
        moe_atomic_abort(a);
        return moe_fail(err, "%s: out of memory", path);
    }
    /* Same directory as the target so rename() is atomic (same filesystem). */
    snprintf(a->tmp_path, n + 16, "%s.tmp.XXXXXX", path);
    int fd = mkstemp(a->tmp_path);
    if (fd < 0) {
        int e = errno;
        free(a->tmp_path), a->tmp_path = NULL;
        moe_atomic_abort(a);
        return moe_fail(err, "%s: cannot create: %s", path, strerror(e));
    }
    /* mkstemp makes 0600; traces are ordinary shared data files. */
    if (fchmod(fd, 0644) != 0) { /* not fatal: the file is still ours */ }
    a->f = fdopen(fd, "wb");
    if (!a->f) {
        int e = errno;
        close(fd);
        moe_atomic_abort(a);
        return moe_fail(err, "%s: cannot open: %s", path, strerror(e));
    }
    return 0;
}

void moe_atomic_abort(moe_atomic_file *a) {
    if (a->f) fclose(a->f);
    if (a->tmp_path) unlink(a->tmp_path);
    free(a->tmp_path);
    free(a->final_path);
    memset(a, 0, sizeof a[0]);
}

int moe_atomic_commit(moe_atomic_file *a, moe_error *err) {
    int e = 0;
    if (fflush(a->f) != 0 || ferror(a->f)) e = errno ? errno : EIO;
    if (!e && fsync(fileno(a->f)) != 0) e = errno;
    FILE *f = a->f;
    a->f = NULL;
    if (fclose(f) != 0 && !e) e = errno;
    if (!e && rename(a->tmp_path, a->final_path) != 0) e = errno;
    if (e) {
        moe_fail(err, "%s: write failed: %s", a->final_path, strerror(e));
        moe_atomic_abort(a);
        return -1;
    }
    /* Make the rename itself durable; failure here loses nothing written. */
    char *dir = strdup(a->final_path);
    if (dir) {
        int dfd = open(dirname(dir), O_RDONLY | O_DIRECTORY);
        if (dfd >= 0) fsync(dfd), close(dfd);
        free(dir);
    }
    free(a->tmp_path), a->tmp_path = NULL;
    moe_atomic_abort(a);
    return 0;
}

/* ---- whole-file read --------------------------------------------------- */

char *moe_read_file(const char *path, size_t *len, moe_error *err) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        moe_fail(err, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        if (n + 1 >= cap) {
            char *nb = realloc(buf, cap * 2);
            if (!nb) break;
            buf = nb, cap *= 2;
        }
        size_t got = fread(buf + n, 1, cap - n - 1, f);
        n += got;
        if (got == 0) break;
    }
    int bad = !buf || ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        moe_fail(err, "%s: read failed", path);
        return NULL;
    }
    buf[n] = 0;
    *len = n;
    return buf;
}

int moe_infer_phase(const uint32_t *seq, const uint32_t *pos, uint64_t n) {
    for (uint64_t i = 0; i < n; i++) {
        if (pos[i] == 0) return MOE_PHASE_PREFILL;
        for (uint64_t j = 0; j < i; j++) /* steps are small; quadratic is fine */
            if (seq[j] == seq[i]) return MOE_PHASE_PREFILL;
    }
    return MOE_PHASE_DECODE;
}

void moe_import_progress(const moe_import_report *r, uint64_t done, uint64_t total) {
    if (r && r->progress) r->progress(r->ctx, done, total);
}

uint64_t moe_file_size(FILE *f) {
    struct stat st;
    return fstat(fileno(f), &st) == 0 && S_ISREG(st.st_mode) ? (uint64_t)st.st_size : 0;
}

int moe_lines_init(moe_lines *l, FILE *f) {
    memset(l, 0, sizeof *l);
    l->f = f;
    l->chunk = malloc(MOE_LINES_CHUNK);
    l->cap = 4096;
    l->line = malloc(l->cap);
    if (!l->chunk || !l->line) return moe_lines_free(l), -1;
    return 0;
}

void moe_lines_free(moe_lines *l) {
    free(l->chunk), free(l->line);
    l->chunk = l->line = NULL;
}

ssize_t moe_lines_next(moe_lines *l, size_t max, int *too_long) {
    size_t n = 0;
    int any = 0;
    *too_long = 0;
    for (;;) {
        if (l->pos == l->len) {
            l->len = fread(l->chunk, 1, MOE_LINES_CHUNK, l->f), l->pos = 0;
            if (l->len == 0) break;
        }
        const char *p = l->chunk + l->pos, *e = memchr(p, '\n', l->len - l->pos);
        size_t take = e ? (size_t)(e - p) + 1 : l->len - l->pos;
        any = 1;
        if (!*too_long && n + take > max) *too_long = 1; /* the rest is consumed, not kept */
        if (!*too_long) {
            if (n + take + 1 > l->cap) {
                size_t nc = l->cap;
                while (n + take + 1 > nc) nc *= 2;
                char *nl = realloc(l->line, nc);
                if (!nl) return -1;
                l->line = nl, l->cap = nc;
            }
            memcpy(l->line + n, p, take);
            n += take;
        }
        l->pos += take, l->consumed += take;
        if (e) break;
    }
    if (!any) return -1;
    l->line[n] = 0;
    return *too_long ? (ssize_t)max + 1 : (ssize_t)n;
}

int moe_import_cap(const moe_import_report *r, uint64_t bytes, const char *path, const char *what, moe_error *err) {
    if (!r || !r->max_bytes || bytes <= r->max_bytes) return 0;
    char need[32], cap[32];
    moe_bytes_text((double)bytes, need, sizeof need), moe_bytes_text((double)r->max_bytes, cap, sizeof cap);
    if (r->max_is_default)
        return moe_fail(err, "%s: %s would take %s, above the default cap of %s (this machine's memory, or what "
                        "ulimit -v leaves); --max-memory GiB sets another", path, what, need, cap);
    return moe_fail(err, "%s: %s would take %s, above --max-memory %.3g GiB", path, what, need,
                    (double)r->max_bytes / 1073741824.0);
}

uint64_t moe_default_memory_cap(void) {
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    uint64_t cap = pages > 0 && page > 0 ? (uint64_t)pages * (uint64_t)page : 0;
    struct rlimit rl;
    if (getrlimit(RLIMIT_AS, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) {
        /* the limit counts what is mapped already (libraries, stacks) */
        uint64_t left = (uint64_t)rl.rlim_cur, mapped = 0;
        FILE *f = fopen("/proc/self/statm", "r");
        unsigned long long vm;
        if (f && fscanf(f, "%llu", &vm) == 1 && page > 0) mapped = (uint64_t)vm * (uint64_t)page;
        if (f) fclose(f);
        left = left > mapped ? left - mapped : 1;
        if (!cap || left < cap) cap = left;
    }
    return cap;
}

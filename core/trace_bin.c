/* trace_bin.c: the binary .moetrace format (layout in traces/README.md).
 *
 * All integers little-endian. A fixed 416-byte header, then ten sections,
 * each starting at an 8-byte-aligned offset and padded to a multiple of 8:
 *
 *   0   char[8]  magic "MOETRACE"
 *   8   u32      version (1)
 *   12  u32      header size (416)
 *   16  u64      checksum of bytes [24, file size)
 *   24  u64      file size
 *   32  char[64] model, NUL-padded       96  char[64] source
 *   160 u32 x6   layers, experts, top_k, shared, lookahead depth, flags
 *   184 u64 x6   expert bytes per precision
 *   232 u64      steps                  240 u64 tokens
 *   248 u64      meta length            (reserved until 256)
 *   256 u64 x2 x10  section table: offset, byte length of
 *                meta, step_first_token, step_id, step_phase, token_seq,
 *                token_pos, experts, weights, router_logits, lookahead
 *
 * Version 2 (written only for key sequences, trace.h) has a 432-byte header
 * whose section table has an eleventh entry, keys (u32 per request), and
 * flag 8 (key sequence): sections step_first_token .. lookahead are empty,
 * layers = top_k = 1, steps = tokens = requests, and experts is the number
 * of distinct keys (up to 2^32 - 1). A request costs 4 bytes, a sixth of
 * libCacheSim's 24-byte oracleGeneral record. Routing traces stay version
 * 1, byte for byte.
 *
 * Loading maps the file (MAP_PRIVATE, so a stray write never reaches the
 * file) and points the trace arrays into the map. Every header field is
 * checked before any array is touched: the geometry against the limits of
 * trace.h (layers <= 65536, experts <= 65534, layers x experts within the
 * key space), sizes are multiplied with overflow checks, each section must have exactly the size the header implies, lie
 * inside the file, be aligned, and not overlap the previous one. Then
 * moe_trace_validate() checks the contents. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "trace_formats.h"
#include "verified.h"

#define HDR_SIZE 416u    /* version 1 */
#define HDR_SIZE_V2 432u /* version 2: one more section */
#define OFF_SECTIONS 256u
#define N_SECTIONS 11    /* in version 2; version 1 has the first 10 */
#define FLAG_WEIGHTS 1u
#define FLAG_LOGITS 2u
#define FLAG_LOOKAHEAD 4u
#define FLAG_KEYS 8u     /* version 2 only */

enum { S_META, S_FIRST, S_STEPID, S_PHASE, S_SEQ, S_POS, S_EXPERTS, S_WEIGHTS, S_LOGITS, S_LOOKAHEAD, S_KEYS };
static const char *const section_name[N_SECTIONS] = {
    "meta", "step_first_token", "step_id", "step_phase", "token_seq",
    "token_pos", "experts", "weights", "router_logits", "lookahead", "keys"};

static uint32_t get32(const unsigned char *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t get64(const unsigned char *p) { return get32(p) | (uint64_t)get32(p + 4) << 32; }
static void put32(unsigned char *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}
static void put64(unsigned char *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}

/* a * b * c into *out; 0, or -1 on overflow. */
static int mul3(uint64_t a, uint64_t b, uint64_t c, uint64_t *out) {
    uint64_t x;
    if (__builtin_mul_overflow(a, b, &x) || __builtin_mul_overflow(x, c, out)) return -1;
    return 0;
}

static uint64_t pad8(uint64_t n) { return (n + 7) & ~(uint64_t)7; }

/* Byte sizes of the sections of t's geometry; -1 if they overflow. */
static int section_sizes(uint32_t layers, uint32_t experts, uint32_t top_k, uint32_t depth,
                         uint32_t flags, uint64_t steps, uint64_t tokens, uint64_t meta_len,
                         uint64_t size[N_SECTIONS]) {
    uint64_t rec;
    if (steps == UINT64_MAX || mul3(tokens, layers, top_k, &rec)) return -1;
    size[S_META] = meta_len;
    if (flags & FLAG_KEYS) { /* a key sequence: meta and keys only */
        for (int i = S_FIRST; i < S_KEYS; i++) size[i] = 0;
        return mul3(tokens, 4, 1, &size[S_KEYS]) || size[S_KEYS] > UINT64_MAX - 8 ? -1 : 0;
    }
    size[S_KEYS] = 0;
    if (mul3(steps + 1, 8, 1, &size[S_FIRST]) || mul3(steps, 8, 1, &size[S_STEPID])) return -1;
    size[S_PHASE] = steps;
    if (mul3(tokens, 4, 1, &size[S_SEQ]) || mul3(tokens, 4, 1, &size[S_POS])) return -1;
    if (mul3(rec, 2, 1, &size[S_EXPERTS])) return -1;
    size[S_WEIGHTS] = 0, size[S_LOGITS] = 0, size[S_LOOKAHEAD] = 0;
    if ((flags & FLAG_WEIGHTS) && mul3(rec, 4, 1, &size[S_WEIGHTS])) return -1;
    if (flags & FLAG_LOGITS) {
        uint64_t n;
        if (mul3(tokens, layers, experts, &n) || mul3(n, 4, 1, &size[S_LOGITS])) return -1;
    }
    if ((flags & FLAG_LOOKAHEAD) && mul3(rec, depth, 2, &size[S_LOOKAHEAD])) return -1;
    for (int i = 0; i < N_SECTIONS; i++)
        if (size[i] > UINT64_MAX - 8) return -1;
    return 0;
}

static int host_is_le(void) {
    uint16_t x = 1;
    unsigned char c;
    memcpy(&c, &x, 1);
    return c == 1;
}

/* ---- writer ------------------------------------------------------------ */

typedef struct writer {
    moe_atomic_file af;
    moe_hash64 hash;
    uint64_t pos;
} writer;

static int wr(writer *w, const void *p, size_t n) {
    if (n && fwrite(p, 1, n, w->af.f) != n) return -1;
    if (w->pos + n > 24) { /* the checksum covers everything after its own field */
        size_t skip = w->pos >= 24 ? 0 : (size_t)(24 - w->pos);
        moe_hash64_update(&w->hash, (const unsigned char *)p + skip, n - skip);
    }
    w->pos += n;
    return 0;
}

static int wr_pad(writer *w) {
    static const unsigned char zero[8];
    return wr(w, zero, (size_t)(pad8(w->pos) - w->pos));
}

int moe_trace_save(const moe_trace *t, const char *path, moe_error *err) {
    if (!host_is_le()) return moe_fail(err, "%s: .moetrace is little-endian; this host is not", path);
    uint32_t flags = t->keys ? FLAG_KEYS
                             : (t->weights ? FLAG_WEIGHTS : 0) | (t->router_logits ? FLAG_LOGITS : 0) |
                                   (t->lookahead && t->lookahead_depth ? FLAG_LOOKAHEAD : 0);
    /* routing traces stay version 1 (same bytes as before version 2) */
    const uint32_t version = t->keys ? 2 : 1, hsize = t->keys ? HDR_SIZE_V2 : HDR_SIZE;
    const int nsec = t->keys ? N_SECTIONS : N_SECTIONS - 1;
    uint64_t meta_len = t->meta ? strlen(t->meta) : 0, size[N_SECTIONS], off[N_SECTIONS];
    if (section_sizes(t->n_layers, t->n_experts, t->top_k, t->lookahead_depth, flags, t->n_steps,
                      t->n_tokens, meta_len, size))
        return moe_fail(err, "%s: trace too large for the format", path);
    const void *data[N_SECTIONS] = {t->meta, t->step_first_token, t->step_id, t->step_phase,
                                    t->token_seq, t->token_pos, t->experts, t->weights,
                                    t->router_logits, t->lookahead, t->keys};
    uint64_t at = hsize;
    for (int i = 0; i < nsec; i++) {
        off[i] = size[i] ? at : 0; /* an absent section has offset 0 and length 0 */
        at += pad8(size[i]);
    }
    unsigned char h[HDR_SIZE_V2];
    memset(h, 0, sizeof h);
    memcpy(h, MOE_BIN_MAGIC, 8);
    put32(h + 8, version);
    put32(h + 12, hsize);
    put64(h + 24, at);
    /* at most 63 bytes each: byte 63 stays NUL, which the reader checks */
    memcpy(h + 32, t->model, strnlen(t->model, 63));
    memcpy(h + 96, t->source, strnlen(t->source, 63));
    uint32_t u[6] = {t->n_layers, t->n_experts, t->top_k, t->n_shared,
                     (flags & FLAG_LOOKAHEAD) ? t->lookahead_depth : 0, flags};
    for (int i = 0; i < 6; i++) put32(h + 160 + 4 * i, u[i]);
    for (int i = 0; i < MOE_PREC_COUNT; i++) put64(h + 184 + 8 * i, t->expert_bytes[i]);
    put64(h + 232, t->n_steps);
    put64(h + 240, t->n_tokens);
    put64(h + 248, meta_len);
    for (int i = 0; i < nsec; i++) {
        put64(h + OFF_SECTIONS + 16 * i, off[i]);
        put64(h + OFF_SECTIONS + 16 * i + 8, size[i]);
    }
    writer w = {.pos = 0};
    if (moe_atomic_open(&w.af, path, err)) return -1;
    moe_hash64_init(&w.hash);
    int bad = wr(&w, h, hsize);
    for (int i = 0; i < nsec && !bad; i++)
        if (size[i]) bad = wr(&w, data[i], (size_t)size[i]) || wr_pad(&w);
    if (!bad) { /* the checksum goes into its slot once everything is hashed */
        unsigned char sum[8];
        put64(sum, moe_hash64_final(&w.hash));
        bad = fflush(w.af.f) != 0 || pwrite(fileno(w.af.f), sum, 8, 16) != 8;
    }
    if (bad) {
        int e = errno ? errno : EIO;
        moe_atomic_abort(&w.af);
        return moe_fail(err, "%s: write failed: %s", path, strerror(e));
    }
    return moe_atomic_commit(&w.af, err);
}

/* ---- streaming writer of key sequences ---------------------------------- */

/* The keys go straight to their final place, at a fixed offset after a
 * reserved meta area (the reader allows the gap: sections need only be
 * aligned, in order and inside the file), because the meta text and the
 * counts are known only at the end. The checksum is then computed by
 * reading the file back in chunks: memory stays at one buffer. */
#define KEYS_META_MAX 1024u
#define KEYS_OFF (HDR_SIZE_V2 + KEYS_META_MAX)

int moe_keys_writer_open(moe_keys_writer *w, const char *path, moe_error *err) {
    memset(w, 0, sizeof *w);
    if (!host_is_le()) return moe_fail(err, "%s: .moetrace is little-endian; this host is not", path);
    if (moe_atomic_open(&w->af, path, err)) return -1;
    static const unsigned char zero[KEYS_OFF];
    if (fwrite(zero, 1, KEYS_OFF, w->af.f) != KEYS_OFF) w->bad = errno ? errno : EIO;
    return 0;
}

int moe_keys_writer_put(moe_keys_writer *w, const uint32_t *keys, size_t n) {
    if (!w->bad && n && fwrite(keys, sizeof *keys, n, w->af.f) != n) w->bad = errno ? errno : EIO;
    w->n += n;
    return w->bad ? -1 : 0;
}

void moe_keys_writer_abort(moe_keys_writer *w) { moe_atomic_abort(&w->af); }

int moe_keys_writer_finish(moe_keys_writer *w, const char *model, const char *source, uint64_t n_keys,
                           const char *meta, moe_error *err) {
    char path[1024]; /* the atomic file's name is freed by an abort */
    snprintf(path, sizeof path, "%s", w->af.final_path);
    uint64_t meta_len = meta ? strlen(meta) : 0, keys_len = w->n * 4;
    int e = w->bad;
    if (!e && (w->n == 0 || n_keys == 0 || n_keys > MOE_MAX_KEYS || meta_len > KEYS_META_MAX)) {
        moe_atomic_abort(&w->af);
        return moe_fail(err, "%s: %llu requests over %llu keys, meta %llu bytes: not a key sequence this format holds",
                        path, (unsigned long long)w->n, (unsigned long long)n_keys, (unsigned long long)meta_len);
    }
    unsigned char h[HDR_SIZE_V2];
    memset(h, 0, sizeof h);
    memcpy(h, MOE_BIN_MAGIC, 8);
    put32(h + 8, 2);
    put32(h + 12, HDR_SIZE_V2);
    uint64_t end = KEYS_OFF + pad8(keys_len);
    put64(h + 24, end);
    if (model) memcpy(h + 32, model, strnlen(model, 63));
    memcpy(h + 96, source, strnlen(source, 63));
    uint32_t u[6] = {1, (uint32_t)n_keys, 1, 0, 0, FLAG_KEYS};
    for (int i = 0; i < 6; i++) put32(h + 160 + 4 * i, u[i]);
    put64(h + 232, w->n);
    put64(h + 240, w->n);
    put64(h + 248, meta_len);
    put64(h + OFF_SECTIONS, meta_len ? HDR_SIZE_V2 : 0);
    put64(h + OFF_SECTIONS + 8, meta_len);
    put64(h + OFF_SECTIONS + 16 * S_KEYS, KEYS_OFF);
    put64(h + OFF_SECTIONS + 16 * S_KEYS + 8, keys_len);
    static const unsigned char zero[8];
    int fd = fileno(w->af.f);
    if (!e && (fwrite(zero, 1, (size_t)(end - KEYS_OFF - keys_len), w->af.f) != end - KEYS_OFF - keys_len ||
               fflush(w->af.f) != 0 || pwrite(fd, h, sizeof h, 0) != (ssize_t)sizeof h ||
               (meta_len && pwrite(fd, meta, (size_t)meta_len, HDR_SIZE_V2) != (ssize_t)meta_len)))
        e = errno ? errno : EIO;
    moe_hash64 hs;
    moe_hash64_init(&hs);
    unsigned char *buf = e ? NULL : malloc(1u << 20);
    if (!e && !buf) e = ENOMEM;
    for (uint64_t off = 24; !e && off < end;) {
        ssize_t k = pread(fd, buf, end - off < (1u << 20) ? (size_t)(end - off) : (1u << 20), (off_t)off);
        if (k <= 0) e = k < 0 ? errno : EIO;
        else moe_hash64_update(&hs, buf, (size_t)k), off += (uint64_t)k;
    }
    free(buf);
    unsigned char sum[8];
    put64(sum, moe_hash64_final(&hs));
    if (!e && pwrite(fd, sum, 8, 16) != 8) e = errno ? errno : EIO;
    if (e) {
        moe_atomic_abort(&w->af);
        return moe_fail(err, "%s: write failed: %s", path, strerror(e));
    }
    return moe_atomic_commit(&w->af, err);
}

/* ---- reader ------------------------------------------------------------ */

/* Map path read-only-private; fills *map, *len and *st (its identity, for
 * the verify-once record). */
static int map_file(const char *path, void **map, size_t *len, struct stat *st_out, moe_error *err) {
    int fd = open(path, O_RDONLY);
    if (fd < 0) return moe_fail(err, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return moe_fail(err, "%s: cannot stat: %s", path, strerror(e));
    }
    if (st.st_size < (off_t)HDR_SIZE) {
        close(fd);
        return moe_fail(err, "%s: truncated: %lld bytes, shorter than the %u-byte header", path,
                        (long long)st.st_size, HDR_SIZE);
    }
    /* PROT_WRITE + MAP_PRIVATE: the arrays are not const in moe_trace; a
     * write through them copies the page instead of faulting. */
    void *m = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    int e = errno;
    close(fd);
    if (m == MAP_FAILED) return moe_fail(err, "%s: cannot map: %s", path, strerror(e));
    *map = m;
    *len = (size_t)st.st_size;
    *st_out = st;
    return 0;
}

/* Check header + sections of the mapped file; fill t (pointers into map). */
static int parse(const char *path, const unsigned char *m, size_t len, const struct stat *st, moe_trace *t,
                 moe_error *err) {
    if (memcmp(m, MOE_BIN_MAGIC, 8) != 0) return moe_fail(err, "%s: offset 0: not a .moetrace file (bad magic)", path);
    uint32_t version = get32(m + 8), hsize = get32(m + 12);
    if (version != 1 && version != 2)
        return moe_fail(err, "%s: offset 8: format version %u, this moesim reads versions 1 and 2", path, version);
    const uint32_t want_hsize = version == 1 ? HDR_SIZE : HDR_SIZE_V2;
    const int nsec = version == 1 ? N_SECTIONS - 1 : N_SECTIONS;
    if (hsize != want_hsize)
        return moe_fail(err, "%s: offset 12: header size %u, expected %u", path, hsize, want_hsize);
    if (len < hsize)
        return moe_fail(err, "%s: truncated: %zu bytes, shorter than the %u-byte header", path, len, hsize);
    uint64_t flen = get64(m + 24);
    if (flen != len)
        return moe_fail(err, "%s: %s: header says %llu bytes, file has %llu", path,
                        flen > len ? "truncated" : "trailing garbage", (unsigned long long)flen,
                        (unsigned long long)len);
    /* Large files are hashed once (core/verified.h), small ones every time. */
    uint64_t want = get64(m + 16);
    int once = len >= moe_verify_once_bytes();
    t->checksum_recalled = once && moe_verified_known(st, want);
    if (!t->checksum_recalled) {
        moe_hash64 hs;
        moe_hash64_init(&hs);
        moe_hash64_update(&hs, m + 24, len - 24);
        uint64_t got = moe_hash64_final(&hs);
        if (MOE_CHECK_MISMATCH(want, got))
            return moe_fail(err, "%s: checksum mismatch (header %016llx, content %016llx): file is corrupt", path,
                            (unsigned long long)want, (unsigned long long)got);
        if (once) moe_verified_note(st, want);
    }
    if (m[32 + 63] || m[96 + 63]) return moe_fail(err, "%s: offset 32: model/source name not NUL-terminated", path);
    memcpy(t->model, m + 32, 64);
    memcpy(t->source, m + 96, 64);
    t->n_layers = get32(m + 160);
    t->n_experts = get32(m + 164);
    t->top_k = get32(m + 168);
    t->n_shared = get32(m + 172);
    t->lookahead_depth = get32(m + 176);
    uint32_t flags = get32(m + 180);
    for (int i = 0; i < MOE_PREC_COUNT; i++) t->expert_bytes[i] = get64(m + 184 + 8 * i);
    t->n_steps = get64(m + 232);
    t->n_tokens = get64(m + 240);
    uint64_t meta_len = get64(m + 248);
    if (flags & ~(FLAG_WEIGHTS | FLAG_LOGITS | FLAG_LOOKAHEAD | (version == 2 ? FLAG_KEYS : 0)))
        return moe_fail(err, "%s: offset 180: unknown flags %#x", path, flags);
    if (version == 2 && flags != FLAG_KEYS)
        return moe_fail(err, "%s: offset 180: version 2 holds key sequences only (flags %#x, expected %#x)", path,
                        flags, FLAG_KEYS);
    const int keys = (flags & FLAG_KEYS) != 0;
    if (keys && (t->n_layers != 1 || t->top_k != 1 || t->lookahead_depth || t->n_experts == 0 ||
                 t->n_steps != t->n_tokens || t->n_steps == 0))
        return moe_fail(err, "%s: offset 160: a key sequence has layers = top_k = 1, no lookahead, keys >= 1 and "
                        "one token per step (layers %u, keys %u, top_k %u, steps %llu, tokens %llu)", path,
                        t->n_layers, t->n_experts, t->top_k, (unsigned long long)t->n_steps,
                        (unsigned long long)t->n_tokens);
    if (!(flags & FLAG_LOOKAHEAD) != !t->lookahead_depth)
        return moe_fail(err, "%s: offset 176: lookahead depth %u disagrees with flags %#x", path, t->lookahead_depth, flags);
    /* The limits of trace.h, each reported at its field's offset (a key
     * sequence's experts = distinct keys: any u32 but 0, checked above). */
    if (!keys) {
        if (t->n_layers == 0 || t->n_layers > MOE_MAX_LAYERS)
            return moe_fail(err, "%s: offset 160: layers %u out of range 1..%u", path, t->n_layers, MOE_MAX_LAYERS);
        if (t->n_experts == 0 || t->n_experts > MOE_MAX_EXPERTS)
            return moe_fail(err, "%s: offset 164: experts %u out of range 1..%u", path, t->n_experts, MOE_MAX_EXPERTS);
        if (t->top_k == 0 || t->top_k > t->n_experts)
            return moe_fail(err, "%s: offset 168: top_k %u out of range 1..%u", path, t->top_k, t->n_experts);
        if (t->lookahead_depth > MOE_MAX_LAYERS)
            return moe_fail(err, "%s: offset 176: lookahead depth %u out of range 0..%u", path, t->lookahead_depth,
                            MOE_MAX_LAYERS);
        if (moe_trace_check_geometry(t->n_layers, t->n_experts, t->top_k, t->lookahead_depth, err))
            return moe_fail_prefix(err, "%s: offset 160", path);
    }
    if (t->n_steps == 0) return moe_fail(err, "%s: offset 232: trace has no steps", path);
    if (t->n_tokens < t->n_steps)
        return moe_fail(err, "%s: offset 240: %llu tokens for %llu steps (each step needs one)", path,
                        (unsigned long long)t->n_tokens, (unsigned long long)t->n_steps);
    uint64_t size[N_SECTIONS];
    /* Every section size is a product of header fields: each product is
     * overflow-checked here, and each size must then match its section and
     * lie inside the file, so nothing is sized by a field the file does not
     * back with bytes. */
    if (section_sizes(t->n_layers, t->n_experts, t->top_k, t->lookahead_depth, flags, t->n_steps,
                      t->n_tokens, meta_len, size))
        return moe_fail(err, "%s: offset 160: geometry overflows (layers %u, top_k %u, tokens %llu)", path,
                        t->n_layers, t->top_k, (unsigned long long)t->n_tokens);
    void *ptr[N_SECTIONS] = {0};
    uint64_t prev_end = hsize;
    for (int i = 0; i < nsec; i++) {
        const unsigned char *e = m + OFF_SECTIONS + 16 * i;
        uint64_t off = get64(e), n = get64(e + 8);
        unsigned where = OFF_SECTIONS + 16 * i;
        if (n != size[i])
            return moe_fail(err, "%s: offset %u: section %s has %llu bytes, header geometry implies %llu", path,
                            where + 8, section_name[i], (unsigned long long)n, (unsigned long long)size[i]);
        ptr[i] = NULL;
        if (n == 0) {
            if (off != 0) return moe_fail(err, "%s: offset %u: empty section %s has offset %llu", path, where,
                                          section_name[i], (unsigned long long)off);
            continue;
        }
        if (off % 8 || off < prev_end || off > len || n > len - off)
            return moe_fail(err, "%s: offset %u: section %s at %llu+%llu is misaligned, overlaps or lies outside the file (%zu bytes)",
                            path, where, section_name[i], (unsigned long long)off, (unsigned long long)n, len);
        prev_end = off + n;
        ptr[i] = (void *)(m + off);
    }
    if (memchr(ptr[S_META] ? ptr[S_META] : "", 0, (size_t)meta_len))
        return moe_fail(err, "%s: section meta contains a NUL byte", path);
    if (meta_len) {
        t->meta = malloc((size_t)meta_len + 1);
        if (!t->meta) return moe_fail(err, "%s: out of memory", path);
        memcpy(t->meta, ptr[S_META], (size_t)meta_len);
        t->meta[meta_len] = 0;
    }
    t->step_first_token = ptr[S_FIRST];
    t->step_id = ptr[S_STEPID];
    t->step_phase = ptr[S_PHASE];
    t->token_seq = ptr[S_SEQ];
    t->token_pos = ptr[S_POS];
    t->experts = ptr[S_EXPERTS];
    t->weights = ptr[S_WEIGHTS];
    t->router_logits = ptr[S_LOGITS];
    t->lookahead = ptr[S_LOOKAHEAD];
    t->keys = ptr[S_KEYS];
    /* validate() walks step offsets before checking their bounds in its
     * token loop, so make sure the offsets are monotone and end in range. */
    for (uint64_t s = 0; !keys && s < t->n_steps; s++)
        if (t->step_first_token[s + 1] <= t->step_first_token[s] || t->step_first_token[s + 1] > t->n_tokens)
            return moe_fail(err, "%s: section step_first_token: step %llu: token offsets %llu..%llu not increasing within %llu tokens",
                            path, (unsigned long long)s, (unsigned long long)t->step_first_token[s],
                            (unsigned long long)t->step_first_token[s + 1], (unsigned long long)t->n_tokens);
    if (moe_trace_validate(t, err)) return moe_fail_prefix(err, "%s", path);
    return 0;
}

moe_trace *moe_trace_load_bin(const char *path, moe_error *err) {
    if (!host_is_le()) {
        moe_fail(err, "%s: .moetrace is little-endian; this host is not", path);
        return NULL;
    }
    void *map = NULL;
    size_t len = 0;
    struct stat st;
    if (map_file(path, &map, &len, &st, err)) return NULL;
    moe_trace *t = calloc(1, sizeof *t);
    if (!t) {
        munmap(map, len);
        moe_fail(err, "%s: out of memory", path);
        return NULL;
    }
    if (parse(path, map, len, &st, t, err)) {
        free(t->meta);
        free(t);
        munmap(map, len);
        return NULL;
    }
    t->map = map;
    t->map_len = len;
    return t;
}

int moe_trace_bin_checksum(const char *path, uint64_t *sum, moe_error *err) {
    unsigned char h[24];
    FILE *f = fopen(path, "rb");
    if (!f) return moe_fail(err, "%s: cannot open: %s", path, strerror(errno));
    size_t n = fread(h, 1, sizeof h, f);
    fclose(f);
    if (n != sizeof h || memcmp(h, MOE_BIN_MAGIC, 8)) return moe_fail(err, "%s: not a .moetrace file", path);
    *sum = get64(h + 16);
    return 0;
}

/* safetensors.c: mmap + header validation for .safetensors files. */
#include "safetensors.h"

#include <cjson/cJSON.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* Headers above this are refused before any allocation: the format's own
 * reference implementation caps them at 100 MB. */
#define ST_MAX_HEADER (100u * 1024 * 1024)

const char *st_dtype_name(enum st_dtype d) {
    switch (d) {
    case ST_F32: return "F32";
    case ST_F16: return "F16";
    case ST_BF16: return "BF16";
    }
    return "?";
}

size_t st_dtype_size(enum st_dtype d) { return d == ST_F32 ? 4 : 2; }

const char *st_shape_str(const st_tensor *t, char *buf, size_t len) {
    size_t o = 0;
    o += (size_t)snprintf(buf + o, len - o, "[");
    for (int i = 0; i < t->n_dims && o < len; i++)
        o += (size_t)snprintf(buf + o, len - o, "%s%" PRId64, i ? ", " : "", t->shape[i]);
    if (o < len) snprintf(buf + o, len - o, "]");
    return buf;
}

static int cmp_name(const void *a, const void *b) {
    return strcmp(((const st_tensor *)a)->name, ((const st_tensor *)b)->name);
}

static int cmp_begin(const void *a, const void *b) {
    const st_tensor *x = *(const st_tensor *const *)a, *y = *(const st_tensor *const *)b;
    return x->begin < y->begin ? -1 : x->begin > y->begin ? 1 : (x->end < y->end ? -1 : x->end > y->end);
}

/* A JSON number that is an exact non-negative integer below 2^53. */
static int json_u64(const cJSON *v, uint64_t *out) {
    if (!cJSON_IsNumber(v)) return -1;
    double d = v->valuedouble;
    if (!(d >= 0) || d > 9007199254740992.0 || d != floor(d)) return -1;
    *out = (uint64_t)d;
    return 0;
}

/* Parse and check one header entry; data_len is the size of the data region. */
static int parse_entry(st_tensor *t, const cJSON *e, uint64_t data_len, const char *path, moe_error *err) {
    const char *name = t->name;
    if (!cJSON_IsObject(e)) return moe_fail(err, "%s: tensor '%s': header entry is not an object", path, name);
    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(e, "dtype");
    const cJSON *sh = cJSON_GetObjectItemCaseSensitive(e, "shape");
    const cJSON *off = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
    if (!cJSON_IsString(dt)) return moe_fail(err, "%s: tensor '%s': missing or non-string 'dtype'", path, name);
    if (!strcmp(dt->valuestring, "F32")) t->dtype = ST_F32;
    else if (!strcmp(dt->valuestring, "F16")) t->dtype = ST_F16;
    else if (!strcmp(dt->valuestring, "BF16")) t->dtype = ST_BF16;
    else return moe_fail(err, "%s: tensor '%s': dtype '%s' not supported (F32, F16, BF16)", path, name, dt->valuestring);
    if (!cJSON_IsArray(sh)) return moe_fail(err, "%s: tensor '%s': missing or non-array 'shape'", path, name);
    int nd = cJSON_GetArraySize(sh);
    if (nd > ST_MAX_DIMS) return moe_fail(err, "%s: tensor '%s': %d dimensions (at most %d)", path, name, nd, ST_MAX_DIMS);
    t->n_dims = nd;
    uint64_t n = 1;
    for (int i = 0; i < nd; i++) {
        uint64_t d;
        if (json_u64(cJSON_GetArrayItem(sh, i), &d) || d > (1ull << 40))
            return moe_fail(err, "%s: tensor '%s': shape[%d] is not a valid dimension", path, name, i);
        t->shape[i] = (int64_t)d;
        if (d && n > (UINT64_MAX / 8) / d) return moe_fail(err, "%s: tensor '%s': shape too large", path, name);
        n *= d;
    }
    t->n_elems = n;
    if (!cJSON_IsArray(off) || cJSON_GetArraySize(off) != 2 || json_u64(cJSON_GetArrayItem(off, 0), &t->begin) ||
        json_u64(cJSON_GetArrayItem(off, 1), &t->end))
        return moe_fail(err, "%s: tensor '%s': 'data_offsets' must be two non-negative integers", path, name);
    if (t->end < t->begin)
        return moe_fail(err, "%s: tensor '%s': data_offsets [%" PRIu64 ",%" PRIu64 ") end before begin", path, name,
                        t->begin, t->end);
    if (t->end > data_len)
        return moe_fail(err, "%s: tensor '%s': data_offsets [%" PRIu64 ",%" PRIu64 ") beyond data region of %" PRIu64 " bytes (file truncated?)",
                        path, name, t->begin, t->end, data_len);
    char sbuf[128];
    if (t->end - t->begin != n * st_dtype_size(t->dtype))
        return moe_fail(err, "%s: tensor '%s': shape %s of %s needs %" PRIu64 " bytes, data_offsets [%" PRIu64 ",%" PRIu64 ") hold %" PRIu64,
                        path, name, st_shape_str(t, sbuf, sizeof sbuf), dt->valuestring, n * st_dtype_size(t->dtype),
                        t->begin, t->end, t->end - t->begin);
    return 0;
}

static int parse_header(st_file *f, const char *json, size_t json_len, uint64_t data_off, moe_error *err) {
    cJSON *root = cJSON_ParseWithLength(json, json_len);
    if (!root) {
        const char *at = cJSON_GetErrorPtr();
        long pos = at && at >= json && at <= json + json_len ? (long)(at - json) : -1;
        return moe_fail(err, "%s: header JSON malformed near byte %ld of the header", f->path, pos);
    }
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return moe_fail(err, "%s: header JSON is not an object", f->path);
    }
    uint64_t data_len = f->map_len - data_off;
    size_t n = 0;
    for (const cJSON *e = root->child; e; e = e->next)
        if (strcmp(e->string, "__metadata__")) n++;
    f->tensors = calloc(n ? n : 1, sizeof *f->tensors);
    if (!f->tensors) {
        cJSON_Delete(root);
        return moe_fail(err, "%s: out of memory", f->path);
    }
    for (const cJSON *e = root->child; e; e = e->next) {
        if (!strcmp(e->string, "__metadata__")) continue; /* free-form string map; not needed */
        st_tensor *t = &f->tensors[f->n_tensors++];
        t->name = strdup(e->string);
        if (!t->name || parse_entry(t, e, data_len, f->path, err)) {
            cJSON_Delete(root);
            return -1;
        }
        t->data = (const char *)f->map + data_off + t->begin;
    }
    cJSON_Delete(root);
    /* Overlap check: sort by begin, each range must start at or after the previous end. */
    st_tensor **by = malloc((n ? n : 1) * sizeof *by);
    if (!by) return moe_fail(err, "%s: out of memory", f->path);
    for (size_t i = 0; i < n; i++) by[i] = &f->tensors[i];
    qsort(by, n, sizeof *by, cmp_begin);
    /* Compare with the furthest-reaching earlier range, not just the previous
     * one; empty tensors occupy no bytes and cannot overlap anything. */
    const st_tensor *reach = NULL;
    for (size_t i = 0; i < n; i++) {
        if (by[i]->begin == by[i]->end) continue;
        if (reach && by[i]->begin < reach->end) {
            moe_fail(err, "%s: tensor '%s': data_offsets [%" PRIu64 ",%" PRIu64 ") overlap tensor '%s' [%" PRIu64 ",%" PRIu64 ")",
                     f->path, by[i]->name, by[i]->begin, by[i]->end, reach->name, reach->begin, reach->end);
            free(by);
            return -1;
        }
        if (!reach || by[i]->end > reach->end) reach = by[i];
    }
    free(by);
    qsort(f->tensors, n, sizeof *f->tensors, cmp_name);
    for (size_t i = 1; i < n; i++)
        if (!strcmp(f->tensors[i].name, f->tensors[i - 1].name))
            return moe_fail(err, "%s: tensor '%s' listed twice", f->path, f->tensors[i].name);
    return 0;
}

int st_open(st_file *f, const char *path, moe_error *err) {
    memset(f, 0, sizeof *f);
    snprintf(f->path, sizeof f->path, "%s", path);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return moe_fail(err, "%s: cannot open: %m", path);
    struct stat st;
    if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
        close(fd);
        return moe_fail(err, "%s: not a regular file", path);
    }
    if (st.st_size < 8) {
        close(fd);
        return moe_fail(err, "%s: %lld bytes, too short for the 8-byte header length (truncated?)", path,
                        (long long)st.st_size);
    }
    f->map_len = (size_t)st.st_size;
    f->map = mmap(NULL, f->map_len, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (f->map == MAP_FAILED) {
        f->map = NULL;
        return moe_fail(err, "%s: mmap failed: %m", path);
    }
    const unsigned char *p = f->map;
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = hlen << 8 | p[i];
    if (hlen > f->map_len - 8 || hlen > ST_MAX_HEADER) {
        moe_fail(err, "%s: header length %" PRIu64 " beyond file size %zu (truncated or not safetensors?)", path, hlen,
                 f->map_len);
        st_close(f);
        return -1;
    }
    if (parse_header(f, (const char *)p + 8, (size_t)hlen, 8 + hlen, err)) {
        st_close(f);
        return -1;
    }
    return 0;
}

void st_close(st_file *f) {
    if (f->tensors)
        for (size_t i = 0; i < f->n_tensors; i++) free(f->tensors[i].name);
    free(f->tensors);
    if (f->map) munmap(f->map, f->map_len);
    f->tensors = NULL;
    f->map = NULL;
    f->n_tensors = 0;
}

const st_tensor *st_find(const st_file *f, const char *name) {
    size_t lo = 0, hi = f->n_tensors;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(f->tensors[mid].name, name);
        if (!c) return &f->tensors[mid];
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return NULL;
}

/* IEEE half to float, exact for every value (subnormals, inf, NaN). */
static float f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h >> 15) << 31, exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
    if (exp == 0) {
        if (!man) bits = sign;
        else { /* subnormal: normalise */
            int e = -1;
            do { man <<= 1; e++; } while (!(man & 0x400));
            bits = sign | (uint32_t)(127 - 15 - e) << 23 | (man & 0x3ff) << 13;
        }
    } else if (exp == 31) bits = sign | 0x7f800000u | man << 13;
    else bits = sign | (exp + 127 - 15) << 23 | man << 13;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

void st_to_f32(const st_tensor *t, uint64_t first, uint64_t n, float *out) {
    const unsigned char *p = (const unsigned char *)t->data + first * st_dtype_size(t->dtype);
    /* Byte-wise reads: the data region need not be aligned, and the file is little-endian. */
    for (uint64_t i = 0; i < n; i++) {
        uint32_t bits;
        switch (t->dtype) {
        case ST_F32:
            bits = (uint32_t)p[4 * i] | (uint32_t)p[4 * i + 1] << 8 | (uint32_t)p[4 * i + 2] << 16 |
                   (uint32_t)p[4 * i + 3] << 24;
            memcpy(&out[i], &bits, 4);
            break;
        case ST_BF16: /* bf16 is the top half of an f32 */
            bits = ((uint32_t)p[2 * i] | (uint32_t)p[2 * i + 1] << 8) << 16;
            memcpy(&out[i], &bits, 4);
            break;
        case ST_F16: out[i] = f16_to_f32((uint16_t)(p[2 * i] | p[2 * i + 1] << 8)); break;
        }
    }
}

void st_copy16(const st_tensor *t, uint64_t first, uint64_t n, uint16_t *out) {
    const unsigned char *p = (const unsigned char *)t->data + first * 2;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    memcpy(out, p, n * 2); /* the file is little-endian, as this machine */
#else
    for (uint64_t i = 0; i < n; i++) out[i] = (uint16_t)(p[2 * i] | p[2 * i + 1] << 8);
#endif
}

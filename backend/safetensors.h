/* safetensors.h: read-only view of a Hugging Face .safetensors file.
 *
 * The file is mmap'ed; every tensor's header entry is validated on open
 * (dtype known, shape product x dtype size == byte range, range inside the
 * data region, ranges non-overlapping), so later code can trust pointers and
 * sizes. Format: 8-byte little-endian header length N, N bytes of JSON
 * {"name": {"dtype": "F32", "shape": [..], "data_offsets": [a, b]}, ...,
 *  "__metadata__": {...}}, then the data region; offsets are relative to it. */
#ifndef MOE_SAFETENSORS_H
#define MOE_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "../core/error.h"

#define ST_MAX_DIMS 8

enum st_dtype { ST_F32 = 0, ST_F16, ST_BF16 };

typedef struct st_tensor {
    char *name;
    enum st_dtype dtype;
    int n_dims;
    int64_t shape[ST_MAX_DIMS];
    uint64_t n_elems;
    const void *data;  /* points into the mapping */
    uint64_t begin, end; /* data_offsets, relative to the data region */
} st_tensor;

typedef struct st_file {
    char path[512];
    void *map;
    size_t map_len;
    st_tensor *tensors; /* sorted by name (binary search) */
    size_t n_tensors;
} st_file;

/* Open and validate; on failure fills err ("<path>: tensor 'x': ...") and returns -1. */
int st_open(st_file *f, const char *path, moe_error *err);
void st_close(st_file *f);
const st_tensor *st_find(const st_file *f, const char *name);
const char *st_dtype_name(enum st_dtype d);
size_t st_dtype_size(enum st_dtype d);
/* Convert n elements of tensor data starting at element `first` into f32. */
void st_to_f32(const st_tensor *t, uint64_t first, uint64_t n, float *out);
/* Copy n 16-bit elements starting at element `first` of a BF16 or F16 tensor. */
void st_copy16(const st_tensor *t, uint64_t first, uint64_t n, uint16_t *out);
/* "[a, b, c]" into buf. */
const char *st_shape_str(const st_tensor *t, char *buf, size_t len);

#endif

/* fuzz_safetensors: safetensors files (backend/safetensors.c): header JSON,
 * dtypes, shapes and data offsets; every tensor that opens is converted
 * (first and last element), which reads at the offsets the header gave. */
#include "fuzz.h"
#include "../../backend/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
    moe_error err;
    st_file f;
    memset(&f, 0, sizeof f);
    if (st_open(&f, fuzz_file(data, n, ".safetensors"), &err) != 0) return 0;
    for (size_t i = 0; i < f.n_tensors; i++) {
        const st_tensor *t = &f.tensors[i];
        float x;
        char shape[128];
        (void)st_shape_str(t, shape, sizeof shape);
        if (st_find(&f, t->name) == NULL) abort();
        if (t->n_elems) {
            st_to_f32(t, 0, 1, &x);
            st_to_f32(t, t->n_elems - 1, 1, &x);
        }
    }
    st_close(&f);
    return 0;
}

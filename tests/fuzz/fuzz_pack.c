/* fuzz_pack: expert packs (backend/pack.c, docs/pack-format.md): header,
 * index, its SHA-256 and the file-size checks; a pack that opens has its
 * first and last expert read and verified, as the offloaded backend would
 * (buffered reads: the fuzzer's files live where O_DIRECT may not work),
 * and the first block widened to f32 (a quantized pack's through its
 * matrix views). */
#include "fuzz.h"
#include "../../backend/pack.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
    moe_error err;
    moe_pack p;
    memset(&p, 0, sizeof p);
    if (moe_pack_open(&p, fuzz_file(data, n, ".pack"), MOE_IO_BUFFERED, &err) != 0) return 0;
    void *raw = moe_pack_alloc_block(&p);
    if (raw && p.n_layers && p.n_experts) {
        (void)moe_pack_read(&p, 0, 0, raw, &err);
        (void)moe_pack_read(&p, p.n_layers - 1, p.n_experts - 1, raw, &err);
        size_t w = 3 * (size_t)p.hidden * p.inter; /* bounded: the file holds every block */
        float *f = moe_pack_read(&p, 0, 0, raw, &err) ? NULL : malloc(w * sizeof *f);
        if (f) moe_pack_to_f32(&p, raw, f, f + 2 * (size_t)p.hidden * p.inter);
        free(f);
    }
    free(raw);
    moe_pack_close(&p);
    return 0;
}

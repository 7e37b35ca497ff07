/* fuzz_moetrace: the binary .moetrace reader (core/trace_bin.c). */
#define MOE_FUZZ_TRACE
#include "fuzz.h"
#include "../../core/trace_formats.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
    moe_error err;
    const char *path = fuzz_file(data, n, ".moetrace");
    uint64_t sum;
    (void)moe_trace_bin_checksum(path, &sum, &err);
    fuzz_use_trace(moe_trace_load_bin(path, &err));
    return 0;
}

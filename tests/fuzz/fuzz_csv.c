/* fuzz_csv: the CSV interchange importer (core/trace_csv.c). The first byte
 * chooses which of --layers/--experts/--top-k are given (small values, so
 * the explicit-size path is reached without asking for gigabytes). */
#define MOE_FUZZ_TRACE
#include "fuzz.h"
#include "../../core/trace_formats.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
    moe_error err;
    unsigned sel = fuzz_take_byte(&data, &n);
    moe_csv_opts o = {0};
    if (sel & 1) o.layers = 1 + (sel >> 3 & 3);
    if (sel & 2) o.experts = 1 + (sel >> 5);
    if (sel & 4) o.top_k = 1 + (sel >> 6);
    fuzz_use_trace(moe_trace_load_csv(fuzz_file(data, n, ".csv"), &o, &err));
    return 0;
}

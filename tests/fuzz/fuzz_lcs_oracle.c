/* fuzz_lcs_oracle: libCacheSim oracleGeneral binary traces (core/trace_lcs.c)
 * and the sniffer that recognises them without --format. */
#define MOE_FUZZ_TRACE
#include "fuzz.h"
#include "../../core/trace_formats.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
    moe_error err;
    const char *path = fuzz_file(data, n, ".oracleGeneral.bin");
    (void)moe_lcs_oracle_sniff(path, &err);
    fuzz_use_trace(moe_trace_load_lcs_oracle(path, &err));
    return 0;
}

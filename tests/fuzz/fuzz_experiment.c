/* fuzz_experiment: experiment files (cli/experiment.c: the ini reader,
 * every key's value parser, expectations) and the run plan built from one
 * (cli/experiment.c moe_experiment_plan is not called: it needs traces). */
#include "fuzz.h"
#include "../../cli/experiment.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
    moe_error err;
    moe_experiment exp;
    memset(&exp, 0, sizeof exp);
    (void)moe_experiment_load(fuzz_file(data, n, ".ini"), &exp, &err);
    moe_experiment_free(&exp);
    return 0;
}

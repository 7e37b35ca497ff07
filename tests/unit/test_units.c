/* test_units.c: byte counts in the unit a person reads (core/units.h),
 * each answer worked out by hand. */
#include "check.h"

#include "../../core/units.h"

static void bytes_text(void) {
    char b[32];
    CHECK_STR_CONTAINS(moe_bytes_text(0, b, sizeof b), "0 B");
    CHECK(!strcmp(moe_bytes_text(1023, b, sizeof b), "1023 B"));
    CHECK(!strcmp(moe_bytes_text(1024, b, sizeof b), "1.0 KiB"));
    CHECK(!strcmp(moe_bytes_text(110592, b, sizeof b), "108.0 KiB"));        /* a tinymix expert */
    CHECK(!strcmp(moe_bytes_text(3.0 * 1048576, b, sizeof b), "3.0 MiB"));
    CHECK(!strcmp(moe_bytes_text(45509184.0 * 1048576, b, sizeof b), "43.4 TiB")); /* was "45509184.0 MiB" */
    CHECK(!strcmp(moe_bytes_text(1024.0 * 1024 * 1024 * 1024 * 1024 * 2048, b, sizeof b), "2048.0 PiB")); /* no unit past PiB */
}

int main(void) {
    RUN(bytes_text);
    CHECK_EXIT();
}

/* test_units.c: byte counts and durations in the unit a person reads, and
 * sizes parsed back (core/units.h); each answer worked out by hand. */
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

#define DUR(sec, want) CHECK(!strcmp(moe_duration_text(sec, b, sizeof b), want))

static void duration_text(void) {
    char b[32];
    DUR(0, "0 s");
    DUR(1.5e-9, "1.50 ns");
    DUR(2.5e-10, "0.25 ns");          /* below a nanosecond: 3 significant digits */
    DUR(999e-9, "999 ns");
    DUR(1e-6, "1.00 µs");
    DUR(80e-6, "80.0 µs");            /* nvme-cpu's io_latency_us */
    DUR(0.0009996, "1.00 ms");        /* 999.6 µs prints as 1000: promoted */
    DUR(0.11143, "111 ms");           /* a TPOT once printed "111.43 ms" */
    DUR(2.42117, "2.42 s");           /* a TTFT once printed "2421.17 ms" */
    DUR(9.996, "10.0 s");             /* 9.996 rounds to 10.00: one decimal at 10..99 */
    DUR(59.999, "1.00 min");          /* not "60.00 s" */
    DUR(391.346, "6.52 min");         /* 391.346 / 60 = 6.5224 */
    DUR(3599.9, "1.00 h");            /* 59.998 min prints as 60.0: promoted */
    DUR(5400, "1.50 h");
    DUR(360000, "100 h");             /* no unit past hours */
    DUR(-0.0025, "-2.50 ms");
    DUR(NAN, "n/a");
    DUR(INFINITY, "n/a");
}

static void bytes_parse(void) {
    uint64_t v = 0;
    moe_error err = {{0}};
    CHECK(moe_bytes_parse("--ram", "12GiB", NULL, &v, &err) == 0 && v == 12884901888ull); /* 12 x 2^30 */
    CHECK(moe_bytes_parse("--ram", "512 MiB", NULL, &v, &err) == 0 && v == 536870912ull);
    CHECK(moe_bytes_parse("--ram", "800MB", NULL, &v, &err) == 0 && v == 800000000ull);
    CHECK(moe_bytes_parse("--ram", "1.5kib", NULL, &v, &err) == 0 && v == 1536);
    CHECK(moe_bytes_parse("--ram", "4096B", NULL, &v, &err) == 0 && v == 4096);
    CHECK(moe_bytes_parse("--ram", "12", NULL, &v, &err) == 1); /* no unit: the caller decides */
    CHECK(moe_bytes_parse("--ram", "12b", NULL, &v, &err) == -1);
    CHECK_STR_CONTAINS(err.msg, "--ram: unknown unit 'b' in '12b'");
    CHECK(moe_bytes_parse("--capacity", "3 parsecs", "%", &v, &err) == -1);
    CHECK_STR_CONTAINS(err.msg, "TiB, %)");
    CHECK(moe_bytes_parse("--ram", "-1GiB", NULL, &v, &err) == -1);
    CHECK(moe_bytes_parse("--ram", "0.5B", NULL, &v, &err) == -1); /* below one byte */
    CHECK_STR_CONTAINS(err.msg, "out of range");
}

int main(void) {
    RUN(bytes_text);
    RUN(duration_text);
    RUN(bytes_parse);
    CHECK_EXIT();
}

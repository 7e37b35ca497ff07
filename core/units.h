/* units.h: numbers as a person reads them, in the unit that keeps them
 * between 1 and 1024 (bytes) or 1 and 1000 (times, up to seconds), and
 * the parser for sizes written the same way. Text output uses these; JSON
 * and CSV stay in base units (bytes, seconds). */
#ifndef MOE_UNITS_H
#define MOE_UNITS_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

/* "12.3 MiB": B, KiB, MiB, GiB, TiB or PiB, one decimal (bytes exact below
 * 1 KiB). Returns buf. */
const char *moe_bytes_text(double bytes, char *buf, size_t n);

/* "111 ms", "2.42 s", "6.52 min", "1.50 h": ns, µs, ms or s while the value
 * is below 1000 (s: below 60), then min (below 60) and h; three significant
 * digits (4.56, 45.6, 456), promoted to the next unit when rounding reaches
 * its limit (999.6 µs is "1.00 ms"). 0 is "0 s"; a negative time keeps its
 * sign; NaN and infinities print as "n/a". Returns buf. */
const char *moe_duration_text(double seconds, char *buf, size_t n);

/* A size with a unit: "12GiB", "512 MiB", "800MB", "1.5TB", "4096B"
 * (B, KB, MB, GB, TB decimal; KiB, MiB, GiB, TiB binary; case-insensitive
 * except that a bare "b" is not bytes). A number without a unit is refused
 * (the caller says what a bare number means, if anything): returns 1 then,
 * 0 on success, -1 with err naming `what` on a malformed value. The result
 * is floored to whole bytes and must be at least 1 byte. `also` lists the
 * caller's other units for the unknown-unit message (e.g. "%"), or NULL. */
int moe_bytes_parse(const char *what, const char *s, const char *also, uint64_t *bytes, moe_error *err);

#endif

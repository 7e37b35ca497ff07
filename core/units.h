/* units.h: numbers as a person reads them, in the unit that keeps them
 * between 1 and 1024 (or 1000 for times). */
#ifndef MOE_UNITS_H
#define MOE_UNITS_H

#include <stddef.h>

/* "12.3 MiB": B, KiB, MiB, GiB, TiB or PiB, one decimal (bytes exact below
 * 1 KiB). Returns buf. */
const char *moe_bytes_text(double bytes, char *buf, size_t n);

#endif

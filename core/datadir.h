/* datadir.h: where moesim finds its data files (device and model profiles,
 * gnuplot templates) when run from outside a source checkout. */
#ifndef MOE_DATADIR_H
#define MOE_DATADIR_H

#include <stddef.h>

/* Resolve a relative data path such as "experiments/devices.ini": the path
 * itself if it exists (a checkout), else $MOESIM_DATA/path, else the
 * installed copy under PREFIX/share/moesim/path. Returns rel unchanged when
 * none exists, so the caller's error names the path the user expects. */
const char *moe_data_path(const char *rel, char *buf, size_t cap);

#endif

/* datadir.h: where moesim finds its data files (device and model profiles,
 * experiment files, gnuplot templates, shipped traces) from any working
 * directory. The one place every data look-up goes through.
 *
 * A relative path such as "experiments/devices.ini" is looked up, first hit
 * wins:
 *   1. as given (relative to the working directory);
 *   2. EXE/../share/moesim/PATH, EXE being the folder of the running binary
 *      (/proc/self/exe): an installed tree, wherever it was moved;
 *   3. EXE/../PATH when EXE/.. is a source checkout (it holds
 *      experiments/devices.ini): build/moesim run from anywhere;
 *   4. PREFIX/share/moesim/PATH, PREFIX as given to `make install`;
 *   5. $MOESIM_DATA/PATH.
 * Absolute paths are taken as they are. docs/moesim.1 (FILES) says the same. */
#ifndef MOE_DATADIR_H
#define MOE_DATADIR_H

#include <glob.h>
#include <stddef.h>

/* Resolve rel as above into buf. Returns rel unchanged when it is absolute,
 * exists as given, or exists nowhere (so the caller's error names the path
 * the user wrote); otherwise buf. */
const char *moe_data_path(const char *rel, char *buf, size_t cap);

/* The folders of steps 2-5 that exist, in order; returns how many (at most
 * MOE_DATA_DIRS_MAX). */
#define MOE_DATA_DIRS_MAX 4
#define MOE_DATA_DIR_CAP 4096
size_t moe_data_dirs(char out[MOE_DATA_DIRS_MAX][MOE_DATA_DIR_CAP]);

/* The same as one line "A, B, C"
 * (for messages that say where a file was looked for). */
void moe_data_dirs_text(char *buf, size_t cap);

/* glob(3) a relative pattern (every .moetrace file of traces/, say): as given, else under the
 * first folder of steps 2-5 where it matches. Returns glob's result code
 * (GLOB_NOMATCH when nothing matched anywhere); globfree g in any case. */
int moe_data_glob(const char *pattern, glob_t *g);

#endif

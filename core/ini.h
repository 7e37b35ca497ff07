/* ini.h: a small, strict INI reader for device profiles, model profiles and
 * experiment files.
 *
 * Syntax (one item per line):
 *   [section]           section header; names may contain any character but ']'
 *   key = value         key/value pair of the current section; whitespace
 *                       around key and value is trimmed; the value runs to the
 *                       end of the line, except that " #" or " ;" (a comment
 *                       marker preceded by whitespace) starts a comment
 *   # comment, ; comment   whole-line comments; blank lines are ignored
 * Pairs before the first header belong to the section "" (the global one).
 * Errors name "file:line: what": a line that is neither header nor pair, an
 * unterminated header, an empty key or section name, a key given twice in the
 * same section, a section header given twice. Section and key lookups are
 * case-insensitive; values keep their case.
 *
 * The whole file is one allocation plus one entry array; entries point into
 * the text, so a parsed file costs little more than the file itself. */
#ifndef MOE_INI_H
#define MOE_INI_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

typedef struct moe_ini_entry {
    const char *section; /* "" for pairs before the first header */
    const char *key;
    const char *value;
    uint32_t line;       /* 1-based line of the pair */
} moe_ini_entry;

typedef struct moe_ini_section {
    const char *name;
    uint32_t line;       /* line of the header (0 for the global section) */
} moe_ini_section;

typedef struct moe_ini {
    char path[512];      /* name used in messages */
    char *text;          /* owned copy of the text, cut into strings */
    moe_ini_entry *entries;
    size_t n_entries;
    moe_ini_section *sections; /* in file order, headers only */
    size_t n_sections;
} moe_ini;

/* Parse text (name is used in messages). Returns NULL with err on failure. */
moe_ini *moe_ini_parse(const char *text, const char *name, moe_error *err);
/* Read and parse a file. */
moe_ini *moe_ini_load(const char *path, moe_error *err);
void moe_ini_free(moe_ini *ini);

/* The entry of (section, key), NULL if absent. */
const moe_ini_entry *moe_ini_find(const moe_ini *ini, const char *section, const char *key);
/* Its value, NULL if absent. */
const char *moe_ini_get(const moe_ini *ini, const char *section, const char *key);
/* The header of a section, NULL if the file has no such section. */
const moe_ini_section *moe_ini_find_section(const moe_ini *ini, const char *section);

/* Typed getters: absent key -> *out = def, return 0; malformed value -> -1
 * with "file:line: key 'k': ..." in err. Ranges are inclusive. */
int moe_ini_get_double(const moe_ini *ini, const char *section, const char *key, double def,
                       double min, double max, double *out, moe_error *err);
int moe_ini_get_u64(const moe_ini *ini, const char *section, const char *key, uint64_t def,
                    uint64_t min, uint64_t max, uint64_t *out, moe_error *err);

/* Reject keys of a section that are not in the NULL-terminated list `known`
 * ("file:line: unknown key 'x' in [s] (known: ...)"). */
int moe_ini_check_keys(const moe_ini *ini, const char *section, const char *const *known,
                       moe_error *err);

#endif

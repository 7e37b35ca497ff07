/* ini.c: the strict INI reader (see ini.h for the syntax). */
#include "ini.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void moe_ini_free(moe_ini *ini) {
    if (!ini) return;
    free(ini->text);
    free(ini->entries);
    free(ini->sections);
    free(ini);
}

static char *trim(char *s, char *end) {
    while (s < end && isspace((unsigned char)*s)) s++;
    while (end > s && isspace((unsigned char)end[-1])) end--;
    *end = 0;
    return s;
}

moe_ini *moe_ini_parse(const char *text, const char *name, moe_error *err) {
    moe_ini *ini = calloc(1, sizeof *ini);
    if (!ini) return moe_fail(err, "%s: out of memory", name), NULL;
    snprintf(ini->path, sizeof ini->path, "%s", name);
    size_t len = strlen(text), cap_e = 16, cap_s = 8;
    ini->text = malloc(len + 1);
    ini->entries = malloc(cap_e * sizeof *ini->entries);
    ini->sections = malloc(cap_s * sizeof *ini->sections);
    if (!ini->text || !ini->entries || !ini->sections) {
        moe_ini_free(ini);
        return moe_fail(err, "%s: out of memory", name), NULL;
    }
    memcpy(ini->text, text, len + 1);
    const char *section = "";
    uint32_t line = 0;
    char *p = ini->text;
    /* A UTF-8 byte order mark at the start is not part of the first line. */
    if (!strncmp(p, "\xEF\xBB\xBF", 3)) p += 3;
    while (*p) {
        line++;
        char *nl = strchr(p, '\n');
        char *end = nl ? nl : p + strlen(p);
        char *next = nl ? nl + 1 : end;
        if (end > p && end[-1] == '\r') end--; /* CRLF files */
        char *s = trim(p, end);
        if (!*s || *s == '#' || *s == ';') {
            p = next;
            continue;
        }
        if (*s == '[') {
            char *close = strchr(s, ']');
            if (!close) goto bad_header;
            char *rest = close + 1;
            while (isspace((unsigned char)*rest)) rest++;
            if (*rest && *rest != '#' && *rest != ';') {
                moe_fail(err, "%s:%u: text after section header: '%s'", name, line, rest);
                goto fail;
            }
            char *nm = trim(s + 1, close);
            if (!*nm) {
                moe_fail(err, "%s:%u: empty section name", name, line);
                goto fail;
            }
            for (size_t i = 0; i < ini->n_sections; i++)
                if (!strcasecmp(ini->sections[i].name, nm)) {
                    moe_fail(err, "%s:%u: section [%s] given twice (first at line %u)", name, line, nm,
                             ini->sections[i].line);
                    goto fail;
                }
            if (ini->n_sections == cap_s) {
                moe_ini_section *ns = realloc(ini->sections, 2 * cap_s * sizeof *ns);
                if (!ns) goto oom;
                ini->sections = ns;
                cap_s *= 2;
            }
            ini->sections[ini->n_sections++] = (moe_ini_section){nm, line};
            section = nm;
            p = next;
            continue;
        }
        char *eq = strchr(s, '=');
        if (!eq) {
            moe_fail(err, "%s:%u: expected 'key = value' or '[section]', got '%s'", name, line, s);
            goto fail;
        }
        char *key = trim(s, eq);
        if (!*key) {
            moe_fail(err, "%s:%u: empty key", name, line);
            goto fail;
        }
        char *val = eq + 1, *vend = val + strlen(val);
        /* inline comment: '#' or ';' preceded by whitespace */
        for (char *q = val; *q; q++)
            if ((*q == '#' || *q == ';') && q > val && isspace((unsigned char)q[-1])) {
                vend = q;
                break;
            }
        if (*val == '#' || *val == ';') vend = val;
        val = trim(val, vend);
        for (size_t i = 0; i < ini->n_entries; i++)
            if (!strcasecmp(ini->entries[i].section, section) && !strcasecmp(ini->entries[i].key, key)) {
                moe_fail(err, "%s:%u: key '%s' given twice in [%s] (first at line %u)", name, line, key,
                         section, ini->entries[i].line);
                goto fail;
            }
        if (ini->n_entries == cap_e) {
            moe_ini_entry *ne = realloc(ini->entries, 2 * cap_e * sizeof *ne);
            if (!ne) goto oom;
            ini->entries = ne;
            cap_e *= 2;
        }
        ini->entries[ini->n_entries++] = (moe_ini_entry){section, key, val, line};
        p = next;
    }
    return ini;
bad_header:
    moe_fail(err, "%s:%u: section header without ']'", name, line);
    goto fail;
oom:
    moe_fail(err, "%s: out of memory", name);
fail:
    moe_ini_free(ini);
    return NULL;
}

moe_ini *moe_ini_load(const char *path, moe_error *err) {
    FILE *f = fopen(path, "rb");
    if (!f) return moe_fail(err, "%s: %s", path, strerror(errno)), NULL;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (!buf) {
            fclose(f);
            return moe_fail(err, "%s: out of memory", path), NULL;
        }
        n += fread(buf + n, 1, cap - n - 1, f);
        if (n < cap - 1) break;
        cap *= 2;
        char *b2 = realloc(buf, cap);
        if (!b2) free(buf);
        buf = b2;
    }
    int rerr = ferror(f);
    fclose(f);
    if (rerr) {
        free(buf);
        return moe_fail(err, "%s: read error", path), NULL;
    }
    buf[n] = 0;
    if (memchr(buf, 0, n)) {
        free(buf);
        return moe_fail(err, "%s: binary file (NUL byte), not INI", path), NULL;
    }
    moe_ini *ini = moe_ini_parse(buf, path, err);
    free(buf);
    return ini;
}

const moe_ini_entry *moe_ini_find(const moe_ini *ini, const char *section, const char *key) {
    for (size_t i = 0; i < ini->n_entries; i++)
        if (!strcasecmp(ini->entries[i].section, section) && !strcasecmp(ini->entries[i].key, key))
            return &ini->entries[i];
    return NULL;
}

const char *moe_ini_get(const moe_ini *ini, const char *section, const char *key) {
    const moe_ini_entry *e = moe_ini_find(ini, section, key);
    return e ? e->value : NULL;
}

const moe_ini_section *moe_ini_find_section(const moe_ini *ini, const char *section) {
    for (size_t i = 0; i < ini->n_sections; i++)
        if (!strcasecmp(ini->sections[i].name, section)) return &ini->sections[i];
    return NULL;
}

int moe_ini_get_double(const moe_ini *ini, const char *section, const char *key, double def,
                       double min, double max, double *out, moe_error *err) {
    const moe_ini_entry *e = moe_ini_find(ini, section, key);
    if (!e) {
        *out = def;
        return 0;
    }
    char *end;
    errno = 0;
    double v = strtod(e->value, &end);
    if (!*e->value || *end || errno || !isfinite(v))
        return moe_fail(err, "%s:%u: key '%s': '%s' is not a number", ini->path, e->line, e->key, e->value);
    if (v < min || v > max)
        return moe_fail(err, "%s:%u: key '%s': %g out of range %g..%g", ini->path, e->line, e->key, v, min, max);
    *out = v;
    return 0;
}

int moe_ini_get_u64(const moe_ini *ini, const char *section, const char *key, uint64_t def,
                    uint64_t min, uint64_t max, uint64_t *out, moe_error *err) {
    const moe_ini_entry *e = moe_ini_find(ini, section, key);
    if (!e) {
        *out = def;
        return 0;
    }
    char *end;
    errno = 0;
    unsigned long long v = strtoull(e->value, &end, 10);
    if (!isdigit((unsigned char)*e->value) || *end || errno)
        return moe_fail(err, "%s:%u: key '%s': '%s' is not a non-negative integer", ini->path, e->line,
                        e->key, e->value);
    if (v < min || v > max)
        return moe_fail(err, "%s:%u: key '%s': %llu out of range %llu..%llu", ini->path, e->line, e->key, v,
                        (unsigned long long)min, (unsigned long long)max);
    *out = v;
    return 0;
}

int moe_ini_check_keys(const moe_ini *ini, const char *section, const char *const *known,
                       moe_error *err) {
    for (size_t i = 0; i < ini->n_entries; i++) {
        const moe_ini_entry *e = &ini->entries[i];
        if (strcasecmp(e->section, section)) continue;
        int ok = 0;
        for (const char *const *k = known; *k && !ok; k++) ok = !strcasecmp(*k, e->key);
        if (!ok) {
            char list[512] = "";
            for (const char *const *k = known; *k; k++) {
                if (k != known) strncat(list, ", ", sizeof list - strlen(list) - 1);
                strncat(list, *k, sizeof list - strlen(list) - 1);
            }
            return moe_fail(err, "%s:%u: unknown key '%s' in [%s] (known: %s)", ini->path, e->line, e->key,
                            section, list);
        }
    }
    return 0;
}

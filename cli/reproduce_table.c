/* reproduce_table.c: rows of `moesim reproduce` and their table, CSV and
 * JSON forms (reproduce_table.h). */
#include "reproduce_table.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

int repro_add_experiment(repro_table *t, const char *name, const char *title, const char *source) {
    if (t->n_exp == t->cap_exp) {
        size_t nc = t->cap_exp ? t->cap_exp * 2 : 8;
        repro_exp *e = realloc(t->e, nc * sizeof *e);
        if (!e) return -1;
        t->e = e, t->cap_exp = nc;
    }
    repro_exp *e = &t->e[t->n_exp++];
    snprintf(e->name, sizeof e->name, "%s", name);
    snprintf(e->title, sizeof e->title, "%s", title ? title : "");
    snprintf(e->source, sizeof e->source, "%s", source ? source : "");
    return 0;
}

repro_row *repro_add_row(repro_table *t, const char *exp, const char *claim, const char *kind, const char *source,
                         const char *metric) {
    if (t->n == t->cap) {
        size_t nc = t->cap ? t->cap * 2 : 32;
        repro_row *r = realloc(t->r, nc * sizeof *r);
        if (!r) return NULL;
        t->r = r, t->cap = nc;
    }
    repro_row *r = &t->r[t->n++];
    memset(r, 0, sizeof *r);
    snprintf(r->exp, sizeof r->exp, "%s", exp);
    snprintf(r->claim, sizeof r->claim, "%s", claim);
    snprintf(r->kind, sizeof r->kind, "%s", kind);
    snprintf(r->source, sizeof r->source, "%s", source ? source : "");
    snprintf(r->metric, sizeof r->metric, "%s", metric);
    snprintf(r->pub, sizeof r->pub, "-");
    snprintf(r->ours, sizeof r->ours, "-");
    snprintf(r->diff, sizeof r->diff, "-");
    r->pub_v = r->ours_v = NAN;
    return r;
}

void repro_set_reason(repro_row *r, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->reason, sizeof r->reason, fmt, ap);
    va_end(ap);
}

void repro_verdict(repro_table *t, repro_row *r, const char *v) {
    snprintf(r->verdict, sizeof r->verdict, "%s", v);
    if (!strcmp(v, "FAIL")) t->fails++;
}

void repro_table_free(repro_table *t) {
    free(t->r);
    free(t->e);
    memset(t, 0, sizeof *t);
}

repro_counts repro_count(const repro_table *t, const char *exp, const char *claim, int fitted) {
    repro_counts c = {0};
    for (size_t i = 0; i < t->n; i++) {
        const repro_row *r = &t->r[i];
        if (r->fitted != fitted || (exp && (strcmp(r->exp, exp) || strcmp(r->claim, claim)))) continue;
        c.rows++;
        c.pass += !strcmp(r->verdict, "PASS");
        c.fail += !strcmp(r->verdict, "FAIL");
        c.nc += !strcmp(r->verdict, "NOT COMPARABLE");
    }
    return c;
}

/* ---- table ------------------------------------------------------------- */

/* The next piece of *p that fits in w columns: up to the last space that
 * fits (a word longer than w is cut); *p moves past it and the spaces after. */
static int next_piece(const char **p, int w, char *out, size_t cap) {
    const char *s = *p;
    int len = (int)strlen(s);
    if (len > w) {
        int cut = w;
        while (cut > 0 && s[cut] != ' ') cut--;
        len = cut > 0 ? cut : w;
    }
    snprintf(out, cap, "%.*s", len, s);
    s += len;
    while (*s == ' ') s++;
    *p = s;
    return len;
}

/* text in lines of at most width: the first after `prefix`, the others
 * indented as far as the prefix is long. */
static void wrap(FILE *f, const char *prefix, const char *text, int width) {
    int ind = (int)strlen(prefix), w = width - ind > 20 ? width - ind : 20;
    char piece[2048];
    const char *p = text;
    fputs(prefix, f);
    do {
        next_piece(&p, w, piece, sizeof piece);
        fputs(piece, f);
        fputc('\n', f);
        if (*p) fprintf(f, "%*s", ind, "");
    } while (*p);
}

/* The line in buf, trailing blanks removed, to f. */
static void put_trimmed(FILE *f, char *buf) {
    size_t n = strlen(buf);
    while (n && buf[n - 1] == ' ') buf[--n] = 0;
    fputs(buf, f);
    fputc('\n', f);
}

static size_t maxlen(size_t a, const char *s) {
    size_t n = strlen(s);
    return n > a ? n : a;
}

static const repro_exp *find_exp(const repro_table *t, const char *name) {
    for (size_t i = 0; i < t->n_exp; i++)
        if (!strcmp(t->e[i].name, name)) return &t->e[i];
    return NULL;
}

/* "N rows<what>: a PASS, b FAIL, c NOT COMPARABLE" */
static void counts_text(char *buf, size_t cap, const char *what, repro_counts c) {
    snprintf(buf, cap, "%zu %s%s: %zu PASS, %zu FAIL, %zu NOT COMPARABLE", c.rows, c.rows == 1 ? "row" : "rows", what,
             c.pass, c.fail, c.nc);
}

/* "N rows: ..." of the reproductions and/or "M rows fitted by construction: ..." */
static void claim_counts(const repro_table *t, const char *exp, const char *claim, char *buf, size_t cap) {
    repro_counts ev = repro_count(t, exp, claim, 0), fit = repro_count(t, exp, claim, 1);
    char a[160] = "", b[200] = "";
    if (ev.rows) counts_text(a, sizeof a, "", ev);
    if (fit.rows) counts_text(b, sizeof b, " fitted by construction", fit);
    snprintf(buf, cap, "%s%s%s", a, ev.rows && fit.rows ? "; " : "", b);
}

void repro_print_table(const repro_table *t, FILE *f, int width) {
    static const char *const hdr[] = {"metric", "published", "ours", "error", "verdict", "note"};
    if (width < 80) width = 80;
    int *note = calloc(t->n ? t->n : 1, sizeof *note);
    if (!note) return;
    /* notes: each distinct reason of a claim once, numbered in order */
    int n_notes = 0;
    for (size_t i = 0; i < t->n; i++) {
        const repro_row *r = &t->r[i];
        if (!r->reason[0]) continue;
        for (size_t j = i; j-- > 0 && !strcmp(t->r[j].exp, r->exp) && !strcmp(t->r[j].claim, r->claim);)
            if (!strcmp(t->r[j].reason, r->reason)) {
                note[i] = note[j];
                break;
            }
        if (!note[i]) note[i] = ++n_notes;
    }
    /* fitted rows show their verdict with a '*' (the claim line says what it means) */
    size_t pw = strlen(hdr[1]), ow = strlen(hdr[2]), dw = strlen(hdr[3]), vw = strlen(hdr[4]), nw = strlen(hdr[5]);
    for (size_t i = 0; i < t->n; i++) {
        pw = maxlen(pw, t->r[i].pub), ow = maxlen(ow, t->r[i].ours), dw = maxlen(dw, t->r[i].diff);
        vw = maxlen(vw, t->r[i].verdict);
        if (t->r[i].fitted) vw = maxlen(vw, "FAIL*");
    }
    /* rows: 2 spaces, the metric, then 2 spaces before each other column */
    size_t longest = strlen(hdr[0]);
    for (size_t i = 0; i < t->n; i++) longest = maxlen(longest, t->r[i].metric);
    int mw = width - 2 - (int)(pw + ow + dw + vw + nw) - 10;
    if (mw > (int)longest) mw = (int)longest;
    if (mw < 16) mw = 16;
    char line[4096], piece[256], verdict[24], nn[16];
    for (size_t i = 0; i < t->n; i++) {
        const repro_row *r = &t->r[i];
        if (i == 0 || strcmp(r->exp, t->r[i - 1].exp)) { /* experiment heading and the column header */
            const repro_exp *e = find_exp(t, r->exp);
            char head[600];
            int title = e && e->title[0], source = e && e->source[0];
            snprintf(head, sizeof head, "%s%s%s%s", title ? e->title : "", title && source ? " (" : "",
                     source ? e->source : "", title && source ? ")" : "");
            if (i) fputc('\n', f);
            char pre[64];
            snprintf(pre, sizeof pre, "== %s: ", r->exp);
            wrap(f, pre, head[0] ? head : "-", width);
            snprintf(line, sizeof line, "  %-*s  %-*s  %-*s  %-*s  %-*s  %s", mw, hdr[0], (int)pw, hdr[1], (int)ow,
                     hdr[2], (int)dw, hdr[3], (int)vw, hdr[4], hdr[5]);
            put_trimmed(f, line);
        }
        size_t c0 = i; /* first row of this claim */
        while (c0 > 0 && !strcmp(t->r[c0 - 1].exp, r->exp) && !strcmp(t->r[c0 - 1].claim, r->claim)) c0--;
        if (c0 == i) { /* claim line */
            repro_counts fit = repro_count(t, r->exp, r->claim, 1);
            char text[400];
            snprintf(text, sizeof text, "%s (%s)%s", r->claim, r->kind,
                     fit.rows ? ": * = fitted by construction, a check of the calibration, not evidence" : "");
            wrap(f, "", text, width);
        }
        snprintf(verdict, sizeof verdict, "%s%s", r->verdict, r->fitted ? "*" : "");
        nn[0] = 0;
        if (note[i]) snprintf(nn, sizeof nn, "%d", note[i]);
        const char *p = r->metric;
        next_piece(&p, mw, piece, sizeof piece);
        snprintf(line, sizeof line, "  %-*s  %-*s  %-*s  %-*s  %-*s  %s", mw, piece, (int)pw, r->pub, (int)ow, r->ours,
                 (int)dw, r->diff, (int)vw, verdict, nn);
        put_trimmed(f, line);
        while (*p) { /* the rest of a long metric, indented under it */
            next_piece(&p, mw - 2, piece, sizeof piece);
            snprintf(line, sizeof line, "    %s", piece);
            put_trimmed(f, line);
        }
        int last = i + 1 == t->n || strcmp(t->r[i + 1].exp, r->exp) || strcmp(t->r[i + 1].claim, r->claim);
        if (last) /* the claim's notes */
            for (size_t j = c0; j <= i; j++) {
                int first = 1; /* a note shared by several rows is printed at its first */
                for (size_t k = c0; k < j; k++) first &= note[k] != note[j];
                if (!note[j] || !first) continue;
                char pre[24];
                snprintf(pre, sizeof pre, "  [%d] ", note[j]);
                wrap(f, pre, t->r[j].reason, width);
            }
    }
    free(note);
    /* summary: one line per claim, then the totals */
    fprintf(f, "\nclaims\n");
    for (size_t i = 0; i < t->n; i++) {
        const repro_row *r = &t->r[i];
        int seen = 0;
        for (size_t j = 0; j < i && !seen; j++) seen = !strcmp(t->r[j].exp, r->exp) && !strcmp(t->r[j].claim, r->claim);
        if (seen) continue;
        char pre[120], text[400];
        snprintf(pre, sizeof pre, "  %s/%s: ", r->exp, r->claim);
        claim_counts(t, r->exp, r->claim, text, sizeof text);
        wrap(f, pre, text, width);
    }
    char text[300];
    repro_counts ev = repro_count(t, NULL, NULL, 0), fit = repro_count(t, NULL, NULL, 1);
    fprintf(f, "\n");
    counts_text(text, sizeof text, "", ev);
    wrap(f, "reproductions: ", text, width);
    counts_text(text, sizeof text, "", fit);
    wrap(f, "fitted by construction (not evidence): ", text, width);
    fprintf(f, "all: %zu %s\n", t->n, t->n == 1 ? "row" : "rows");
}

/* ---- CSV and JSON -------------------------------------------------------- */

static void csv_num(FILE *f, double v) {
    if (!isnan(v)) fprintf(f, "%.12g", v);
}

void repro_print_csv(const repro_table *t, FILE *f) {
    fputs("experiment,claim,kind,metric,published,ours,error,verdict,fitted,published_value,ours_value,reason,source\n", f);
    for (size_t i = 0; i < t->n; i++) {
        const repro_row *r = &t->r[i];
        const char *text[] = {r->exp, r->claim, r->kind, r->metric, r->pub, r->ours, r->diff, r->verdict};
        for (size_t k = 0; k < sizeof text / sizeof *text; k++) {
            if (k) fputc(',', f);
            cli_csv_field(f, text[k]);
        }
        fprintf(f, ",%d,", r->fitted);
        csv_num(f, r->pub_v);
        fputc(',', f);
        csv_num(f, r->ours_v);
        fputc(',', f);
        cli_csv_field(f, r->reason);
        fputc(',', f);
        cli_csv_field(f, r->source);
        fputc('\n', f);
    }
}

static void add_num(cJSON *o, const char *k, double v) {
    if (isnan(v)) cJSON_AddNullToObject(o, k);
    else cJSON_AddNumberToObject(o, k, v);
}

static void add_counts(cJSON *o, repro_counts c) {
    cJSON_AddNumberToObject(o, "rows", (double)c.rows);
    cJSON_AddNumberToObject(o, "pass", (double)c.pass);
    cJSON_AddNumberToObject(o, "fail", (double)c.fail);
    cJSON_AddNumberToObject(o, "not_comparable", (double)c.nc);
}

int repro_print_json(const repro_table *t, FILE *f) {
    cJSON *o = cJSON_CreateObject(), *rows = cJSON_AddArrayToObject(o, "rows"), *claims = cJSON_AddArrayToObject(o, "claims");
    for (size_t i = 0; i < t->n; i++) {
        const repro_row *r = &t->r[i];
        cJSON *x = cJSON_CreateObject();
        cJSON_AddItemToArray(rows, x);
        cJSON_AddStringToObject(x, "experiment", r->exp);
        cJSON_AddStringToObject(x, "claim", r->claim);
        cJSON_AddStringToObject(x, "kind", r->kind);
        cJSON_AddStringToObject(x, "metric", r->metric);
        cJSON_AddStringToObject(x, "published", r->pub);
        cJSON_AddStringToObject(x, "ours", r->ours);
        cJSON_AddStringToObject(x, "error", r->diff);
        cJSON_AddStringToObject(x, "verdict", r->verdict);
        cJSON_AddBoolToObject(x, "fitted", r->fitted);
        add_num(x, "published_value", r->pub_v);
        add_num(x, "ours_value", r->ours_v);
        cJSON_AddStringToObject(x, "reason", r->reason);
        cJSON_AddStringToObject(x, "source", r->source);
        int seen = 0;
        for (size_t j = 0; j < i && !seen; j++) seen = !strcmp(t->r[j].exp, r->exp) && !strcmp(t->r[j].claim, r->claim);
        if (seen) continue;
        cJSON *c = cJSON_CreateObject();
        cJSON_AddItemToArray(claims, c);
        cJSON_AddStringToObject(c, "experiment", r->exp);
        cJSON_AddStringToObject(c, "claim", r->claim);
        cJSON_AddStringToObject(c, "kind", r->kind);
        add_counts(cJSON_AddObjectToObject(c, "reproductions"), repro_count(t, r->exp, r->claim, 0));
        add_counts(cJSON_AddObjectToObject(c, "fitted"), repro_count(t, r->exp, r->claim, 1));
    }
    cJSON *tot = cJSON_AddObjectToObject(o, "totals");
    cJSON_AddNumberToObject(tot, "rows", (double)t->n);
    add_counts(cJSON_AddObjectToObject(tot, "reproductions"), repro_count(t, NULL, NULL, 0));
    add_counts(cJSON_AddObjectToObject(tot, "fitted"), repro_count(t, NULL, NULL, 1));
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (!s) return -1;
    fputs(s, f);
    fputc('\n', f);
    free(s);
    return 0;
}

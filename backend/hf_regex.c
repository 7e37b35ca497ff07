/* hf_regex.c: tokenizer.json's Oniguruma regexes, run on PCRE2.
 *
 * `tokenizers` compiles Split patterns with Oniguruma (UTF-8, its default
 * syntax). PCRE2 with UTF + UCP reads the patterns real tokenizers ship
 * (GPT-2's, Qwen2's, Llama-3's: \p{L}, \p{N}, (?i:...), lookahead) the same
 * way, with these differences, handled here:
 *   \s  Oniguruma: Unicode White_Space; PCRE2 also matches U+180E. Rewritten
 *       to the explicit White_Space set (\S to its complement).
 *   \v  Oniguruma: the vertical tab alone; PCRE2: any vertical space. Rewritten.
 *   ^ $ Oniguruma: always line anchors: PCRE2_MULTILINE.
 *   .   neither matches \n (PCRE2's newline is set to LF alone).
 * Escapes and groups whose meaning differs or that PCRE2 lacks (\h \w \b \u
 * \Q \K \R \X, back references, (?m) (?x) named groups, nested classes)
 * are refused with the reason, never guessed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "hf_tokenizer.h"

struct hf_regex {
    pcre2_code *code;
};

/* Unicode White_Space (PropList.txt), the set Oniguruma's \s matches. */
#define WS_SET "\\t-\\r \\x{85}\\x{a0}\\x{1680}\\x{2000}-\\x{200a}\\x{2028}\\x{2029}\\x{202f}\\x{205f}\\x{3000}"

static int refuse(char *why, size_t len, const char *fmt, size_t at) {
    snprintf(why, len, fmt, at);
    return -1;
}

/* Copy p[i..] up to and including the closing '}' of a \p{..} / \x{..}. */
static int copy_braced(hf_buf *o, const char *p, size_t n, size_t *i) {
    if (*i < n && p[*i] == '{') {
        const char *close = memchr(p + *i, '}', n - *i);
        if (!close) return -1;
        size_t k = (size_t)(close - (p + *i)) + 1;
        if (hf_buf_put(o, p + *i, k)) return -1;
        *i += k;
    }
    return 0;
}

static int translate(const char *p, size_t n, hf_buf *o, char *why, size_t wl) {
    int in_class = 0;
    for (size_t i = 0; i < n;) {
        char c = p[i];
        if (c == '\\') {
            if (i + 1 >= n) return refuse(why, wl, "a trailing backslash at byte %zu", i);
            char d = p[i + 1];
            i += 2;
            switch (d) {
            case 's':
                if ((in_class ? hf_buf_put(o, WS_SET, strlen(WS_SET)) : hf_buf_put(o, "[" WS_SET "]", strlen(WS_SET) + 2)))
                    return -1;
                continue;
            case 'S':
                if (in_class) return refuse(why, wl, "\\S inside a character class at byte %zu", i - 2);
                if (hf_buf_put(o, "[^" WS_SET "]", strlen(WS_SET) + 3)) return -1;
                continue;
            case 'v':
                if (hf_buf_put(o, "\\x0b", 4)) return -1;
                continue;
            case 'p':
            case 'P':
            case 'x':
                if (hf_buf_put(o, p + i - 2, 2) || copy_braced(o, p, n, &i)) return -1;
                continue;
            default:
                /* letters and digits whose meaning differs or is absent in PCRE2 */
                if (strchr("hHwWbBuUQEKRXNGkgcoOyY0123456789", d))
                    return refuse(why, wl, "an escape whose Oniguruma meaning is not kept, at byte %zu", i - 2);
                if (hf_buf_put(o, p + i - 2, 2)) return -1;
                continue;
            }
        }
        if (in_class) {
            if (c == '[') {
                if (i + 1 < n && p[i + 1] == ':') { /* a POSIX class [:alpha:] */
                    const char *end = strstr(p + i, ":]");
                    if (!end || (size_t)(end - p) >= n) return refuse(why, wl, "an unterminated [: at byte %zu", i);
                    size_t k = (size_t)(end - (p + i)) + 2;
                    if (hf_buf_put(o, p + i, k)) return -1;
                    i += k;
                    continue;
                }
                return refuse(why, wl, "a nested character class at byte %zu", i);
            }
            if (c == '&' && i + 1 < n && p[i + 1] == '&') return refuse(why, wl, "a class intersection && at byte %zu", i);
            if (c == ']') in_class = 0;
            if (hf_buf_put(o, &c, 1)) return -1;
            i++;
            continue;
        }
        if (c == '[') {
            in_class = 1;
            size_t k = 1;
            if (i + k < n && p[i + k] == '^') k++;
            if (i + k < n && p[i + k] == ']') k++; /* a ']' first is literal */
            if (hf_buf_put(o, p + i, k)) return -1;
            i += k;
            continue;
        }
        if (c == '(' && i + 1 < n && p[i + 1] == '?') {
            const char *g = p + i + 2;
            size_t left = n - i - 2;
            int ok = (left >= 1 && strchr(":=!>", g[0])) || (left >= 2 && g[0] == '<' && (g[1] == '=' || g[1] == '!'));
            if (!ok) { /* inline flags: only i (case folding means the same in both) */
                size_t k = 0;
                while (k < left && (g[k] == 'i' || g[k] == '-')) k++;
                ok = k > 0 && k < left && (g[k] == ':' || g[k] == ')');
            }
            if (!ok) return refuse(why, wl, "a group kind other than (?: (?= (?! (?<= (?<! (?> (?i at byte %zu", i);
        }
        if (hf_buf_put(o, &c, 1)) return -1;
        i++;
    }
    if (in_class) return refuse(why, wl, "an unterminated character class (pattern of %zu bytes)", n);
    return 0;
}

hf_regex *hf_regex_compile(const char *pattern, size_t len, int literal, char *why, size_t why_len) {
    hf_buf o = {0};
    why[0] = 0;
    if (literal ? hf_buf_put(&o, pattern, len) : translate(pattern, len, &o, why, why_len)) {
        if (!why[0]) snprintf(why, why_len, "out of memory");
        free(o.p);
        return NULL;
    }
    hf_regex *re = calloc(1, sizeof *re);
    pcre2_compile_context *cc = pcre2_compile_context_create(NULL);
    if (!re || !cc) {
        snprintf(why, why_len, "out of memory");
        free(re), free(o.p);
        pcre2_compile_context_free(cc);
        return NULL;
    }
    pcre2_set_newline(cc, PCRE2_NEWLINE_LF);
    int code;
    PCRE2_SIZE at;
    /* PCRE2_LITERAL takes no UCP / MULTILINE (nor needs them) */
    uint32_t opts = literal ? PCRE2_UTF | PCRE2_LITERAL : PCRE2_UTF | PCRE2_UCP | PCRE2_MULTILINE;
    re->code = pcre2_compile((PCRE2_SPTR)(o.p ? o.p : ""), o.n, opts, &code, &at, cc);
    pcre2_compile_context_free(cc);
    free(o.p);
    if (!re->code) {
        PCRE2_UCHAR msg[160];
        pcre2_get_error_message(code, msg, sizeof msg);
        snprintf(why, why_len, "PCRE2 cannot compile it: %s", (const char *)msg);
        free(re);
        return NULL;
    }
    (void)pcre2_jit_compile(re->code, PCRE2_JIT_COMPLETE); /* faster when available; the interpreter otherwise */
    return re;
}

void hf_regex_free(hf_regex *re) {
    if (!re) return;
    pcre2_code_free(re->code);
    free(re);
}

int hf_regex_find_all(const hf_regex *re, const char *s, size_t n, hf_span **spans, size_t *n_spans, moe_error *err) {
    *spans = NULL, *n_spans = 0;
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(re->code, NULL);
    if (!md) return moe_fail(err, "out of memory");
    size_t cap = 0, pos = 0, last_end = (size_t)-1;
    int rc = 0;
    while (pos <= n) {
        int r = pcre2_match(re->code, (PCRE2_SPTR)s, n, pos, PCRE2_NO_UTF_CHECK, md, NULL);
        if (r == PCRE2_ERROR_NOMATCH) break;
        if (r < 0) {
            PCRE2_UCHAR msg[160];
            pcre2_get_error_message(r, msg, sizeof msg);
            rc = moe_fail(err, "regex match failed at byte %zu: %s", pos, (const char *)msg);
            break;
        }
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        size_t a = ov[0], b = ov[1];
        if (a == b) {
            /* an empty match: the next search starts one character on, and an
             * empty match right where the last match ended is not reported
             * (the iteration `tokenizers` inherits from Rust's regex crate) */
            size_t step = b < n ? hf_utf8_len((const unsigned char *)s + b, n - b) : 1;
            pos = b + (step ? step : 1);
            if (b == last_end) continue;
        } else pos = b;
        last_end = b;
        if (*n_spans == cap) {
            size_t nc = cap ? 2 * cap : 16;
            hf_span *q = realloc(*spans, nc * sizeof *q);
            if (!q) {
                rc = moe_fail(err, "out of memory");
                break;
            }
            *spans = q, cap = nc;
        }
        (*spans)[(*n_spans)++] = (hf_span){a, b};
    }
    pcre2_match_data_free(md);
    if (rc) {
        free(*spans);
        *spans = NULL, *n_spans = 0;
    }
    return rc;
}

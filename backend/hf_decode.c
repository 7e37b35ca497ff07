/* hf_decode.c: ids back to bytes, one token at a time, so generated text
 * can be printed as it comes.
 *
 * The decoders `tokenizers` runs over the whole list of token strings act
 * token by token up to the first that fuses the list (Fuse, ByteLevel);
 * after it only Strip's "start" is allowed (hf_load.c refuses the rest), and
 * that is applied to the stream: characters are dropped from the start of
 * the output until another character has been written. So the bytes written
 * for a sequence equal `tokenizers`' decode of it, with one difference kept
 * on purpose: where ByteFallback's byte tokens do not form valid UTF-8, the
 * library writes U+FFFD for each and this writes the bytes themselves. */
#include <stdlib.h>
#include <string.h>

#include "hf_tokenizer.h"

void hf_detok_init(hf_detok *d, const hf_tokenizer *t) {
    memset(d, 0, sizeof *d);
    int fused = 0;
    for (int k = 0; k < t->n_dec; k++) {
        const hf_dec *x = &t->dec[k];
        if (x->kind == HF_DEC_FUSE || x->kind == HF_DEC_BYTELEVEL) fused = 1;
        else if (x->kind == HF_DEC_STRIP && fused) d->strip_left = x->start;
    }
}

static int hexval(char c) {
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* "<0xNN>" -> the byte, else -1 (Rust's from_str_radix, which also takes a
 * '+' in front of a single digit). */
static int byte_token(const char *s, size_t n) {
    if (n != 6 || memcmp(s, "<0x", 3) || s[5] != '>') return -1;
    int hi = s[3] == '+' ? 0 : hexval(s[3]), lo = hexval(s[4]);
    return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
}

/* One token-level decoder on cur (replaced in place). */
static int apply(const hf_tokenizer *t, const hf_dec *x, size_t index, hf_buf *cur) {
    hf_buf o = {0};
    int bad = hf_buf_put(&o, "", 0);
    const char *s = cur->p;
    size_t n = cur->n;
    switch (x->kind) {
    case HF_DEC_REPLACE:
        for (size_t i = 0; i < n && !bad;) {
            if (x->na && x->na <= n - i && !memcmp(s + i, x->a, x->na)) {
                bad = hf_buf_put(&o, x->b, x->nb);
                i += x->na;
            } else bad = hf_buf_put(&o, s + i++, 1);
        }
        break;
    case HF_DEC_BYTEFALLBACK: {
        int b = byte_token(s, n);
        char c = (char)b;
        bad = b >= 0 ? hf_buf_put(&o, &c, 1) : hf_buf_put(&o, s, n);
        break;
    }
    case HF_DEC_METASPACE: /* the first token loses its replacement characters (the prepended space) */
        for (size_t i = 0; i < n && !bad;) {
            if (x->nrep <= n - i && !memcmp(s + i, x->rep, x->nrep)) {
                if (!(index == 0 && x->prepend != HF_PREPEND_NEVER)) bad = hf_buf_put(&o, " ", 1);
                i += x->nrep;
            } else bad = hf_buf_put(&o, s + i++, 1);
        }
        break;
    case HF_DEC_STRIP: { /* per token: up to start leading and stop trailing copies */
        size_t a = 0, b = n;
        while (a < (size_t)x->start && a < n && s[a] == x->strip_c) a++;
        for (int k = 0; k < x->stop && b > a && s[b - 1] == x->strip_c; k++) b--;
        bad = hf_buf_put(&o, s + a, b - a);
        break;
    }
    case HF_DEC_BYTELEVEL: { /* every character back to its byte, or the token as it is */
        size_t i = 0;
        while (i < n && !bad) {
            size_t k = hf_utf8_len((const unsigned char *)s + i, n - i);
            int cp = k == 1 ? (unsigned char)s[i] : k == 2 ? ((s[i] & 0x1f) << 6 | (s[i + 1] & 0x3f)) : 0x144;
            if (cp >= 0x144 || t->bl_byte[cp] < 0) break;
            char c = (char)t->bl_byte[cp];
            bad = hf_buf_put(&o, &c, 1);
            i += k;
        }
        if (!bad && i < n) o.n = 0, bad = hf_buf_put(&o, s, n);
        break;
    }
    default: bad = hf_buf_put(&o, s, n); /* Fuse: nothing per token */
    }
    free(cur->p);
    *cur = o;
    return bad ? -1 : 0;
}

int hf_detok_next(const hf_tokenizer *t, hf_detok *d, int32_t id, hf_buf *out) {
    if (id < 0 || id >= t->n_ids || !t->id_str[id]) return 1;
    const char *s = t->id_str[id];
    size_t n = t->id_len[id];
    if (!t->has_decoder) { /* the library joins the tokens with spaces */
        int bad = (d->index && hf_buf_put(out, " ", 1)) || hf_buf_put(out, s, n);
        d->index++;
        return bad ? -1 : 0;
    }
    hf_buf cur = {0};
    if (hf_buf_put(&cur, s, n)) return -1;
    int whole = 0;
    for (int k = 0; k < t->n_dec && !whole; k++) {
        if (apply(t, &t->dec[k], d->index, &cur)) {
            free(cur.p);
            return -1;
        }
        whole = t->dec[k].kind == HF_DEC_FUSE || t->dec[k].kind == HF_DEC_BYTELEVEL;
    }
    size_t skip = 0;
    const hf_dec *strip = NULL;
    for (int k = 0; k < t->n_dec; k++)
        if (t->dec[k].kind == HF_DEC_STRIP) strip = &t->dec[k]; /* the whole-text one, if any, is the last */
    while (d->strip_left > 0 && skip < cur.n && cur.p[skip] == strip->strip_c) skip++, d->strip_left--;
    if (skip < cur.n) d->strip_left = 0; /* something else was written: the start is behind us */
    int bad = hf_buf_put(out, cur.p + skip, cur.n - skip);
    free(cur.p);
    d->index++;
    return bad ? -1 : 0;
}

/* hf_load.c: tokenizer.json into an hf_tokenizer, with everything the
 * encoder and decoder rely on checked here: what hf_tokenizer.h lists as
 * supported loads, anything else is refused with the file, the JSON path
 * and the reason, so a tokenizer is never run with a part ignored. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hf_tokenizer.h"
#include "readfile.h"

/* The largest tokenizer.json shipped today is tens of MB and the largest
 * vocabulary about 256 k; ids past 2^24 (16 M) would only mean id tables of
 * hundreds of MB. */
#define HF_MAX_FILE (512u << 20)
#define HF_MAX_ID (1 << 24)

/* GPT-2's pre-tokenizer regex, which ByteLevel uses when use_regex is set. */
static const char gpt2_regex[] = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

typedef struct loader {
    hf_tokenizer *t;
    moe_error *err;
    int whole_strips; /* Strips after the tokens are fused */
} loader;

static int fail(loader *L, const char *jpath, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(loader *L, const char *jpath, const char *fmt, ...) {
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return moe_fail(L->err, "%s: %s: %s", L->t->path, jpath, msg);
}

static char *dup_n(const char *s, size_t n) {
    char *c = malloc(n + 1);
    if (c) memcpy(c, s, n), c[n] = 0;
    return c;
}

/* A JSON field that must be a bool if present (absent or null: dflt). */
static int get_bool(loader *L, const cJSON *o, const char *key, int dflt, int *out, const char *jpath) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v || cJSON_IsNull(v)) return *out = dflt, 0;
    if (!cJSON_IsBool(v)) return fail(L, jpath, "'%s' must be true or false", key);
    *out = cJSON_IsTrue(v);
    return 0;
}

static int get_int(loader *L, const cJSON *v, int lo, int hi, int *out, const char *jpath) {
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) || v->valuedouble < lo || v->valuedouble > hi)
        return fail(L, jpath, "expected an integer in [%d, %d]", lo, hi);
    *out = (int)v->valuedouble;
    return 0;
}

/* A string field; NULL (and err set when required) if absent. */
static const char *get_str(loader *L, const cJSON *o, const char *key, int required, const char *jpath) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (cJSON_IsString(v)) {
        size_t n = strlen(v->valuestring);
        if (hf_utf8_check(v->valuestring, n) < n) {
            fail(L, jpath, "'%s' is not valid UTF-8", key);
            return NULL;
        }
        return v->valuestring;
    }
    if (required || (v && !cJSON_IsNull(v))) fail(L, jpath, "'%s' must be a string", key);
    return NULL;
}

static const char *type_of(loader *L, const cJSON *o, const char *jpath) {
    if (!cJSON_IsObject(o)) {
        fail(L, jpath, "expected an object");
        return NULL;
    }
    return get_str(L, o, "type", 1, jpath);
}

/* A "pattern": {"String": s} (or {"Regex": r} when regex_ok). */
static const char *get_pattern(loader *L, const cJSON *o, int regex_ok, int *is_regex, const char *jpath) {
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(o, "pattern");
    const char *s = cJSON_IsObject(p) ? get_str(L, p, "String", 0, jpath) : NULL;
    *is_regex = 0;
    if (!s && cJSON_IsObject(p) && regex_ok && (s = get_str(L, p, "Regex", 0, jpath))) *is_regex = 1;
    if (!s && !L->err->msg[0])
        fail(L, jpath, "'pattern' must be {\"String\": ...}%s", regex_ok ? " or {\"Regex\": ...}" : " (regex patterns are not supported here)");
    if (s && !*s) {
        fail(L, jpath, "an empty pattern is not supported");
        return NULL;
    }
    return s;
}

/* One character (a Metaspace replacement) as UTF-8 into out. */
static int get_char(loader *L, const cJSON *o, const char *key, char out[8], size_t *n, const char *jpath) {
    const char *s = get_str(L, o, key, 1, jpath);
    if (!s) return -1;
    size_t len = strlen(s);
    if (!len || hf_utf8_len((const unsigned char *)s, len) != len) return fail(L, jpath, "'%s' must be one character", key);
    memcpy(out, s, len);
    *n = len;
    return 0;
}

static int prepend_scheme(loader *L, const cJSON *o, int *out, const char *jpath) {
    const char *s = get_str(L, o, "prepend_scheme", 0, jpath);
    if (!s && L->err->msg[0]) return -1;
    *out = !s || !strcmp(s, "always") ? HF_PREPEND_ALWAYS : !strcmp(s, "first") ? HF_PREPEND_FIRST
                                                            : !strcmp(s, "never") ? HF_PREPEND_NEVER : -1;
    if (*out < 0) return fail(L, jpath, "prepend_scheme '%s' (always, first, never)", s);
    int aps;
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, "add_prefix_space");
    if (get_bool(L, o, "add_prefix_space", 1, &aps, jpath)) return -1;
    if (v && !cJSON_IsNull(v) && !aps) { /* the older spelling of "never" */
        if (s && *out != HF_PREPEND_NEVER) return fail(L, jpath, "add_prefix_space false contradicts prepend_scheme '%s'", s);
        *out = HF_PREPEND_NEVER;
    }
    return 0;
}

/* ---- model ---- */

static int add_vocab(loader *L, const cJSON *vocab) {
    hf_bpe *m = &L->t->bpe;
    if (!cJSON_IsObject(vocab)) return fail(L, "$.model.vocab", "expected an object of token -> id");
    size_t n = 0;
    for (const cJSON *e = vocab->child; e; e = e->next) n++;
    m->str = calloc(n ? n : 1, sizeof *m->str);
    m->id = malloc((n ? n : 1) * sizeof *m->id);
    if (!m->str || !m->id) return moe_fail(L->err, "out of memory");
    for (const cJSON *e = vocab->child; e; e = e->next) {
        char jp[96];
        snprintf(jp, sizeof jp, "$.model.vocab['%.60s']", e->string);
        int id;
        if (get_int(L, e, 0, HF_MAX_ID - 1, &id, jp)) return -1;
        size_t len = strlen(e->string);
        if (hf_utf8_check(e->string, len) < len) return fail(L, jp, "the token is not valid UTF-8");
        if (moe_strindex_find(&m->index, m->str, e->string) >= 0) return fail(L, jp, "listed twice");
        if (!(m->str[m->n] = dup_n(e->string, len))) return moe_fail(L->err, "out of memory");
        m->id[m->n] = id;
        if (moe_strindex_add(&m->index, m->str, m->n)) return moe_fail(L->err, "out of memory");
        m->n++;
        if (id >= L->t->n_ids) L->t->n_ids = id + 1;
    }
    return 0;
}

static int add_merges(loader *L, const cJSON *merges) {
    hf_bpe *m = &L->t->bpe;
    if (!cJSON_IsArray(merges)) return fail(L, "$.model.merges", "expected an array");
    int pairs = merges->child && cJSON_IsArray(merges->child);
    uint32_t rank = 0;
    int i = 0;
    for (const cJSON *e = merges->child; e; e = e->next, i++) {
        char jp[48], *buf = NULL;
        snprintf(jp, sizeof jp, "$.model.merges[%d]", i);
        const char *a, *b;
        if (pairs) { /* ["a", "b"] */
            if (!cJSON_IsArray(e) || cJSON_GetArraySize(e) != 2 || !cJSON_IsString(e->child) ||
                !cJSON_IsString(e->child->next))
                return fail(L, jp, "expected a pair of strings, as the merges before it");
            a = e->child->valuestring, b = e->child->next->valuestring;
        } else { /* "a b" */
            if (!cJSON_IsString(e)) return fail(L, jp, "expected a string \"a b\", as the merges before it");
            if (!strncmp(e->valuestring, "#version", 8)) continue; /* a header line, not a merge */
            const char *sp = strchr(e->valuestring, ' ');
            if (!sp || strchr(sp + 1, ' ')) return fail(L, jp, "'%.60s' is not two tokens separated by one space", e->valuestring);
            if (!(buf = dup_n(e->valuestring, strlen(e->valuestring)))) return moe_fail(L->err, "out of memory");
            buf[sp - e->valuestring] = 0;
            a = buf, b = buf + (sp - e->valuestring) + 1;
        }
        size_t na = strlen(a), nb = strlen(b);
        int32_t ia = hf_bpe_find(m, a, na), ib = hf_bpe_find(m, b, nb);
        char *joined = malloc(na + nb + 1);
        int32_t inew = -1;
        if (joined) {
            memcpy(joined, a, na), memcpy(joined + na, b, nb), joined[na + nb] = 0;
            inew = hf_bpe_find(m, joined, na + nb);
        }
        int rc = 0;
        if (!joined) rc = moe_fail(L->err, "out of memory");
        else if (ia < 0 || ib < 0) rc = fail(L, jp, "token '%.60s' is not in the vocabulary", ia < 0 ? a : b);
        else if (inew < 0) rc = fail(L, jp, "the merged token '%.60s' is not in the vocabulary", joined);
        else if (hf_bpe_add_merge(m, ia, ib, rank++, inew)) rc = moe_fail(L->err, "out of memory");
        free(joined);
        free(buf);
        if (rc) return -1;
    }
    return 0;
}

static int load_model(loader *L, const cJSON *model) {
    hf_bpe *m = &L->t->bpe;
    m->unk = -1;
    for (int b = 0; b < 256; b++) m->byte_tok[b] = -1;
    const char *type = type_of(L, model, "$.model");
    if (!type) return -1;
    if (strcmp(type, "BPE")) return fail(L, "$.model.type", "model '%s' is not supported (BPE only)", type);
    const cJSON *dropout = cJSON_GetObjectItemCaseSensitive(model, "dropout");
    if (dropout && !cJSON_IsNull(dropout) && !(cJSON_IsNumber(dropout) && dropout->valuedouble == 0))
        return fail(L, "$.model.dropout", "BPE dropout (random merges) is not supported");
    const char *fix[2] = {"continuing_subword_prefix", "end_of_word_suffix"};
    for (int k = 0; k < 2; k++) {
        const char *s = get_str(L, model, fix[k], 0, "$.model");
        if (L->err->msg[0]) return -1;
        if (s && *s) return fail(L, "$.model", "'%s' \"%.20s\" is not supported", fix[k], s);
    }
    if (get_bool(L, model, "fuse_unk", 0, &m->fuse_unk, "$.model") ||
        get_bool(L, model, "byte_fallback", 0, &m->byte_fallback, "$.model") ||
        get_bool(L, model, "ignore_merges", 0, &m->ignore_merges, "$.model") ||
        add_vocab(L, cJSON_GetObjectItemCaseSensitive(model, "vocab")) ||
        add_merges(L, cJSON_GetObjectItemCaseSensitive(model, "merges")))
        return -1;
    const char *unk = get_str(L, model, "unk_token", 0, "$.model");
    if (L->err->msg[0]) return -1;
    if (unk && (m->unk = hf_bpe_find(m, unk, strlen(unk))) < 0)
        return fail(L, "$.model.unk_token", "'%.60s' is not in the vocabulary", unk);
    for (int b = 0; b < 256; b++) {
        char name[8];
        snprintf(name, sizeof name, "<0x%02X>", b);
        m->byte_tok[b] = hf_bpe_find(m, name, 6);
    }
    return 0;
}

/* ---- normalizers, pre-tokenizers, post-processor, decoders ---- */

static int load_normalizer(loader *L, const cJSON *o, const char *jpath) {
    if (!o || cJSON_IsNull(o)) return 0;
    const char *type = type_of(L, o, jpath);
    if (!type) return -1;
    char jp[256];
    if (!strcmp(type, "Sequence")) {
        const cJSON *list = cJSON_GetObjectItemCaseSensitive(o, "normalizers");
        if (!cJSON_IsArray(list)) return fail(L, jpath, "'normalizers' must be an array");
        int i = 0;
        for (const cJSON *e = list->child; e; e = e->next, i++) {
            snprintf(jp, sizeof jp, "%s.normalizers[%d]", jpath, i);
            if (load_normalizer(L, e, jp)) return -1;
        }
        return 0;
    }
    hf_tokenizer *t = L->t;
    hf_norm *q = realloc(t->norms, (size_t)(t->n_norms + 1) * sizeof *q);
    if (!q) return moe_fail(L->err, "out of memory");
    t->norms = q;
    hf_norm *z = &t->norms[t->n_norms];
    memset(z, 0, sizeof *z);
    if (!strcmp(type, "NFC")) z->kind = HF_NORM_NFC;
    else if (!strcmp(type, "Prepend")) {
        const char *s = get_str(L, o, "prepend", 1, jpath);
        if (!s) return -1;
        z->kind = HF_NORM_PREPEND, z->na = strlen(s);
        if (!(z->a = dup_n(s, z->na))) return moe_fail(L->err, "out of memory");
    } else if (!strcmp(type, "Replace")) {
        int re;
        const char *a = get_pattern(L, o, 0, &re, jpath), *b = a ? get_str(L, o, "content", 1, jpath) : NULL;
        if (!a || !b) return -1;
        z->kind = HF_NORM_REPLACE, z->na = strlen(a), z->nb = strlen(b);
        if (!(z->a = dup_n(a, z->na)) || !(z->b = dup_n(b, z->nb))) {
            free(z->a), free(z->b);
            return moe_fail(L->err, "out of memory");
        }
    } else
        return fail(L, jpath, "normalizer '%s' is not supported (NFC, Prepend, Replace, Sequence)", type);
    t->n_norms++;
    return 0;
}

static int compile(loader *L, hf_regex **re, const char *pattern, int literal, const char *jpath) {
    char why[200];
    if (!(*re = hf_regex_compile(pattern, strlen(pattern), literal, why, sizeof why)))
        return fail(L, jpath, "pattern '%.80s': %s", pattern, why);
    return 0;
}

static const char *const behaviors[] = {"Removed", "Isolated", "MergedWithPrevious", "MergedWithNext", "Contiguous"};

static int load_pretok(loader *L, const cJSON *o, const char *jpath) {
    if (!o || cJSON_IsNull(o)) return 0;
    const char *type = type_of(L, o, jpath);
    if (!type) return -1;
    char jp[256];
    if (!strcmp(type, "Sequence")) {
        const cJSON *list = cJSON_GetObjectItemCaseSensitive(o, "pretokenizers");
        if (!cJSON_IsArray(list)) return fail(L, jpath, "'pretokenizers' must be an array");
        int i = 0;
        for (const cJSON *e = list->child; e; e = e->next, i++) {
            snprintf(jp, sizeof jp, "%s.pretokenizers[%d]", jpath, i);
            if (load_pretok(L, e, jp)) return -1;
        }
        return 0;
    }
    hf_tokenizer *t = L->t;
    hf_pretok *q = realloc(t->pre, (size_t)(t->n_pre + 1) * sizeof *q);
    if (!q) return moe_fail(L->err, "out of memory");
    t->pre = q;
    hf_pretok *p = &t->pre[t->n_pre];
    memset(p, 0, sizeof *p);
    if (!strcmp(type, "ByteLevel")) {
        int use_regex;
        p->kind = HF_PRE_BYTELEVEL;
        if (get_bool(L, o, "add_prefix_space", 1, &p->add_prefix_space, jpath) ||
            get_bool(L, o, "use_regex", 1, &use_regex, jpath) || (use_regex && compile(L, &p->re, gpt2_regex, 0, jpath)))
            return -1;
    } else if (!strcmp(type, "Split")) {
        int is_regex;
        const char *pat = get_pattern(L, o, 1, &is_regex, jpath), *beh = pat ? get_str(L, o, "behavior", 1, jpath) : NULL;
        if (!pat || !beh) return -1;
        p->kind = HF_PRE_SPLIT, p->behavior = -1;
        for (int k = 0; k < 5; k++)
            if (!strcmp(beh, behaviors[k])) p->behavior = k;
        if (p->behavior < 0) return fail(L, jpath, "behavior '%.40s' is not one of the library's five", beh);
        if (get_bool(L, o, "invert", 0, &p->invert, jpath) || compile(L, &p->re, pat, !is_regex, jpath)) return -1;
    } else if (!strcmp(type, "Metaspace")) {
        p->kind = HF_PRE_METASPACE;
        if (get_char(L, o, "replacement", p->rep, &p->nrep, jpath) || prepend_scheme(L, o, &p->prepend, jpath) ||
            get_bool(L, o, "split", 1, &p->split, jpath))
            return -1;
    } else
        return fail(L, jpath, "pre-tokenizer '%s' is not supported (ByteLevel, Split, Metaspace, Sequence)", type);
    t->n_pre++;
    return 0;
}

static int load_template(loader *L, const cJSON *o, const char *jpath) {
    hf_tokenizer *t = L->t;
    if (t->tmpl) return fail(L, jpath, "a second TemplateProcessing");
    const cJSON *single = cJSON_GetObjectItemCaseSensitive(o, "single"), *sp = cJSON_GetObjectItemCaseSensitive(o, "special_tokens");
    if (!cJSON_IsArray(single)) return fail(L, jpath, "'single' must be an array");
    if (!cJSON_IsObject(sp)) return fail(L, jpath, "'special_tokens' must be an object");
    int seen_a = 0, i = 0;
    char jp[256];
    t->tmpl = malloc(sizeof *t->tmpl); /* marks the template as present even when it adds nothing */
    if (!t->tmpl) return moe_fail(L->err, "out of memory");
    for (const cJSON *e = single->child; e; e = e->next, i++) {
        snprintf(jp, sizeof jp, "%s.single[%d]", jpath, i);
        const cJSON *seq = cJSON_GetObjectItemCaseSensitive(e, "Sequence"), *st = cJSON_GetObjectItemCaseSensitive(e, "SpecialToken");
        if (seq) {
            const char *id = get_str(L, seq, "id", 1, jp);
            if (!id) return -1;
            if (strcmp(id, "A") || seen_a) return fail(L, jp, "a single-sequence template holds $A once (found $%.10s)", id);
            seen_a = 1;
            t->n_tmpl_before = t->n_tmpl;
            continue;
        }
        const char *name = cJSON_IsObject(st) ? get_str(L, st, "id", 1, jp) : NULL;
        if (!name) return L->err->msg[0] ? -1 : fail(L, jp, "expected {\"Sequence\": ...} or {\"SpecialToken\": ...}");
        const cJSON *def = cJSON_GetObjectItemCaseSensitive(sp, name), *ids = cJSON_GetObjectItemCaseSensitive(def, "ids");
        if (!cJSON_IsArray(ids)) return fail(L, jp, "special token '%.40s' has no \"ids\" in special_tokens", name);
        for (const cJSON *x = ids->child; x; x = x->next) {
            int id;
            if (get_int(L, x, 0, HF_MAX_ID - 1, &id, jp)) return -1;
            int32_t *q = realloc(t->tmpl, (size_t)(t->n_tmpl + 1) * sizeof *q);
            if (!q) return moe_fail(L->err, "out of memory");
            t->tmpl = q;
            t->tmpl[t->n_tmpl++] = id;
            if (id >= t->n_ids) t->n_ids = id + 1;
        }
    }
    if (!seen_a) return fail(L, jpath, "'single' has no $A");
    return 0;
}

static int load_post(loader *L, const cJSON *o, const char *jpath) {
    if (!o || cJSON_IsNull(o)) return 0;
    const char *type = type_of(L, o, jpath);
    if (!type) return -1;
    if (!strcmp(type, "ByteLevel")) return 0; /* offsets only; the ids are left alone */
    if (!strcmp(type, "TemplateProcessing")) return load_template(L, o, jpath);
    if (!strcmp(type, "Sequence")) {
        const cJSON *list = cJSON_GetObjectItemCaseSensitive(o, "processors");
        if (!cJSON_IsArray(list)) return fail(L, jpath, "'processors' must be an array");
        int i = 0;
        char jp[256];
        for (const cJSON *e = list->child; e; e = e->next, i++) {
            snprintf(jp, sizeof jp, "%s.processors[%d]", jpath, i);
            if (load_post(L, e, jp)) return -1;
        }
        return 0;
    }
    return fail(L, jpath, "post-processor '%s' is not supported (ByteLevel, TemplateProcessing, Sequence)", type);
}

static int load_decoder(loader *L, const cJSON *o, const char *jpath, int *fused) {
    if (!o || cJSON_IsNull(o)) return 0;
    const char *type = type_of(L, o, jpath);
    if (!type) return -1;
    char jp[256];
    hf_tokenizer *t = L->t;
    t->has_decoder = 1;
    if (!strcmp(type, "Sequence")) {
        const cJSON *list = cJSON_GetObjectItemCaseSensitive(o, "decoders");
        if (!cJSON_IsArray(list)) return fail(L, jpath, "'decoders' must be an array");
        int i = 0;
        for (const cJSON *e = list->child; e; e = e->next, i++) {
            snprintf(jp, sizeof jp, "%s.decoders[%d]", jpath, i);
            if (load_decoder(L, e, jp, fused)) return -1;
        }
        return 0;
    }
    hf_dec *q = realloc(t->dec, (size_t)(t->n_dec + 1) * sizeof *q);
    if (!q) return moe_fail(L->err, "out of memory");
    t->dec = q;
    hf_dec *x = &t->dec[t->n_dec];
    memset(x, 0, sizeof *x);
    /* Decoders after the list is fused act on the whole text: only a Strip
     * of the start can be applied to text printed as it comes. */
    if (*fused && strcmp(type, "Strip")) return fail(L, jpath, "decoder '%s' after the tokens are fused is not supported", type);
    if (!strcmp(type, "ByteLevel")) x->kind = HF_DEC_BYTELEVEL, *fused = 1;
    else if (!strcmp(type, "Fuse")) x->kind = HF_DEC_FUSE, *fused = 1;
    else if (!strcmp(type, "ByteFallback")) x->kind = HF_DEC_BYTEFALLBACK;
    else if (!strcmp(type, "Metaspace")) {
        for (int k = 0; k < t->n_dec; k++) /* its "first token" must be the sequence's first */
            if (t->dec[k].kind == HF_DEC_BYTEFALLBACK) return fail(L, jpath, "Metaspace after ByteFallback is not supported");
        x->kind = HF_DEC_METASPACE;
        if (get_char(L, o, "replacement", x->rep, &x->nrep, jpath) || prepend_scheme(L, o, &x->prepend, jpath)) return -1;
    } else if (!strcmp(type, "Replace")) {
        int re;
        const char *a = get_pattern(L, o, 0, &re, jpath), *b = a ? get_str(L, o, "content", 1, jpath) : NULL;
        if (!a || !b) return -1;
        x->kind = HF_DEC_REPLACE, x->na = strlen(a), x->nb = strlen(b);
        if (!(x->a = dup_n(a, x->na)) || !(x->b = dup_n(b, x->nb))) {
            free(x->a), free(x->b);
            return moe_fail(L->err, "out of memory");
        }
    } else if (!strcmp(type, "Strip")) {
        const char *c = get_str(L, o, "content", 1, jpath);
        if (!c) return -1;
        if (strlen(c) != 1 || (unsigned char)c[0] >= 0x80) return fail(L, jpath, "Strip of '%.8s': only one ASCII character is supported", c);
        x->kind = HF_DEC_STRIP, x->strip_c = c[0];
        if (get_int(L, cJSON_GetObjectItemCaseSensitive(o, "start"), 0, 1 << 20, &x->start, jpath) ||
            get_int(L, cJSON_GetObjectItemCaseSensitive(o, "stop"), 0, 1 << 20, &x->stop, jpath))
            return -1;
        if (*fused) {
            if (x->stop) return fail(L, jpath, "Strip of the end of the whole text is not supported");
            if (L->whole_strips++) return fail(L, jpath, "a second Strip after the tokens are fused is not supported");
        }
    } else
        return fail(L, jpath, "decoder '%s' is not supported (ByteLevel, Metaspace, Replace, ByteFallback, Fuse, Strip, Sequence)", type);
    t->n_dec++;
    return 0;
}

/* ---- added tokens ---- */

static int load_added(loader *L, const cJSON *list) {
    hf_tokenizer *t = L->t;
    if (!list || cJSON_IsNull(list)) return 0;
    if (!cJSON_IsArray(list)) return fail(L, "$.added_tokens", "expected an array");
    int n = cJSON_GetArraySize(list), i = 0;
    t->added = calloc((size_t)(n ? n : 1), sizeof *t->added);
    if (!t->added) return moe_fail(L->err, "out of memory");
    int32_t next_id = (int32_t)t->bpe.n; /* where the library numbers tokens new to the vocabulary */
    for (const cJSON *e = list->child; e; e = e->next, i++) {
        char jp[64];
        snprintf(jp, sizeof jp, "$.added_tokens[%d]", i);
        const char *content = cJSON_IsObject(e) ? get_str(L, e, "content", 1, jp) : NULL;
        if (!content) return L->err->msg[0] ? -1 : fail(L, jp, "expected an object");
        hf_added *a = &t->added[t->n_added];
        int single, id;
        if (get_int(L, cJSON_GetObjectItemCaseSensitive(e, "id"), 0, HF_MAX_ID - 1, &id, jp) ||
            get_bool(L, e, "single_word", 0, &single, jp) || get_bool(L, e, "lstrip", 0, &a->lstrip, jp) ||
            get_bool(L, e, "rstrip", 0, &a->rstrip, jp) || get_bool(L, e, "normalized", 1, &a->normalized, jp) ||
            get_bool(L, e, "special", 0, &a->special, jp))
            return -1;
        if (single) return fail(L, jp, "single_word added tokens are not supported ('%.40s')", content);
        if (!*content) continue; /* the library ignores empty ones */
        for (int k = 0; k < t->n_added; k++)
            if (!strcmp(t->added[k].content, content)) return fail(L, jp, "'%.40s' is listed twice", content);
        int32_t want = hf_bpe_find(&t->bpe, content, strlen(content));
        if (want < 0) want = next_id++;
        if (id != want)
            return fail(L, jp, "'%.40s' has id %d, but the library would number it %d", content, id, (int)want);
        for (size_t k = 0; k < t->bpe.n; k++) /* numbered past the vocabulary's size, onto one of its ids */
            if (t->bpe.id[k] == id && strcmp(t->bpe.str[k], content))
                return fail(L, jp, "'%.40s' gets id %d, which is the vocabulary's '%.40s'", content, id, t->bpe.str[k]);
        a->id = id, a->n = strlen(content);
        if (!(a->content = dup_n(content, a->n))) return moe_fail(L->err, "out of memory");
        t->n_added++;
        hf_buf m = {0};
        if (a->normalized ? hf_normalize(t, content, a->n, &m, L->err) : hf_buf_put(&m, content, a->n)) {
            free(m.p);
            return L->err->msg[0] ? -1 : moe_fail(L->err, "out of memory");
        }
        a->match = m.p, a->nmatch = m.n;
        if (!a->nmatch) return fail(L, jp, "'%.40s' normalizes to nothing", content);
        t->added_first[a->normalized][(unsigned char)a->match[0]] = 1;
        if (id >= t->n_ids) t->n_ids = id + 1;
    }
    return 0;
}

/* id -> the string decoding starts from: the vocabulary's, overridden by an
 * added token's (its normalized form, as the library returns it). */
static int build_id_table(loader *L) {
    hf_tokenizer *t = L->t;
    t->id_str = calloc((size_t)(t->n_ids ? t->n_ids : 1), sizeof *t->id_str);
    t->id_len = calloc((size_t)(t->n_ids ? t->n_ids : 1), sizeof *t->id_len);
    if (!t->id_str || !t->id_len) return moe_fail(L->err, "out of memory");
    for (size_t i = 0; i < t->bpe.n; i++) {
        int32_t id = t->bpe.id[i];
        if (t->id_str[id])
            return fail(L, "$.model.vocab", "id %d is given to both '%.40s' and '%.40s'", (int)id, t->id_str[id], t->bpe.str[i]);
        t->id_str[id] = t->bpe.str[i], t->id_len[id] = strlen(t->bpe.str[i]);
    }
    for (int k = 0; k < t->n_added; k++)
        t->id_str[t->added[k].id] = t->added[k].match, t->id_len[t->added[k].id] = t->added[k].nmatch;
    return 0;
}

hf_tokenizer *hf_tokenizer_parse(const char *path, const char *json, size_t len, moe_error *err) {
    hf_tokenizer *t = calloc(1, sizeof *t);
    if (!t) {
        moe_fail(err, "out of memory");
        return NULL;
    }
    snprintf(t->path, sizeof t->path, "%s", path);
    hf_bytelevel_table(t);
    loader L = {t, err, 0};
    err->msg[0] = 0;
    cJSON *root = cJSON_ParseWithLength(json, len);
    int rc = -1, fused = 0;
    if (!root) {
        const char *at = cJSON_GetErrorPtr();
        long pos = at && at >= json && at <= json + len ? (long)(at - json) : -1;
        moe_fail(err, "%s: malformed JSON near byte %ld", path, pos);
        goto out;
    }
    if (!cJSON_IsObject(root)) {
        fail(&L, "$", "expected an object");
        goto out;
    }
    const char *version = get_str(&L, root, "version", 0, "$");
    if (err->msg[0]) goto out;
    if (version && strcmp(version, "1.0")) {
        fail(&L, "$.version", "'%.20s' (1.0 is the format this reads)", version);
        goto out;
    }
    const char *unapplied[2] = {"truncation", "padding"};
    for (int k = 0; k < 2; k++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, unapplied[k]);
        if (v && !cJSON_IsNull(v)) {
            fail(&L, unapplied[k][0] == 't' ? "$.truncation" : "$.padding", "settings would change the ids and are not applied here; set it to null");
            goto out;
        }
    }
    if (load_model(&L, cJSON_GetObjectItemCaseSensitive(root, "model")) ||
        load_normalizer(&L, cJSON_GetObjectItemCaseSensitive(root, "normalizer"), "$.normalizer") ||
        load_pretok(&L, cJSON_GetObjectItemCaseSensitive(root, "pre_tokenizer"), "$.pre_tokenizer") ||
        load_post(&L, cJSON_GetObjectItemCaseSensitive(root, "post_processor"), "$.post_processor") ||
        load_decoder(&L, cJSON_GetObjectItemCaseSensitive(root, "decoder"), "$.decoder", &fused) ||
        load_added(&L, cJSON_GetObjectItemCaseSensitive(root, "added_tokens")) || build_id_table(&L))
        goto out;
    rc = 0;
out:
    cJSON_Delete(root);
    if (rc) {
        if (!err->msg[0]) moe_fail(err, "%s: out of memory", path);
        hf_tokenizer_free(t);
        return NULL;
    }
    return t;
}

hf_tokenizer *hf_tokenizer_load(const char *path, moe_error *err) {
    size_t len = 0;
    unsigned char *text = moe_backend_read_file(path, &len, err);
    if (!text) return NULL;
    hf_tokenizer *t = NULL;
    if (len > HF_MAX_FILE) moe_fail(err, "%s: %zu bytes, larger than any tokenizer.json (%u MiB at most)", path, len, HF_MAX_FILE >> 20);
    else t = hf_tokenizer_parse(path, (const char *)text, len, err);
    free(text);
    return t;
}

void hf_tokenizer_free(hf_tokenizer *t) {
    if (!t) return;
    for (int k = 0; k < t->n_norms; k++) free(t->norms[k].a), free(t->norms[k].b);
    for (int k = 0; k < t->n_pre; k++) hf_regex_free(t->pre[k].re);
    for (int k = 0; k < t->n_dec; k++) free(t->dec[k].a), free(t->dec[k].b);
    for (int k = 0; k < t->n_added; k++) free(t->added[k].content), free(t->added[k].match);
    free(t->norms), free(t->pre), free(t->dec), free(t->added), free(t->tmpl);
    free(t->id_str), free(t->id_len);
    hf_bpe_free(&t->bpe);
    free(t);
}

/* Search terms (docs/search.md "Terms"): how names and text become the
 * words the index holds and the words a query asks for. Pure functions:
 * no storage, no HTTP; the same splitting feeds the index, the query and
 * the highlighter, so what is highlighted is what matched.
 *
 * A word is a maximal run of ASCII letters, digits and non-ASCII bytes
 * (every UTF-8 sequence stays whole); everything else separates words. A
 * word is split again where a lower-case letter meets an upper-case one
 * (PlacedAt -> Placed, At), where an acronym ends (HTTPServer -> HTTP,
 * Server), and where letters meet digits (HTTP2Server -> HTTP, 2, Server).
 * So `placed_at`, `PlacedAt` and `Placed At` give the same terms: placed,
 * at. Terms are lower-cased (ASCII; the databases fold the rest). */
#ifndef OMS_SEARCH_TERMS_H
#define OMS_SEARCH_TERMS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "ontology/ontology.h"

/* Longest term kept (bytes); longer runs are cut there. */
#define OMS_SEARCH_TERM_MAX 100

/* Calls fn for every sub-word of `text`: `start` is its byte offset in
 * `text`, `len` its length in bytes (the original spelling). */
typedef void (*oms_search_word_fn)(void *ctx, const char *text, size_t start, size_t len);
void oms_search_words(const char *text, oms_search_word_fn fn, void *ctx);

/* A growing text buffer of space-separated lower-case terms. */
typedef struct {
    char *s;
    size_t len, cap;
} oms_search_buf;

void oms_search_buf_free(oms_search_buf *b);
/* Appends the terms of `text` (free text: display names, descriptions). */
void oms_search_add_text(oms_search_buf *b, const char *text);
/* Appends the terms of an identifier (an api name, an enum value) and,
 * when it splits into several, also the whole of it lower-cased without
 * separators (`placedat` for placed_at), so typing the name run together
 * finds it too. */
void oms_search_add_ident(oms_search_buf *b, const char *ident);

/* The four weighted fields of a resource's index entry, most telling
 * first: `api` (its api name), `names` (its display name), `props` (names
 * of its properties, parameters and inputs, enum values, and the types it
 * names: link ends, implements, extends), `descr` (its own and its items'
 * descriptions). Each is space-separated lower-case terms. */
typedef struct {
    oms_search_buf api, names, props, descr;
} oms_search_fields;

void oms_search_fields_of(oms_search_fields *out, oms_kind kind, const char *api_name, const json_t *doc);
void oms_search_fields_free(oms_search_fields *f);

/* `api_name` lower-cased without '_': what exact and prefix api-name
 * matches compare (`placed_at`, `PlacedAt` and `placedat` are one name to
 * a person typing). `out` holds at least strlen(api_name) + 1 bytes. */
void oms_search_norm_name(char *out, const char *api_name);

/* A parsed query: its distinct terms (at most OMS_SEARCH_MAX_TERMS) and the
 * whole query normalised like an api name (letters and digits only,
 * lower-cased) for the exact and prefix tiers. */
#define OMS_SEARCH_MAX_TERMS 16
#define OMS_SEARCH_MAX_QUERY 256
typedef struct {
    char *terms[OMS_SEARCH_MAX_TERMS];
    size_t nterms;
    bool truncated; /* more distinct terms than kept */
    char norm[OMS_SEARCH_MAX_QUERY + 1];
} oms_search_query;

/* Splits `q`; returns the number of terms (0: nothing to search for).
 * Terms are malloc'd: free with oms_search_query_free. */
size_t oms_search_query_parse(oms_search_query *out, const char *q);
void oms_search_query_free(oms_search_query *q);

/* Does `word` (len bytes, any case) start with `term` (lower-case)? */
bool oms_search_word_matches(const char *word, size_t len, const char *term);

#endif

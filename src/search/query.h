/* Running a search against a branch's active generation (SPEC §8,
 * docs/search.md "Ranking"): the database's own text search finds the
 * candidates (FTS5 MATCH, tsvector @@ with GIN), and ranks them in tiers
 * a person would call right:
 *   0 exact_api_name    the query is the api name (case, '_' and spaces aside)
 *   1 api_name_prefix   the api name starts with the query
 *   2 api_name_terms    every term prefixes a term of the api name
 *   3 name_terms        ... of the api name or the display name
 *   4 property_terms    ... of those or property/parameter names, enum values, named types
 *   5 description       the rest: some term only in a description
 * Within a tier, shorter api names first (the closer match), then by name
 * and kind. That order is a total order over a sort key, so the cursor is
 * a keyset position: paging never repeats or skips a result, whatever
 * commits or generation switches happen between pages. */
#ifndef OMS_SEARCH_QUERY_H
#define OMS_SEARCH_QUERY_H

#include <jansson.h>
#include <stdint.h>

#include "search/terms.h"
#include "store/db.h"

typedef struct {
    const oms_search_query *q;
    const char *kinds;  /* ",object-types,link-types," or "" for every kind */
    size_t limit;
    const char *after;  /* the cursor's sort key, or NULL */
} oms_search_request;

typedef struct {
    json_t *items;      /* owned */
    char *next_cursor;  /* sort key of the last item when there are more (malloc'd), or NULL */
    int64_t total;      /* matches on every page; -1 when unknown (a page past the end) */
} oms_search_result;

/* Runs the search against generation `gen`. */
int oms_search_run(oms_dbconn *c, int64_t gen, const oms_search_request *rq, oms_search_result *out, oms_error *err);
void oms_search_result_clear(oms_search_result *r);

/* The match tier names above, by tier. */
extern const char *const oms_search_tiers[6];

/* Highlights of a matched document: [{field (JSON pointer, items by
 * api_name), text, ranges [[start, end) in code points of text], fragment
 * (text HTML-escaped with <mark> around matches)}], for every field where
 * a query term matches the start of a word. Long texts are cut to a window
 * around the first match. */
json_t *oms_search_highlights(oms_kind kind, const json_t *doc, const oms_search_query *q);

#endif

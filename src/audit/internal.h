/* Shared inside src/audit only: the event row layout, the canonical forms
 * that are hashed and signed, the key, and the chain walker used by sealing,
 * verification and archiving. docs/audit.md describes the design. */
#ifndef OMS_AUDIT_INTERNAL_H
#define OMS_AUDIT_INTERNAL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "audit/audit.h"
#include "store/audit_sql.h"
#include "store/db.h"

/* The event's columns as every read returns them (OMS_AUDIT_COLS,
 * src/store/audit_sql.h). */
enum {
    AC_SEQ, AC_EVENT_ID, AC_TIME, AC_SUB, AC_ROLES, AC_ADDR, AC_UA, AC_ACTION, AC_OUTCOME, AC_STATUS,
    AC_REQUEST_ID, AC_METHOD, AC_ROUTE, AC_RKIND, AC_RBRANCH, AC_RID, AC_ISSUES, AC_OVERRIDE, AC_COMMIT,
    AC_BEFORE, AC_AFTER, AC_PATHS, AC_DETAIL, AC_PREV_HASH, AC_HASH,
    AC__COUNT,
    AC__HASHED = AC_HASH /* fields covered by the chain hash: seq .. prev_hash */
};
extern const char *const oms_audit_col_names[AC__COUNT];

#define AUDIT_GENESIS "0000000000000000000000000000000000000000000000000000000000000000"
/* A queued event older than this is reported as overdue by verification:
 * the chainer is not running or is failing (not tampering: it was queued by
 * its own transaction). */
#define AUDIT_CHAIN_GRACE_MS 5000

/* ---- canonical forms (chain.c) ---- */

/* SHA-256 (hex) of "oms-audit-event/1" followed, for each hashed field in
 * column order, by "|~" for NULL or "|<byte length>:<bytes>". The last field
 * is the previous chain position's hash. */
void oms_audit_event_hash(char out[65], const char *const fields[AC__HASHED]);

/* ---- key (key.c) ---- */

bool oms_audit_have_key(void);
/* A key is loaded and it signed the database's checkpoints (or there are
 * none yet): only then are checkpoints appended. */
bool oms_audit_may_sign(void);
/* HMAC-SHA256 with OMS_AUDIT_KEY as 64 hex digits; false without a key. */
bool oms_audit_hmac_hex(char out[65], const void *data, size_t len);

/* ---- checkpoints (seal.c) ---- */

/* from_seq and upto_seq are chain positions (their column names predate
 * version 8, when position and seq were the same number). */
typedef struct {
    int64_t id;
    char kind[16];     /* seal | archive */
    int64_t from_seq, upto_seq, event_count, time_ms;
    char chain_hash[65];
    char sealed_by[128];
    char *detail;      /* malloc'd JSON text or NULL */
    char prev_hmac[65];
    char hmac[65];
} oms_audit_checkpoint;

/* A row read in OMS_AUDIT_CHECKPOINT_COLS order. */
void oms_audit_checkpoint_from_row(oms_audit_checkpoint *cp, const oms_dbres *r, size_t row);
void oms_audit_checkpoint_clear(oms_audit_checkpoint *cp);
/* HMAC over the canonical checkpoint ("oms-audit-checkpoint/1" and its fields
 * length-prefixed as for events); false without a key. */
bool oms_audit_checkpoint_hmac(char out[65], const oms_audit_checkpoint *cp);
/* Appends `cp` (id, prev_hmac and hmac filled here) inside the caller's
 * write transaction. */
int oms_audit_checkpoint_insert(oms_dbconn *c, oms_audit_checkpoint *cp, oms_error *err);
/* The instance name recorded in sealed_by: host:pid. */
const char *oms_audit_instance(void);

/* ---- the chain walker (chain.c) ---- */

/* Walks the chain in position order from a trusted start (the genesis, a
 * checkpoint or an archive record). Positions 1, 2, 3, ... are the order in
 * which the chainer appended events; an event row's seq is only its name.
 * Positions up to legacy_upto are events written before version 4 that a
 * version 4-7 chain had adopted in memory: they have no chain row, their
 * position is their seq (which may skip), and their hash is computed here. */
typedef struct {
    int64_t legacy_upto;
    int64_t last_pos;    /* last position accepted (the start before the first) */
    char prev[65];       /* chain hash at last_pos */
    int64_t count;       /* positions accepted */
    int64_t bad_seq;     /* when a row fails: the event it names (0: not known) */
    int64_t bad_pos;     /* ... and the position that failed */
    int64_t next_seq;    /* after a gap in positions: the event found after it */
    char reason[200];
} oms_audit_walk;

void oms_audit_walk_init(oms_audit_walk *w, int64_t legacy_upto, int64_t start_pos, const char *prev);
/* Checks the chain row at `pos` naming event `event_seq`. `fields` are the
 * event's columns in OMS_AUDIT_COLS order with the chain row's prev_hash and
 * hash (both NULL for a legacy row); fields[AC_SEQ] is NULL when the event
 * row is missing. False, with bad_* and reason, when the row breaks the
 * chain. */
bool oms_audit_walk_row(oms_audit_walk *w, int64_t pos, int64_t event_seq, const char *const fields[AC__COUNT]);

/* Called after each accepted position; returning false stops the walk. */
typedef bool (*oms_audit_visit)(void *ctx, const oms_audit_walk *w, const char *const fields[AC__COUNT]);
/* Walks the database from w->last_pos: legacy rows, then chain rows by
 * position joined with their events, up to `upto_pos` (0: the end) and at
 * most `max_rows` positions (0: no limit). *broken when a row fails. */
int oms_audit_walk_db(oms_dbconn *c, oms_audit_walk *w, int64_t upto_pos, int64_t max_rows, oms_audit_visit visit,
                      void *ctx, bool *broken, oms_error *err);
/* legacy_upto (see oms_audit_walk), kept in the version-4 head row. */
int oms_audit_legacy_upto(oms_dbconn *c, int64_t *out, oms_error *err);

/* ---- appending and chaining (append.c, chainer.c) ---- */

/* Inserts every event of the batch in the caller's write transaction, each
 * with the next seq of the table's sequence and a row in the chainer's
 * queue (audit_unchained). No shared row is touched: concurrent
 * transactions append and commit independently. */
int oms_audit_append_many(oms_dbconn *c, const oms_audit_event *const *evs, size_t n, oms_error *err);

/* Appends to the chain after w (the tip: w->last_pos, w->prev) the queued,
 * committed events not chained yet, in seq order, at most `max`; w moves to
 * the new tip. Removes the queue entries of chained events. Inside the
 * chainer's write transaction. */
int oms_audit_chain_queued(oms_dbconn *c, oms_audit_walk *w, int64_t max, int64_t *appended, oms_error *err);

/* ---- query filters (query.c) ---- */

typedef oms_store_audit_filter oms_audit_filter;

/* Parses one named filter value; false with a message in err. Values are
 * borrowed. */
bool oms_audit_filter_set(oms_audit_filter *f, const char *name, const char *value, oms_error *err);
/* The query-string filter names, NULL-terminated. */
extern const char *const oms_audit_filter_names[];

/* A filter as a JSON object (for the audit.read / audit.export detail). */
json_t *oms_audit_filter_json(const oms_audit_filter *f);

/* The event as its public JSON form. */
json_t *oms_audit_row_json(const oms_dbres *r, size_t row);

/* ---- reads through the API (reads.c) ---- */

/* Up to `limit` events the filter selects, as documents; *next_seq the
 * position to continue after (0: no more). */
int oms_audit_list(oms_ctx *ctx, const oms_audit_filter *f, size_t limit, json_t **items, int64_t *next_seq,
                   oms_error *err);
/* One event's document (OMS_ENOTFOUND when there is none). */
int oms_audit_get(oms_ctx *ctx, const char *event_id, json_t **out, oms_error *err);
/* Reading the audit log is itself audited, durably, before the answer;
 * `detail` is stolen. On failure the refusal (the error returned: the
 * database's, or the audit store's) is recorded late and ctx->audited is
 * set either way. */
int oms_audit_record_read(oms_ctx *ctx, const char *action, const char *resource_id, json_t *detail,
                          oms_error *err);
/* RFC 3339 (or a bare date, midnight UTC) to epoch milliseconds. */
bool oms_audit_parse_time(const char *s, int64_t *out_ms);

/* ---- export (export.c) ---- */

typedef enum { OMS_AUDIT_JSONL, OMS_AUDIT_CSV } oms_audit_format;
typedef struct oms_audit_exporter oms_audit_exporter;

/* Streams the events matching `f` (copied) in seq order, bounded by the
 * newest event at creation time so a live export ends. */
int oms_audit_exporter_new(oms_audit_exporter **out, oms_db *db, const oms_audit_filter *f,
                           oms_audit_format fmt, oms_error *err);
/* Up to `max` bytes of output; 0 at the end, -1 on a database error. */
long oms_audit_exporter_read(oms_audit_exporter *x, char *buf, size_t max);
int64_t oms_audit_exporter_rows(const oms_audit_exporter *x);
void oms_audit_exporter_free(oms_audit_exporter *x);

/* ---- compliance report (report.c, report_html.c) ---- */

json_t *oms_compliance_report(oms_store *s, const char *exempt_globs, int64_t from_ms, int64_t to_ms,
                              oms_error *err);
char *oms_compliance_report_csv(const json_t *report);
char *oms_compliance_report_html(const json_t *report);

/* ---- facets (facets.c) ---- */

/* `oms audit rebuild-facets` (facets.c): audit_facets written again from
 * the events in one transaction under the sealer's lock, with the
 * command's own event; *summary: the rows written and what verification's
 * step 5 would have found before (the first differing and orphan seq, 0:
 * none). */
int oms_audit_facets_rebuild(oms_store *s, const char *os_user, json_t **summary, oms_error *err);

/* ---- archive (archive.c) ---- */

/* Moves the sealed chain positions whose events are older than `before_ms`
 * (after the last archive) into a new file `path` (JSON lines: a header,
 * then each event with its chain position and link), then, in one
 * transaction, appends a signed archive record {from_seq, upto_seq: the
 * positions, chain hash at upto_seq, count, file sha256} and deletes those
 * events and chain rows. Refuses a log that does not verify. *summary gets
 * what was done. */
int oms_audit_archive(oms_store *s, int64_t before_ms, const char *path, json_t **summary, oms_error *err);
/* Checks an archive file against its signed record: its sha256, its chain
 * and its range. OMS_OK with *ok set; *summary describes it. */
int oms_audit_archive_verify(oms_store *s, const char *path, bool *ok, json_t **summary, oms_error *err);

/* ---- a growable text buffer ---- */

typedef struct {
    char *s;
    size_t len, cap;
} oms_sbuf;

void oms_sbuf_add(oms_sbuf *b, const char *s, size_t n);
void oms_sbuf_puts(oms_sbuf *b, const char *s);
void oms_sbuf_printf(oms_sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* HTML-escapes s (may be NULL: nothing). */
void oms_sbuf_html(oms_sbuf *b, const char *s);
/* One CSV field, quoted when needed; a cell a spreadsheet would run as a
 * formula (leading = + - @ tab CR) gets a leading apostrophe. */
void oms_sbuf_csv(oms_sbuf *b, const char *s);

#endif

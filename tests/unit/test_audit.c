/* Audit internals: the canonical event hash (vectors computed by the
 * independent Python implementation in tests/api/test_audit_util.py), the
 * chain walker's verdicts, checkpoint HMACs, RFC 3339 parsing, filters and
 * the CSV/HTML escapers. key.c is included to set a key without a store. */
#include "audit/key.c"

#include "audit/internal.h"
#include "t.h"

static const char *const V1 = "64def9e36ff6cdea25238f350915e2390dcb6a086a6fbdc2ec2a3f327197b704";
static const char *const V2 = "f386206e1e8cd8b85f837f5fbcbe4dd56a2fc450b7169771ffa9c2251edbb31b";

/* A row as OMS_AUDIT_COLS values; strings are static. */
static void row(const char *f[AC__COUNT], const char *seq, const char *id, const char *sub, const char *prev,
                const char *hash)
{
    for (int i = 0; i < AC__COUNT; i++)
        f[i] = NULL;
    f[AC_SEQ] = seq;
    f[AC_EVENT_ID] = id;
    f[AC_TIME] = "1700000000000";
    f[AC_SUB] = sub;
    f[AC_ACTION] = "authz.denied";
    f[AC_OUTCOME] = "denied";
    f[AC_STATUS] = "403";
    f[AC_DETAIL] = "{\"reason\":\"forbidden\"}";
    f[AC_PREV_HASH] = prev;
    f[AC_HASH] = hash;
}

static void event_hash_matches_the_documented_form(void)
{
    const char *f[AC__COUNT];
    char h[65];
    row(f, "1", "evt_00", "alice", AUDIT_GENESIS, NULL);
    oms_audit_event_hash(h, f);
    CHECK_EQ_STR(h, V1);
    /* UTF-8 and the separator characters inside a value stay unambiguous */
    row(f, "2", "evt_01", "b\xc3\xb3" "b|1:x", V1, NULL);
    oms_audit_event_hash(h, f);
    CHECK_EQ_STR(h, V2);
}

static void walker_accepts_a_chain_and_names_the_bad_row(void)
{
    const char *a[AC__COUNT], *b[AC__COUNT];
    oms_audit_walk w;
    row(a, "1", "evt_00", "alice", AUDIT_GENESIS, V1);
    row(b, "2", "evt_01", "b\xc3\xb3" "b|1:x", V1, V2);
    oms_audit_walk_init(&w, 0, 0, NULL);
    CHECK(oms_audit_walk_row(&w, 1, 1, a) && oms_audit_walk_row(&w, 2, 2, b));
    CHECK_EQ_STR(w.prev, V2);
    CHECK_EQ_INT(w.count, 2);
    CHECK_EQ_INT(w.last_pos, 2);
    /* modified: named by the event's seq */
    row(b, "2", "evt_01", "mallory", V1, V2);
    oms_audit_walk_init(&w, 0, 0, NULL);
    CHECK(oms_audit_walk_row(&w, 1, 1, a) && !oms_audit_walk_row(&w, 2, 2, b));
    CHECK_EQ_INT(w.bad_seq, 2);
    CHECK_EQ_INT(w.bad_pos, 2);
    /* a gap in positions: the chain row at 1 is gone; the event after it
     * is remembered */
    row(b, "2", "evt_01", "b\xc3\xb3" "b|1:x", V1, V2);
    oms_audit_walk_init(&w, 0, 0, NULL);
    CHECK(!oms_audit_walk_row(&w, 2, 2, b));
    CHECK_EQ_INT(w.bad_pos, 1);
    CHECK_EQ_INT(w.bad_seq, 0);
    CHECK_EQ_INT(w.next_seq, 2);
    /* a chain row whose event row is gone */
    row(b, NULL, NULL, NULL, AUDIT_GENESIS, V1);
    oms_audit_walk_init(&w, 0, 0, NULL);
    CHECK(!oms_audit_walk_row(&w, 1, 7, b));
    CHECK_EQ_INT(w.bad_seq, 7);
    CHECK(strstr(w.reason, "missing") != NULL);
    /* a broken link */
    row(b, "2", "evt_01", "b\xc3\xb3" "b|1:x", AUDIT_GENESIS, V2);
    oms_audit_walk_init(&w, 0, 0, NULL);
    CHECK(oms_audit_walk_row(&w, 1, 1, a) && !oms_audit_walk_row(&w, 2, 2, b));
    CHECK_EQ_INT(w.bad_seq, 2);
}

/* Chain order is the chainer's order: an event committed late (a lower
 * seq) sits at a later position, and the walk accepts it. */
static void positions_need_not_follow_seq(void)
{
    const char *late[AC__COUNT], *early[AC__COUNT];
    char h1[65], h2[65];
    row(early, "9", "evt_09", "bob", AUDIT_GENESIS, NULL);
    oms_audit_event_hash(h1, early);
    early[AC_HASH] = h1;
    row(late, "8", "evt_08", "carol", h1, NULL);
    oms_audit_event_hash(h2, late);
    late[AC_HASH] = h2;
    oms_audit_walk w;
    oms_audit_walk_init(&w, 0, 0, NULL);
    CHECK(oms_audit_walk_row(&w, 1, 9, early) && oms_audit_walk_row(&w, 2, 8, late));
    CHECK_EQ_STR(w.prev, h2);
    /* a chain row pointing at another event than the one joined */
    oms_audit_walk_init(&w, 0, 0, NULL);
    CHECK(!oms_audit_walk_row(&w, 1, 8, early));
}

/* Events a version 4-7 chain adopted in memory: no chain row, position =
 * seq (gaps allowed), hashed with the running hash; the chain rows after
 * them start at legacy_upto + 1. */
static void legacy_positions(void)
{
    const char *a[AC__COUNT], *b[AC__COUNT];
    oms_audit_walk w;
    row(a, "3", "evt_00", "alice", NULL, NULL);
    oms_audit_walk_init(&w, 5, 0, NULL);
    CHECK(oms_audit_walk_row(&w, 3, 3, a));
    CHECK_EQ_INT(w.last_pos, 3);
    char running[65], h[65];
    memcpy(running, w.prev, sizeof running);
    row(b, "6", "evt_06", "dan", running, NULL);
    oms_audit_event_hash(h, b);
    b[AC_HASH] = h;
    CHECK(oms_audit_walk_row(&w, 6, 6, b));
    row(a, "7", "evt_07", "alice", NULL, NULL); /* past legacy_upto, a link is required */
    CHECK(!oms_audit_walk_row(&w, 7, 7, a));
    CHECK_EQ_INT(w.bad_seq, 7);
}

static void checkpoint_hmac_depends_on_every_field_and_the_key(void)
{
    oms_error err;
    CHECK_EQ_INT(set_key("k9Xw2Lq8Vz4Rt6Yp1Hs3Jd5Fg7Bn0Mc-unit-test-key", 45, "test key", &err), OMS_OK);
    oms_audit_checkpoint cp = {.id = 1, .kind = "seal", .from_seq = 1, .upto_seq = 2, .event_count = 2,
                               .time_ms = 1700000000000};
    snprintf(cp.chain_hash, sizeof cp.chain_hash, "%s", V2);
    snprintf(cp.prev_hmac, sizeof cp.prev_hmac, "%s", AUDIT_GENESIS);
    snprintf(cp.sealed_by, sizeof cp.sealed_by, "host:1");
    char a[65], b[65];
    CHECK(oms_audit_checkpoint_hmac(a, &cp));
    cp.upto_seq = 3;
    CHECK(oms_audit_checkpoint_hmac(b, &cp));
    CHECK(strcmp(a, b) != 0);
    cp.upto_seq = 2;
    CHECK_EQ_INT(set_key("another-key-0123456789-abcdefghijklmnop", 39, "test key", &err), OMS_OK);
    CHECK(oms_audit_checkpoint_hmac(b, &cp));
    CHECK(strcmp(a, b) != 0);
    CHECK(set_key("short", 5, "test key", &err) == OMS_ECONFIG);
    CHECK(set_key("changeme-changeme-changeme-changeme-1", 37, "test key", &err) == OMS_ECONFIG);
}

static void rfc3339_times(void)
{
    int64_t ms;
    CHECK(oms_audit_parse_time("2026-01-31T00:00:00Z", &ms));
    CHECK_EQ_INT(ms, 1769817600000LL);
    CHECK(oms_audit_parse_time("2026-01-31", &ms));
    CHECK_EQ_INT(ms, 1769817600000LL);
    CHECK(oms_audit_parse_time("2026-01-31T02:00:00.5+02:00", &ms));
    CHECK_EQ_INT(ms, 1769817600500LL);
    CHECK(oms_audit_parse_time("2026-01-30T19:00:00.123456-05:00", &ms));
    CHECK_EQ_INT(ms, 1769817600123LL);
    const char *bad[] = {"", "yesterday", "2026-13-01", "2026-01-31T25:00:00Z", "2026-01-31T00:00:00",
                         "2026-01-31T00:00:00Zjunk", "2026-1-31", "1969-12-31", "2026-01-31T00:00:00.Z", NULL};
    for (int i = 0; bad[i]; i++)
        CHECK(!oms_audit_parse_time(bad[i], &ms));
}

static void filters_build_parameterised_sql(void)
{
    oms_audit_filter f;
    memset(&f, 0, sizeof f);
    oms_error err;
    CHECK(oms_audit_filter_set(&f, "action", "auth.*", &err));
    CHECK(oms_audit_filter_set(&f, "resource", "object-types/Person", &err));
    CHECK(oms_audit_filter_set(&f, "actor", "x' OR '1'='1", &err)); /* a value, never SQL */
    CHECK(!oms_audit_filter_set(&f, "action", "a*b", &err));
    CHECK(!oms_audit_filter_set(&f, "resource", "a/b/c", &err));
    CHECK(!oms_audit_filter_set(&f, "outcome", "maybe", &err));
    CHECK(!oms_audit_filter_set(&f, "nope", "x", &err));
    CHECK_EQ_STR(f.resource_kind, "object-types");
    CHECK_EQ_STR(f.resource_id, "Person");
    for (int pg = 0; pg < 2; pg++) {
        oms_store_audit_query q;
        oms_store_audit_filter_sql(&q, &f, 10, pg);
        /* both arms filter, numbering the parameters alike: the facets'
         * columns in the first, the events' own in the queue's */
        CHECK(strstr(q.sql, "substr(f.action, 1, 5) = substr($2, 1, 5)") != NULL);
        CHECK(strstr(q.sql, "substr(e.action, 1, 5) = substr($2, 1, 5)") != NULL);
        CHECK(strstr(q.sql, "e.resource_id = $4") != NULL);
        CHECK(strstr(strstr(q.sql, "UNION ALL"), "e.resource_id = $4") != NULL);
        CHECK(strstr(q.sql, "LIMIT $5) a") != NULL && strstr(q.sql, "LIMIT $5) b") != NULL);
        CHECK(strstr(q.sql, "'1'") == NULL);
        CHECK_EQ_INT(q.n, 5);
    }
}

static void escapers(void)
{
    oms_sbuf b = {0};
    oms_sbuf_csv(&b, "plain");
    oms_sbuf_add(&b, ",", 1);
    oms_sbuf_csv(&b, "a,\"b\"");
    oms_sbuf_add(&b, ",", 1);
    oms_sbuf_csv(&b, "=HYPERLINK(\"x\")");
    CHECK_EQ_STR(b.s, "plain,\"a,\"\"b\"\"\",\"'=HYPERLINK(\"\"x\"\")\"");
    b.len = 0;
    oms_sbuf_html(&b, "<script>alert('x')</script>&");
    CHECK_EQ_STR(b.s, "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;");
    free(b.s);
}

int main(void)
{
    static const t_case cases[] = {
        T(event_hash_matches_the_documented_form),
        T(walker_accepts_a_chain_and_names_the_bad_row),
        T(positions_need_not_follow_seq),
        T(legacy_positions),
        T(checkpoint_hmac_depends_on_every_field_and_the_key),
        T(rfc3339_times),
        T(filters_build_parameterised_sql),
        T(escapers),
    };
    return t_main("audit", cases, sizeof cases / sizeof cases[0]);
}

/* Raw-path checks and parameter grammars (SPEC §5, §3, §4). */
#include "http/path.h"
#include "t.h"

static int parse(const char *p, oms_path *out)
{
    oms_arena *a = oms_arena_new(0);
    oms_error err;
    oms_err_clear(&err);
    int rc = oms_path_parse(out, p, strlen(p), a, &err);
    static char segs[OMS_MAX_SEGMENTS][256];
    for (size_t i = 0; rc == OMS_OK && i < out->nseg; i++) {
        snprintf(segs[i], sizeof segs[i], "%s", out->seg[i]);
        out->seg[i] = segs[i];
    }
    oms_arena_free(a);
    return rc;
}

static void accepts_normal_paths(void)
{
    oms_path p;
    CHECK_EQ_INT(parse("/health", &p), OMS_OK);
    CHECK_EQ_INT(p.nseg, 1);
    CHECK_EQ_STR(p.seg[0], "health");
    CHECK_EQ_INT(parse("/api/v1/schemas/feature%2Fx/object-types", &p), OMS_OK);
    CHECK_EQ_INT(p.nseg, 5);
    CHECK_EQ_STR(p.seg[3], "feature%2Fx"); /* raw: decoding happens per parameter */
    CHECK_EQ_INT(parse("/", &p), OMS_OK);
    CHECK_EQ_INT(p.nseg, 0);
    CHECK_EQ_INT(parse("/a/.b/c..d/...", &p), OMS_OK); /* dots inside names are fine */
}

static void refuses_attacks(void)
{
    static const char *const bad[] = {
        "", "health", "//api", "/api//v1", "/api/", "/./x", "/../x", "/x/..", "/x/.",
        "/%2e%2e/x", "/%2E/x", "/.%2e/x", "/%2e./x", "/health%2f..", "/health%2F..%2Fapi",
        "/a%2f%2fb", "/a%2f", "/%2fa", "/x%00", "/x%5c", "/x%5Cy", "/x\\y", "/x%zz", "/x%", "/x%4",
        "/x\x01y", "/x\x7fy", "/a/b/c/d/e/f/g/h/i/j/k/l/m/n/o/p/q",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        oms_path p;
        int rc = parse(bad[i], &p);
        if (rc != OMS_EBADPATH) {
            fprintf(stderr, "  accepted bad path \"%s\"\n", bad[i]);
            t_failed_current = 1;
        }
    }
}

static void decode_once(void)
{
    oms_arena *a = oms_arena_new(0);
    oms_error err;
    size_t n;
    CHECK_EQ_STR(oms_pct_decode("feature%2Fx", 11, a, &n, &err), "feature/x");
    CHECK_EQ_STR(oms_pct_decode("%252e", 5, a, &n, &err), "%2e");
    CHECK(oms_pct_decode("a%00", 4, a, &n, &err) == NULL);
    CHECK(oms_pct_decode("a%g0", 4, a, &n, &err) == NULL);
    oms_arena_free(a);
}

static void branch_grammar(void)
{
    static const char *const good[] = {"main", "feature/x", "team-a/feature.1_2", "0day", "a"};
    static const char *const bad[] = {"", "Main", "-x", "_x", ".x", "a..b", "a//b", "a/", "x.lock",
                                      "a/.b", "a b", "a\\b", "ä"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        CHECK(oms_valid_branch_name(good[i]));
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (oms_valid_branch_name(bad[i])) {
            fprintf(stderr, "  accepted branch \"%s\"\n", bad[i]);
            t_failed_current = 1;
        }
    char longname[102];
    memset(longname, 'a', 101);
    longname[101] = '\0';
    CHECK(!oms_valid_branch_name(longname));
    longname[100] = '\0';
    CHECK(oms_valid_branch_name(longname));
}

static void api_name_grammar(void)
{
    CHECK(oms_valid_api_name("Person"));
    CHECK(oms_valid_api_name("a_1"));
    CHECK(!oms_valid_api_name("1a"));
    CHECK(!oms_valid_api_name("_a"));
    CHECK(!oms_valid_api_name("a-b"));
    CHECK(!oms_valid_api_name(""));
    char n[102];
    memset(n, 'a', 101);
    n[101] = '\0';
    CHECK(!oms_valid_api_name(n));
    n[100] = '\0';
    CHECK(oms_valid_api_name(n));
}

static void request_id_grammar(void)
{
    CHECK(oms_valid_request_id("abc-123_x.y"));
    CHECK(!oms_valid_request_id("a b"));
    CHECK(!oms_valid_request_id("a\"b"));
    CHECK(!oms_valid_request_id(""));
}

int main(void)
{
    static const t_case cases[] = {T(accepts_normal_paths), T(refuses_attacks), T(decode_once),
                                   T(branch_grammar), T(api_name_grammar), T(request_id_grammar)};
    return T_RUN("path", cases);
}

/* The backup file format without a database: the writer's output read back
 * (plain and zstd) with every check, and the reader's verdicts on a
 * flipped byte, a truncation, data after the trailer and a forged object
 * or commit. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backup/check.h"
#include "backup/format.h"
#include "t.h"
#include "vcs/commit.h"

#define ROOT_TREE "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"

static char g_dir[64];

static const char *path_of(const char *name)
{
    static char p[128];
    snprintf(p, sizeof p, "%s/%s", g_dir, name);
    return p;
}

/* A minimal backup: the root tree and the root commit, every other
 * section empty; `commit_message` forges the root commit when not NULL. */
static int write_file(const char *path, int level, const char *commit_message, const char *object_content)
{
    oms_error err;
    oms_bk_out *o = NULL;
    oms_bk_writer *w = NULL;
    unlink(path);
    int rc = oms_bk_out_open(&o, path, level, &err);
    json_t *h = json_pack("{s:i,s:s,s:s}", "schema_version", 9, "created_at", "2026-12-01T00:00:00.000Z",
                          "source_backend", "sqlite");
    if (rc == OMS_OK)
        rc = oms_bk_writer_new(&w, o, h, &err);
    for (const oms_backup_section *s = oms_backup_sections; rc == OMS_OK && s->name; s++) {
        if (s->since > 9)
            continue; /* a schema-9 file has no such section */
        rc = oms_bk_writer_section(w, s, &err);
        if (rc == OMS_OK && strcmp(s->name, "objects") == 0) {
            const char *row[] = {ROOT_TREE, "tree", object_content ? object_content : "{}"};
            rc = oms_bk_writer_row(w, row, &err);
        }
        if (rc == OMS_OK && strcmp(s->name, "alerts") == 0) {
            const char *row[] = {"alr_1", "1", "auth_failure_burst", "warning", NULL, "10.0.0.1", NULL, "{}", "0"};
            rc = oms_bk_writer_row(w, row, &err);
        }
        if (rc == OMS_OK && strcmp(s->name, "commits") == 0) {
            const char *row[] = {OMS_ROOT_COMMIT, ROOT_TREE, NULL, "[]", "oms",
                                 commit_message ? commit_message : "Initialize the ontology", "0", "[]", NULL, "1"};
            rc = oms_bk_writer_row(w, row, &err);
        }
        if (rc == OMS_OK)
            rc = oms_bk_writer_end_section(w, &err);
    }
    if (rc == OMS_OK)
        rc = oms_bk_writer_finish(w, NULL, &err);
    oms_bk_writer_free(w);
    json_decref(h);
    int rc2 = oms_bk_out_close(o, rc == OMS_OK, &err);
    return rc ? rc : rc2;
}

static int read_file(const char *path, oms_bk_summary *sum, oms_error *err)
{
    oms_bk_check *c = oms_bk_check_new(false);
    int rc = oms_bk_read(path, &oms_bk_check_sink, c, sum, err);
    oms_bk_check_free(c);
    return rc;
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    *len = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc(*len + 1);
    if (b && fread(b, 1, *len, f) != *len) {
        free(b);
        b = NULL;
    }
    fclose(f);
    return b;
}

static void spit(const char *path, const char *b, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (f) {
        fwrite(b, 1, len, f);
        fclose(f);
    }
}

static void round_trip_plain_and_zstd(void)
{
    oms_bk_summary sum;
    oms_error err;
    CHECK_EQ_INT(write_file(path_of("a"), 0, NULL, NULL), OMS_OK);
    CHECK_EQ_INT(read_file(path_of("a"), &sum, &err), OMS_OK);
    CHECK_EQ_INT(sum.rows, 3);
    CHECK_EQ_INT(sum.nsections, 27);
    CHECK(!sum.compressed);
    char plain_sha[65];
    memcpy(plain_sha, sum.sha256, 65);
    CHECK_EQ_INT(write_file(path_of("a.zst"), 3, NULL, NULL), OMS_OK);
    CHECK_EQ_INT(read_file(path_of("a.zst"), &sum, &err), OMS_OK);
    CHECK(sum.compressed);
    /* the hashes are over the uncompressed records */
    CHECK_EQ_STR(sum.sha256, plain_sha);
    /* an existing file is not overwritten */
    oms_bk_out *o = NULL;
    CHECK_EQ_INT(oms_bk_out_open(&o, path_of("a"), 0, &err), OMS_ECONFLICT);
    CHECK(o == NULL);
}

static void damage_is_named(void)
{
    oms_bk_summary sum;
    oms_error err;
    size_t len;
    CHECK_EQ_INT(write_file(path_of("b"), 0, NULL, NULL), OMS_OK);
    char *b = slurp(path_of("b"), &len);
    CHECK(b != NULL);
    if (!b)
        return;
    /* a flipped byte inside the commit record's message */
    char *m = strstr(b, "Initialize");
    m[0] = 'J';
    spit(path_of("b1"), b, len);
    CHECK_EQ_INT(read_file(path_of("b1"), &sum, &err), OMS_EINVAL);
    CHECK(strstr(err.msg, "commit " OMS_ROOT_COMMIT) != NULL);
    m[0] = 'I';
    /* a flipped byte in records with no hash of their own: the section's */
    char *rule = strstr(b, "auth_failure_burst");
    rule[0] = 'b';
    spit(path_of("b2"), b, len);
    CHECK_EQ_INT(read_file(path_of("b2"), &sum, &err), OMS_EINVAL);
    CHECK(strstr(err.msg, "section alerts: SHA-256 mismatch") != NULL);
    rule[0] = 'a';
    /* truncated, inside a section and before the trailer */
    spit(path_of("b3"), b, len / 2);
    CHECK_EQ_INT(read_file(path_of("b3"), &sum, &err), OMS_EINVAL);
    CHECK(strstr(err.msg, "truncated") != NULL);
    char *last = b + len - 2;
    while (last > b && *last != '\n')
        last--;
    spit(path_of("b4"), b, (size_t)(last - b) + 1);
    CHECK_EQ_INT(read_file(path_of("b4"), &sum, &err), OMS_EINVAL);
    CHECK(strstr(err.msg, "trailer is missing") != NULL);
    /* data after the trailer */
    char *more = malloc(len + 4);
    memcpy(more, b, len);
    memcpy(more + len, "{}\n", 3);
    spit(path_of("b5"), more, len + 3);
    CHECK_EQ_INT(read_file(path_of("b5"), &sum, &err), OMS_EINVAL);
    CHECK(strstr(err.msg, "after the trailer") != NULL);
    free(more);
    free(b);
}

static void forged_records_are_named(void)
{
    oms_bk_summary sum;
    oms_error err;
    /* written consistently (every hash of the file right), content forged */
    CHECK_EQ_INT(write_file(path_of("c1"), 0, "Initialize the ontologies", NULL), OMS_OK);
    CHECK_EQ_INT(read_file(path_of("c1"), &sum, &err), OMS_EINVAL);
    CHECK(strstr(err.msg, "its id is not the hash of its content") != NULL);
    CHECK_EQ_INT(write_file(path_of("c2"), 0, NULL, "{\"x\":1}"), OMS_OK);
    CHECK_EQ_INT(read_file(path_of("c2"), &sum, &err), OMS_EINVAL);
    CHECK(strstr(err.msg, "object " ROOT_TREE ": its content does not hash") != NULL);
}

int main(void)
{
    snprintf(g_dir, sizeof g_dir, "/tmp/oms-unit-backup.XXXXXX");
    if (!mkdtemp(g_dir))
        return 1;
    static const t_case cases[] = {
        T(round_trip_plain_and_zstd),
        T(damage_is_named),
        T(forged_records_are_named),
    };
    int rc = t_main("backup", cases, sizeof cases / sizeof cases[0]);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", g_dir);
    if (system(cmd) != 0)
        rc = 1;
    return rc;
}

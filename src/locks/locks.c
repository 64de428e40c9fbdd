#include "locks/locks.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/encoding.h"
#include "util/ids.h"
#include "util/time.h"

/* SPEC §7 default TTLs; a kind outside this table is refused (400). */
static const struct {
    const char *kind;
    int64_t ttl_s;
} k_kinds[] = {
    {"indexing", 4 * 3600}, {"migration", 6 * 3600}, {"backup", 2 * 3600},
    {"maintenance", 1 * 3600}, {"manual", 24 * 3600},
};

int64_t oms_lock_default_ttl(const char *kind)
{
    for (size_t i = 0; kind && i < sizeof k_kinds / sizeof k_kinds[0]; i++)
        if (strcmp(kind, k_kinds[i].kind) == 0)
            return k_kinds[i].ttl_s;
    return -1;
}

bool oms_lock_scope_valid(const char *scope)
{
    return scope && (!strcmp(scope, "resource") || !strcmp(scope, "resource_type") || !strcmp(scope, "branch"));
}

/* Time-ordered (util/ids.h): the unique index on locks.id grows at its
 * right edge; 80 random bits keep an id unguessable. */
void oms_lock_new_id(char out[OMS_LOCK_ID_LEN + 1])
{
    memcpy(out, "lck_", 4);
    oms_time_ordered_id(out + 4); /* 80 random bits: a lock id stays unguessable */
}

bool oms_lock_id_valid(const char *s)
{
    if (!s || strlen(s) != OMS_LOCK_ID_LEN || strncmp(s, "lck_", 4) != 0)
        return false;
    for (const char *p = s + 4; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
            return false;
    return true;
}

static const char *cell(const oms_dbres *r, size_t row, size_t col, oms_arena *a)
{
    const char *v = oms_dbres_get(r, row, col);
    return v ? oms_arena_strdup(a, v) : NULL;
}

void oms_lock_from_row(oms_lock *l, const oms_dbres *r, size_t row, size_t c, oms_arena *a)
{
    memset(l, 0, sizeof *l);
    l->id = cell(r, row, c + 0, a);
    l->branch = cell(r, row, c + 1, a);
    l->scope = cell(r, row, c + 2, a);
    l->resource_type = cell(r, row, c + 3, a);
    l->resource_id = cell(r, row, c + 4, a);
    l->kind = cell(r, row, c + 5, a);
    l->holder = cell(r, row, c + 6, a);
    l->reason = cell(r, row, c + 7, a);
    l->acquired_at = oms_dbres_int(r, row, c + 8);
    l->expires_at = oms_dbres_int(r, row, c + 9);
    l->heartbeat_seconds = oms_dbres_int(r, row, c + 10);
    l->last_heartbeat_at = oms_dbres_int(r, row, c + 11);
    l->deadline_at = oms_dbres_int(r, row, c + 12);
    const char *pct = oms_dbres_get(r, row, c + 13);
    l->has_percent = pct != NULL;
    l->percent = pct ? strtod(pct, NULL) : 0;
    l->phase = cell(r, row, c + 14, a);
    l->message = cell(r, row, c + 15, a);
    l->progress_updated_at = oms_dbres_get(r, row, c + 16) ? oms_dbres_int(r, row, c + 16) : 0;
    l->fencing_token = oms_dbres_int(r, row, c + 17);
    l->state = cell(r, row, c + 18, a);
    l->ended_at = oms_dbres_get(r, row, c + 19) ? oms_dbres_int(r, row, c + 19) : 0;
    l->ended_by = cell(r, row, c + 20, a);
}

bool oms_lock_live(const oms_lock *l, int64_t now)
{
    return strcmp(l->state, "active") == 0 && now < l->deadline_at;
}

const char *oms_lock_effective_state(const oms_lock *l, int64_t now)
{
    if (strcmp(l->state, "active") == 0 && now >= l->deadline_at)
        return "expired";
    return l->state;
}

static bool same(const char *a, const char *b) { return a && b && strcmp(a, b) == 0; }

bool oms_locks_conflict(const oms_lock *a, const oms_lock *b)
{
    if (!same(a->branch, b->branch))
        return false;
    if (!strcmp(a->scope, "branch") || !strcmp(b->scope, "branch"))
        return true;
    if (!same(a->resource_type, b->resource_type))
        return false;
    if (!strcmp(a->scope, "resource_type") || !strcmp(b->scope, "resource_type"))
        return true;
    return same(a->resource_id, b->resource_id);
}

bool oms_lock_covers(const oms_lock *l, const char *resource)
{
    if (!strcmp(l->scope, "branch"))
        return true;
    size_t tl = strlen(l->resource_type);
    if (strncmp(resource, l->resource_type, tl) != 0 || resource[tl] != '/')
        return false;
    return !strcmp(l->scope, "resource_type") || strcmp(resource + tl + 1, l->resource_id) == 0;
}

const char *oms_lock_pattern(const oms_lock *l, oms_arena *a)
{
    if (!strcmp(l->scope, "branch"))
        return "*";
    if (!strcmp(l->scope, "resource_type"))
        return oms_arena_printf(a, "%s/*", l->resource_type);
    return oms_arena_printf(a, "%s/%s", l->resource_type, l->resource_id);
}

bool oms_lock_eta_seconds(const oms_lock *l, int64_t now, int64_t *out)
{
    if (!l->has_percent || !l->progress_updated_at)
        return false;
    if (l->percent >= 100) {
        *out = 0;
        return true;
    }
    double elapsed = (double)(l->progress_updated_at - l->acquired_at);
    if (l->percent <= 0 || elapsed <= 0)
        return false;
    /* percent per millisecond since acquisition, extrapolated from the last
     * report, minus the time that passed since it */
    double remaining_ms = (100.0 - l->percent) * elapsed / l->percent - (double)(now - l->progress_updated_at);
    *out = remaining_ms <= 0 ? 0 : (int64_t)ceil(remaining_ms / 1000.0);
    return true;
}

static json_t *time_or_null(int64_t ms)
{
    if (!ms)
        return json_null();
    char buf[40];
    oms_time_rfc3339_ms(buf, sizeof buf, ms);
    return json_string(buf);
}

json_t *oms_lock_json(const oms_lock *l, int64_t now)
{
    int64_t eta = 0;
    bool has_eta = oms_lock_live(l, now) && oms_lock_eta_seconds(l, now, &eta);
    json_t *progress = json_pack("{s:o,s:s?,s:s?,s:o}", "percent",
                                 l->has_percent ? json_real(l->percent) : json_null(), "phase", l->phase, "message",
                                 l->message, "updated_at", time_or_null(l->progress_updated_at));
    if (!l->phase)
        json_object_set_new(progress, "phase", json_null());
    if (!l->message)
        json_object_set_new(progress, "message", json_null());
    json_t *o = json_pack("{s:s,s:s,s:s,s:s?,s:s?,s:s,s:s,s:s}", "id", l->id, "branch", l->branch, "scope", l->scope,
                          "resource_type", l->resource_type, "resource_id", l->resource_id, "kind", l->kind,
                          "holder", l->holder, "reason", l->reason);
    if (!l->resource_type)
        json_object_set_new(o, "resource_type", json_null());
    if (!l->resource_id)
        json_object_set_new(o, "resource_id", json_null());
    json_object_set_new(o, "acquired_at", time_or_null(l->acquired_at));
    json_object_set_new(o, "expires_at", time_or_null(l->expires_at));
    json_object_set_new(o, "heartbeat_seconds", json_integer(l->heartbeat_seconds));
    json_object_set_new(o, "last_heartbeat_at", time_or_null(l->last_heartbeat_at));
    json_object_set_new(o, "deadline_at", time_or_null(l->deadline_at));
    json_object_set_new(o, "progress", progress);
    json_object_set_new(o, "fencing_token", json_integer(l->fencing_token));
    json_object_set_new(o, "state", json_string(oms_lock_effective_state(l, now)));
    json_object_set_new(o, "ended_at", time_or_null(l->ended_at ? l->ended_at
                                                    : oms_lock_live(l, now) || strcmp(l->state, "active")
                                                        ? 0
                                                        : l->deadline_at));
    json_object_set_new(o, "ended_by", l->ended_by ? json_string(l->ended_by) : json_null());
    json_object_set_new(o, "eta_seconds", has_eta ? json_integer(eta) : json_null());
    return o;
}

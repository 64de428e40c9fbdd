/* JSON-lines logs. Warnings and errors are rate-limited per message: the
 * same format string (the call site's message, whatever its arguments) is
 * written at most LOG_BURST times a second; the lines past that are counted
 * and reported by one "suppressed K similar lines" line, when the message is
 * next written or at the latest by oms_log_flush_suppressed (a background
 * task, every second). A failing disk or database then costs a few lines a second,
 * not thousands. Disabled levels return before any work. */
#include "infra/log.h"

#include <jansson.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/time.h"

oms_log_level oms_log_min = OMS_LOG_INFO;

static const char *const k_names[] = {"debug", "info", "warn", "error", "off"};

int oms_log_set_level(const char *name)
{
    for (int i = 0; i <= OMS_LOG_OFF; i++)
        if (strcmp(name, k_names[i]) == 0) {
            oms_log_min = (oms_log_level)i;
            return 0;
        }
    return -1;
}

#define LOG_BURST 10
#define LOG_SLOTS 128

typedef struct {
    const char *key; /* the format string */
    int64_t second;
    int count;
    long suppressed;
} rl_slot;

static struct {
    pthread_mutex_t mu;
    rl_slot slot[LOG_SLOTS];
} g_rl = {.mu = PTHREAD_MUTEX_INITIALIZER};

/* May a line of this message be written now? *report: lines of it
 * suppressed in earlier seconds, to be reported first. */
static bool rate_allows(const char *key, int64_t now_ms, long *report)
{
    *report = 0;
    size_t h = (size_t)(((uintptr_t)key >> 3) * 11400714819323198485ull) % LOG_SLOTS;
    int64_t sec = now_ms / 1000; /* the seconds of the lines' own timestamps */
    bool ok = true;
    pthread_mutex_lock(&g_rl.mu);
    for (size_t k = 0; k < 8; k++) {
        rl_slot *s = &g_rl.slot[(h + k) % LOG_SLOTS];
        if (s->key && s->key != key)
            continue;
        if (!s->key || s->second != sec) {
            *report = s->key ? s->suppressed : 0;
            s->key = key;
            s->second = sec;
            s->count = 0;
            s->suppressed = 0;
        }
        if (s->count < LOG_BURST)
            s->count++;
        else {
            s->suppressed++;
            ok = false;
        }
        break;
    } /* a crowded table limits nothing rather than the wrong message */
    pthread_mutex_unlock(&g_rl.mu);
    return ok;
}

static void emit(oms_log_level lvl, int64_t now_ms, const char *request_id, const char *fields_json, const char *msg);

static void report_suppressed(oms_log_level lvl, int64_t now_ms, const char *fmt, long n)
{
    char note[256];
    snprintf(note, sizeof note, "suppressed %ld similar lines (\"%.160s\")", n, fmt);
    emit(lvl, now_ms, NULL, NULL, note);
}

void oms_log_flush_suppressed(void)
{
    int64_t now_ms = oms_now_ms(), sec = now_ms / 1000;
    for (size_t i = 0; i < LOG_SLOTS; i++) {
        pthread_mutex_lock(&g_rl.mu);
        rl_slot *s = &g_rl.slot[i];
        const char *key = s->key;
        long n = 0;
        if (key && s->second != sec && s->suppressed) {
            n = s->suppressed;
            s->suppressed = 0;
        }
        pthread_mutex_unlock(&g_rl.mu);
        if (n)
            report_suppressed(OMS_LOG_WARN, now_ms, key, n);
    }
}

void oms_log_write(oms_log_level lvl, const char *request_id, const char *fields_json,
                   const char *fmt, ...)
{
    if (lvl < oms_log_min)
        return;
    int64_t now_ms = oms_now_ms();
    if (lvl >= OMS_LOG_WARN) {
        long report;
        bool ok = rate_allows(fmt, now_ms, &report);
        if (report > 0)
            report_suppressed(lvl, now_ms, fmt, report);
        if (!ok)
            return;
    }
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    emit(lvl, now_ms, request_id, fields_json, msg);
}

static void emit(oms_log_level lvl, int64_t now_ms, const char *request_id, const char *fields_json, const char *msg)
{
    json_t *j = json_string(msg); /* NULL for invalid UTF-8: logged as "" */
    char *esc = j ? json_dumps(j, JSON_ENCODE_ANY) : NULL;
    json_decref(j);
    char ts[40];
    oms_time_rfc3339_ms(ts, sizeof ts, now_ms);
    char line[2048];
    int n = snprintf(line, sizeof line, "{\"time\":\"%s\",\"level\":\"%s\"%s%s%s,\"msg\":%s%s}\n", ts,
                     k_names[lvl], request_id ? ",\"request_id\":\"" : "", request_id ? request_id : "",
                     request_id ? "\"" : "", esc ? esc : "\"\"", fields_json ? fields_json : "");
    free(esc);
    if (n > 0)
        fwrite(line, 1, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1, stderr);
}

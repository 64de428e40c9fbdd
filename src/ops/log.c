#include "ops/log.h"

#include <jansson.h>
#include <stdarg.h>
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

void oms_log_write(oms_log_level lvl, const char *request_id, const char *fields_json,
                   const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    json_t *j = json_string(msg); /* NULL for invalid UTF-8: logged as "" */
    char *esc = j ? json_dumps(j, JSON_ENCODE_ANY) : NULL;
    json_decref(j);
    char ts[40];
    oms_time_rfc3339_ms(ts, sizeof ts, oms_now_ms());
    char line[2048];
    int n = snprintf(line, sizeof line, "{\"time\":\"%s\",\"level\":\"%s\"%s%s%s,\"msg\":%s%s}\n", ts,
                     k_names[lvl], request_id ? ",\"request_id\":\"" : "", request_id ? request_id : "",
                     request_id ? "\"" : "", esc ? esc : "\"\"", fields_json ? fields_json : "");
    free(esc);
    if (n > 0)
        fwrite(line, 1, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1, stderr);
}

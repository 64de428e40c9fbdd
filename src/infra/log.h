/* JSON-lines logs on stderr. A disabled level costs one comparison
 * (the macro checks before any argument is evaluated). */
#ifndef OMS_LOG_H
#define OMS_LOG_H

typedef enum { OMS_LOG_DEBUG, OMS_LOG_INFO, OMS_LOG_WARN, OMS_LOG_ERROR, OMS_LOG_OFF } oms_log_level;

extern oms_log_level oms_log_min;

int oms_log_set_level(const char *name); /* -1 for an unknown name */

/* Writes {"time","level","msg", ...extra}; `fields_json` is a comma-led list
 * of extra JSON members already escaped (or NULL). */
void oms_log_write(oms_log_level lvl, const char *request_id, const char *fields_json,
                   const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* Reports lines that rate limiting held back in seconds now past
 * (warnings and errors: at most 10 a second per message). */
void oms_log_flush_suppressed(void);

#define oms_log(lvl, ...)                                   \
    do {                                                    \
        if ((lvl) >= oms_log_min)                           \
            oms_log_write((lvl), NULL, NULL, __VA_ARGS__);  \
    } while (0)

#endif

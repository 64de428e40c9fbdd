/* Progress of a backup or restore on stderr: a bar redrawn in place on a
 * terminal, one plain line per section otherwise (logs, cron mail). */
#ifndef OMS_BACKUP_PROGRESS_H
#define OMS_BACKUP_PROGRESS_H

#include <stdbool.h>
#include <stdint.h>

typedef struct {
    const char *verb;    /* "backup", "verify", "restore" */
    const char *section;
    bool tty, quiet;
    int64_t total, done, section_rows;
    int64_t last_draw_ms;
} oms_bk_progress;

void oms_bk_progress_init(oms_bk_progress *p, const char *verb, int64_t total, bool quiet);
void oms_bk_progress_section(oms_bk_progress *p, const char *section);
void oms_bk_progress_add(oms_bk_progress *p, int64_t rows);
void oms_bk_progress_section_end(oms_bk_progress *p);
void oms_bk_progress_done(oms_bk_progress *p);

#endif

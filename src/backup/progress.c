/* Progress output (progress.h). The bar is redrawn at most ten times a
 * second; without a terminal each section ends with one line. */
#include "backup/progress.h"

#include <stdio.h>
#include <unistd.h>

#include "util/time.h"

void oms_bk_progress_init(oms_bk_progress *p, const char *verb, int64_t total, bool quiet)
{
    *p = (oms_bk_progress){.verb = verb, .total = total, .quiet = quiet, .tty = isatty(STDERR_FILENO) == 1};
}

static void draw(oms_bk_progress *p, bool force)
{
    int64_t now = oms_now_ms();
    if (!force && now - p->last_draw_ms < 100)
        return;
    p->last_draw_ms = now;
    int pct = p->total > 0 ? (int)(p->done * 100 / p->total) : 0;
    if (pct > 100)
        pct = 100;
    char bar[31];
    for (int i = 0; i < 30; i++)
        bar[i] = i < pct * 30 / 100 ? '#' : '.';
    bar[30] = '\0';
    fprintf(stderr, "\r%s [%s] %3d%% %-20s %lld/%lld rows\033[K", p->verb, bar, pct, p->section ? p->section : "",
            (long long)p->done, (long long)p->total);
    fflush(stderr);
}

void oms_bk_progress_section(oms_bk_progress *p, const char *section)
{
    p->section = section;
    p->section_rows = 0;
    if (p->tty && !p->quiet)
        draw(p, true);
}

void oms_bk_progress_add(oms_bk_progress *p, int64_t rows)
{
    p->done += rows;
    p->section_rows += rows;
    if (p->tty && !p->quiet)
        draw(p, false);
}

void oms_bk_progress_section_end(oms_bk_progress *p)
{
    if (p->quiet)
        return;
    if (p->tty)
        draw(p, true);
    else
        fprintf(stderr, "%s: %s: %lld rows\n", p->verb, p->section ? p->section : "", (long long)p->section_rows);
}

void oms_bk_progress_done(oms_bk_progress *p)
{
    if (p->tty && !p->quiet) {
        p->section = "done";
        draw(p, true);
        fputc('\n', stderr);
    }
}

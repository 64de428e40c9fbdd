/* A progress bar on stderr, only when stderr is a terminal: redrawn at
 * most ten times a second, left on screen when done. In a pipe or a CI log
 * nothing is drawn; the commands print their plain summary lines instead. */
#include <stdio.h>
#include <time.h>

#include "cli/cli.h"

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void draw(oms_cli_progress *p)
{
    enum { WIDTH = 30 };
    char bar[WIDTH + 1];
    size_t full = p->total ? p->done * WIDTH / p->total : WIDTH;
    for (size_t i = 0; i < WIDTH; i++)
        bar[i] = i < full ? '#' : '.';
    bar[WIDTH] = '\0';
    double pct = p->total ? 100.0 * (double)p->done / (double)p->total : 100.0;
    fprintf(stderr, "\r%s [%s] %5.1f%%  %zu/%zu\033[K", p->label, bar, pct, p->done, p->total);
    fflush(stderr);
    p->shown = true;
}

void oms_cli_progress_start(oms_cli_progress *p, oms_cli *c, const char *label, size_t total)
{
    *p = (oms_cli_progress){.c = c, .label = label, .total = total, .last_ms = now_ms()};
}

void oms_cli_progress_step(oms_cli_progress *p, size_t done)
{
    p->done = done;
    if (!p->c || !p->c->progress)
        return;
    long long t = now_ms();
    if (p->shown && t - p->last_ms < 100)
        return;
    p->last_ms = t;
    draw(p);
}

void oms_cli_progress_end(oms_cli_progress *p)
{
    if (!p->c || !p->c->progress)
        return;
    p->done = p->total;
    draw(p);
    fputc('\n', stderr);
}

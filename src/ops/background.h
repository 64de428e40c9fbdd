/* Periodic work of a serving instance (audit sealing, lock reaping, ...):
 * one thread runs every task of the table in src/app/tasks.c at its
 * interval. Tasks use the thread's own database connection and must be
 * safe when several instances run them at once (they coordinate through
 * the database). */
#ifndef OMS_BACKGROUND_H
#define OMS_BACKGROUND_H

typedef struct oms_app oms_app;

typedef struct {
    const char *name;
    int interval_ms;
    void (*run)(oms_app *app);
} oms_task;

extern const oms_task oms_tasks[];
extern const int oms_tasks_count;

void oms_background_start(oms_app *app);
/* Runs every task once more (so pending work such as sealing is flushed),
 * then stops the thread. */
void oms_background_stop(oms_app *app);

#endif

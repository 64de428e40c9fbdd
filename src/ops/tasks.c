/* The background task table (src/ops/background.h). */
#include "ops/background.h"

#include <stddef.h>

/* A task with nothing to do keeps the table non-empty in C; real tasks are
 * added above it by the subsystems that need them. */
static void heartbeat(oms_app *app) { (void)app; }

const oms_task oms_tasks[] = {
    /* name, interval (ms), function */
    {"heartbeat", 60000, heartbeat},
};
const int oms_tasks_count = (int)(sizeof oms_tasks / sizeof oms_tasks[0]);

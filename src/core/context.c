#include "core/context.h"

void oms_ctx_problem_extra(oms_ctx *ctx, json_t *extra)
{
    json_decref(ctx->problem_extra);
    ctx->problem_extra = extra;
}

json_t *oms_ctx_take_problem_extra(oms_ctx *ctx)
{
    json_t *x = ctx->problem_extra;
    ctx->problem_extra = NULL;
    return x;
}

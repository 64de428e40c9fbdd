/* The web console's files, embedded at build time by scripts/embed-web.sh
 * (the generated file is build/.../gen/web_assets.c). */
#ifndef OMS_API_UI_ASSETS_H
#define OMS_API_UI_ASSETS_H

#include <stddef.h>

typedef struct {
    const char *name;         /* served as /ui/NAME */
    const char *content_type;
    const unsigned char *data;
    size_t size;
} oms_ui_asset;

extern const oms_ui_asset oms_ui_assets[];
extern const size_t oms_ui_assets_count;

#endif

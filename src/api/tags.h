/* The tag routes (SPEC §4, §5): request -> vcs/tags.h -> response. */
#ifndef OMS_API_TAGS_H
#define OMS_API_TAGS_H

#include "http/request.h"

int oms_h_tag_list(oms_request *req);
int oms_h_tag_create(oms_request *req);
int oms_h_tag_get(oms_request *req);
int oms_h_tag_delete(oms_request *req);

#endif

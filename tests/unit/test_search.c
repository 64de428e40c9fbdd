/* Search terms (src/search/terms.c): how names and text split into terms,
 * what a resource's weighted fields hold, and query parsing. The index and
 * its ranking are tested through the API (tests/api/test_search.py). */
#include "search/terms.h"
#include "t.h"

static const char *text_terms(const char *text)
{
    static oms_search_buf b;
    oms_search_buf_free(&b);
    oms_search_add_text(&b, text);
    return b.s ? b.s : "";
}

static const char *ident_terms(const char *ident)
{
    static oms_search_buf b;
    oms_search_buf_free(&b);
    oms_search_add_ident(&b, ident);
    return b.s ? b.s : "";
}

static void splits_names(void)
{
    CHECK_EQ_STR(text_terms("placed_at"), "placed at");
    CHECK_EQ_STR(text_terms("PlacedAt"), "placed at");
    CHECK_EQ_STR(text_terms("HTTP2Server"), "http 2 server");
    CHECK_EQ_STR(text_terms("XMLHttpRequest"), "xml http request");
    CHECK_EQ_STR(text_terms("orderLineItem42"), "order line item 42");
    CHECK_EQ_STR(text_terms("Placed At, by whom?"), "placed at by whom");
    CHECK_EQ_STR(text_terms("  "), "");
    CHECK_EQ_STR(text_terms("Café-Öffnung"), "café Öffnung"); /* UTF-8 stays whole; the databases fold its case */
    CHECK_EQ_STR(ident_terms("placed_at"), "placed at placedat");
    CHECK_EQ_STR(ident_terms("Order"), "order");
    CHECK_EQ_STR(ident_terms("HTTP2Server"), "http 2 server http2server");
}

typedef struct {
    char out[256];
} spans;

static void span(void *ctx, const char *text, size_t start, size_t len)
{
    spans *s = ctx;
    size_t n = strlen(s->out);
    snprintf(s->out + n, sizeof s->out - n, "%s%zu+%zu", n ? "," : "", start, len);
}

static void word_offsets(void)
{
    spans s = {{0}};
    oms_search_words("PlacedAt x_HTTP2", span, &s);
    CHECK_EQ_STR(s.out, "0+6,6+2,9+1,11+4,15+1");
}

static void fields_of_documents(void)
{
    json_t *doc = json_loads("{\"api_name\":\"CustomerOrder\",\"display_name\":\"Customer Order\","
                             "\"description\":\"An order a customer placed.\","
                             "\"properties\":[{\"api_name\":\"placed_at\",\"display_name\":\"placed_at\","
                             "\"description\":\"When it was placed\",\"type\":\"timestamp\"},"
                             "{\"api_name\":\"state\",\"display_name\":\"Order state\",\"description\":\"\","
                             "\"type\":\"string\",\"enum\":[\"NEW\",\"IN_TRANSIT\"]}],"
                             "\"implements\":[\"Trackable\"]}",
                             0, NULL);
    oms_search_fields f;
    oms_search_fields_of(&f, OMS_KIND_OBJECT_TYPE, "CustomerOrder", doc);
    CHECK_EQ_STR(f.api.s, "customer order customerorder");
    CHECK_EQ_STR(f.names.s, "customer order");
    CHECK_EQ_STR(f.props.s, "placed at placedat state order state new in transit intransit trackable");
    CHECK_EQ_STR(f.descr.s, "an order a customer placed when it was placed");
    oms_search_fields_free(&f);
    json_decref(doc);

    doc = json_loads("{\"api_name\":\"Ships\",\"display_name\":\"Ships\",\"description\":\"\",\"from\":\"Order\","
                     "\"to\":\"DeliveryAddress\"}",
                     0, NULL);
    oms_search_fields_of(&f, OMS_KIND_LINK_TYPE, "Ships", doc);
    CHECK_EQ_STR(f.names.s, ""); /* a display name equal to the api name adds nothing */
    CHECK_EQ_STR(f.props.s, "order delivery address deliveryaddress");
    CHECK_EQ_STR(f.descr.s, "");
    oms_search_fields_free(&f);
    json_decref(doc);
}

static void queries(void)
{
    oms_search_query q;
    CHECK_EQ_INT(oms_search_query_parse(&q, "PlacedAt placed"), 2);
    CHECK_EQ_STR(q.terms[0], "placed");
    CHECK_EQ_STR(q.terms[1], "at");
    CHECK_EQ_STR(q.norm, "placedatplaced");
    oms_search_query_free(&q);
    CHECK_EQ_INT(oms_search_query_parse(&q, " -- !! "), 0);
    oms_search_query_free(&q);
    CHECK_EQ_INT(oms_search_query_parse(&q, "a b c d e f g h i j k l m n o p q r"), OMS_SEARCH_MAX_TERMS);
    CHECK(q.truncated);
    oms_search_query_free(&q);
    char norm[32];
    oms_search_norm_name(norm, "Placed_At");
    CHECK_EQ_STR(norm, "placedat");
    CHECK(oms_search_word_matches("Placed", 6, "plac"));
    CHECK(!oms_search_word_matches("Pl", 2, "plac"));
    CHECK(!oms_search_word_matches("Order", 5, "plac"));
}

int main(void)
{
    static const t_case cases[] = {T(splits_names), T(word_offsets), T(fields_of_documents), T(queries)};
    return T_RUN("search", cases);
}

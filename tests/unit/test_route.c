/* Route template table: each case is a path and the template it must give (store_route_of). */
#include "config.h"

#include "store/store.h"

#include <string.h>

#include "common/vp_err.h"
#include "tap.h"

static const struct {
    const char *name, *in, *want;
} cases[] = {
    {"root", "/", "/"},
    {"empty", "", "/"},
    {"static", "/about", "/about"},
    {"numeric", "/products/123", "/products/[id]"},
    {"numeric_nested", "/u/7/posts/42/edit", "/u/[id]/posts/[id]/edit"},
    {"trailing_slash", "/products/123/", "/products/[id]"},
    {"double_slash", "//a//b", "/a/b"},
    {"query_dropped", "/search?q=shoes&page=2", "/search"},
    {"fragment_dropped", "/docs#intro", "/docs"},
    {"uuid", "/orders/3f2504e0-4f89-11d3-9a0c-0305e82c3301", "/orders/[id]"},
    {"uuid_upper", "/o/3F2504E0-4F89-11D3-9A0C-0305E82C3301/x", "/o/[id]/x"},
    {"hex16", "/c/0123456789abcdef", "/c/[id]"},
    {"hex15_kept", "/c/0123456789abcde", "/c/0123456789abcde"},
    {"mongo_id", "/item/507f1f77bcf86cd799439011", "/item/[id]"},
    {"opaque_token", "/s/aZ3kL9pQ2xW8vB1nM7cR", "/s/[id]"},
    {"base64url", "/share/dGhpcyBpc19hIHRva2Vu-X2", "/share/[id]"},
    {"slug_with_year", "/blog/post-2024-my-trip-to-paris", "/blog/post-2024-my-trip-to-paris"},
    {"slug_letters", "/blog/a-very-long-article-title-here", "/blog/a-very-long-article-title-here"},
    {"short_mixed_kept", "/v2/api", "/v2/api"},
    {"percent_kept", "/tag/caf%C3%A9", "/tag/caf%C3%A9"},
    {"absolute_form", "http://localhost:3000/products/9?x=1", "/products/[id]"},
    {"next_static", "/_next/static/chunks/app/page.js", "/_next/static/chunks/app/page.js"},
    {"api", "/api/users/42/orders", "/api/users/[id]/orders"},
};

int main(void)
{
    char out[256];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int n = store_route_of(cases[i].in, strlen(cases[i].in), out, sizeof out);
        TAP_OK(n >= 0 && strcmp(out, cases[i].want) == 0 && (size_t)n == strlen(out),
               "route/%s: %s -> %s (got %s)", cases[i].name, cases[i].in, cases[i].want,
               n >= 0 ? out : "error");
    }
    /* Output capacity is enforced. */
    char small[6];
    TAP_OK(store_route_of("/products/1", 11, small, sizeof small) == VP_ERR_LIMIT,
           "route/too_small: VP_ERR_LIMIT");
    TAP_OK(store_route_of("/ab", 3, small, 4) == 3 && strcmp(small, "/ab") == 0,
           "route/exact_fit");
    TAP_OK(store_route_of("/abc", 4, small, 4) == VP_ERR_LIMIT, "route/one_short");
    TAP_OK(store_route_of("/p/1", 2, out, sizeof out) == 2 && strcmp(out, "/p") == 0,
           "route/length_respected");
    TAP_DONE();
}

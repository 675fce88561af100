/* static.c - the dashboard's files: GET / is web/index.html, GET /ui/{asset} the
 * other files of web/, all from the table built into the binary (web/assets.h).
 *
 * These routes are public: the files hold no data, and every piece of data the
 * page shows comes from the API, which checks the token (or the session cookie).
 * Each answer has an ETag (If-None-Match -> 304) and `Cache-Control: no-cache`, so a
 * new binary is picked up at once, and headers that keep the page from being
 * framed, sniffed or made to run anything but its own scripts: the page has no
 * inline script or style, so its Content-Security-Policy allows only 'self'.
 * A build without web/ (THEATER_WEB_ASSETS undefined) answers 404 here. */
#include "api/api_int.h"

#include <stdlib.h>
#include <string.h>

#include "web/assets.h"

/* The table and its length (none without web/). */
static const struct web_asset *assets(size_t *n_out)
{
#ifdef THEATER_WEB_ASSETS
	*n_out = web_assets_count;
	return web_assets;
#else
	*n_out = 0;
	return NULL;
#endif
}

#define CSP "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " \
	    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

static const struct web_asset *find_asset(const char *name, size_t *n_out)
{
	const struct web_asset *all = assets(n_out);
	for (size_t i = 0; i < *n_out; i++)
		if (strcmp(all[i].name, name) == 0)
			return &all[i];
	return NULL;
}

static void serve(struct api_call *c, const char *name)
{
	size_t n;
	const struct web_asset *a = find_asset(name, &n);
	if (!a) {
		char detail[200];
		snprintf(detail, sizeof(detail), n ? "no dashboard file '%.100s'"
			 : "this build has no dashboard (web/ was not built in): '%.100s'", name);
		api_problem(c, ERR_NOT_FOUND, detail);
		return;
	}
	const char *h[] = {"ETag", a->etag, "Cache-Control", "no-cache",
			   "Content-Security-Policy", CSP, "X-Content-Type-Options", "nosniff",
			   "X-Frame-Options", "DENY", "Referrer-Policy", "no-referrer", NULL};
	if (api_not_modified(c, a->etag)) {
		api_empty(c, 304, h);
		return;
	}
	void *copy = malloc(a->len ? a->len : 1);
	if (!copy) {
		api_problem(c, ERR_NOMEM, "cannot serve the dashboard");
		return;
	}
	memcpy(copy, a->data, a->len);
	api_bytes(c, 200, a->content_type, copy, a->len, h);
}

void h_static_index(struct api_call *c)
{
	serve(c, "index.html");
}

/* The API contract (openapi/openapi.yaml, embedded with the dashboard). */
void h_openapi(struct api_call *c)
{
	serve(c, "openapi.yaml");
}

void h_static_asset(struct api_call *c)
{
	serve(c, c->params[0]);
}

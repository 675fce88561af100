/* assets.h - the dashboard's files, built into the binary.
 *
 * web/embed.cmake turns every file of web/ that the page serves (*.html, *.css,
 * *.js, *.svg) into one table in <build>/generated/web_assets.c, so theater-server
 * needs no files beside it and the page works wherever the binary runs (make run,
 * the Docker image). api/static.c serves the table; web/CMakeLists.txt links it
 * into theater_api and defines THEATER_WEB_ASSETS there.
 * Ownership: everything is static, read-only data. Threads: any.
 */
#ifndef THEATER_WEB_ASSETS_H
#define THEATER_WEB_ASSETS_H

#include <stddef.h>

struct web_asset {
	const char *name;               /* file name in web/: "index.html", "app.js" */
	const char *content_type;       /* "text/javascript; charset=utf-8" */
	const char *etag;               /* quoted; from the file's SHA-256 */
	const unsigned char *data;
	size_t len;
};

extern const struct web_asset web_assets[];
extern const size_t web_assets_count;

#endif

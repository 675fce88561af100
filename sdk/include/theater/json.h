/* theater/json.h - JSON for actors: the reader (theater/jscan.h: js_parse,
 * js_get, js_at, js_next, js_int, js_string, ...) and the writer
 * (theater/jbuf.h: jb_init, jb_cstr, jb_int, jb_quote, ...) in one include.
 * Include theater/actor.h first. Header-only; memory comes from theater_alloc
 * and lives for one call (docs/sdk.md). */
#ifndef THEATER_JSON_H
#define THEATER_JSON_H

#include "theater/jbuf.h"
#include "theater/jscan.h"

#endif

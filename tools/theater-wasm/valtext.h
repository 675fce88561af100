/* valtext.h - WebAssembly values as command-line text, both ways.
 *
 * Parsing follows the parameter's type: integers in signed or unsigned
 * decimal or (optionally negative) 0x hex; floats in decimal or C hex-float
 * form, "inf", "nan", "nan:0x<payload>", each with an optional sign; refs as
 * "null" (externref also takes a decimal host number N, shown back as N).
 * Formatting writes "TYPE:VALUE": integers as signed decimal, floats as the
 * shortest decimal that reads back to the same bits, "nan" for the canonical
 * NaN, "nan:0x<payload>" otherwise, with "-" when the sign bit is set.
 *
 * Threads: all functions are thread-safe (they touch only their arguments).
 */
#ifndef THEATER_TOOLS_VALTEXT_H
#define THEATER_TOOLS_VALTEXT_H

#include <stddef.h>

#include "src/util/err.h"
#include "src/wasm/wasm.h"

/* Longest text valtext_format writes, NUL included. */
#define VALTEXT_MAX 64

/* Parses `text` as a value of `type` into *out. ERR_INVALID with a message
 * naming the text and the type when it does not parse or is out of range. */
enum err_code valtext_parse(enum wasm_valtype type, const char *text,
			    struct wasm_value *out, struct err *err);

/* Writes "TYPE:VALUE" for v into out (size >= VALTEXT_MAX). Returns out. */
char *valtext_format(const struct wasm_value *v, char *out, size_t size);

/* "i32", "f64", "funcref", ... ("unknown" for anything else). Never NULL. */
const char *valtext_type_name(enum wasm_valtype type);

#endif

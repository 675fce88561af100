/* toml_lex.c - the lexical half of the TOML parser: positions and error
 * messages, white space, comments and newlines, UTF-8 checking, and the
 * scalars (the four string kinds, integers, floats, booleans, date-times).
 *
 * Everything works in one forward pass over the bytes. UTF-8 is checked where
 * non-ASCII bytes may legally appear (strings, comments); anywhere else a
 * non-ASCII byte is a syntax error anyway, so the whole document is validated
 * without a separate pass. Columns are computed lazily from a cache on the
 * current line, so giving every node a position costs O(1) amortized.
 */
#include "src/toml/toml_int.h"
#include "src/util/crypto.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- positions and errors ---- */

struct toml_pos toml_pos_of(struct toml_parser *P, const char *at)
{
	if (P->colmark < P->line_start || at < P->colmark) {
		P->colmark = P->line_start;
		P->colval = 1;
	}
	uint32_t col = P->colval;
	for (const char *q = P->colmark; q < at; q++)
		if (((unsigned char)*q & 0xC0) != 0x80)
			col++;
	P->colmark = at;
	P->colval = col;
	return (struct toml_pos){P->line, col};
}

struct toml_pos toml_here(struct toml_parser *P)
{
	return toml_pos_of(P, P->p);
}

static int vfail(struct toml_parser *P, struct toml_pos at, enum err_code code, const char *fmt,
		 va_list ap) __attribute__((format(printf, 4, 0)));

static int vfail(struct toml_parser *P, struct toml_pos at, enum err_code code, const char *fmt,
		 va_list ap)
{
	char msg[ERR_MSG_MAX];
	vsnprintf(msg, sizeof(msg), fmt, ap);
	P->code = code;
	err_set(P->err, code, "%s:%u:%u: %s", P->name, (unsigned)at.line, (unsigned)at.col, msg);
	if (P->pos_out) {
		P->pos_out->line = at.line;
		P->pos_out->col = at.col;
	}
	return -1;
}

int toml_fail_at(struct toml_parser *P, struct toml_pos at, enum err_code code, const char *fmt,
		 ...)
{
	va_list ap;
	va_start(ap, fmt);
	vfail(P, at, code, fmt, ap);
	va_end(ap);
	return -1;
}

int toml_fail(struct toml_parser *P, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vfail(P, toml_here(P), ERR_INVALID, fmt, ap);
	va_end(ap);
	return -1;
}

/* Length of the well-formed UTF-8 sequence at p (2..4), or 0: overlong
 * forms, surrogates and code points past U+10FFFF are refused. */
static int utf8_len(const unsigned char *p, const unsigned char *end, uint32_t *cp_out)
{
	unsigned c = p[0];
	int n;
	uint32_t cp, min;
	if (c < 0xC2)
		return 0;
	if (c < 0xE0) {
		n = 2, cp = c & 0x1F, min = 0x80;
	} else if (c < 0xF0) {
		n = 3, cp = c & 0x0F, min = 0x800;
	} else if (c < 0xF5) {
		n = 4, cp = c & 0x07, min = 0x10000;
	} else {
		return 0;
	}
	if (end - p < n)
		return 0;
	for (int i = 1; i < n; i++) {
		if ((p[i] & 0xC0) != 0x80)
			return 0;
		cp = (cp << 6) | (p[i] & 0x3F);
	}
	if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
		return 0;
	if (cp_out)
		*cp_out = cp;
	return n;
}

const char *toml_found(struct toml_parser *P, char buf[40])
{
	if (P->p >= P->end)
		return "end of file";
	unsigned c = (unsigned char)*P->p;
	uint32_t cp;
	if (c == '\n' || (c == '\r' && P->end - P->p > 1 && P->p[1] == '\n'))
		return "end of line";
	if (c > 0x20 && c < 0x7F)
		snprintf(buf, 40, "'%c'", (char)c);
	else if (c == ' ')
		snprintf(buf, 40, "a space");
	else if (c == '\t')
		snprintf(buf, 40, "a tab");
	else if (c < 0x80)
		snprintf(buf, 40, "control character U+%04X", c);
	else if (utf8_len((const unsigned char *)P->p, (const unsigned char *)P->end, &cp))
		snprintf(buf, 40, "character U+%04X", (unsigned)cp);
	else
		snprintf(buf, 40, "invalid UTF-8 byte 0x%02X", c);
	return buf;
}

/* Consumes a valid UTF-8 sequence at P->p or fails. */
static int eat_utf8(struct toml_parser *P)
{
	int n = utf8_len((const unsigned char *)P->p, (const unsigned char *)P->end, NULL);
	if (!n)
		return toml_fail(P, "invalid UTF-8 byte 0x%02X", (unsigned char)*P->p);
	P->p += n;
	return 0;
}

/* ---- white space, newlines, comments ---- */

void toml_skip_ws(struct toml_parser *P)
{
	while (P->p < P->end && (*P->p == ' ' || *P->p == '\t'))
		P->p++;
}

static void newline_done(struct toml_parser *P)
{
	P->line++;
	P->line_start = P->p;
}

int toml_eat_newline(struct toml_parser *P)
{
	if (P->p < P->end && *P->p == '\n') {
		P->p++;
	} else if (P->end - P->p >= 2 && P->p[0] == '\r' && P->p[1] == '\n') {
		P->p += 2;
	} else {
		return 0;
	}
	newline_done(P);
	return 1;
}

static int is_text(unsigned c)
{
	return c == '\t' || (c >= 0x20 && c < 0x7F);
}

int toml_skip_comment(struct toml_parser *P)
{
	char fb[40];
	P->p++; /* '#' */
	while (P->p < P->end) {
		unsigned c = (unsigned char)*P->p;
		if (is_text(c)) {
			P->p++;
		} else if (c >= 0x80) {
			if (eat_utf8(P) < 0)
				return -1;
		} else if (c == '\n' || (c == '\r' && P->end - P->p > 1 && P->p[1] == '\n')) {
			return 0;
		} else {
			return toml_fail(P, "%s is not allowed in a comment", toml_found(P, fb));
		}
	}
	return 0;
}

int toml_skip_wcn(struct toml_parser *P)
{
	for (;;) {
		toml_skip_ws(P);
		if (P->p >= P->end)
			return 0;
		if (*P->p == '#') {
			if (toml_skip_comment(P) < 0)
				return -1;
		} else if (!toml_eat_newline(P)) {
			return 0;
		}
	}
}

/* ---- strings ---- */

static int is_digit(int c)
{
	return c >= '0' && c <= '9';
}

static int put(struct toml_parser *P, const char *s, size_t n)
{
	if (buf_append(&P->scratch, s, n) != ERR_OK)
		return toml_fail_at(P, toml_here(P), ERR_NOMEM, "out of memory");
	return 0;
}

static int put_utf8(struct toml_parser *P, uint32_t cp)
{
	char b[4];
	size_t n;
	if (cp < 0x80) {
		b[0] = (char)cp, n = 1;
	} else if (cp < 0x800) {
		b[0] = (char)(0xC0 | (cp >> 6)), b[1] = (char)(0x80 | (cp & 0x3F)), n = 2;
	} else if (cp < 0x10000) {
		b[0] = (char)(0xE0 | (cp >> 12)), b[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
		b[2] = (char)(0x80 | (cp & 0x3F)), n = 3;
	} else {
		b[0] = (char)(0xF0 | (cp >> 18)), b[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
		b[2] = (char)(0x80 | ((cp >> 6) & 0x3F)), b[3] = (char)(0x80 | (cp & 0x3F)), n = 4;
	}
	return put(P, b, n);
}

/* \uXXXX or \UXXXXXXXX; P->p is at 'u' or 'U'. */
static int escape_unicode(struct toml_parser *P)
{
	int n = *P->p == 'u' ? 4 : 8;
	const char *esc = P->p - 1;
	uint32_t cp = 0;
	P->p++;
	for (int i = 0; i < n; i++, P->p++) {
		int h = P->p < P->end ? hex_digit(*P->p) : -1;
		if (h < 0)
			return toml_fail(P, "expected %d hexadecimal digits in '\\%c' escape", n,
					 n == 4 ? 'u' : 'U');
		cp = (cp << 4) | (uint32_t)h;
	}
	if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
		return toml_fail_at(P, toml_pos_of(P, esc), ERR_INVALID,
				    "escape '%.*s' is not a Unicode scalar value", n + 2, esc);
	return put_utf8(P, cp);
}

/* In a multi-line basic string, a backslash followed by white space up to
 * the end of the line removes all white space and newlines after it. */
static int escape_line_end(struct toml_parser *P)
{
	const char *bs = P->p - 1;
	toml_skip_ws(P);
	if (!toml_eat_newline(P))
		return toml_fail_at(P, toml_pos_of(P, bs), ERR_INVALID,
				    "a backslash followed by white space must end the line");
	for (;;) {
		toml_skip_ws(P);
		if (!toml_eat_newline(P))
			return 0;
	}
}

/* P->p is just past the backslash. */
static int lex_escape(struct toml_parser *P, int multiline)
{
	char fb[40];
	if (P->p >= P->end)
		return toml_fail(P, "unterminated string");
	char c = *P->p, out;
	switch (c) {
	case 'b': out = '\b'; break;
	case 't': out = '\t'; break;
	case 'n': out = '\n'; break;
	case 'f': out = '\f'; break;
	case 'r': out = '\r'; break;
	case '"': out = '"'; break;
	case '\\': out = '\\'; break;
	case 'u':
	case 'U':
		return escape_unicode(P);
	case ' ':
	case '\t':
	case '\n':
	case '\r':
		if (multiline)
			return escape_line_end(P);
		/* fall through */
	default:
		return toml_fail_at(P, toml_pos_of(P, P->p - 1), ERR_INVALID,
				    "invalid escape sequence: backslash followed by %s",
				    toml_found(P, fb));
	}
	P->p++;
	return put(P, &out, 1);
}

static int basic_plain(unsigned c)
{
	return (c >= 0x20 && c < 0x7F && c != '"' && c != '\\') || c == '\t';
}

static int lit_plain(unsigned c)
{
	return (c >= 0x20 && c < 0x7F && c != '\'') || c == '\t';
}

static int finish_scratch(struct toml_parser *P, const char **s_out, size_t *len_out)
{
	*s_out = toml_arena_strdup(P->arena, P->scratch.data ? P->scratch.data : "",
				   P->scratch.len);
	*len_out = P->scratch.len;
	if (!*s_out)
		return toml_fail_at(P, toml_here(P), ERR_NOMEM, "out of memory");
	return 0;
}

/* A character that is not plain text in a string: non-ASCII, newline or a
 * control character. Returns 1 when consumed, -1 on error. */
static int string_other(struct toml_parser *P, struct toml_pos start, int multiline)
{
	char fb[40];
	unsigned c = (unsigned char)*P->p;
	if (c >= 0x80) {
		const char *s = P->p;
		if (eat_utf8(P) < 0)
			return -1;
		return put(P, s, (size_t)(P->p - s)) < 0 ? -1 : 1;
	}
	if (multiline && toml_eat_newline(P))
		return put(P, "\n", 1) < 0 ? -1 : 1;
	if (c == '\n' || (c == '\r' && P->end - P->p > 1 && P->p[1] == '\n'))
		return toml_fail_at(P, start, ERR_INVALID,
				    "unterminated string: a single-line string cannot span lines");
	return toml_fail(P, "%s must be escaped in a string", toml_found(P, fb));
}

/* "..." and '...'; P->p is at the opening quote. */
static int lex_single(struct toml_parser *P, struct toml_pos start, const char **s_out,
		      size_t *len_out)
{
	char q = *P->p++;
	int basic = q == '"';
	const char *run = P->p;
	/* Fast path: plain text up to the closing quote is copied once. */
	while (P->p < P->end && (basic ? basic_plain((unsigned char)*P->p)
				       : lit_plain((unsigned char)*P->p)))
		P->p++;
	if (P->p < P->end && *P->p == q) {
		*s_out = toml_arena_strdup(P->arena, run, (size_t)(P->p - run));
		*len_out = (size_t)(P->p - run);
		P->p++;
		return *s_out ? 0 : toml_fail_at(P, start, ERR_NOMEM, "out of memory");
	}
	buf_reset(&P->scratch);
	if (put(P, run, (size_t)(P->p - run)) < 0)
		return -1;
	for (;;) {
		if (P->p >= P->end)
			return toml_fail_at(P, start, ERR_INVALID, "unterminated string");
		unsigned c = (unsigned char)*P->p;
		if (c == (unsigned char)q) {
			P->p++;
			return finish_scratch(P, s_out, len_out);
		}
		if (basic && c == '\\') {
			P->p++;
			if (lex_escape(P, 0) < 0)
				return -1;
		} else if (basic ? basic_plain(c) : lit_plain(c)) {
			run = P->p;
			while (P->p < P->end && (basic ? basic_plain((unsigned char)*P->p)
						       : lit_plain((unsigned char)*P->p)))
				P->p++;
			if (put(P, run, (size_t)(P->p - run)) < 0)
				return -1;
		} else if (string_other(P, start, 0) < 0) {
			return -1;
		}
	}
}

/* At a quote inside a multi-line string: 1 or 2 quotes are text; 3 to 5 end
 * the string (the first 0 to 2 of them being text); more is an error.
 * Returns 1 when the string ended. */
static int ml_quotes(struct toml_parser *P, char q)
{
	size_t n = 0;
	while (P->p + n < P->end && P->p[n] == q)
		n++;
	if (n > 5)
		return toml_fail(P, "too many quotes: at most two may follow text in a "
				    "multi-line string before its closing delimiter");
	const char quotes[2] = {q, q};
	if (put(P, quotes, n < 3 ? n : n - 3) < 0)
		return -1;
	P->p += n;
	return n >= 3;
}

/* """...""" and '''...'''; P->p is at the first of the three quotes. */
static int lex_multi(struct toml_parser *P, struct toml_pos start, const char **s_out,
		     size_t *len_out)
{
	char q = *P->p;
	int basic = q == '"';
	P->p += 3;
	toml_eat_newline(P); /* a newline right after the delimiter is trimmed */
	buf_reset(&P->scratch);
	for (;;) {
		const char *run = P->p;
		while (P->p < P->end && (basic ? basic_plain((unsigned char)*P->p)
					       : lit_plain((unsigned char)*P->p)))
			P->p++;
		if (put(P, run, (size_t)(P->p - run)) < 0)
			return -1;
		if (P->p >= P->end)
			return toml_fail_at(P, start, ERR_INVALID, "unterminated multi-line string");
		char c = *P->p;
		int r;
		if (c == q) {
			r = ml_quotes(P, q);
			if (r < 0)
				return -1;
			if (r == 1)
				return finish_scratch(P, s_out, len_out);
		} else if (basic && c == '\\') {
			P->p++;
			if (lex_escape(P, 1) < 0)
				return -1;
		} else if (string_other(P, start, 1) < 0) {
			return -1;
		}
	}
}

int toml_lex_string(struct toml_parser *P, struct toml_pos start, const char **s_out,
		    size_t *len_out)
{
	char q = *P->p;
	if (P->end - P->p >= 3 && P->p[1] == q && P->p[2] == q)
		return lex_multi(P, start, s_out, len_out);
	return lex_single(P, start, s_out, len_out);
}

/* ---- numbers ---- */

/* A value must be followed by white space, a newline, a comment, a separator
 * or the end of the document. */
static int at_value_end(struct toml_parser *P)
{
	if (P->p >= P->end)
		return 1;
	switch (*P->p) {
	case ' ': case '\t': case '\n': case '\r': case '#': case ',': case ']': case '}':
		return 1;
	default:
		return 0;
	}
}

static int bad_number(struct toml_parser *P, const char *start)
{
	const char *e = P->p;
	while (e < P->end && !(*e == ' ' || *e == '\t' || *e == '\n' || *e == '\r' ||
			       *e == ',' || *e == ']' || *e == '}' || *e == '#') &&
	       e - start < 40)
		e++;
	return toml_fail_at(P, toml_pos_of(P, start), ERR_INVALID, "invalid number '%.*s'",
			    (int)(e - start), start);
}

/* Reads DIGIT *( DIGIT / "_" DIGIT ) in the given base, feeding *acc (with
 * overflow noted in *ovf). P->p is at a digit of that base. Returns the
 * number of digits or -1. */
static int lex_digits(struct toml_parser *P, const char *start, int base, uint64_t *acc,
		      int *ovf)
{
	int n = 0;
	for (;;) {
		int d = P->p < P->end ? hex_digit(*P->p) : -1;
		if (d < 0 || d >= base) {
			if (P->p < P->end && *P->p == '_')
				return bad_number(P, start);
			return n;
		}
		if (*acc > (UINT64_MAX - (unsigned)d) / (unsigned)base)
			*ovf = 1;
		else
			*acc = *acc * (unsigned)base + (unsigned)d;
		n++;
		P->p++;
		if (P->p < P->end && *P->p == '_') {
			P->p++;
			d = P->p < P->end ? hex_digit(*P->p) : -1;
			if (d < 0 || d >= base)
				return toml_fail(P, "'_' in a number must be between two digits");
		}
	}
}

/* 0x, 0o, 0b integers (no sign allowed). */
static int lex_radix(struct toml_parser *P, struct toml_value *v)
{
	const char *start = P->p;
	int base = P->p[1] == 'x' ? 16 : P->p[1] == 'o' ? 8 : 2;
	P->p += 2;
	uint64_t acc = 0;
	int ovf = 0;
	int d = P->p < P->end ? hex_digit(*P->p) : -1;
	if (d < 0 || d >= base)
		return bad_number(P, start);
	if (lex_digits(P, start, base, &acc, &ovf) < 0)
		return -1;
	if (!at_value_end(P))
		return bad_number(P, start);
	if (ovf || acc > (uint64_t)INT64_MAX)
		return toml_fail_at(P, toml_pos_of(P, start), ERR_INVALID,
				    "integer '%.*s' does not fit in 64 bits", (int)(P->p - start),
				    start);
	v->type = TOML_INTEGER;
	v->u.i = (int64_t)acc;
	return 0;
}

static int lex_special_float(struct toml_parser *P, struct toml_value *v, const char *start,
			     int neg)
{
	double f;
	if (P->end - P->p >= 3 && memcmp(P->p, "inf", 3) == 0)
		f = neg ? -INFINITY : INFINITY;
	else if (P->end - P->p >= 3 && memcmp(P->p, "nan", 3) == 0)
		f = neg ? -NAN : NAN;
	else
		return P->p == start ? toml_fail_value(P, start) : bad_number(P, start);
	P->p += 3;
	if (!at_value_end(P))
		return P->p - 3 == start ? toml_fail_value(P, start) : bad_number(P, start);
	v->type = TOML_FLOAT;
	v->u.f = f;
	return 0;
}

/* Converts the float text [start, P->p) without underscores with strtod. */
static int float_value(struct toml_parser *P, struct toml_value *v, const char *start)
{
	char small[128];
	char *t = small;
	size_t n = (size_t)(P->p - start);
	if (n >= sizeof(small)) {
		buf_reset(&P->scratch);
		if (buf_reserve(&P->scratch, n) != ERR_OK)
			return toml_fail_at(P, toml_here(P), ERR_NOMEM, "out of memory");
		t = P->scratch.data;
	}
	size_t k = 0;
	for (const char *q = start; q < P->p; q++)
		if (*q != '_')
			t[k++] = *q;
	t[k] = '\0';
	errno = 0;
	double f = strtod(t, NULL);
	if (errno == ERANGE && isinf(f))
		return toml_fail_at(P, toml_pos_of(P, start), ERR_INVALID,
				    "float '%.*s' is out of range", (int)(n > 40 ? 40 : n), start);
	v->type = TOML_FLOAT;
	v->u.f = f;
	return 0;
}

static int int_value(struct toml_parser *P, struct toml_value *v, const char *start, int neg,
		     uint64_t acc, int ovf)
{
	uint64_t limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
	if (ovf || acc > limit)
		return toml_fail_at(P, toml_pos_of(P, start), ERR_INVALID,
				    "integer '%.*s' does not fit in 64 bits",
				    (int)(P->p - start > 40 ? 40 : P->p - start), start);
	v->type = TOML_INTEGER;
	if (!neg)
		v->u.i = (int64_t)acc;
	else if (acc == (uint64_t)INT64_MAX + 1)
		v->u.i = INT64_MIN;
	else
		v->u.i = -(int64_t)acc;
	return 0;
}

/* The fraction and exponent of a float; P->p is at '.', 'e' or 'E'. */
static int lex_float_tail(struct toml_parser *P, const char *start)
{
	uint64_t ignore = 0;
	int ovf = 0;
	if (*P->p == '.') {
		P->p++;
		if (P->p >= P->end || !is_digit(*P->p))
			return toml_fail(P, "expected a digit after the decimal point");
		if (lex_digits(P, start, 10, &ignore, &ovf) < 0)
			return -1;
	}
	if (P->p < P->end && (*P->p == 'e' || *P->p == 'E')) {
		P->p++;
		if (P->p < P->end && (*P->p == '+' || *P->p == '-'))
			P->p++;
		if (P->p >= P->end || !is_digit(*P->p))
			return toml_fail(P, "expected a digit in the exponent");
		if (lex_digits(P, start, 10, &ignore, &ovf) < 0)
			return -1;
	}
	return 0;
}

static int lex_number(struct toml_parser *P, struct toml_value *v)
{
	const char *start = P->p;
	int neg = 0, sign = 0;
	if (*P->p == '+' || *P->p == '-') {
		neg = *P->p == '-';
		sign = 1;
		P->p++;
	}
	if (P->p < P->end && (*P->p == 'i' || *P->p == 'n'))
		return lex_special_float(P, v, start, neg);
	if (P->end - P->p >= 2 && P->p[0] == '0' &&
	    (P->p[1] == 'x' || P->p[1] == 'o' || P->p[1] == 'b')) {
		if (sign)
			return toml_fail_at(P, toml_pos_of(P, start), ERR_INVALID,
					    "a sign is not allowed on a hexadecimal, octal or "
					    "binary integer");
		return lex_radix(P, v);
	}
	if (P->p >= P->end || !is_digit(*P->p))
		return bad_number(P, start);
	const char *digits = P->p;
	uint64_t acc = 0;
	int ovf = 0;
	int n = lex_digits(P, start, 10, &acc, &ovf);
	if (n < 0)
		return -1;
	if (*digits == '0' && n > 1)
		return toml_fail_at(P, toml_pos_of(P, digits), ERR_INVALID,
				    "leading zeros are not allowed in a number");
	if (P->p < P->end && (*P->p == '.' || *P->p == 'e' || *P->p == 'E')) {
		if (lex_float_tail(P, start) < 0)
			return -1;
		if (!at_value_end(P))
			return bad_number(P, start);
		return float_value(P, v, start);
	}
	if (!at_value_end(P))
		return bad_number(P, start);
	return int_value(P, v, start, neg, acc, ovf);
}

/* ---- date-times ---- */

static int two_digits(const char *s, const char *end, int *out)
{
	if (end - s < 2 || !is_digit(s[0]) || !is_digit(s[1]))
		return -1;
	*out = (s[0] - '0') * 10 + (s[1] - '0');
	return 0;
}

static int days_in_month(int y, int m)
{
	static const int dim[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	if (m == 2 && (y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)))
		return 29;
	return dim[m - 1];
}

/* YYYY-MM-DD; P->p is at the first of four digits followed by '-'. */
static int lex_date(struct toml_parser *P, struct toml_datetime *dt)
{
	const char *s = P->p;
	int hi = 0, lo = 0;
	two_digits(s, P->end, &hi);
	two_digits(s + 2, P->end, &lo);
	dt->year = hi * 100 + lo;
	P->p += 5;
	if (two_digits(P->p, P->end, &dt->month) < 0 || P->end - P->p < 3 || P->p[2] != '-')
		return toml_fail(P, "expected a two-digit month and '-' in date");
	P->p += 3;
	if (two_digits(P->p, P->end, &dt->day) < 0)
		return toml_fail(P, "expected a two-digit day in date");
	P->p += 2;
	if (dt->month < 1 || dt->month > 12)
		return toml_fail_at(P, toml_pos_of(P, s + 5), ERR_INVALID,
				    "month %02d is out of range 01-12", dt->month);
	if (dt->day < 1 || dt->day > days_in_month(dt->year, dt->month))
		return toml_fail_at(P, toml_pos_of(P, s + 8), ERR_INVALID,
				    "day %02d is out of range for %04d-%02d", dt->day, dt->year,
				    dt->month);
	return 0;
}

/* HH:MM:SS[.fraction] */
static int lex_time(struct toml_parser *P, struct toml_datetime *dt)
{
	const char *s = P->p;
	if (two_digits(P->p, P->end, &dt->hour) < 0 || P->end - P->p < 3 || P->p[2] != ':')
		return toml_fail(P, "expected a two-digit hour and ':' in time");
	P->p += 3;
	if (two_digits(P->p, P->end, &dt->minute) < 0 || P->end - P->p < 3 || P->p[2] != ':')
		return toml_fail(P, "expected a two-digit minute and ':' in time");
	P->p += 3;
	if (two_digits(P->p, P->end, &dt->second) < 0)
		return toml_fail(P, "expected two-digit seconds in time");
	P->p += 2;
	if (P->p < P->end && *P->p == '.') {
		P->p++;
		if (P->p >= P->end || !is_digit(*P->p))
			return toml_fail(P, "expected a digit after '.' in time");
		int n = 0;
		for (; P->p < P->end && is_digit(*P->p); P->p++, n++)
			if (n < 9)
				dt->nanosecond = dt->nanosecond * 10 + (*P->p - '0');
		for (; n < 9; n++)
			dt->nanosecond *= 10;
	}
	if (dt->hour > 23 || dt->minute > 59 || dt->second > 60)
		return toml_fail_at(P, toml_pos_of(P, s), ERR_INVALID,
				    "time %02d:%02d:%02d is out of range", dt->hour, dt->minute,
				    dt->second);
	return 0;
}

/* Z, z or +HH:MM / -HH:MM after a date-time; returns 1 when present. */
static int lex_offset(struct toml_parser *P, struct toml_datetime *dt)
{
	if (P->p >= P->end)
		return 0;
	if (*P->p == 'Z' || *P->p == 'z') {
		P->p++;
		return 1;
	}
	if (*P->p != '+' && *P->p != '-')
		return 0;
	int neg = *P->p == '-', h, m;
	const char *s = P->p++;
	if (two_digits(P->p, P->end, &h) < 0 || P->end - P->p < 5 || P->p[2] != ':' ||
	    two_digits(P->p + 3, P->end, &m) < 0)
		return toml_fail_at(P, toml_pos_of(P, s), ERR_INVALID,
				    "expected a time offset of the form +HH:MM");
	if (h > 23 || m > 59)
		return toml_fail_at(P, toml_pos_of(P, s), ERR_INVALID,
				    "time offset %.6s is out of range", s);
	P->p += 5;
	dt->offset_minutes = (neg ? -1 : 1) * (h * 60 + m);
	return 1;
}

/* Copies the text with 'T' between date and time and an upper-case 'Z'. */
static int dt_text(struct toml_parser *P, struct toml_datetime *dt, const char *s, int has_date)
{
	size_t n = (size_t)(P->p - s);
	char *t = toml_arena_strdup(P->arena, s, n);
	if (!t)
		return toml_fail_at(P, toml_here(P), ERR_NOMEM, "out of memory");
	if (has_date && n > 10)
		t[10] = 'T';
	if (t[n - 1] == 'z')
		t[n - 1] = 'Z';
	dt->text = t;
	return 0;
}

static int lex_datetime(struct toml_parser *P, struct toml_value *v, int has_date)
{
	const char *s = P->p;
	struct toml_datetime *dt = toml_arena_alloc(P->arena, sizeof(*dt));
	if (!dt)
		return toml_fail_at(P, toml_here(P), ERR_NOMEM, "out of memory");
	memset(dt, 0, sizeof(*dt));
	v->type = TOML_TIME_LOCAL;
	if (has_date) {
		if (lex_date(P, dt) < 0)
			return -1;
		v->type = TOML_DATE_LOCAL;
		if (P->p < P->end && (*P->p == 'T' || *P->p == 't' ||
				      (*P->p == ' ' && P->end - P->p > 1 && is_digit(P->p[1])))) {
			P->p++;
			v->type = TOML_DATETIME_LOCAL;
		}
	}
	if (v->type != TOML_DATE_LOCAL && lex_time(P, dt) < 0)
		return -1;
	if (v->type == TOML_DATETIME_LOCAL) {
		int r = lex_offset(P, dt);
		if (r < 0)
			return -1;
		if (r)
			v->type = TOML_DATETIME;
	}
	if (!at_value_end(P))
		return toml_fail_at(P, toml_pos_of(P, s), ERR_INVALID,
				    "invalid date-time: unexpected %s after it",
				    toml_found(P, (char[40]){0}));
	v->u.dt = dt;
	return dt_text(P, dt, s, has_date);
}

int toml_lex_numlike(struct toml_parser *P, struct toml_value *v)
{
	const char *s = P->p;
	ptrdiff_t left = P->end - s;
	if (left >= 5 && is_digit(s[0]) && is_digit(s[1]) && is_digit(s[2]) && is_digit(s[3]) &&
	    s[4] == '-')
		return lex_datetime(P, v, 1);
	if (left >= 3 && is_digit(s[0]) && is_digit(s[1]) && s[2] == ':')
		return lex_datetime(P, v, 0);
	return lex_number(P, v);
}

int toml_fail_value(struct toml_parser *P, const char *at)
{
	char fb[40];
	const char *e = at;
	while (e < P->end && e - at < 40 &&
	       ((*e >= 'a' && *e <= 'z') || (*e >= 'A' && *e <= 'Z') || *e == '_' || *e == '-' ||
		(e > at && *e >= '0' && *e <= '9')))
		e++;
	P->p = at;
	if (e == at)
		return toml_fail(P, "expected a value, found %s", toml_found(P, fb));
	return toml_fail(P, "expected a value, found '%.*s' (strings must be quoted)",
			 (int)(e - at), at);
}

int toml_lex_bool(struct toml_parser *P, struct toml_value *v)
{
	const char *s = P->p;
	if (P->end - s >= 4 && memcmp(s, "true", 4) == 0) {
		P->p += 4;
		v->u.b = 1;
	} else if (P->end - s >= 5 && memcmp(s, "false", 5) == 0) {
		P->p += 5;
		v->u.b = 0;
	}
	if (P->p == s || !at_value_end(P))
		return toml_fail_value(P, s);
	v->type = TOML_BOOL;
	return 0;
}

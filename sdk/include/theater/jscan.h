/* theater/jscan.h - a small JSON reader for actors: no tree, no copies, just slices.
 *
 * A `struct js` is a slice of text: one JSON value (object, array, string,
 * number, literal) exactly, without white space around it. js_parse checks
 * that some bytes hold exactly one well-formed value (at most JS_MAX_DEPTH
 * levels deep) and gives its slice; from there js_get (an object's member),
 * js_at (an array's element) and js_next (iteration) give the slices of
 * inner values, and js_int / js_string / js_str_eq read scalars.
 *
 * The input is untrusted (a message from anyone): every index is checked
 * against the slice's length, and nesting is bounded so that the recursion
 * cannot exhaust the actor's stack. Functions answer 1 for yes / success and
 * 0 for no / not found / malformed. Decoded strings live in memory from
 * theater_alloc (one call long). Include theater/actor.h first.
 */
#ifndef THEATER_JSCAN_H
#define THEATER_JSCAN_H

#include <stdint.h>

#define JS_MAX_DEPTH 64

struct js {
	const char *p;
	uint32_t n;
};

static inline struct js js_cstr(const char *s)
{
	return (struct js){s, theater_strlen(s)};
}

static inline uint32_t js_ws(const char *p, uint32_t n, uint32_t i)
{
	while (i < n && (p[i] == ' ' || p[i] == '\t' || p[i] == '\n' || p[i] == '\r'))
		i++;
	return i;
}

static inline int js_hex(char c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
	       : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* The end (one past the closing quote) of the string at p[i] == '"'; 0 when
 * it is malformed. */
static inline uint32_t js_scan_string(const char *p, uint32_t n, uint32_t i)
{
	for (i++; i < n; i++) {
		unsigned char c = (unsigned char)p[i];
		if (c == '"')
			return i + 1;
		if (c < 0x20)
			return 0;
		if (c != '\\')
			continue;
		if (++i >= n)
			return 0;
		c = (unsigned char)p[i];
		if (c == 'u') {
			if (n - i < 5)
				return 0;
			for (int k = 1; k <= 4; k++)
				if (js_hex(p[i + k]) < 0)
					return 0;
			i += 4;
		} else if (c != '"' && c != '\\' && c != '/' && c != 'b' && c != 'f' && c != 'n' &&
			   c != 'r' && c != 't') {
			return 0;
		}
	}
	return 0;
}

static inline uint32_t js_digits(const char *p, uint32_t n, uint32_t i)
{
	uint32_t s = i;
	while (i < n && p[i] >= '0' && p[i] <= '9')
		i++;
	return i > s ? i : 0;
}

static inline uint32_t js_scan_number(const char *p, uint32_t n, uint32_t i)
{
	if (i < n && p[i] == '-')
		i++;
	if (i < n && p[i] == '0')
		i++;
	else if (!(i = js_digits(p, n, i)))
		return 0;
	if (i < n && p[i] == '.' && !(i = js_digits(p, n, i + 1)))
		return 0;
	if (i < n && (p[i] == 'e' || p[i] == 'E')) {
		i++;
		if (i < n && (p[i] == '+' || p[i] == '-'))
			i++;
		if (!(i = js_digits(p, n, i)))
			return 0;
	}
	return i;
}

static inline uint32_t js_scan_word(const char *p, uint32_t n, uint32_t i, const char *w)
{
	for (; *w; w++, i++)
		if (i >= n || p[i] != *w)
			return 0;
	return i;
}

static inline uint32_t js_scan(const char *p, uint32_t n, uint32_t i, int depth);

/* The members of an object or elements of an array at p[i]; the end or 0. */
static inline uint32_t js_scan_container(const char *p, uint32_t n, uint32_t i, int depth)
{
	char close = p[i] == '{' ? '}' : ']';
	if (depth >= JS_MAX_DEPTH)
		return 0;
	i = js_ws(p, n, i + 1);
	if (i < n && p[i] == close)
		return i + 1;
	for (;;) {
		if (close == '}') {
			if (i >= n || p[i] != '"' || !(i = js_scan_string(p, n, i)))
				return 0;
			i = js_ws(p, n, i);
			if (i >= n || p[i] != ':')
				return 0;
			i++;
		}
		if (!(i = js_scan(p, n, i, depth + 1)))
			return 0;
		i = js_ws(p, n, i);
		if (i < n && p[i] == ',') {
			i = js_ws(p, n, i + 1);
			continue;
		}
		return i < n && p[i] == close ? i + 1 : 0;
	}
}

/* The end of the value that starts at p[i] (after white space); 0 when it is
 * malformed. */
static inline uint32_t js_scan(const char *p, uint32_t n, uint32_t i, int depth)
{
	i = js_ws(p, n, i);
	if (i >= n)
		return 0;
	switch (p[i]) {
	case '"': return js_scan_string(p, n, i);
	case '{':
	case '[': return js_scan_container(p, n, i, depth);
	case 't': return js_scan_word(p, n, i, "true");
	case 'f': return js_scan_word(p, n, i, "false");
	case 'n': return js_scan_word(p, n, i, "null");
	default: return js_scan_number(p, n, i);
	}
}

/* Exactly one value in text[0..n) (white space around it allowed): 1 and its
 * slice in *out, else 0. */
static inline int js_parse(const void *text, uint32_t n, struct js *out)
{
	const char *p = text;
	uint32_t s = js_ws(p, n, 0);
	uint32_t e = js_scan(p, n, s, 0);
	if (!e || js_ws(p, n, e) != n)
		return 0;
	*out = (struct js){p + s, e - s};
	return 1;
}

static inline int js_is_object(struct js v)
{
	return v.n >= 2 && v.p[0] == '{';
}

static inline int js_is_array(struct js v)
{
	return v.n >= 2 && v.p[0] == '[';
}

static inline int js_is_string(struct js v)
{
	return v.n >= 2 && v.p[0] == '"';
}

/* Iterates an object (key: the member's name as a string slice, quotes
 * included) or an array (key untouched). *pos starts at 0. 1 with the next
 * member; 0 at the end. v must come from js_parse (or a slice of it). */
static inline int js_next(struct js v, uint32_t *pos, struct js *key, struct js *val)
{
	const char *p = v.p;
	uint32_t n = v.n, i = *pos ? *pos : 1;
	if (!js_is_object(v) && !js_is_array(v))
		return 0;
	i = js_ws(p, n, i);
	if (i >= n || p[i] == '}' || p[i] == ']')
		return 0;
	if (p[0] == '{') {
		uint32_t e = js_scan_string(p, n, i);
		if (!e)
			return 0;
		*key = (struct js){p + i, e - i};
		i = js_ws(p, n, e);
		if (i >= n || p[i] != ':')
			return 0;
		i = js_ws(p, n, i + 1);
	}
	uint32_t e = js_scan(p, n, i, 1);
	if (!e)
		return 0;
	*val = (struct js){p + i, e - i};
	i = js_ws(p, n, e);
	if (i < n && p[i] == ',')
		i++;
	*pos = i;
	return 1;
}

/* Decodes a string slice (quotes included) into out, which has room for
 * s.n bytes (decoding never makes text longer); returns the length, or -1
 * when s is not a string. \u escapes become UTF-8 (a lone surrogate becomes
 * U+FFFD). */
static inline int64_t js_unescape(struct js s, char *out)
{
	if (!js_is_string(s))
		return -1;
	uint32_t o = 0, end = s.n - 1;
	for (uint32_t i = 1; i < end; i++) {
		char c = s.p[i];
		if (c != '\\') {
			out[o++] = c;
			continue;
		}
		c = s.p[++i];
		if (c != 'u') {
			out[o++] = c == 'b' ? '\b' : c == 'f' ? '\f' : c == 'n' ? '\n' : c == 'r' ? '\r'
				   : c == 't' ? '\t' : c;
			continue;
		}
		uint32_t cp = 0;
		for (int k = 1; k <= 4; k++)
			cp = cp << 4 | (uint32_t)js_hex(s.p[i + k]);
		i += 4;
		if (cp >= 0xd800 && cp < 0xdc00 && i + 6 < end && s.p[i + 1] == '\\' &&
		    s.p[i + 2] == 'u') {
			uint32_t lo = 0;
			for (int k = 3; k <= 6; k++)
				lo = lo << 4 | (uint32_t)js_hex(s.p[i + k]);
			if (lo >= 0xdc00 && lo < 0xe000) {
				cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
				i += 6;
			}
		}
		if (cp >= 0xd800 && cp < 0xe000)
			cp = 0xfffd;
		if (cp < 0x80) {
			out[o++] = (char)cp;
		} else if (cp < 0x800) {
			out[o++] = (char)(0xc0 | cp >> 6);
			out[o++] = (char)(0x80 | (cp & 0x3f));
		} else if (cp < 0x10000) {
			out[o++] = (char)(0xe0 | cp >> 12);
			out[o++] = (char)(0x80 | (cp >> 6 & 0x3f));
			out[o++] = (char)(0x80 | (cp & 0x3f));
		} else {
			out[o++] = (char)(0xf0 | cp >> 18);
			out[o++] = (char)(0x80 | (cp >> 12 & 0x3f));
			out[o++] = (char)(0x80 | (cp >> 6 & 0x3f));
			out[o++] = (char)(0x80 | (cp & 0x3f));
		}
	}
	return o;
}

/* A string value's text, decoded into fresh memory (NUL-terminated). */
static inline int js_string(struct js v, struct js *out)
{
	if (!js_is_string(v))
		return 0;
	char *buf = theater_alloc(v.n);
	if (!buf)
		return 0;
	int64_t len = js_unescape(v, buf);
	if (len < 0)
		return 0;
	buf[len] = 0;
	*out = (struct js){buf, (uint32_t)len};
	return 1;
}

/* 1 when the slice holds exactly the text s. */
static inline int js_bytes_eq(struct js a, const char *s)
{
	if (theater_strlen(s) != a.n)
		return 0;
	for (uint32_t i = 0; i < a.n; i++)
		if (a.p[i] != s[i])
			return 0;
	return 1;
}

/* 1 when v is a string whose text is s. */
static inline int js_str_eq(struct js v, const char *s)
{
	if (!js_is_string(v))
		return 0;
	for (uint32_t i = 1; i + 1 < v.n; i++)
		if (v.p[i] == '\\') {
			struct js d;
			return js_string(v, &d) && js_bytes_eq(d, s);
		}
	return js_bytes_eq((struct js){v.p + 1, v.n - 2}, s);
}

/* An object's member named key. */
static inline int js_get(struct js obj, const char *key, struct js *out)
{
	struct js k, v;
	uint32_t pos = 0;
	if (!js_is_object(obj))
		return 0;
	while (js_next(obj, &pos, &k, &v))
		if (js_str_eq(k, key)) {
			*out = v;
			return 1;
		}
	return 0;
}

/* An array's element at index idx. */
static inline int js_at(struct js arr, uint32_t idx, struct js *out)
{
	struct js k, v;
	uint32_t pos = 0;
	if (!js_is_array(arr))
		return 0;
	for (uint32_t i = 0; js_next(arr, &pos, &k, &v); i++)
		if (i == idx) {
			*out = v;
			return 1;
		}
	return 0;
}

/* The number of elements (or members). */
static inline uint32_t js_count(struct js v)
{
	struct js k, e;
	uint32_t pos = 0, n = 0;
	while (js_next(v, &pos, &k, &e))
		n++;
	return n;
}

/* An integer value (no fraction, no exponent) that fits in int64_t. */
static inline int js_int(struct js v, int64_t *out)
{
	uint32_t i = 0;
	int neg = v.n > 0 && v.p[0] == '-';
	uint64_t u = 0, limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
	if (neg)
		i++;
	if (i >= v.n)
		return 0;
	for (; i < v.n; i++) {
		if (v.p[i] < '0' || v.p[i] > '9')
			return 0;
		uint64_t d = (uint64_t)(v.p[i] - '0');
		if (u > (limit - d) / 10)
			return 0;
		u = u * 10 + d;
	}
	*out = neg ? (int64_t)(0 - u) : (int64_t)u;
	return 1;
}

/* A member that is a string, decoded; 0 when absent or not a string. */
static inline int js_get_string(struct js obj, const char *key, struct js *out)
{
	struct js v;
	return js_get(obj, key, &v) && js_string(v, out);
}

#endif

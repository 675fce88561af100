/* valtext.c - WebAssembly values as command-line text, both ways.
 *
 * Floats travel as bit patterns (wasm.h), so NaN payloads and the sign of
 * zero survive a parse/format round trip. Finite floats are parsed with
 * strtof/strtod on the unsigned part (each rounds correctly once; a double
 * rounding through strtod for f32 would not) and the sign is applied to the
 * bits. Formatting tries the shortest precision first and keeps the first
 * text that reads back to the same bits.
 */
#include "tools/theater-wasm/valtext.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define F32_SIGN 0x80000000u
#define F32_EXP 0x7f800000u
#define F32_FRAC 0x007fffffu
#define F32_QUIET 0x00400000u
#define F64_SIGN 0x8000000000000000ull
#define F64_EXP 0x7ff0000000000000ull
#define F64_FRAC 0x000fffffffffffffull
#define F64_QUIET 0x0008000000000000ull

const char *valtext_type_name(enum wasm_valtype type)
{
	switch (type) {
	case WASM_I32: return "i32";
	case WASM_I64: return "i64";
	case WASM_F32: return "f32";
	case WASM_F64: return "f64";
	case WASM_FUNCREF: return "funcref";
	case WASM_EXTERNREF: return "externref";
	}
	return "unknown";
}

static uint32_t f32_bits(float f)
{
	uint32_t u;
	memcpy(&u, &f, sizeof u);
	return u;
}

static float f32_from(uint32_t u)
{
	float f;
	memcpy(&f, &u, sizeof f);
	return f;
}

static uint64_t f64_bits(double d)
{
	uint64_t u;
	memcpy(&u, &d, sizeof u);
	return u;
}

static double f64_from(uint64_t u)
{
	double d;
	memcpy(&d, &u, sizeof d);
	return d;
}

/* Parses the digits of an unsigned magnitude (decimal or 0x hex) exactly;
 * 0 on success. Rejects empty text, signs, spaces and overflow. */
static int parse_magnitude(const char *s, uint64_t *out)
{
	int base = 10;
	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		base = 16;
		s += 2;
	}
	if (!(base == 16 ? isxdigit((unsigned char)s[0]) : isdigit((unsigned char)s[0])))
		return -1;
	char *end = NULL;
	errno = 0;
	unsigned long long v = strtoull(s, &end, base);
	if (errno != 0 || *end != '\0')
		return -1;
	*out = v;
	return 0;
}

static enum err_code parse_int(enum wasm_valtype type, const char *text,
			       struct wasm_value *out, struct err *err)
{
	const char *s = text;
	int neg = 0;
	if (*s == '-' || *s == '+')
		neg = *s++ == '-';
	uint64_t mag = 0;
	if (parse_magnitude(s, &mag) != 0)
		return err_set(err, ERR_INVALID, "'%s' is not a valid %s", text,
			       valtext_type_name(type));
	if (type == WASM_I32) {
		if (mag > (neg ? 0x80000000ull : 0xffffffffull))
			return err_set(err, ERR_INVALID, "'%s' is out of range for i32", text);
		out->of.i32 = neg ? (uint32_t)(0u - (uint32_t)mag) : (uint32_t)mag;
	} else {
		if (neg && mag > 0x8000000000000000ull)
			return err_set(err, ERR_INVALID, "'%s' is out of range for i64", text);
		out->of.i64 = neg ? 0u - mag : mag;
	}
	out->type = type;
	return ERR_OK;
}

/* "nan" and "nan:0x<payload>" (after the sign); 0 if s is one of them. */
static int parse_nan(const char *s, int is32, uint64_t *bits_out)
{
	uint64_t frac_mask = is32 ? F32_FRAC : F64_FRAC;
	if (strcmp(s, "nan") == 0) {
		*bits_out = is32 ? (F32_EXP | F32_QUIET) : (F64_EXP | F64_QUIET);
		return 0;
	}
	if (strncmp(s, "nan:0x", 6) != 0)
		return -1;
	uint64_t payload = 0;
	if (parse_magnitude(s + 4, &payload) != 0 || payload == 0 || payload > frac_mask)
		return -1;
	*bits_out = (is32 ? F32_EXP : F64_EXP) | payload;
	return 0;
}

/* A finite or infinite number without its sign; 0 on success. */
static int parse_number(const char *s, int is32, uint64_t *bits_out)
{
	if (strcmp(s, "inf") == 0 || strcmp(s, "infinity") == 0) {
		*bits_out = is32 ? F32_EXP : F64_EXP;
		return 0;
	}
	if (!isdigit((unsigned char)s[0]) && s[0] != '.')
		return -1;
	char *end = NULL;
	errno = 0;
	if (is32) {
		float f = strtof(s, &end);
		if (*end != '\0' || end == s || (errno == ERANGE && isinf(f)))
			return -1;
		*bits_out = f32_bits(f);
	} else {
		double d = strtod(s, &end);
		if (*end != '\0' || end == s || (errno == ERANGE && isinf(d)))
			return -1;
		*bits_out = f64_bits(d);
	}
	return 0;
}

static enum err_code parse_float(enum wasm_valtype type, const char *text,
				 struct wasm_value *out, struct err *err)
{
	int is32 = type == WASM_F32;
	const char *s = text;
	int neg = 0;
	if (*s == '-' || *s == '+')
		neg = *s++ == '-';
	uint64_t bits = 0;
	if (parse_nan(s, is32, &bits) != 0 && parse_number(s, is32, &bits) != 0)
		return err_set(err, ERR_INVALID, "'%s' is not a valid %s", text,
			       valtext_type_name(type));
	if (neg)
		bits |= is32 ? F32_SIGN : F64_SIGN;
	out->type = type;
	if (is32)
		out->of.f32 = (uint32_t)bits;
	else
		out->of.f64 = bits;
	return ERR_OK;
}

static enum err_code parse_ref(enum wasm_valtype type, const char *text,
			       struct wasm_value *out, struct err *err)
{
	out->type = type;
	if (strcmp(text, "null") == 0 || strcmp(text, "ref.null") == 0) {
		if (type == WASM_FUNCREF)
			out->of.funcref = NULL;
		else
			out->of.externref = NULL;
		return ERR_OK;
	}
	uint64_t n = 0;
	if (type == WASM_EXTERNREF && isdigit((unsigned char)text[0]) &&
	    parse_magnitude(text, &n) == 0 && n < UINTPTR_MAX) {
		/* Host number N is carried as N+1 so that 0 differs from null. */
		out->of.externref = (void *)(uintptr_t)(n + 1);
		return ERR_OK;
	}
	return err_set(err, ERR_INVALID, "'%s' is not a valid %s (use 'null'%s)", text,
		       valtext_type_name(type), type == WASM_EXTERNREF ? " or a number" : "");
}

enum err_code valtext_parse(enum wasm_valtype type, const char *text,
			    struct wasm_value *out, struct err *err)
{
	switch (type) {
	case WASM_I32:
	case WASM_I64:
		return parse_int(type, text, out, err);
	case WASM_F32:
	case WASM_F64:
		return parse_float(type, text, out, err);
	case WASM_FUNCREF:
	case WASM_EXTERNREF:
		return parse_ref(type, text, out, err);
	}
	return err_set(err, ERR_INVALID, "unknown value type 0x%02x", (unsigned)type);
}

/* True if text reads back as exactly `bits`. */
static int round_trips(const char *text, int is32, uint64_t bits)
{
	if (is32)
		return f32_bits(strtof(text, NULL)) == (uint32_t)bits;
	return f64_bits(strtod(text, NULL)) == bits;
}

/* Writes the significant digits of e-form text e ("-1.25e+21") followed by
 * `zeros` zeros: an integer too long for its significant digits. */
static void pad_integer(const char *e, int zeros, char *out, size_t size)
{
	size_t n = 0;
	for (; *e && *e != 'e' && n + 1 < size; e++) {
		if (*e != '.')
			out[n++] = *e;
	}
	for (; zeros > 0 && n + 1 < size; zeros--)
		out[n++] = '0';
	out[n] = '\0';
}

/* Shortest decimal for a finite value: the fewest significant digits that
 * round-trip, written plainly unless the exponent is far from zero. */
static void format_finite(double d, int is32, uint64_t bits, char *out, size_t size)
{
	int maxprec = is32 ? 9 : 17;
	for (int p = 1; p <= maxprec; p++) {
		char e[48];
		snprintf(e, sizeof e, "%.*e", p - 1, d);
		if (!round_trips(e, is32, bits))
			continue;
		int x = atoi(strchr(e, 'e') + 1);
		if (x < -5 || x >= 21) {
			snprintf(out, size, "%.*g", p, d);
			return;
		}
		if (p - 1 - x >= 0)
			snprintf(out, size, "%.*f", p - 1 - x, d);
		else
			pad_integer(e, x - (p - 1), out, size);
		if (!round_trips(out, is32, bits))
			snprintf(out, size, "%.*g", p, d);
		return;
	}
	snprintf(out, size, "%.*g", maxprec, d);
}

static void format_float(uint64_t bits, int is32, char *out, size_t size)
{
	uint64_t sign = is32 ? F32_SIGN : F64_SIGN;
	uint64_t exp = is32 ? F32_EXP : F64_EXP;
	uint64_t frac = bits & (is32 ? F32_FRAC : F64_FRAC);
	uint64_t quiet = is32 ? F32_QUIET : F64_QUIET;
	const char *s = (bits & sign) ? "-" : "";
	if ((bits & exp) == exp && frac == 0)
		snprintf(out, size, "%sinf", s);
	else if ((bits & exp) == exp && frac == quiet)
		snprintf(out, size, "%snan", s);
	else if ((bits & exp) == exp)
		snprintf(out, size, "%snan:0x%" PRIx64, s, frac);
	else
		format_finite(is32 ? (double)f32_from((uint32_t)bits) : f64_from(bits), is32,
			      bits, out, size);
}

char *valtext_format(const struct wasm_value *v, char *out, size_t size)
{
	const char *name = valtext_type_name(v->type);
	int n = snprintf(out, size, "%s:", name);
	char *rest = out + n;
	size_t left = size - (size_t)n;
	switch (v->type) {
	case WASM_I32:
		snprintf(rest, left, "%" PRId32, (int32_t)v->of.i32);
		break;
	case WASM_I64:
		snprintf(rest, left, "%" PRId64, (int64_t)v->of.i64);
		break;
	case WASM_F32:
		format_float(v->of.f32, 1, rest, left);
		break;
	case WASM_F64:
		format_float(v->of.f64, 0, rest, left);
		break;
	case WASM_FUNCREF:
		snprintf(rest, left, "%s", v->of.funcref ? "func" : "null");
		break;
	case WASM_EXTERNREF:
		if (v->of.externref)
			snprintf(rest, left, "%" PRIuPTR, (uintptr_t)v->of.externref - 1);
		else
			snprintf(rest, left, "null");
		break;
	default:
		snprintf(rest, left, "?");
		break;
	}
	return out;
}

/* table.c - aligned tables and short forms; see table.h. Widths count UTF-8
 * characters, not bytes, so names with accents still line up. */
#include "tools/theater/table.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

void table_init(struct table *t, int ncols, const char *const *heads)
{
	memset(t, 0, sizeof(*t));
	t->ncols = ncols > TABLE_MAX_COLS ? TABLE_MAX_COLS : ncols;
	for (int i = 0; i < t->ncols; i++)
		t->heads[i] = heads[i];
}

void table_cap(struct table *t, int col, size_t max_chars)
{
	if (col >= 0 && col < t->ncols)
		t->caps[col] = max_chars;
}

void table_add(struct table *t, const char *const *cells)
{
	if (t->nrows == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 16;
		char **n = realloc(t->cells, cap * (size_t)t->ncols * sizeof(*n));
		if (!n)
			return;
		t->cells = n;
		t->cap = cap;
	}
	for (int i = 0; i < t->ncols; i++)
		t->cells[t->nrows * (size_t)t->ncols + (size_t)i] = strdup(cells[i] ? cells[i] : "-");
	t->nrows++;
}

static size_t chars(const char *s)
{
	size_t n = 0;
	for (; *s; s++)
		n += ((unsigned char)*s & 0xC0) != 0x80;
	return n;
}

/* Writes s cut to max characters (0: no cap), padded to width when pad. */
static void cell(FILE *f, const char *s, size_t max, size_t width, int pad)
{
	size_t n = chars(s);
	if (max && n > max) {
		size_t k = 0;
		const char *p = s;
		for (; *p && k < max - 1; k++)
			do
				p++;
			while (((unsigned char)*p & 0xC0) == 0x80);
		fwrite(s, 1, (size_t)(p - s), f);
		fputs("…", f);
		n = max;
	} else {
		fputs(s, f);
	}
	for (; pad && n < width; n++)
		fputc(' ', f);
}

void table_print(const struct table *t, FILE *f)
{
	size_t w[TABLE_MAX_COLS];
	for (int c = 0; c < t->ncols; c++) {
		w[c] = chars(t->heads[c]);
		for (size_t r = 0; r < t->nrows; r++) {
			size_t n = chars(t->cells[r * (size_t)t->ncols + (size_t)c]);
			if (t->caps[c] && n > t->caps[c])
				n = t->caps[c];
			if (n > w[c])
				w[c] = n;
		}
	}
	for (size_t r = 0; r <= t->nrows; r++) {
		for (int c = 0; c < t->ncols; c++) {
			const char *s = r == 0 ? t->heads[c]
					       : t->cells[(r - 1) * (size_t)t->ncols + (size_t)c];
			int last = c == t->ncols - 1;
			cell(f, s, t->caps[c], w[c], !last);
			fputs(last ? "\n" : "   ", f);
		}
	}
}

void table_release(struct table *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->nrows * (size_t)t->ncols; i++)
		free(t->cells[i]);
	free(t->cells);
	t->cells = NULL;
	t->nrows = t->cap = 0;
}

void fmt_age(const char *iso, char *out, size_t n)
{
	struct tm tm = {0};
	if (!iso || sscanf(iso, "%d-%d-%dT%d:%d:%d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
			   &tm.tm_hour, &tm.tm_min, &tm.tm_sec) != 6) {
		snprintf(out, n, "-");
		return;
	}
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	long long d = (long long)(time(NULL) - timegm(&tm));
	if (d < 0)
		d = 0;
	if (d < 60)
		snprintf(out, n, "%llds ago", d);
	else if (d < 3600)
		snprintf(out, n, "%lldm ago", d / 60);
	else if (d < 86400)
		snprintf(out, n, "%lldh ago", d / 3600);
	else
		snprintf(out, n, "%lldd ago", d / 86400);
}

void fmt_size(uint64_t bytes, char *out, size_t n)
{
	static const char *const unit[] = {"KiB", "MiB", "GiB", "TiB"};
	if (bytes < 1024) {
		snprintf(out, n, "%llu B", (unsigned long long)bytes);
		return;
	}
	double v = (double)bytes / 1024.0;
	int u = 0;
	for (; v >= 1024.0 && u < 3; u++)
		v /= 1024.0;
	snprintf(out, n, "%.1f %s", v, unit[u]);
}

/* table.h - the CLI's human output: aligned text tables and short forms of
 * times, sizes and ids.
 *
 * A table copies every cell; the last column is not padded. Cells longer than
 * a column's cap are cut with "…" (caps of 0 mean no cap).
 * Ownership: caller-owned struct (table_init / table_release).
 */
#ifndef THEATER_CLI_TABLE_H
#define THEATER_CLI_TABLE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define TABLE_MAX_COLS 12

struct table {
	int ncols;
	const char *heads[TABLE_MAX_COLS];
	size_t caps[TABLE_MAX_COLS];
	char **cells;        /* nrows * ncols */
	size_t nrows, cap;
};

/* heads: ncols column titles (borrowed; they must outlive the table). */
void table_init(struct table *t, int ncols, const char *const *heads);
void table_cap(struct table *t, int col, size_t max_chars);
/* Adds a row of ncols cells (NULL prints "-"); copies them. */
void table_add(struct table *t, const char *const *cells);
void table_print(const struct table *t, FILE *f);
void table_release(struct table *t);

/* "12s ago", "5m ago", "3h ago", "2d ago" for an RFC 3339 UTC time
 * ("2026-01-02T03:04:05.678Z"); "-" when iso is NULL or unreadable. */
void fmt_age(const char *iso, char *out, size_t n);
/* "512 B", "1.5 KiB", "3.0 MiB", ... */
void fmt_size(uint64_t bytes, char *out, size_t n);

#endif

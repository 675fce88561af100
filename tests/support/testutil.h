/* testutil.h - helpers shared by the tests: temporary directories, file
 * reading, and paths to the source and build trees. */
#ifndef THEATER_TESTS_TESTUTIL_H
#define THEATER_TESTS_TESTUTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

/* Makes a fresh directory under $TMPDIR (or /tmp) and returns its malloc'd path. */
char *tu_mkdtemp(const char *prefix);
/* rm -rf path (no symlink following). Accepts NULL. */
void tu_rmtree(const char *path);
/* promtool (Prometheus's checker), installed from Debian's prometheus package
 * when missing; fails the test when it cannot be. */
void tu_need_promtool(void);
/* Reads a whole file; returns malloc'd bytes (NUL-terminated) or NULL. */
char *tu_read_file(const char *path, size_t *len_out);
int tu_write_file(const char *path, const void *data, size_t len);
/* heading, then the last max bytes of the file at path, on stderr (where CTest's
 * output shows them): why a server under test did what it did. */
void tu_show_tail(const char *heading, const char *path, size_t max);
/* Source and build tree roots from the environment CTest sets. */
const char *tu_source_dir(void);
const char *tu_binary_dir(void);
/* A sysfs tree under root as the kernel shows an ext4 file system holding dir:
 * root/dev/block/MAJ:MIN (dir's device) links to a device named `name`, and
 * root/fs/ext4/<name>/journal_task holds `journal` ("<none>\n" without a
 * journal, a pid with one); journal NULL: no fs/ext4 entry (another file
 * system). 0 on success. */
int tu_fake_sysfs(const char *root, const char *dir, const char *name, const char *journal);
/* Milliseconds of the monotonic clock (for intervals only). */
int64_t tu_now_ms(void);
/* printf into a malloc'd string. */
char *tu_fmt(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif

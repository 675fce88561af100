/* home.h - THEATER_HOME: where the server keeps its state.
 *
 * Layout (DESIGN.md §3): <home>/theater.db, <home>/chains/, <home>/store/,
 * <home>/cache/ and <home>/packages/ (the default package root for file
 * references).
 * Threads: home_resolve reads the environment (call it at start-up, before
 * threads that may setenv); home_prepare touches only the file system.
 */
#ifndef THEATER_HOME_H
#define THEATER_HOME_H

#include "src/util/err.h"

/* The sub-directories home_prepare creates, NULL-terminated. */
extern const char *const home_subdirs[];

/* THEATER_HOME as in the reference: $THEATER_HOME if set and non-empty, else
 * $HOME/.theater ($HOME unset or empty -> the passwd entry of the real user).
 * Returns a malloc'd path (caller frees), or NULL when no home can be found
 * or memory runs out. A trailing '/' is removed. */
char *home_resolve(void);

/* mkdir -p <home> (mode 0700 for the last component, 0755 for missing
 * parents) and <home>/chains, store, cache, packages (0700). Existing
 * directories are kept as they are. Fails with ERR_INVALID for an empty or
 * relative path, ERR_IO when a component is not a directory or cannot be
 * created. */
enum err_code home_prepare(const char *home, struct err *err);

/* Takes the home's lock: <home>/lock, flock()ed exclusively for as long as *fd_out
 * stays open, holding the owner's pid. One server per home: a second one gets
 * ERR_CONFLICT naming the process that holds it, before it reads or writes
 * anything else. home must exist (home_prepare). Close *fd_out to release. */
enum err_code home_lock(const char *home, int *fd_out, struct err *err);

/* "<home>/<sub>" as a malloc'd string (NULL when out of memory). */
char *home_path(const char *home, const char *sub);

/* The file system holding dir, where it changes what the server costs. ext4
 * without a journal checks every recently freed inode before it reuses one
 * (recently_deleted(), for 60 s after a delete, 300 s while its inode table
 * block is dirty): after many deletes a file creation costs 10-30 times as much,
 * and every actor's chain is a new file (docs/operations.md). Read from sysfs
 * (the root `sysfs`, "/sys" but for tests): dir's device by its number
 * (<sysfs>/dev/block/MAJ:MIN names it), then <sysfs>/fs/ext4/<name>/journal_task,
 * "<none>" without a journal. HOME_FS_OTHER also when sysfs cannot tell. */
enum home_fs { HOME_FS_OTHER, HOME_FS_EXT4_JOURNAL, HOME_FS_EXT4_NOJOURNAL };
enum home_fs home_fs_kind(const char *dir, const char *sysfs);

#endif

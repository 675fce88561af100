/* wasi.h - a WASI preview-1 subset for command-line wasm32-wasi programs.
 *
 * Provides, as imports of module "wasi_snapshot_preview1": args_get,
 * args_sizes_get, environ_get, environ_sizes_get, fd_write (fds 1, 2),
 * fd_read (fd 0), fd_close, fd_seek, fd_fdstat_get, fd_prestat_get (always
 * EBADF: there are no preopened directories), fd_prestat_dir_name,
 * clock_time_get, clock_res_get, random_get, sched_yield and proc_exit. Any
 * other preview-1 import links to a stub that returns ENOSYS (52), or traps
 * when its type has no single i32 result to carry an errno.
 *
 * The program's file descriptors 0, 1 and 2 are the process's own; closing
 * one only closes it for the program. proc_exit stops the program with a
 * trap whose message is WASI_EXIT_MESSAGE and records the exit code, which
 * wasi_exited then reports.
 *
 * Ownership: a struct wasi owns copies of its arguments and environment and
 * the state of the host functions it creates; those functions live in the
 * store they were made in, which must be freed before the wasi (or never
 * called again after it is freed).
 * Threads: one thread at a time, the one that uses the store.
 */
#ifndef THEATER_TOOLS_WASI_H
#define THEATER_TOOLS_WASI_H

#include <stddef.h>

#include "src/util/err.h"
#include "src/wasm/wasm.h"

#define WASI_MODULE "wasi_snapshot_preview1"
#define WASI_EXIT_MESSAGE "wasi proc_exit"

/* WASI errno values used here. */
enum wasi_errno {
	WASI_ESUCCESS = 0,
	WASI_EBADF = 8,
	WASI_EFAULT = 21,
	WASI_EINVAL = 28,
	WASI_EIO = 29,
	WASI_ENOSYS = 52,
	WASI_ESPIPE = 70,
};

struct wasi_options {
	size_t argc;
	const char *const *argv;   /* argv[0] is the program name */
	size_t envc;
	const char *const *env;    /* "KEY=VALUE" strings */
};

struct wasi;

/* Copies the options. ERR_NOMEM; ERR_TOO_LARGE when the arguments or
 * environment do not fit in a 32-bit address space. */
enum err_code wasi_new(const struct wasi_options *opts, struct wasi **out, struct err *err);
void wasi_free(struct wasi *w);

/* True if desc is an import of the WASI module. */
int wasi_is_import(const struct wasm_import_desc *desc);

/* Makes the host function for a WASI import in s and writes it to *out.
 * The function is made with our declaration of its type (the engine then
 * refuses a module that declares another one). ERR_INVALID when desc is not
 * a function import of WASI_MODULE; ERR_NOMEM. */
enum err_code wasi_link(struct wasi *w, struct wasm_store *s,
			const struct wasm_import_desc *desc, struct wasm_extern *out,
			struct err *err);

/* True once the program called proc_exit; *code_out is its exit code. */
int wasi_exited(const struct wasi *w, int *code_out);

#endif

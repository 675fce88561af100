/* wasi.c - a WASI preview-1 subset for command-line wasm32-wasi programs.
 *
 * Every function checks each guest pointer against the memory's current
 * size before touching it (64-bit sums, so no wrap) and answers EFAULT when
 * one is out of range, as the guest's libc expects an errno and not a trap.
 * Guest memory is little-endian; loads and stores go byte by byte so the
 * host's order does not matter. proc_exit is a trap with a fixed message:
 * it unwinds the guest like one, and wasi_exited tells it apart.
 */
#include "tools/theater-wasm/wasi.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "src/util/crypto.h"

#define WASI_NFDS 3
#define IOVEC_SIZE 8
#define FDSTAT_SIZE 24

/* File types and rights of the WASI ABI. */
#define FILETYPE_UNKNOWN 0
#define FILETYPE_CHARACTER_DEVICE 2
#define FILETYPE_DIRECTORY 3
#define FILETYPE_REGULAR_FILE 4
#define FILETYPE_SOCKET_STREAM 6
#define RIGHT_FD_READ (1ull << 1)
#define RIGHT_FD_SEEK (1ull << 2)
#define RIGHT_FD_TELL (1ull << 5)
#define RIGHT_FD_WRITE (1ull << 6)
#define RIGHT_POLL_FD_READWRITE (1ull << 27)

struct wasi_stub {
	struct wasi_stub *next;
	int errno_result;        /* the type is () -> i32 or (...) -> i32 */
	char name[];
};

struct wasi {
	char **args;
	size_t argc, args_bytes;
	char **env;
	size_t envc, env_bytes;
	int closed[WASI_NFDS];
	int exited;
	int exit_code;
	struct wasi_stub *stubs;
};

/* ---- guest memory ---- */

/* Host pointer to [ptr, ptr+len) of the caller's memory 0, or NULL when it
 * is out of bounds (or there is no memory). */
static uint8_t *guest(struct wasm_caller *caller, uint64_t ptr, uint64_t len)
{
	struct wasm_memory *m = wasm_caller_memory(caller);
	if (!m)
		return NULL;
	uint64_t size = wasm_memory_size(m);
	if (ptr > size || len > size - ptr)
		return NULL;
	return wasm_memory_data(m) + ptr;
}

static uint32_t load_u32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static void store_u32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void store_u64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* Stores a u32 or u64 result; EFAULT when out of bounds. */
static int put_u32(struct wasm_caller *caller, uint32_t ptr, uint32_t v)
{
	uint8_t *p = guest(caller, ptr, 4);
	if (!p)
		return WASI_EFAULT;
	store_u32(p, v);
	return WASI_ESUCCESS;
}

static int put_u64(struct wasm_caller *caller, uint32_t ptr, uint64_t v)
{
	uint8_t *p = guest(caller, ptr, 8);
	if (!p)
		return WASI_EFAULT;
	store_u64(p, v);
	return WASI_ESUCCESS;
}

static void set_errno(struct wasm_value *results, int e)
{
	results[0].type = WASM_I32;
	results[0].of.i32 = (uint32_t)e;
}

static int map_errno(int e)
{
	switch (e) {
	case EBADF: return WASI_EBADF;
	case EINVAL: return WASI_EINVAL;
	case ESPIPE: return WASI_ESPIPE;
	default: return WASI_EIO;
	}
}

/* ---- args and environment ---- */

static int sizes_get(struct wasm_caller *caller, const struct wasm_value *args,
		     size_t count, size_t bytes)
{
	int e = put_u32(caller, args[0].of.i32, (uint32_t)count);
	return e ? e : put_u32(caller, args[1].of.i32, (uint32_t)bytes);
}

/* Writes count pointers at args[0] and the strings, NUL-terminated, at args[1]. */
static int strings_get(struct wasm_caller *caller, const struct wasm_value *args,
		       char *const *strs, size_t count, size_t bytes)
{
	uint32_t vec = args[0].of.i32, buf = args[1].of.i32;
	uint8_t *pv = guest(caller, vec, (uint64_t)count * 4);
	uint8_t *pb = guest(caller, buf, bytes);
	if (!pv || !pb)
		return WASI_EFAULT;
	uint32_t off = 0;
	for (size_t i = 0; i < count; i++) {
		size_t n = strlen(strs[i]) + 1;
		store_u32(pv + 4 * i, buf + off);
		memcpy(pb + off, strs[i], n);
		off += (uint32_t)n;
	}
	return WASI_ESUCCESS;
}

static enum err_code h_args_sizes_get(struct wasm_caller *caller, void *user,
				      const struct wasm_value *args,
				      struct wasm_value *results, struct err *err)
{
	struct wasi *w = user;
	set_errno(results, sizes_get(caller, args, w->argc, w->args_bytes));
	return ERR_OK;
}

static enum err_code h_args_get(struct wasm_caller *caller, void *user,
				const struct wasm_value *args, struct wasm_value *results,
				struct err *err)
{
	struct wasi *w = user;
	set_errno(results, strings_get(caller, args, w->args, w->argc, w->args_bytes));
	return ERR_OK;
}

static enum err_code h_environ_sizes_get(struct wasm_caller *caller, void *user,
					 const struct wasm_value *args,
					 struct wasm_value *results, struct err *err)
{
	struct wasi *w = user;
	set_errno(results, sizes_get(caller, args, w->envc, w->env_bytes));
	return ERR_OK;
}

static enum err_code h_environ_get(struct wasm_caller *caller, void *user,
				   const struct wasm_value *args,
				   struct wasm_value *results, struct err *err)
{
	struct wasi *w = user;
	set_errno(results, strings_get(caller, args, w->env, w->envc, w->env_bytes));
	return ERR_OK;
}

/* ---- file descriptors ---- */

static int fd_open(const struct wasi *w, uint32_t fd)
{
	return fd < WASI_NFDS && !w->closed[fd];
}

static int write_all(int fd, const uint8_t *p, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return map_errno(errno);
		p += n;
		len -= (size_t)n;
	}
	return WASI_ESUCCESS;
}

/* Writes (direction > 0) or reads the iovecs of args[1..2] on host fd;
 * *total_out gets the bytes moved. A read stops at its first short read. */
static int iovecs_io(struct wasm_caller *caller, int fd, int writing,
		     const struct wasm_value *args, uint32_t *total_out)
{
	uint32_t iovs = args[1].of.i32, n = args[2].of.i32, total = 0;
	if (!guest(caller, iovs, (uint64_t)n * IOVEC_SIZE))
		return WASI_EFAULT;
	for (uint32_t i = 0; i < n; i++) {
		const uint8_t *iov = guest(caller, iovs + (uint64_t)i * IOVEC_SIZE, IOVEC_SIZE);
		uint32_t base = load_u32(iov), len = load_u32(iov + 4);
		uint8_t *p = guest(caller, base, len);
		if (!p)
			return WASI_EFAULT;
		if (writing) {
			int e = write_all(fd, p, len);
			if (e)
				return e;
			total += len;
			continue;
		}
		ssize_t got;
		do
			got = read(fd, p, len);
		while (got < 0 && errno == EINTR);
		if (got < 0)
			return map_errno(errno);
		total += (uint32_t)got;
		if ((uint32_t)got < len)
			break;
	}
	*total_out = total;
	return WASI_ESUCCESS;
}

static enum err_code fd_io(struct wasm_caller *caller, struct wasi *w, int writing,
			   const struct wasm_value *args, struct wasm_value *results)
{
	uint32_t fd = args[0].of.i32, total = 0;
	int ok = fd_open(w, fd) && (writing ? fd != 0 : fd == 0);
	int e = ok ? iovecs_io(caller, (int)fd, writing, args, &total) : WASI_EBADF;
	if (e == WASI_ESUCCESS)
		e = put_u32(caller, args[3].of.i32, total);
	set_errno(results, e);
	return ERR_OK;
}

static enum err_code h_fd_write(struct wasm_caller *caller, void *user,
				const struct wasm_value *args, struct wasm_value *results,
				struct err *err)
{
	return fd_io(caller, user, 1, args, results);
}

static enum err_code h_fd_read(struct wasm_caller *caller, void *user,
			       const struct wasm_value *args, struct wasm_value *results,
			       struct err *err)
{
	return fd_io(caller, user, 0, args, results);
}

static enum err_code h_fd_close(struct wasm_caller *caller, void *user,
				const struct wasm_value *args, struct wasm_value *results,
				struct err *err)
{
	struct wasi *w = user;
	uint32_t fd = args[0].of.i32;
	if (!fd_open(w, fd)) {
		set_errno(results, WASI_EBADF);
		return ERR_OK;
	}
	w->closed[fd] = 1;
	set_errno(results, WASI_ESUCCESS);
	return ERR_OK;
}

static enum err_code h_fd_seek(struct wasm_caller *caller, void *user,
			       const struct wasm_value *args, struct wasm_value *results,
			       struct err *err)
{
	uint32_t fd = args[0].of.i32, whence = args[2].of.i32;
	int e = WASI_EBADF;
	if (fd_open(user, fd) && whence > 2) {
		e = WASI_EINVAL;
	} else if (fd_open(user, fd)) {
		static const int whences[] = { SEEK_SET, SEEK_CUR, SEEK_END };
		off_t pos = lseek((int)fd, (off_t)(int64_t)args[1].of.i64, whences[whence]);
		e = pos < 0 ? map_errno(errno) : put_u64(caller, args[3].of.i32, (uint64_t)pos);
	}
	set_errno(results, e);
	return ERR_OK;
}

static uint8_t filetype_of(int fd, int *seekable_out)
{
	struct stat st;
	*seekable_out = 0;
	if (fstat(fd, &st) != 0)
		return FILETYPE_UNKNOWN;
	if (S_ISREG(st.st_mode)) {
		*seekable_out = 1;
		return FILETYPE_REGULAR_FILE;
	}
	if (S_ISCHR(st.st_mode))
		return FILETYPE_CHARACTER_DEVICE;
	if (S_ISDIR(st.st_mode))
		return FILETYPE_DIRECTORY;
	if (S_ISSOCK(st.st_mode))
		return FILETYPE_SOCKET_STREAM;
	return FILETYPE_UNKNOWN;
}

static enum err_code h_fd_fdstat_get(struct wasm_caller *caller, void *user,
				     const struct wasm_value *args,
				     struct wasm_value *results, struct err *err)
{
	uint32_t fd = args[0].of.i32;
	uint8_t *p = guest(caller, args[1].of.i32, FDSTAT_SIZE);
	if (!fd_open(user, fd) || !p) {
		set_errno(results, p ? WASI_EBADF : WASI_EFAULT);
		return ERR_OK;
	}
	int seekable = 0;
	uint64_t rights = (fd == 0 ? RIGHT_FD_READ : RIGHT_FD_WRITE) | RIGHT_POLL_FD_READWRITE;
	memset(p, 0, FDSTAT_SIZE);
	p[0] = filetype_of((int)fd, &seekable);
	if (seekable)
		rights |= RIGHT_FD_SEEK | RIGHT_FD_TELL;
	store_u64(p + 8, rights);
	set_errno(results, WASI_ESUCCESS);
	return ERR_OK;
}

/* No preopened directories: every prestat query is EBADF. */
static enum err_code h_fd_prestat(struct wasm_caller *caller, void *user,
				  const struct wasm_value *args, struct wasm_value *results,
				  struct err *err)
{
	set_errno(results, WASI_EBADF);
	return ERR_OK;
}

/* ---- clocks, randomness, process ---- */

static int clock_of(uint32_t id, clockid_t *out)
{
	static const clockid_t ids[] = { CLOCK_REALTIME, CLOCK_MONOTONIC,
					 CLOCK_PROCESS_CPUTIME_ID, CLOCK_THREAD_CPUTIME_ID };
	if (id >= sizeof ids / sizeof ids[0])
		return -1;
	*out = ids[id];
	return 0;
}

static enum err_code clock_query(struct wasm_caller *caller, const struct wasm_value *args,
				 uint32_t ptr, int res, struct wasm_value *results)
{
	clockid_t id;
	struct timespec ts;
	int e = WASI_EINVAL;
	if (clock_of(args[0].of.i32, &id) == 0) {
		int rc = res ? clock_getres(id, &ts) : clock_gettime(id, &ts);
		e = rc != 0 ? map_errno(errno)
			    : put_u64(caller, ptr,
				      (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec);
	}
	set_errno(results, e);
	return ERR_OK;
}

static enum err_code h_clock_res_get(struct wasm_caller *caller, void *user,
				     const struct wasm_value *args,
				     struct wasm_value *results, struct err *err)
{
	return clock_query(caller, args, args[1].of.i32, 1, results);
}

static enum err_code h_clock_time_get(struct wasm_caller *caller, void *user,
				      const struct wasm_value *args,
				      struct wasm_value *results, struct err *err)
{
	return clock_query(caller, args, args[2].of.i32, 0, results);
}

static enum err_code h_random_get(struct wasm_caller *caller, void *user,
				  const struct wasm_value *args, struct wasm_value *results,
				  struct err *err)
{
	uint32_t len = args[1].of.i32;
	uint8_t *p = guest(caller, args[0].of.i32, len);
	int e = !p ? WASI_EFAULT : random_bytes(p, len) != ERR_OK ? WASI_EIO : WASI_ESUCCESS;
	set_errno(results, e);
	return ERR_OK;
}

static enum err_code h_sched_yield(struct wasm_caller *caller, void *user,
				   const struct wasm_value *args, struct wasm_value *results,
				   struct err *err)
{
	set_errno(results, WASI_ESUCCESS);
	return ERR_OK;
}

static enum err_code h_proc_exit(struct wasm_caller *caller, void *user,
				 const struct wasm_value *args, struct wasm_value *results,
				 struct err *err)
{
	struct wasi *w = user;
	w->exited = 1;
	w->exit_code = (int)args[0].of.i32;
	return err_set(err, ERR_WASM_TRAP, "%s", WASI_EXIT_MESSAGE);
}

static enum err_code h_stub(struct wasm_caller *caller, void *user,
			    const struct wasm_value *args, struct wasm_value *results,
			    struct err *err)
{
	struct wasi_stub *stub = user;
	if (!stub->errno_result)
		return err_set(err, ERR_WASM_TRAP, "wasi function '%s' is not supported",
			       stub->name);
	set_errno(results, WASI_ENOSYS);
	return ERR_OK;
}

/* ---- the import table ---- */

#define I32 WASM_I32
#define I64 WASM_I64

struct wasi_fn {
	const char *name;
	wasm_host_fn fn;
	uint32_t nparams;
	enum wasm_valtype params[4];
	uint32_t nresults;
};

static const struct wasi_fn wasi_fns[] = {
	{ "args_get", h_args_get, 2, { I32, I32 }, 1 },
	{ "args_sizes_get", h_args_sizes_get, 2, { I32, I32 }, 1 },
	{ "environ_get", h_environ_get, 2, { I32, I32 }, 1 },
	{ "environ_sizes_get", h_environ_sizes_get, 2, { I32, I32 }, 1 },
	{ "fd_write", h_fd_write, 4, { I32, I32, I32, I32 }, 1 },
	{ "fd_read", h_fd_read, 4, { I32, I32, I32, I32 }, 1 },
	{ "fd_close", h_fd_close, 1, { I32 }, 1 },
	{ "fd_seek", h_fd_seek, 4, { I32, I64, I32, I32 }, 1 },
	{ "fd_fdstat_get", h_fd_fdstat_get, 2, { I32, I32 }, 1 },
	{ "fd_prestat_get", h_fd_prestat, 2, { I32, I32 }, 1 },
	{ "fd_prestat_dir_name", h_fd_prestat, 3, { I32, I32, I32 }, 1 },
	{ "clock_res_get", h_clock_res_get, 2, { I32, I32 }, 1 },
	{ "clock_time_get", h_clock_time_get, 3, { I32, I64, I32 }, 1 },
	{ "random_get", h_random_get, 2, { I32, I32 }, 1 },
	{ "sched_yield", h_sched_yield, 0, { I32 }, 1 },
	{ "proc_exit", h_proc_exit, 1, { I32 }, 0 },
};

static const enum wasm_valtype errno_result[] = { I32 };

int wasi_is_import(const struct wasm_import_desc *desc)
{
	return desc->module_len == strlen(WASI_MODULE) &&
	       memcmp(desc->module, WASI_MODULE, desc->module_len) == 0;
}

static const struct wasi_fn *find_fn(const struct wasm_import_desc *desc)
{
	for (size_t i = 0; i < sizeof wasi_fns / sizeof wasi_fns[0]; i++) {
		if (strlen(wasi_fns[i].name) == desc->name_len &&
		    memcmp(wasi_fns[i].name, desc->name, desc->name_len) == 0)
			return &wasi_fns[i];
	}
	return NULL;
}

/* A stub for an import we do not implement, with the module's own type. */
static enum err_code link_stub(struct wasi *w, struct wasm_store *s,
			       const struct wasm_import_desc *desc, struct wasm_func **out,
			       struct err *err)
{
	struct wasi_stub *stub = malloc(sizeof *stub + desc->name_len + 1);
	if (!stub)
		return err_set(err, ERR_NOMEM, "out of memory");
	memcpy(stub->name, desc->name, desc->name_len);
	stub->name[desc->name_len] = '\0';
	stub->errno_result = desc->func.nresults == 1 && desc->func.results[0] == WASM_I32;
	stub->next = w->stubs;
	w->stubs = stub;
	return wasm_func_new_host(s, &desc->func, h_stub, stub, out, err);
}

enum err_code wasi_link(struct wasi *w, struct wasm_store *s,
			const struct wasm_import_desc *desc, struct wasm_extern *out,
			struct err *err)
{
	if (!wasi_is_import(desc) || desc->kind != WASM_EXTERN_FUNC)
		return err_set(err, ERR_INVALID, "not a wasi function import");
	out->kind = WASM_EXTERN_FUNC;
	const struct wasi_fn *f = find_fn(desc);
	if (!f)
		return link_stub(w, s, desc, &out->of.func, err);
	struct wasm_functype type = {
		.nparams = f->nparams, .nresults = f->nresults,
		.params = f->params, .results = errno_result,
	};
	return wasm_func_new_host(s, &type, f->fn, w, &out->of.func, err);
}

int wasi_exited(const struct wasi *w, int *code_out)
{
	if (w->exited)
		*code_out = w->exit_code;
	return w->exited;
}

/* ---- lifecycle ---- */

static void free_strings(char **v, size_t n)
{
	for (size_t i = 0; v && i < n; i++)
		free(v[i]);
	free(v);
}

/* Copies n strings into *v_out and sums their sizes with NULs. */
static enum err_code copy_strings(const char *const *src, size_t n, char ***v_out,
				  size_t *bytes_out, struct err *err)
{
	char **v = calloc(n ? n : 1, sizeof *v);
	size_t bytes = 0;
	if (!v)
		return err_set(err, ERR_NOMEM, "out of memory");
	for (size_t i = 0; i < n; i++) {
		v[i] = strdup(src[i]);
		if (!v[i]) {
			free_strings(v, i);
			return err_set(err, ERR_NOMEM, "out of memory");
		}
		bytes += strlen(src[i]) + 1;
	}
	if (bytes > UINT32_MAX / 2 || n > UINT32_MAX / 8) {
		free_strings(v, n);
		return err_set(err, ERR_TOO_LARGE, "wasi arguments or environment too large");
	}
	*v_out = v;
	*bytes_out = bytes;
	return ERR_OK;
}

enum err_code wasi_new(const struct wasi_options *opts, struct wasi **out, struct err *err)
{
	enum err_code rc;
	struct wasi *w = calloc(1, sizeof *w);
	if (!w)
		return err_set(err, ERR_NOMEM, "out of memory");
	rc = copy_strings(opts->argv, opts->argc, &w->args, &w->args_bytes, err);
	if (rc != ERR_OK)
		goto fail;
	w->argc = opts->argc;
	rc = copy_strings(opts->env, opts->envc, &w->env, &w->env_bytes, err);
	if (rc != ERR_OK)
		goto fail;
	w->envc = opts->envc;
	*out = w;
	return ERR_OK;
fail:
	wasi_free(w);
	return rc;
}

void wasi_free(struct wasi *w)
{
	if (!w)
		return;
	free_strings(w->args, w->argc);
	free_strings(w->env, w->envc);
	while (w->stubs) {
		struct wasi_stub *next = w->stubs->next;
		free(w->stubs);
		w->stubs = next;
	}
	free(w);
}

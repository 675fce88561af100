/* server_proc.h - end-to-end test support: run the real theater-server binary
 * on 127.0.0.1 with port 0 and a temporary THEATER_HOME, and talk to it with
 * libcurl. */
#ifndef THEATER_TESTS_SERVER_PROC_H
#define THEATER_TESTS_SERVER_PROC_H

#include <stddef.h>
#include <sys/types.h>

struct server_proc {
	pid_t pid;
	unsigned short port;
	char *home;            /* THEATER_HOME (kept across restarts) */
	char *roots;           /* package root folder (home/packages) */
	char base[64];         /* "http://127.0.0.1:PORT" */
	char log_path[512];    /* server stderr */
};

/* Starts theater-server with THEATER_HOME=home (a new temp dir when NULL) and
 * extra argv (NULL-terminated, may be NULL). Returns 0, or -1 with a message on
 * stderr. env_token: THEATER_TOKEN or NULL. */
int server_start(struct server_proc *sp, const char *home, const char *const *extra_args,
		 const char *env_token);
/* Starts theater-server like server_start but does not wait for it to listen
 * (its stdout is dropped; sp->port stays 0). Returns its pid, or -1. */
pid_t server_launch(struct server_proc *sp, const char *home, const char *const *extra_args);
/* SIGTERM and wait; returns the exit status (or -1). Keeps home. */
int server_stop(struct server_proc *sp);
/* SIGKILL (a crash) and wait. Keeps home. */
void server_crash(struct server_proc *sp);
/* Stops if running and removes home. */
void server_destroy(struct server_proc *sp);

struct http_result {
	long status;
	char *body;            /* NUL-terminated */
	size_t len;
	char *headers;         /* raw response headers */
	long connects;         /* CURLINFO_NUM_CONNECTS */
};
void http_result_release(struct http_result *r);
/* One request. headers: NULL-terminated "Name: value" strings. */
int http_do(const char *method, const char *url, const void *body, size_t len,
	    const char *const *headers, struct http_result *out);
/* Value of a response header (malloc'd) or NULL. */
char *http_header(const struct http_result *r, const char *name);

/* Writes bytes as <package root>/<name>; fails the test when it cannot. */
void server_put_package(struct server_proc *sp, const char *name, const void *data, size_t len);

/* Copies a file; fails the test (saying to build the examples) when it cannot. */
void server_copy_file(const char *from, const char *to);
/* Lays out <package root>/<name>/{<name>.wasm, manifest.json, manifest.toml} from
 * build/examples (manifest.toml when the example has one), so manifests resolve
 * their packages beside them. */
void server_install_example(struct server_proc *sp, const char *name);
/* Puts build/examples/<name>/<name>.wasm in sp's package root as <name>.wasm
 * (fails the test when the examples are not built). */
void server_put_example_package(struct server_proc *sp, const char *name);
/* The same for each name of a NULL-terminated list. */
void server_install_examples(struct server_proc *sp, const char *const *names);

/* Compiles tests/actors/host_driver.c (the actor that calls every host function on
 * command) with clang for wasm32, with extra -D flags (may be ""); the bytes are
 * malloc'd. Fails the test loudly when clang cannot build it. */
unsigned char *server_compile_driver(const char *defines, size_t *len_out);
/* The same for another C actor of the repository (source: a path from its root). */
unsigned char *server_compile_actor(const char *source, const char *defines, size_t *len_out);

/* METHOD path on sp with an optional JSON body; fails the test (with the body)
 * unless the answer's status is want. Returns the answer as JSON (a new
 * reference; NULL when it is not JSON). */
struct json_t;
struct json_t *server_call_json(struct server_proc *sp, const char *method, const char *path,
				const char *body, long want);
/* POST /actors/{id}/replay on sp: fails the test unless the chain replays without
 * a divergence, at least min_replayed calls of it. */
void server_assert_replays(struct server_proc *sp, const char *id, long min_replayed);

/* The text of examples/hello/hello.wat: the smallest valid actor. */
char *hello_actor_wat(void);

/* Compiles WebAssembly text with wat2wasm into bytes (malloc'd); fails the test
 * loudly when wat2wasm is missing. */
unsigned char *wat_compile(const char *wat, size_t *len_out);
/* The value of an unlabelled sample on sp's /metrics; fails the test when the
 * page cannot be read or has no such sample. */
long long server_metric(struct server_proc *sp, const char *name);

/* hello_actor_wat compiled (malloc'd); fails the test as wat_compile does. */
unsigned char *hello_actor_wasm(size_t *len_out);
/* Puts the hello actor in sp's package root as <name>. */
void server_put_hello_package(struct server_proc *sp, const char *name);

#endif

/* api_bench.c - in-process costs of the engine API (src/wasm/wasm.h).
 *
 * Measures, with modules built here byte by byte (no files, no tools):
 *   - store + instantiate + call + free of a tiny 1-page module already
 *     decoded (what a supervisor pays per spawn with its module cache warm);
 *   - the same including decode + validate of a ~10 KB module;
 *   - the memory of an idle instance: wasm_store_footprint and the RSS delta
 *     over 1000 live instances, each in its own store as actors are;
 *   - a host call answered at once, against one that parks the call and is
 *     resumed (wasm_caller_suspend / wasm_store_resume), and the memory of
 *     1000 stores each holding a parked call.
 * Prints one line per figure; bench/wasm/run.sh shows them with the targets.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "src/util/buf.h"
#include "src/util/err.h"
#include "src/wasm/wasm.h"

#define IDLE_INSTANCES 1000

/* Process CPU time (user + sys): single-threaded, and far less disturbed
 * by other work on a busy machine than wall time. */
static double now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static void die(const char *what, const struct err *err)
{
	fprintf(stderr, "api_bench: %s: %s\n", what, err->msg);
	exit(1);
}

/* ---- a tiny module encoder ---- */

static void put_byte(struct buf *b, unsigned v)
{
	unsigned char c = (unsigned char)v;
	buf_append(b, &c, 1);
}

static void put_uleb(struct buf *b, uint32_t v)
{
	do {
		unsigned c = v & 0x7f;
		v >>= 7;
		put_byte(b, v ? c | 0x80 : c);
	} while (v);
}

static void put_sleb(struct buf *b, int32_t v)
{
	for (;;) {
		unsigned c = (unsigned)v & 0x7f;
		v >>= 7;
		int done = (v == 0 && !(c & 0x40)) || (v == -1 && (c & 0x40));
		put_byte(b, done ? c : c | 0x80);
		if (done)
			return;
	}
}

/* Appends section `id` with the contents of body, then resets body. */
static void put_section(struct buf *out, unsigned id, struct buf *body)
{
	put_byte(out, id);
	put_uleb(out, (uint32_t)body->len);
	buf_append(out, body->data, body->len);
	buf_reset(body);
}

/* A chain of nfuncs functions (i32) -> i32, each doing `ops` rounds of
 * arithmetic and calling the next; exports the first as "run" and a 1-page
 * memory. nfuncs = 1, ops = 1 makes a ~50-byte module. */
static void build_module(uint32_t nfuncs, uint32_t ops, struct buf *out)
{
	struct buf sec, fn;
	buf_init(&sec, 0);
	buf_init(&fn, 0);
	buf_append(out, "\0asm\1\0\0\0", 8);
	put_uleb(&sec, 1);
	buf_append(&sec, "\x60\x01\x7f\x01\x7f", 5);
	put_section(out, 1, &sec);
	put_uleb(&sec, nfuncs);
	for (uint32_t i = 0; i < nfuncs; i++)
		put_uleb(&sec, 0);
	put_section(out, 3, &sec);
	buf_append(&sec, "\x01\x00\x01", 3);
	put_section(out, 5, &sec);
	buf_append(&sec, "\x02\x03run\x00\x00\x06memory\x02\x00", 16);
	put_section(out, 7, &sec);
	put_uleb(&sec, nfuncs);
	for (uint32_t i = 0; i < nfuncs; i++) {
		buf_append(&fn, "\x00\x20\x00", 3);          /* no locals; local.get 0 */
		for (uint32_t j = 0; j < ops; j++) {
			put_byte(&fn, 0x41);                  /* i32.const */
			put_sleb(&fn, (int32_t)(i * 131 + j * 7));
			buf_append(&fn, "\x6a\x41\x03\x6c", 4); /* add, const 3, mul */
		}
		if (i + 1 < nfuncs) {
			put_byte(&fn, 0x10);                  /* call i+1 */
			put_uleb(&fn, i + 1);
		}
		put_byte(&fn, 0x0b);
		put_uleb(&sec, (uint32_t)fn.len);
		buf_append(&sec, fn.data, fn.len);
		buf_reset(&fn);
	}
	put_section(out, 10, &sec);
	buf_release(&sec);
	buf_release(&fn);
}

/* ---- measurements ---- */

static void instantiate_call(struct wasm_module *m, int keep, struct wasm_store **s_out)
{
	struct err err = { 0 };
	struct wasm_store *s = NULL;
	struct wasm_instance *inst = NULL;
	struct wasm_extern run;
	struct wasm_value arg = { .type = WASM_I32, .of.i32 = 1 }, res;
	if (wasm_store_new(NULL, &s, &err) != ERR_OK)
		die("store", &err);
	if (wasm_instance_new(s, m, NULL, 0, &inst, &err) != ERR_OK)
		die("instantiate", &err);
	if (wasm_instance_export(inst, "run", &run) != ERR_OK)
		die("export", &err);
	if (wasm_func_call(s, run.of.func, &arg, 1, &res, 1, &err) != ERR_OK)
		die("call", &err);
	if (keep)
		*s_out = s;
	else
		wasm_store_free(s);
}

static struct wasm_module *load(const struct buf *b)
{
	struct err err = { 0 };
	struct wasm_module *m = NULL;
	if (wasm_module_new((const uint8_t *)b->data, b->len, &m, &err) != ERR_OK)
		die("load", &err);
	return m;
}

static double per_iter_loaded(struct wasm_module *m, int iters)
{
	for (int i = 0; i < iters / 10; i++)
		instantiate_call(m, 0, NULL);
	double t0 = now_us();
	for (int i = 0; i < iters; i++)
		instantiate_call(m, 0, NULL);
	return (now_us() - t0) / iters;
}

static double per_iter_decode(const struct buf *b, int iters, int call)
{
	double t0 = now_us();
	for (int i = 0; i < iters; i++) {
		struct wasm_module *m = load(b);
		if (call)
			instantiate_call(m, 0, NULL);
		wasm_module_free(m);
	}
	return (now_us() - t0) / iters;
}

static long rss_kib(void)
{
	long pages = 0, resident = 0;
	FILE *f = fopen("/proc/self/statm", "r");
	if (!f)
		return -1;
	if (fscanf(f, "%ld %ld", &pages, &resident) != 2)
		resident = -1;
	fclose(f);
	return resident < 0 ? -1 : resident * (sysconf(_SC_PAGESIZE) / 1024);
}

static void idle_instances(struct wasm_module *m)
{
	struct wasm_store **stores = calloc(IDLE_INSTANCES, sizeof *stores);
	size_t footprint = 0;
	if (!stores)
		exit(1);
	long before = rss_kib();
	for (int i = 0; i < IDLE_INSTANCES; i++)
		instantiate_call(m, 1, &stores[i]);
	long after = rss_kib();
	for (int i = 0; i < IDLE_INSTANCES; i++) {
		footprint += wasm_store_footprint(stores[i]);
		wasm_store_free(stores[i]);
	}
	printf("idle_instance_footprint_kib %.1f\n", footprint / 1024.0 / IDLE_INSTANCES);
	printf("idle_instance_rss_kib %.1f\n", (after - before) / (double)IDLE_INSTANCES);
	free(stores);
}

/* run(n): calls the imported env.w(i) n times and sums the answers. */
static void build_host_module(struct buf *out)
{
	static const unsigned char body[] = {
		0x01, 0x02, 0x7f,                                   /* 2 i32 locals */
		0x02, 0x40, 0x03, 0x40,                             /* block, loop */
		0x20, 0x01, 0x20, 0x00, 0x4f, 0x0d, 0x01,           /* i >= n: br_if 1 */
		0x20, 0x02, 0x20, 0x01, 0x10, 0x00, 0x6a, 0x21, 0x02, /* acc += w(i) */
		0x20, 0x01, 0x41, 0x01, 0x6a, 0x21, 0x01,           /* i++ */
		0x0c, 0x00, 0x0b, 0x0b,                             /* br 0, end, end */
		0x20, 0x02, 0x0b};                                  /* acc */
	struct buf sec;
	buf_init(&sec, 0);
	buf_append(out, "\0asm\1\0\0\0", 8);
	buf_append(&sec, "\x01\x60\x01\x7f\x01\x7f", 6);
	put_section(out, 1, &sec);
	buf_append(&sec, "\x01\x03" "env" "\x01" "w" "\x00\x00", 9);
	put_section(out, 2, &sec);
	buf_append(&sec, "\x01\x00", 2);
	put_section(out, 3, &sec);
	buf_append(&sec, "\x01\x00\x01", 3);
	put_section(out, 5, &sec);
	buf_append(&sec, "\x01\x03" "run" "\x00\x01", 7);
	put_section(out, 7, &sec);
	put_uleb(&sec, 1);
	put_uleb(&sec, (uint32_t)sizeof(body));
	buf_append(&sec, body, sizeof(body));
	put_section(out, 10, &sec);
	buf_release(&sec);
}

struct host_ctx {
	int park;
	uint32_t last;
};

static enum err_code host_w(struct wasm_caller *caller, void *user,
			    const struct wasm_value *args, struct wasm_value *results,
			    struct err *err)
{
	struct host_ctx *c = user;
	c->last = args[0].of.i32;
	if (c->park)
		return wasm_caller_suspend(caller, c, err);
	results[0].of.i32 = c->last + 1;
	return ERR_OK;
}

static struct wasm_store *host_store(struct wasm_module *m, struct host_ctx *c,
				     struct wasm_func **run)
{
	static const enum wasm_valtype i32[] = {WASM_I32};
	struct wasm_functype t = {.nparams = 1, .nresults = 1, .params = i32, .results = i32};
	struct err err = { 0 };
	struct wasm_store *s = NULL;
	struct wasm_func *w = NULL;
	struct wasm_instance *inst = NULL;
	struct wasm_extern ex;
	if (wasm_store_new(NULL, &s, &err) || wasm_func_new_host(s, &t, host_w, c, &w, &err))
		die("host store", &err);
	ex.kind = WASM_EXTERN_FUNC;
	ex.of.func = w;
	if (wasm_instance_new(s, m, &ex, 1, &inst, &err))
		die("host instantiate", &err);
	if (wasm_instance_export(inst, "run", &ex))
		die("host export", &err);
	*run = ex.of.func;
	return s;
}

/* Per host call: answered at once (park = 0) or parked and resumed. */
static double per_host_call(struct wasm_module *m, int park, uint32_t n)
{
	struct host_ctx c = { .park = park };
	struct wasm_func *run;
	struct wasm_store *s = host_store(m, &c, &run);
	struct err err = { 0 };
	struct wasm_value arg = { .type = WASM_I32, .of.i32 = n }, res = { 0 };
	double t0 = now_us();
	enum err_code rc = wasm_func_call(s, run, &arg, 1, &res, 1, &err);
	while (rc == ERR_WASM_SUSPEND) {
		struct wasm_value r = { .type = WASM_I32, .of.i32 = c.last + 1 };
		rc = wasm_store_resume(s, &r, 1, &res, 1, &err);
	}
	double t = now_us() - t0;
	if (rc)
		die("host call", &err);
	if (res.of.i32 != (uint32_t)((uint64_t)n * (n + 1) / 2))
		die("host call result", &(struct err){ .msg = "wrong sum" });
	wasm_store_free(s);
	return t / n;
}

static void parked_stores(struct wasm_module *m)
{
	struct wasm_store **stores = calloc(IDLE_INSTANCES, sizeof *stores);
	struct host_ctx c = { .park = 1 };
	size_t footprint = 0;
	if (!stores)
		exit(1);
	long before = rss_kib();
	for (int i = 0; i < IDLE_INSTANCES; i++) {
		struct wasm_func *run;
		struct err err = { 0 };
		struct wasm_value arg = { .type = WASM_I32, .of.i32 = 5 }, res;
		stores[i] = host_store(m, &c, &run);
		if (wasm_func_call(stores[i], run, &arg, 1, &res, 1, &err) != ERR_WASM_SUSPEND)
			die("park", &err);
	}
	long after = rss_kib();
	for (int i = 0; i < IDLE_INSTANCES; i++) {
		footprint += wasm_store_footprint(stores[i]);
		wasm_store_free(stores[i]);
	}
	printf("parked_store_footprint_kib %.1f\n", footprint / 1024.0 / IDLE_INSTANCES);
	printf("parked_store_rss_kib %.1f\n", (after - before) / (double)IDLE_INSTANCES);
	free(stores);
}

int main(int argc, char **argv)
{
	int scale = argc > 1 ? atoi(argv[1]) : 1;
	struct buf tiny, big;
	buf_init(&tiny, 0);
	buf_init(&big, 0);
	build_module(1, 1, &tiny);
	build_module(100, 14, &big);
	struct wasm_module *m = load(&tiny), *mb = load(&big);
	printf("tiny_module_bytes %zu\n", tiny.len);
	printf("big_module_bytes %zu\n", big.len);
	printf("tiny_module_footprint_bytes %zu\n", wasm_module_footprint(m));
	printf("big_module_footprint_bytes %zu\n", wasm_module_footprint(mb));
	printf("loaded_instantiate_call_us %.2f\n", per_iter_loaded(m, 20000 * scale));
	printf("big_loaded_instantiate_call_us %.2f\n", per_iter_loaded(mb, 2000 * scale));
	printf("big_decode_validate_us %.2f\n", per_iter_decode(&big, 1000 * scale, 0));
	printf("big_decode_instantiate_call_us %.2f\n", per_iter_decode(&big, 1000 * scale, 1));
	idle_instances(m);
	struct buf hb;
	buf_init(&hb, 0);
	build_host_module(&hb);
	struct wasm_module *mh = load(&hb);
	printf("host_call_direct_us %.3f\n", per_host_call(mh, 0, 1000000u * (uint32_t)scale));
	printf("host_call_park_resume_us %.3f\n", per_host_call(mh, 1, 200000u * (uint32_t)scale));
	parked_stores(mh);
	wasm_module_free(mh);
	buf_release(&hb);
	wasm_module_free(m);
	wasm_module_free(mb);
	buf_release(&tiny);
	buf_release(&big);
	return 0;
}

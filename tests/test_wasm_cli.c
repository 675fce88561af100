/* test_wasm_cli.c - theater-wasm end to end: the real binary on real modules.
 *
 * The group setup builds the fixtures of tests/wasmcli/ at test time (WAT
 * with wat2wasm, the WASI program with clang --target=wasm32-wasi), then each
 * test runs tools/theater-wasm/theater-wasm as a child process with files for
 * stdin, stdout and stderr, and checks all three and the exit status.
 */
#include "tests/support/testutil.h"

#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

struct fixture {
	char *dir;        /* temporary directory, removed at teardown */
	char *tool;       /* the theater-wasm binary */
	char *values;     /* values.wasm */
	char *imports;    /* imports.wasm */
	char *wasi_raw;   /* wasi_raw.wasm */
	char *prog;       /* wasi_prog.wasm */
};

struct run {
	int status;       /* exit status, or 128+signal */
	char *out;
	char *err;
};

static struct fixture fx;

/* Runs argv (a NULL-terminated list) with `input` on stdin; 0 on success. */
static int spawn_wait(char *const argv[], const char *input, struct run *r)
{
	char *in = tu_fmt("%s/stdin", fx.dir), *out = tu_fmt("%s/stdout", fx.dir);
	char *errp = tu_fmt("%s/stderr", fx.dir);
	posix_spawn_file_actions_t fa;
	pid_t pid;
	int st = 0, rc = -1;
	tu_write_file(in, input ? input : "", input ? strlen(input) : 0);
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, in, O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 1, out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	posix_spawn_file_actions_addopen(&fa, 2, errp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ) == 0 &&
	    waitpid(pid, &st, 0) == pid) {
		r->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
		r->out = tu_read_file(out, NULL);
		r->err = tu_read_file(errp, NULL);
		rc = 0;
	}
	posix_spawn_file_actions_destroy(&fa);
	free(in);
	free(out);
	free(errp);
	return rc;
}

static void run_free(struct run *r)
{
	free(r->out);
	free(r->err);
}

/* Runs theater-wasm with up to 15 words after "run". */
static struct run tool(const char *input, const char *const *words)
{
	char *argv[20] = { fx.tool, "run" };
	int n = 2;
	for (; words[n - 2] && n < 19; n++)
		argv[n] = (char *)words[n - 2];
	argv[n] = NULL;
	struct run r = { 0 };
	assert_int_equal(spawn_wait(argv, input, &r), 0);
	assert_non_null(r.out);
	assert_non_null(r.err);
	return r;
}

#define RUN(input, ...) tool(input, (const char *const[]){ __VA_ARGS__, NULL })

static void expect(struct run r, int status, const char *out, const char *err_part)
{
	if (r.status != status || (out && strcmp(r.out, out) != 0) ||
	    (err_part && !strstr(r.err, err_part)))
		print_error("status %d\nstdout:\n%s\nstderr:\n%s\n", r.status, r.out, r.err);
	assert_int_equal(r.status, status);
	if (out)
		assert_string_equal(r.out, out);
	if (err_part)
		assert_non_null(strstr(r.err, err_part));
	run_free(&r);
}

/* ---- fixtures ---- */

static int build(char *const argv[])
{
	struct run r = { 0 };
	if (spawn_wait(argv, NULL, &r) != 0)
		return -1;
	int ok = r.status == 0;
	if (!ok)
		fprintf(stderr, "%s failed (%d): %s%s\n", argv[0], r.status, r.out, r.err);
	run_free(&r);
	return ok ? 0 : -1;
}

static char *wat(const char *name)
{
	char *src = tu_fmt("%s/tests/wasmcli/%s.wat", tu_source_dir(), name);
	char *dst = tu_fmt("%s/%s.wasm", fx.dir, name);
	char *argv[] = { "wat2wasm", src, "-o", dst, NULL };
	int rc = build(argv);
	free(src);
	if (rc == 0)
		return dst;
	free(dst);
	return NULL;
}

static char *wasi_prog(void)
{
	char *src = tu_fmt("%s/tests/wasmcli/wasi_prog.c", tu_source_dir());
	char *dst = tu_fmt("%s/wasi_prog.wasm", fx.dir);
	struct stat st;
	char *sysroot = stat("/usr/share/wasi-sysroot", &st) == 0 ?
			"--sysroot=/usr/share/wasi-sysroot" : "-Wall";
	char *argv[] = { "clang", "--target=wasm32-wasi", sysroot, "-O2", src, "-o", dst, NULL };
	int rc = build(argv);
	free(src);
	if (rc == 0)
		return dst;
	free(dst);
	return NULL;
}

static int setup(void **state)
{
	(void)state;
	fx.dir = tu_mkdtemp("wasmcli");
	fx.tool = tu_fmt("%s/tools/theater-wasm/theater-wasm", tu_binary_dir());
	if (!fx.dir || access(fx.tool, X_OK) != 0) {
		fprintf(stderr, "no theater-wasm at '%s'\n", fx.tool);
		return -1;
	}
	fx.values = wat("values");
	fx.imports = wat("imports");
	fx.wasi_raw = wat("wasi_raw");
	fx.prog = wasi_prog();
	return fx.values && fx.imports && fx.wasi_raw && fx.prog ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	tu_rmtree(fx.dir);
	free(fx.dir);
	free(fx.tool);
	free(fx.values);
	free(fx.imports);
	free(fx.wasi_raw);
	free(fx.prog);
	return 0;
}

/* ---- --invoke ---- */

static void test_invoke_fib(void **state)
{
	(void)state;
	expect(RUN(NULL, fx.values, "--invoke", "fib", "20"), 0, "i32:6765\n", NULL);
	expect(RUN(NULL, "--invoke", "fib", fx.values, "0x10"), 0, "i32:987\n", NULL);
}

static void test_invoke_all_types(void **state)
{
	(void)state;
	expect(RUN(NULL, fx.values, "--invoke", "swap", "-7", "0x10", "2.5", "-inf"), 0,
	       "f64:-inf\nf32:2.5\ni64:16\ni32:-7\n", NULL);
	expect(RUN(NULL, fx.values, "--invoke", "id_i32", "4294967295"), 0, "i32:-1\n", NULL);
	expect(RUN(NULL, fx.values, "--invoke", "id_i32", "-2147483648"), 0,
	       "i32:-2147483648\n", NULL);
	expect(RUN(NULL, fx.values, "--invoke", "id_i64", "0x8000000000000000"), 0,
	       "i64:-9223372036854775808\n", NULL);
	expect(RUN(NULL, fx.values, "--invoke", "nothing"), 0, "", NULL);
	expect(RUN(NULL, fx.values, "--invoke", "null_funcref"), 0, "funcref:null\n", NULL);
	expect(RUN(NULL, fx.values, "--invoke", "id_externref", "null"), 0,
	       "externref:null\n", NULL);
	expect(RUN(NULL, fx.values, "--invoke", "id_externref", "7"), 0, "externref:7\n", NULL);
}

static void test_invoke_floats_exact(void **state)
{
	(void)state;
	expect(RUN(NULL, fx.values, "--invoke", "add_f64", "0.1", "0.2"), 0,
	       "f64:0.30000000000000004\n", NULL);
	expect(RUN(NULL, fx.values, "--invoke", "id_f32", "0.1"), 0, "f32:0.1\n", NULL);
	expect(RUN(NULL, fx.values, "--invoke", "id_f64", "0x1.8p1"), 0, "f64:3\n", NULL);
	expect(RUN(NULL, fx.values, "--invoke", "id_f64", "-0"), 0, "f64:-0\n", NULL);
	expect(RUN(NULL, fx.values, "--invoke", "id_f64", "1e300"), 0, "f64:1e+300\n", NULL);
	expect(RUN(NULL, fx.values, "--invoke", "id_f32", "nan:0x200000"), 0,
	       "f32:nan:0x200000\n", NULL);
	expect(RUN(NULL, fx.values, "--invoke", "id_f32", "-nan"), 0, "f32:-nan\n", NULL);
	expect(RUN(NULL, fx.values, "--invoke", "id_f64", "nan"), 0, "f64:nan\n", NULL);
	expect(RUN(NULL, fx.values, "--invoke", "id_f64", "nan:0x1"), 0, "f64:nan:0x1\n", NULL);
	expect(RUN(NULL, fx.values, "--invoke", "id_f64", "inf"), 0, "f64:inf\n", NULL);
}

static void test_traps_exit_2(void **state)
{
	(void)state;
	expect(RUN(NULL, fx.values, "--invoke", "div_s", "1", "0"), 2, "",
	       "trap: integer divide by zero\n");
	expect(RUN(NULL, fx.values, "--invoke", "div_s", "-2147483648", "-1"), 2, "",
	       "trap: integer overflow\n");
	expect(RUN(NULL, fx.values, "--invoke", "unreachable"), 2, "", "trap: unreachable");
}

static void test_fuel_and_memory_limits(void **state)
{
	(void)state;
	expect(RUN(NULL, "--fuel", "100000", fx.values, "--invoke", "spin"), 2, "",
	       "trap: fuel exhausted");
	expect(RUN(NULL, "--fuel", "1000000", fx.values, "--invoke", "fib", "10"), 0,
	       "i32:55\n", NULL);
	expect(RUN(NULL, fx.values, "--invoke", "grow", "3"), 0, "i32:1\n", NULL);
	expect(RUN(NULL, "--max-memory", "128K", fx.values, "--invoke", "grow", "3"), 0,
	       "i32:-1\n", NULL);
	expect(RUN(NULL, "--max-memory", "128K", fx.values, "--invoke", "grow", "1"), 0,
	       "i32:1\n", NULL);
	expect(RUN(NULL, "--stats", fx.values, "--invoke", "fib", "5"), 0, "i32:5\n",
	       "stats: fuel used ");
}

static void test_bad_modules_exit_1(void **state)
{
	(void)state;
	char *junk = tu_fmt("%s/junk.wasm", fx.dir);
	char *trunc = tu_fmt("%s/trunc.wasm", fx.dir);
	assert_int_equal(tu_write_file(junk, "not wasm at all", 15), 0);
	assert_int_equal(tu_write_file(trunc, "\0asm\1\0\0\0\1", 9), 0);
	expect(RUN(NULL, junk, "--invoke", "f"), 1, "", "error: ");
	expect(RUN(NULL, trunc, "--invoke", "f"), 1, "", "error: ");
	expect(RUN(NULL, fx.dir, "--invoke", "f"), 1, "", "error: ");
	expect(RUN(NULL, "/nonexistent/x.wasm", "--invoke", "f"), 1, "", "error: ");
	expect(RUN(NULL, fx.imports, "--invoke", "f"), 1, "",
	       "error: unknown import 'env'.'missing'");
	expect(RUN(NULL, fx.values, "--invoke", "absent"), 1, "", "error: no export 'absent'");
	expect(RUN(NULL, fx.values, "--invoke", "g"), 1, "", "is not a function");
	expect(RUN(NULL, fx.values), 1, "", "error: no export '_start'");
	free(junk);
	free(trunc);
}

static void test_invalid_module_exit_1(void **state)
{
	(void)state;
	char *src = tu_fmt("%s/invalid.wat", fx.dir);
	char *dst = tu_fmt("%s/invalid.wasm", fx.dir);
	const char *text = "(module (func (result i32) (i64.const 1)))";
	assert_int_equal(tu_write_file(src, text, strlen(text)), 0);
	char *argv[] = { "wat2wasm", "--no-check", src, "-o", dst, NULL };
	assert_int_equal(build(argv), 0);
	expect(RUN(NULL, dst, "--invoke", "f"), 1, "", "error: ");
	free(src);
	free(dst);
}

static void test_usage_exit_64(void **state)
{
	(void)state;
	char *argv[] = { fx.tool, NULL };
	struct run r = { 0 };
	assert_int_equal(spawn_wait(argv, NULL, &r), 0);
	expect(r, 64, "", "usage: theater-wasm run");
	expect(RUN(NULL, "--bogus", fx.values), 64, "", "unknown option '--bogus'");
	expect(RUN(NULL, "--fuel"), 64, "", "needs a value");
	expect(RUN(NULL, "--fuel", "lots", fx.values), 64, "", "bad --fuel value");
	expect(RUN(NULL, "--max-memory", "100", fx.values), 64, "", "bad --max-memory");
	expect(RUN(NULL, fx.values, "--invoke", "fib"), 64, "",
	       "'fib' takes 1 argument (i32), 0 given");
	expect(RUN(NULL, fx.values, "--invoke", "fib", "x1"), 64, "", "'x1' is not a valid i32");
	expect(RUN(NULL, fx.values, "--invoke", "fib", "4294967296"), 64, "", "out of range");
	expect(RUN(NULL, fx.values, "--invoke", "id_f32", "1e39"), 64, "", "not a valid f32");
	struct run h = RUN(NULL, "--help");
	assert_int_equal(h.status, 0);
	assert_non_null(strstr(h.out, "--max-memory BYTES"));
	run_free(&h);
}

/* ---- WASI ---- */

static void test_wasi_args_and_stdout(void **state)
{
	(void)state;
	expect(RUN(NULL, fx.prog, "--", "hello", "wor ld", "--x"), 0,
	       "hello from wasm, argc=4\nargv[1]=hello\nargv[2]=wor ld\nargv[3]=--x\n", NULL);
	expect(RUN(NULL, fx.prog), 0, "hello from wasm, argc=1\n", NULL);
}

static void test_wasi_stdin(void **state)
{
	(void)state;
	expect(RUN("abc\nxyz 1\n", fx.prog, "cat"), 0, "ABC\nXYZ 1\nlines=2\n", NULL);
	expect(RUN("", fx.prog, "cat"), 0, "lines=0\n", NULL);
}

static void test_wasi_exit_codes(void **state)
{
	(void)state;
	expect(RUN(NULL, fx.prog, "exit", "7"), 7, "", "leaving with 7\n");
	expect(RUN(NULL, fx.prog, "exit", "0"), 0, "", "leaving with 0\n");
	expect(RUN(NULL, fx.prog, "return", "42"), 42, "", NULL);
	expect(RUN(NULL, fx.prog, "bogus"), 99, "", "unknown command 'bogus'");
	expect(RUN(NULL, fx.prog, "trap"), 2, "", "trap: ");
	expect(RUN(NULL, "--fuel", "1000", fx.prog, "hello"), 2, "", "trap: fuel exhausted");
}

static void test_wasi_env_clock_random(void **state)
{
	(void)state;
	expect(RUN(NULL, fx.prog, "env", "HOME"), 0, "(unset)\n", NULL);
	expect(RUN(NULL, "--env", "FOO=bar baz", fx.prog, "env"), 0, "bar baz\n", NULL);
	expect(RUN(NULL, "--env", "A=1", "--env", "B=2", fx.prog, "env", "B"), 0, "2\n", NULL);
	expect(RUN(NULL, "--env", "novalue", fx.prog), 64, "", "want KEY=VALUE");
	expect(RUN(NULL, fx.prog, "clocks"), 0, "clocks ok\n", NULL);
	expect(RUN(NULL, fx.prog, "files"), 0, "fopen: refused\n", NULL);
}

static void test_wasi_errno_results(void **state)
{
	(void)state;
	expect(RUN(NULL, fx.wasi_raw, "--invoke", "prestat"), 0, "i32:8\n", NULL);
	expect(RUN(NULL, fx.wasi_raw, "--invoke", "open"), 0, "i32:52\n", NULL);
	expect(RUN(NULL, fx.wasi_raw, "--invoke", "bad_write"), 0, "i32:21\n", NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_invoke_fib),
		cmocka_unit_test(test_invoke_all_types),
		cmocka_unit_test(test_invoke_floats_exact),
		cmocka_unit_test(test_traps_exit_2),
		cmocka_unit_test(test_fuel_and_memory_limits),
		cmocka_unit_test(test_bad_modules_exit_1),
		cmocka_unit_test(test_invalid_module_exit_1),
		cmocka_unit_test(test_usage_exit_64),
		cmocka_unit_test(test_wasi_args_and_stdout),
		cmocka_unit_test(test_wasi_stdin),
		cmocka_unit_test(test_wasi_exit_codes),
		cmocka_unit_test(test_wasi_env_clock_random),
		cmocka_unit_test(test_wasi_errno_results),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}

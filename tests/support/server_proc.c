/* server_proc.c - see server_proc.h. */
#include "tests/support/server_proc.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "src/util/json.h"
#include "tests/support/testutil.h"

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
	nanosleep(&ts, NULL);
}

/* Forks theater-server on sp's home (made when sp has none) with its stdout on
 * out_fd (closed in the parent) and its stderr appended to the log. */
static pid_t spawn_server(struct server_proc *sp, const char *home,
			  const char *const *extra_args, const char *env_token, int out_fd)
{
	if (!sp->home)
		sp->home = home ? strdup(home) : tu_mkdtemp("theater-e2e");
	if (!sp->roots)
		sp->roots = tu_fmt("%s/packages", sp->home);
	mkdir(sp->roots, 0755);
	snprintf(sp->log_path, sizeof(sp->log_path), "%s/server.log", sp->home);
	char *bin = tu_fmt("%s/theater-server", tu_binary_dir());
	pid_t pid = fork();
	if (pid == 0) {
		/* a test that dies (a failed assertion) takes its server with it */
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		dup2(out_fd, 1);
		int logfd = open(sp->log_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
		if (logfd >= 0)
			dup2(logfd, 2);
		setenv("THEATER_HOME", sp->home, 1);
		setenv("no_proxy", "127.0.0.1,localhost", 1);   /* tests talk to loopback only */
		if (env_token)
			setenv("THEATER_TOKEN", env_token, 1);
		else
			unsetenv("THEATER_TOKEN");
		const char *argv[32] = {bin, "--listen", "127.0.0.1:0", "--workers", "2"};
		int n = 5;
		for (int i = 0; extra_args && extra_args[i] && n < 30; i++)
			argv[n++] = extra_args[i];
		argv[n] = NULL;
		execv(bin, (char *const *)argv);
		_exit(127);
	}
	close(out_fd);
	free(bin);
	if (pid > 0)   /* never -1: a later kill(-1) would signal every process */
		sp->pid = pid;
	return pid;
}

pid_t server_launch(struct server_proc *sp, const char *home, const char *const *extra_args)
{
	int devnull = open("/dev/null", O_WRONLY);
	return devnull < 0 ? -1 : spawn_server(sp, home, extra_args, NULL, devnull);
}

int server_start(struct server_proc *sp, const char *home, const char *const *extra_args,
		 const char *env_token)
{
	int out[2];
	if (pipe(out) != 0)
		return -1;
	fcntl(out[0], F_SETFD, FD_CLOEXEC);
	if (spawn_server(sp, home, extra_args, env_token, out[1]) < 0) {
		close(out[0]);
		return -1;
	}
	FILE *f = fdopen(out[0], "r");
	char line[256];
	sp->port = 0;
	if (f && fgets(line, sizeof(line), f)) {
		char *p = strstr(line, "127.0.0.1:");
		if (p)
			sp->port = (unsigned short)atoi(p + 10);
	}
	if (f)
		fclose(f);
	if (!sp->port) {
		fprintf(stderr, "theater-server did not start; its log (%s):\n", sp->log_path);
		char *log = tu_read_file(sp->log_path, NULL);
		fprintf(stderr, "%s\n", log ? log : "(none)");
		free(log);
		server_stop(sp);
		return -1;
	}
	snprintf(sp->base, sizeof(sp->base), "http://127.0.0.1:%u", sp->port);
	return 0;
}

static int wait_exit(pid_t pid, int timeout_ms)
{
	int status = 0;
	for (int waited = 0; waited < timeout_ms; waited += 10) {
		pid_t r = waitpid(pid, &status, WNOHANG);
		if (r == pid)
			return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
		sleep_ms(10);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	return -1;
}

int server_stop(struct server_proc *sp)
{
	if (sp->pid <= 0)
		return -1;
	kill(sp->pid, SIGTERM);
	int rc = wait_exit(sp->pid, 30000);
	sp->pid = 0;
	if (rc != 0 && sp->log_path[0]) {   /* a sanitizer report, a crash: say why */
		char heading[64];
		snprintf(heading, sizeof(heading), "theater-server exited with %d; the end of its log:",
			 rc);
		tu_show_tail(heading, sp->log_path, 16384);
	}
	return rc;
}

void server_crash(struct server_proc *sp)
{
	if (sp->pid <= 0)
		return;
	kill(sp->pid, SIGKILL);
	wait_exit(sp->pid, 10000);
	sp->pid = 0;
}

void server_destroy(struct server_proc *sp)
{
	/* a server the test already stopped or crashed has nothing left to say */
	if (sp->pid > 0)
		server_stop(sp);
	tu_rmtree(sp->home);
	free(sp->home);
	free(sp->roots);
	sp->home = sp->roots = NULL;
}

struct sink {
	char *data;
	size_t len;
};

static size_t on_data(char *p, size_t size, size_t n, void *user)
{
	struct sink *s = user;
	size_t add = size * n;
	char *d = realloc(s->data, s->len + add + 1);
	if (!d)
		return 0;
	memcpy(d + s->len, p, add);
	s->len += add;
	d[s->len] = '\0';
	s->data = d;
	return add;
}

void http_result_release(struct http_result *r)
{
	free(r->body);
	free(r->headers);
	memset(r, 0, sizeof(*r));
}

int http_do(const char *method, const char *url, const void *body, size_t len,
	    const char *const *headers, struct http_result *out)
{
	memset(out, 0, sizeof(*out));
	CURL *c = curl_easy_init();
	struct sink b = {0}, h = {0};
	struct curl_slist *hl = NULL;
	for (int i = 0; headers && headers[i]; i++)
		hl = curl_slist_append(hl, headers[i]);
	/* Large bodies ask first (as real clients do), so a server that refuses them
	 * on their headers (413) answers before the body is sent; a refusal while the
	 * body is still in flight can reach the client as a reset instead. */
	if (body)
		hl = curl_slist_append(hl, len > 64 * 1024 ? "Expect: 100-continue" : "Expect:");
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	if (body) {
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
	}
	if (strcmp(method, "HEAD") == 0)
		curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_data);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, &h);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 60L);
	CURLcode rc = curl_easy_perform(c);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &out->status);
	curl_easy_getinfo(c, CURLINFO_NUM_CONNECTS, &out->connects);
	curl_slist_free_all(hl);
	curl_easy_cleanup(c);
	out->body = b.data ? b.data : strdup("");
	out->len = b.len;
	out->headers = h.data ? h.data : strdup("");
	return rc == CURLE_OK ? 0 : -1;
}

char *http_header(const struct http_result *r, const char *name)
{
	size_t n = strlen(name);
	for (const char *p = r->headers; p && *p;) {
		const char *eol = strstr(p, "\r\n");
		if (!eol)
			break;
		if (strncasecmp(p, name, n) == 0 && p[n] == ':') {
			const char *v = p + n + 1;
			while (*v == ' ')
				v++;
			return strndup(v, (size_t)(eol - v));
		}
		p = eol + 2;
	}
	return NULL;
}

unsigned char *wat_compile(const char *wat, size_t *len_out)
{
	char *dir = tu_mkdtemp("theater-wat");
	char *in = tu_fmt("%s/m.wat", dir), *out = tu_fmt("%s/m.wasm", dir);
	tu_write_file(in, wat, strlen(wat));
	char *cmd = tu_fmt("wat2wasm --enable-all '%s' -o '%s'", in, out);
	if (system(cmd) != 0) {
		fprintf(stderr, "wat_compile: '%s' failed (is wabt installed? run "
			"scripts/install-deps.sh)\n", cmd);
		abort();
	}
	unsigned char *bytes = (unsigned char *)tu_read_file(out, len_out);
	tu_rmtree(dir);
	free(cmd);
	free(in);
	free(out);
	free(dir);
	return bytes;
}

char *hello_actor_wat(void)
{
	char *path = tu_fmt("%s/examples/hello/hello.wat", tu_source_dir());
	char *text = tu_read_file(path, NULL);
	if (!text) {
		fprintf(stderr, "cannot read '%s'\n", path);
		abort();
	}
	free(path);
	return text;
}

long long server_metric(struct server_proc *sp, const char *name)
{
	char *url = tu_fmt("%s/metrics", sp->base);
	struct http_result r = {0};
	assert_int_equal(http_do("GET", url, NULL, 0, NULL, &r), 0);
	assert_int_equal(r.status, 200);
	char *key = tu_fmt("\n%s ", name);
	const char *p = strstr(r.body, key);
	if (!p)
		fail_msg("no sample '%s' in /metrics", name);
	long long v = atoll(p + strlen(key));
	free(key);
	http_result_release(&r);
	free(url);
	return v;
}

unsigned char *hello_actor_wasm(size_t *len_out)
{
	char *wat = hello_actor_wat();
	unsigned char *wasm = wat_compile(wat, len_out);
	free(wat);
	return wasm;
}

void server_put_hello_package(struct server_proc *sp, const char *name)
{
	size_t len;
	unsigned char *wasm = hello_actor_wasm(&len);
	server_put_package(sp, name, wasm, len);
	free(wasm);
}

void server_put_package(struct server_proc *sp, const char *name, const void *data, size_t len)
{
	char *p = tu_fmt("%s/%s", sp->roots, name);
	if (tu_write_file(p, data, len) != 0)
		fail_msg("cannot write the package '%s'", p);
	free(p);
}

json_t *server_call_json(struct server_proc *sp, const char *method, const char *path,
			 const char *body, long want)
{
	char *u = tu_fmt("%s%s", sp->base, path);
	struct http_result r;
	if (http_do(method, u, body, body ? strlen(body) : 0, NULL, &r) != 0)
		fail_msg("%s %s: the request failed", method, path);
	if (r.status != want)
		fail_msg("%s %s: expected %ld, got %ld: %s", method, path, want, r.status, r.body);
	json_t *j = json_loadb(r.body, r.len, 0, NULL);
	http_result_release(&r);
	free(u);
	return j;
}

void server_assert_replays(struct server_proc *sp, const char *id, long min_replayed)
{
	char *path = tu_fmt("/actors/%s/replay", id);
	json_t *r = server_call_json(sp, "POST", path, NULL, 200);
	char *dump = json_dumps(r, 0);
	if (!json_is_null(json_object_get(r, "diverged_at")))
		fail_msg("replay of %s diverged: %s", id, dump);
	assert_true(json_integer_value(json_object_get(r, "replayed")) >= min_replayed);
	free(dump);
	json_decref(r);
	free(path);
}

void server_copy_file(const char *from, const char *to)
{
	size_t len;
	char *data = tu_read_file(from, &len);
	if (!data)
		fail_msg("cannot read '%s': build the examples first (the 'examples' target "
			 "of ALL, which needs clang and wasm-ld)", from);
	assert_int_equal(tu_write_file(to, data, len), 0);
	free(data);
}

void server_install_example(struct server_proc *sp, const char *name)
{
	char *dir = tu_fmt("%s/%s", sp->roots, name);
	char *wasm = tu_fmt("%s.wasm", name);
	const char *files[] = {wasm, "manifest.json", "manifest.toml", NULL};
	mkdir(dir, 0755);
	for (int k = 0; files[k]; k++) {
		char *from = tu_fmt("%s/examples/%s/%s", tu_binary_dir(), name, files[k]);
		char *to = tu_fmt("%s/%s", dir, files[k]);
		if (k < 2 || access(from, F_OK) == 0)
			server_copy_file(from, to);
		free(from);
		free(to);
	}
	free(wasm);
	free(dir);
}

void server_put_example_package(struct server_proc *sp, const char *name)
{
	size_t len;
	char *from = tu_fmt("%s/examples/%s/%s.wasm", tu_binary_dir(), name, name);
	char *data = tu_read_file(from, &len);
	if (!data)
		fail_msg("cannot read '%s': build the examples first", from);
	char *to = tu_fmt("%s.wasm", name);
	server_put_package(sp, to, data, len);
	free(to);
	free(data);
	free(from);
}

void server_install_examples(struct server_proc *sp, const char *const *names)
{
	for (int i = 0; names[i]; i++)
		server_install_example(sp, names[i]);
}

unsigned char *server_compile_driver(const char *defines, size_t *len_out)
{
	return server_compile_actor("tests/actors/host_driver.c", defines, len_out);
}

unsigned char *server_compile_actor(const char *source, const char *defines, size_t *len_out)
{
	char *dir = tu_mkdtemp("theater-driver");
	char *out = tu_fmt("%s/driver.wasm", dir);
	char *cmd = tu_fmt("clang --target=wasm32 -O2 -fno-builtin -nostdlib -Wl,--no-entry "
			   "-Wl,--export-dynamic %s -I '%s/sdk/include' -o '%s' "
			   "'%s/%s'",
			   defines, tu_source_dir(), out, tu_source_dir(), source);
	if (system(cmd) != 0)
		fail_msg("'%s' failed (clang with the wasm32 target is needed)", cmd);
	unsigned char *bytes = (unsigned char *)tu_read_file(out, len_out);
	tu_rmtree(dir);
	free(dir);
	free(out);
	free(cmd);
	return bytes;
}

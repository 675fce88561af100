/* conformance.c - runs the toml-test suite (TOML v1.0.0 cases) against our
 * parser.
 *
 * Every case named in files-toml-1.0.0 is run: valid/X.toml must parse and
 * its tagged JSON must equal valid/X.json by value (integers by value, floats
 * by value with nan equal to nan, date-times by the instant they denote, local
 * ones field by field); invalid/X.toml must be refused, in-process with an
 * error of the form "<name>:<line>:<col>: ..." whose position matches the
 * toml_errpos result. With --tool PATH each case goes through the decoder
 * program instead (stdin -> stdout / exit status).
 * The data is found at $THEATER_TOML_TEST, else
 * $THEATER_SOURCE_DIR/../shared/toml-test. Prints failures and a closing
 * "toml-test: N passed, M failed"; exits 1 on any failure.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "src/toml/toml.h"
#include "src/util/buf.h"
#include "src/util/json.h"

#define FILE_MAX (8u << 20)

struct run {
	const char *dir;
	const char *tool; /* NULL: in-process */
	int passed, failed;
};

static char *read_file(const char *path, size_t *len_out)
{
	struct buf b;
	buf_init(&b, FILE_MAX);
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	char chunk[8192];
	size_t n;
	enum err_code rc = ERR_OK;
	while (!rc && (n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		rc = buf_append(&b, chunk, n);
	fclose(f);
	if (rc) {
		buf_release(&b);
		return NULL;
	}
	return buf_steal(&b, len_out);
}

/* ---- a small JSON reader ----
 * The expected files have object keys with NUL ("\u0000"), which jansson's
 * loader refuses, so the runner reads JSON itself into jansson values (keys
 * set with their length). Strings, arrays, objects, true/false/null and
 * numbers; nesting bounded. */

struct jr {
	const char *p, *end;
	int depth;
};

static json_t *jr_value(struct jr *j);

static void jr_ws(struct jr *j)
{
	while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r'))
		j->p++;
}

static int jr_hex4(struct jr *j, unsigned *out)
{
	*out = 0;
	for (int i = 0; i < 4; i++, j->p++) {
		if (j->p >= j->end)
			return -1;
		char c = *j->p;
		int h = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
			: c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
		if (h < 0)
			return -1;
		*out = *out * 16 + (unsigned)h;
	}
	return 0;
}

static void jr_put_utf8(struct buf *b, unsigned cp)
{
	char u[4];
	size_t n = 0;
	if (cp < 0x80) {
		u[n++] = (char)cp;
	} else if (cp < 0x800) {
		u[n++] = (char)(0xC0 | cp >> 6);
		u[n++] = (char)(0x80 | (cp & 0x3F));
	} else if (cp < 0x10000) {
		u[n++] = (char)(0xE0 | cp >> 12);
		u[n++] = (char)(0x80 | ((cp >> 6) & 0x3F));
		u[n++] = (char)(0x80 | (cp & 0x3F));
	} else {
		u[n++] = (char)(0xF0 | cp >> 18);
		u[n++] = (char)(0x80 | ((cp >> 12) & 0x3F));
		u[n++] = (char)(0x80 | ((cp >> 6) & 0x3F));
		u[n++] = (char)(0x80 | (cp & 0x3F));
	}
	buf_append(b, u, n);
}

static int jr_escape(struct jr *j, struct buf *b)
{
	static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
	if (j->p >= j->end)
		return -1;
	const char *k = strchr(from, *j->p);
	if (k && *j->p) {
		buf_append(b, &to[k - from], 1);
		j->p++;
		return 0;
	}
	if (*j->p++ != 'u')
		return -1;
	unsigned cp, lo;
	if (jr_hex4(j, &cp) < 0)
		return -1;
	if (cp >= 0xD800 && cp < 0xDC00) {
		if (j->end - j->p < 2 || j->p[0] != '\\' || j->p[1] != 'u')
			return -1;
		j->p += 2;
		if (jr_hex4(j, &lo) < 0 || lo < 0xDC00 || lo > 0xDFFF)
			return -1;
		cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
	}
	jr_put_utf8(b, cp);
	return 0;
}

/* A string into b (reset first); j->p at the opening quote. */
static int jr_string(struct jr *j, struct buf *b)
{
	buf_reset(b);
	j->p++;
	while (j->p < j->end && *j->p != '"') {
		if (*j->p == '\\') {
			j->p++;
			if (jr_escape(j, b) < 0)
				return -1;
		} else {
			buf_append(b, j->p++, 1);
		}
	}
	if (j->p >= j->end)
		return -1;
	j->p++;
	return 0;
}

static json_t *jr_object(struct jr *j)
{
	json_t *o = json_object();
	struct buf key;
	buf_init(&key, 0);
	j->p++;
	jr_ws(j);
	if (j->p < j->end && *j->p == '}') {
		j->p++;
		return o;
	}
	for (;;) {
		jr_ws(j);
		if (j->p >= j->end || *j->p != '"' || jr_string(j, &key) < 0)
			break;
		jr_ws(j);
		if (j->p >= j->end || *j->p++ != ':')
			break;
		json_t *v = jr_value(j);
		if (!v || json_object_setn_new_nocheck(o, key.data ? key.data : "", key.len, v))
			break;
		jr_ws(j);
		if (j->p < j->end && *j->p == ',') {
			j->p++;
			continue;
		}
		if (j->p < j->end && *j->p == '}') {
			j->p++;
			buf_release(&key);
			return o;
		}
		break;
	}
	buf_release(&key);
	json_decref(o);
	return NULL;
}

static json_t *jr_array(struct jr *j)
{
	json_t *a = json_array();
	j->p++;
	jr_ws(j);
	if (j->p < j->end && *j->p == ']') {
		j->p++;
		return a;
	}
	for (;;) {
		json_t *v = jr_value(j);
		if (!v || json_array_append_new(a, v))
			break;
		jr_ws(j);
		if (j->p < j->end && *j->p == ',') {
			j->p++;
			continue;
		}
		if (j->p < j->end && *j->p == ']') {
			j->p++;
			return a;
		}
		break;
	}
	json_decref(a);
	return NULL;
}

static json_t *jr_word(struct jr *j)
{
	static const char *const words[] = {"true", "false", "null"};
	for (int i = 0; i < 3; i++) {
		size_t n = strlen(words[i]);
		if ((size_t)(j->end - j->p) >= n && memcmp(j->p, words[i], n) == 0) {
			j->p += n;
			return i == 0 ? json_true() : i == 1 ? json_false() : json_null();
		}
	}
	char num[64];
	size_t n = 0;
	while (j->p < j->end && n < sizeof(num) - 1 && strchr("+-.0123456789eE", *j->p) && *j->p)
		num[n++] = *j->p++;
	num[n] = '\0';
	if (!n)
		return NULL;
	char *e;
	double d = strtod(num, &e);
	if (*e)
		return NULL;
	return strpbrk(num, ".eE") ? json_real(d) : json_integer(strtoll(num, NULL, 10));
}

static json_t *jr_value(struct jr *j)
{
	json_t *v = NULL;
	jr_ws(j);
	if (j->p >= j->end || ++j->depth > 200)
		return NULL;
	if (*j->p == '{') {
		v = jr_object(j);
	} else if (*j->p == '[') {
		v = jr_array(j);
	} else if (*j->p == '"') {
		struct buf s;
		buf_init(&s, 0);
		if (jr_string(j, &s) == 0)
			v = json_stringn_nocheck(s.data ? s.data : "", s.len);
		buf_release(&s);
	} else {
		v = jr_word(j);
	}
	j->depth--;
	return v;
}

static json_t *load_json(const char *text, size_t len)
{
	struct jr j = {text, text + len, 0};
	if (!text)
		return NULL;
	json_t *v = jr_value(&j);
	jr_ws(&j);
	if (v && j.p != j.end) {
		json_decref(v);
		v = NULL;
	}
	return v;
}

/* dir/<first namelen bytes of name><ext>; -1 when it does not fit. */
static int path_join(char *out, size_t size, const char *dir, const char *name, size_t namelen,
		     const char *ext)
{
	int n = snprintf(out, size, "%s/%.*s%s", dir, (int)namelen, name, ext);
	return n < 0 || (size_t)n >= size ? -1 : 0;
}

/* ---- comparison by value ---- */

struct dt {
	int kind; /* 1 date, 2 time, 3 date+time, |4 offset */
	long long y, mo, d, h, mi, s, ns, off;
};

static long long days_from_civil(long long y, long long m, long long d)
{
	y -= m <= 2;
	long long era = (y >= 0 ? y : y - 399) / 400;
	long long yoe = y - era * 400;
	long long doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	long long doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static const char *parse_time(const char *t, struct dt *x)
{
	int n = 0;
	if (sscanf(t, "%2lld:%2lld:%2lld%n", &x->h, &x->mi, &x->s, &n) != 3)
		return NULL;
	t += n;
	x->kind |= 2;
	if (*t == '.') {
		int digits = 0;
		for (t++; *t >= '0' && *t <= '9'; t++, digits++)
			if (digits < 9)
				x->ns = x->ns * 10 + (*t - '0');
		for (; digits < 9; digits++)
			x->ns *= 10;
	}
	if (*t == 'Z' || *t == 'z') {
		x->kind |= 4;
		t++;
	} else if (*t == '+' || *t == '-') {
		long long oh, om;
		if (sscanf(t + 1, "%2lld:%2lld%n", &oh, &om, &n) != 2)
			return NULL;
		x->off = (*t == '-' ? -1 : 1) * (oh * 60 + om);
		x->kind |= 4;
		t += 1 + n;
	}
	return t;
}

static int parse_dt(const char *t, struct dt *x)
{
	memset(x, 0, sizeof(*x));
	int n = 0;
	if (strlen(t) >= 10 && t[4] == '-') {
		if (sscanf(t, "%4lld-%2lld-%2lld%n", &x->y, &x->mo, &x->d, &n) != 3)
			return -1;
		x->kind = 1;
		t += n;
		if (*t == 'T' || *t == 't' || *t == ' ')
			t++;
		else
			return *t ? -1 : 0;
	}
	t = parse_time(t, x);
	return t && !*t ? 0 : -1;
}

static int dt_equal(const char *a, const char *b)
{
	struct dt x, y;
	if (parse_dt(a, &x) < 0 || parse_dt(b, &y) < 0 || x.kind != y.kind)
		return 0;
	if (x.kind & 4) {
		long long ix = (days_from_civil(x.y, x.mo, x.d) * 86400 + x.h * 3600 + x.mi * 60 +
				x.s) - x.off * 60;
		long long iy = (days_from_civil(y.y, y.mo, y.d) * 86400 + y.h * 3600 + y.mi * 60 +
				y.s) - y.off * 60;
		return ix == iy && x.ns == y.ns;
	}
	return x.y == y.y && x.mo == y.mo && x.d == y.d && x.h == y.h && x.mi == y.mi &&
	       x.s == y.s && x.ns == y.ns;
}

static int scalar_equal(const char *type, const char *a, const char *b)
{
	if (strcmp(type, "integer") == 0) {
		errno = 0;
		long long x = strtoll(a, NULL, 10), y = strtoll(b, NULL, 10);
		return errno == 0 && x == y;
	}
	if (strcmp(type, "float") == 0) {
		double x = strtod(a, NULL), y = strtod(b, NULL);
		return (isnan(x) && isnan(y)) || x == y;
	}
	if (strcmp(type, "string") == 0 || strcmp(type, "bool") == 0)
		return strcmp(a, b) == 0; /* strings: compared with lengths by the caller */
	return dt_equal(a, b);
}

/* {"type": T, "value": "..."} */
static int is_tagged(const json_t *v)
{
	return json_is_object(v) && json_object_size(v) == 2 &&
	       json_is_string(json_object_get(v, "type")) &&
	       json_is_string(json_object_get(v, "value"));
}

static int tagged_equal(const json_t *a, const json_t *b)
{
	const char *ta = json_string_value(json_object_get(a, "type"));
	const char *tb = json_string_value(json_object_get(b, "type"));
	const json_t *va = json_object_get(a, "value"), *vb = json_object_get(b, "value");
	if (strcmp(ta, tb) != 0)
		return 0;
	if (strcmp(ta, "string") == 0)
		return json_string_length(va) == json_string_length(vb) &&
		       memcmp(json_string_value(va), json_string_value(vb),
			      json_string_length(va)) == 0;
	return scalar_equal(ta, json_string_value(va), json_string_value(vb));
}

static int value_equal(const json_t *a, const json_t *b)
{
	if (is_tagged(a) && is_tagged(b))
		return tagged_equal(a, b);
	if (json_is_array(a) && json_is_array(b)) {
		if (json_array_size(a) != json_array_size(b))
			return 0;
		for (size_t i = 0; i < json_array_size(a); i++)
			if (!value_equal(json_array_get(a, i), json_array_get(b, i)))
				return 0;
		return 1;
	}
	if (json_is_object(a) && json_is_object(b)) {
		if (json_object_size(a) != json_object_size(b))
			return 0;
		const char *key;
		size_t klen;
		json_t *va;
		json_object_keylen_foreach((json_t *)a, key, klen, va) {
			json_t *vb = json_object_getn(b, key, klen);
			if (!vb || !value_equal(va, vb))
				return 0;
		}
		return 1;
	}
	return 0;
}

/* ---- one case ---- */

/* Runs the tool with stdin from path; *out gets stdout. Returns the exit
 * status, or -1 when it could not run or did not exit normally. */
static int run_tool(const char *tool, const char *path, struct buf *out)
{
	int fd = open(path, O_RDONLY), pipefd[2];
	if (fd < 0 || pipe(pipefd) < 0) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	pid_t pid = fork();
	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY);
		dup2(fd, 0);
		dup2(pipefd[1], 1);
		if (null >= 0)
			dup2(null, 2);
		close(pipefd[0]);
		execl(tool, tool, "--max-size", "8388608", (char *)NULL);
		_exit(127);
	}
	close(fd);
	close(pipefd[1]);
	char chunk[8192];
	ssize_t n;
	while ((n = read(pipefd[0], chunk, sizeof(chunk))) > 0)
		if (buf_append(out, chunk, (size_t)n) != ERR_OK)
			break;
	close(pipefd[0]);
	int status;
	if (pid < 0 || waitpid(pid, &status, 0) < 0 || !WIFEXITED(status))
		return -1;
	return WEXITSTATUS(status);
}

/* Decodes path to tagged JSON, in-process or with the tool. On failure
 * returns NULL with the reason in why. */
static json_t *decode(struct run *r, const char *name, const char *path, char *why,
		      size_t wsize)
{
	json_t *got = NULL;
	if (r->tool) {
		struct buf out;
		buf_init(&out, FILE_MAX);
		int st = run_tool(r->tool, path, &out);
		if (st != 0)
			snprintf(why, wsize, "tool exited with %d", st);
		else if (!(got = load_json(out.data, out.len)))
			snprintf(why, wsize, "tool printed no valid json");
		buf_release(&out);
		return got;
	}
	size_t len;
	char *text = read_file(path, &len);
	struct toml_options opt = {.name = name};
	struct toml_value *doc = NULL;
	struct err err = {0};
	if (!text)
		snprintf(why, wsize, "cannot read");
	else if (toml_parse(text, len, &opt, &doc, NULL, &err) != ERR_OK)
		snprintf(why, wsize, "refused: %s", err.msg);
	else if (!(got = toml_to_tagged_json(doc)))
		snprintf(why, wsize, "toml_to_tagged_json failed");
	toml_free(doc);
	free(text);
	return got;
}

static int check_valid(struct run *r, const char *name, char *why, size_t wsize)
{
	char path[4096], jpath[4096];
	size_t jlen;
	char *jtext = NULL;
	if (path_join(path, sizeof(path), r->dir, name, strlen(name), "") == 0 &&
	    path_join(jpath, sizeof(jpath), r->dir, name, strlen(name) - 5, ".json") == 0)
		jtext = read_file(jpath, &jlen);
	json_t *want = jtext ? load_json(jtext, jlen) : NULL;
	free(jtext);
	if (!want) {
		snprintf(why, wsize, "cannot read expected json");
		return 0;
	}
	json_t *got = decode(r, name, path, why, wsize);
	int ok = got && value_equal(got, want);
	if (got && !ok) {
		char *g = json_compact(got);
		snprintf(why, wsize, "wrong value: got %.300s", g ? g : "?");
		free(g);
	}
	json_decref(got);
	json_decref(want);
	return ok;
}

/* The message must start with "<name>:<line>:<col>: " matching pos. */
static int error_positioned(const char *name, const struct err *err,
			    const struct toml_errpos *pos)
{
	char prefix[4200];
	if (pos->line == 0 || pos->col == 0)
		return 0;
	snprintf(prefix, sizeof(prefix), "%s:%u:%u: ", name, pos->line, pos->col);
	return strncmp(err->msg, prefix, strlen(prefix)) == 0 && strlen(err->msg) > strlen(prefix);
}

static int check_invalid(struct run *r, const char *name, char *why, size_t wsize)
{
	char path[4096];
	if (path_join(path, sizeof(path), r->dir, name, strlen(name), "") < 0) {
		snprintf(why, wsize, "path too long");
		return 0;
	}
	if (r->tool) {
		struct buf out;
		buf_init(&out, FILE_MAX);
		int st = run_tool(r->tool, path, &out);
		buf_release(&out);
		snprintf(why, wsize, "tool exited with %d, want 1", st);
		return st == 1;
	}
	size_t len;
	char *text = read_file(path, &len);
	struct toml_options opt = {.name = name};
	struct toml_value *doc = NULL;
	struct toml_errpos pos;
	struct err err = {0};
	int ok = 0;
	if (!text)
		snprintf(why, wsize, "cannot read");
	else if (toml_parse(text, len, &opt, &doc, &pos, &err) == ERR_OK)
		snprintf(why, wsize, "accepted");
	else if (!(ok = error_positioned(name, &err, &pos)))
		snprintf(why, wsize, "error without a matching position: %s", err.msg);
	toml_free(doc);
	free(text);
	return ok;
}

static void run_case(struct run *r, const char *name)
{
	char why[600] = "";
	int ok;
	if (strncmp(name, "valid/", 6) == 0)
		ok = check_valid(r, name, why, sizeof(why));
	else
		ok = check_invalid(r, name, why, sizeof(why));
	if (ok) {
		r->passed++;
	} else {
		r->failed++;
		printf("FAIL %s: %s\n", name, why);
	}
}

static const char *data_dir(char *buf, size_t size)
{
	const char *env = getenv("THEATER_TOML_TEST");
	if (env && *env)
		return env;
	const char *src = getenv("THEATER_SOURCE_DIR");
	if (path_join(buf, size, src && *src ? src : ".", "../shared/toml-test", 19, "") < 0)
		return ".";
	return buf;
}

int main(int argc, char **argv)
{
	char dirbuf[4096], list[4200];
	struct run r = {.dir = data_dir(dirbuf, sizeof(dirbuf))};
	if (argc == 3 && strcmp(argv[1], "--tool") == 0)
		r.tool = argv[2];
	else if (argc != 1)
		return fprintf(stderr, "usage: toml-conformance [--tool DECODER]\n"), 2;
	FILE *f = NULL;
	if (path_join(list, sizeof(list), r.dir, "files-toml-1.0.0", 16, "") == 0)
		f = fopen(list, "r");
	if (!f) {
		printf("toml-test: cannot open '%s' (set THEATER_TOML_TEST)\n", list);
		return 1;
	}
	char line[1024];
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\r\n")] = '\0';
		size_t n = strlen(line);
		if (n > 5 && strcmp(line + n - 5, ".toml") == 0)
			run_case(&r, line);
	}
	fclose(f);
	printf("%s: %d passed, %d failed\n", r.tool ? "toml-test-decoder" : "toml-test", r.passed,
	       r.failed);
	return r.failed || r.passed == 0 ? 1 : 0;
}

/* fetch.c - bounded HTTP(S) over libcurl's easy API; see fetch.h.
 *
 * Why these choices:
 * - One easy handle per request: no shared state, so any thread may fetch.
 * - The byte cap lives in the write callback (a struct buf with a limit), so
 *   an endless body stops at cap+1 bytes; CURLOPT_MAXFILESIZE refuses a
 *   too-large Content-Length before the body starts.
 * - Protocols are allow-listed for the request and for redirects, and the
 *   scheme is also checked by hand so the error names the reference.
 * - Only the final response's headers are kept: the header buffer restarts
 *   at every status line (redirect hops and 100-continue).
 * - An address check (untrusted requests) is an OPENSOCKETFUNCTION: it sees
 *   the address after DNS, right before connect, for every connection, so DNS
 *   rebinding and redirects cannot slip past it; proxies are then disabled so
 *   that the address checked is the one the request goes to.
 */
#include "src/fetch.h"

#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <curl/curl.h>

#include "src/util/buf.h"
#include "src/util/histo.h"
#include "src/util/log.h"

#define FETCH_MAX_HEADER_BYTES (64 * 1024)

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_rc = CURLE_FAILED_INIT;

static void global_init(void)
{
	global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

struct xfer {
	struct buf body;
	struct buf hdrs;
	int body_full;   /* the body passed the cap */
	int hdrs_full;
	int nomem;
	fetch_addr_check_fn check;
	void *check_user;
	int (*on_data)(void *user, const uint8_t *data, size_t len);
	void *on_data_user;
	int refused;     /* the check refused an address */
	char why[160];   /* "address 'x' refused: why" of the last refusal */
	char shown[200]; /* the URL for progress lines: no query, no user info */
	int64_t t0_us, last_log_us;
	curl_off_t got, total;
};

int fetch_url_allowed(const char *url)
{
	return url && (strncasecmp(url, "http://", 7) == 0 || strncasecmp(url, "https://", 8) == 0);
}

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *user)
{
	struct xfer *x = user;
	size_t n = size * nmemb;
	enum err_code rc = buf_append(&x->body, ptr, n);
	if (rc == ERR_TOO_LARGE)
		x->body_full = 1;
	else if (rc)
		x->nomem = 1;
	if (!rc && x->on_data && n)
		x->on_data(x->on_data_user, (const uint8_t *)ptr, n);
	return rc ? 0 : n;   /* 0 aborts the transfer */
}

/* Progress of a long fetch, at most one line per FETCH_PROGRESS_S. */
static int on_progress(void *user, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
		       curl_off_t ulnow)
{
	(void)ultotal;
	(void)ulnow;
	struct xfer *x = user;
	int64_t now = histo_now_us();
	x->got = dlnow;
	x->total = dltotal;
	if (now - x->last_log_us < FETCH_PROGRESS_S * 1000000LL)
		return 0;
	x->last_log_us = now;
	double s = (double)(now - x->t0_us) / 1e6, mib = (double)dlnow / 1048576.0;
	if (dltotal > 0)
		log_info("fetch", "'%s': %.1f MiB of %.1f MiB (%d%%) after %.0f s, %.1f MiB/s",
			 x->shown, mib, (double)dltotal / 1048576.0, (int)(dlnow * 100 / dltotal), s,
			 mib / s);
	else
		log_info("fetch", "'%s': %.1f MiB after %.0f s, %.1f MiB/s", x->shown, mib, s,
			 mib / s);
	return 0;
}

/* url without "?query", "#fragment" and "user:password@". */
static void shown_url(const char *url, char *out, size_t cap)
{
	const char *scheme_end = strstr(url, "://");
	const char *host = scheme_end ? scheme_end + 3 : url;
	size_t host_len = strcspn(host, "/?#");
	const char *at = memchr(host, '@', host_len);
	size_t scheme_len = (size_t)(host - url);
	if (at)
		host = at + 1;
	snprintf(out, cap, "%.*s%.*s", (int)scheme_len, url, (int)strcspn(host, "?#"), host);
}

static size_t on_header(char *ptr, size_t size, size_t nmemb, void *user)
{
	struct xfer *x = user;
	size_t n = size * nmemb;
	if (n >= 5 && memcmp(ptr, "HTTP/", 5) == 0)
		buf_reset(&x->hdrs);
	enum err_code rc = buf_append(&x->hdrs, ptr, n);
	if (rc == ERR_TOO_LARGE)
		x->hdrs_full = 1;
	else if (rc)
		x->nomem = 1;
	return rc ? 0 : n;
}

static curl_socket_t on_open_socket(void *user, curlsocktype purpose, struct curl_sockaddr *a)
{
	struct xfer *x = user;
	char why[96] = "";
	if (purpose != CURLSOCKTYPE_IPCXN ||
	    x->check(x->check_user, &a->addr, a->addrlen, why, sizeof(why)) != 0) {
		x->refused = 1;
		snprintf(x->why, sizeof(x->why), "%s", why[0] ? why : "address refused");
		return CURL_SOCKET_BAD;
	}
	return socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
}

/* The socket on_open_socket made is closed here too, not inside libcurl: TSan
 * ignores libcurl's own calls (tests/tsan.supp), so a close there went unseen and
 * the next thread that got the same descriptor number looked like a race with our
 * socket(). Uses no user data: a kept connection may outlive its transfer. */
static int on_close_socket(void *user, curl_socket_t fd)
{
	(void)user;
	return close(fd);
}

static void limits_fill(const struct fetch_limits *in, struct fetch_limits *out)
{
	static const struct fetch_limits none;
	if (!in)
		in = &none;
	out->max_bytes = in->max_bytes ? in->max_bytes : FETCH_DEFAULT_MAX_BYTES;
	out->connect_timeout_ms =
		in->connect_timeout_ms > 0 ? in->connect_timeout_ms : FETCH_DEFAULT_CONNECT_TIMEOUT_MS;
	out->total_timeout_ms =
		in->total_timeout_ms > 0 ? in->total_timeout_ms : FETCH_DEFAULT_TOTAL_TIMEOUT_MS;
	out->max_redirects = in->max_redirects < 0 ? 0
			   : in->max_redirects ? in->max_redirects : FETCH_DEFAULT_MAX_REDIRECTS;
}

static int method_valid(const char *m)
{
	size_t n = strlen(m);
	if (n == 0 || n > 16)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!isupper((unsigned char)m[i]))
			return 0;
	return 1;
}

static enum err_code check_request(const struct fetch_request *req, struct err *err)
{
	if (!req->url || !fetch_url_allowed(req->url))
		return err_set(err, ERR_BAD_REFERENCE, "fetch '%s': only http and https urls are allowed",
			       req->url ? req->url : "");
	if (strlen(req->url) > FETCH_MAX_URL)
		return err_set(err, ERR_BAD_REFERENCE, "fetch: url longer than %d bytes", FETCH_MAX_URL);
	if (req->method && !method_valid(req->method))
		return err_set(err, ERR_INVALID, "fetch '%s': invalid method '%s'", req->url,
			       req->method);
	for (size_t i = 0; i < req->nheaders; i++)
		if (!req->headers[i] || strpbrk(req->headers[i], "\r\n") || !strchr(req->headers[i], ':'))
			return err_set(err, ERR_INVALID, "fetch '%s': invalid header line %zu",
				       req->url, i);
	return ERR_OK;
}

static enum err_code build_headers(const struct fetch_request *req, struct curl_slist **out)
{
	struct curl_slist *list = NULL;
	/* No "Expect: 100-continue" round trip for bodies. */
	const char *expect = req->body ? "Expect:" : NULL;
	for (size_t i = 0; i <= req->nheaders; i++) {
		const char *line = i < req->nheaders ? req->headers[i] : expect;
		if (!line)
			continue;
		struct curl_slist *n = curl_slist_append(list, line);
		if (!n) {
			curl_slist_free_all(list);
			return ERR_NOMEM;
		}
		list = n;
	}
	*out = list;
	return ERR_OK;
}

static void set_protocols(CURL *c)
{
#if LIBCURL_VERSION_NUM >= 0x075500
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
#else
	curl_easy_setopt(c, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
	curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
}

static void set_method(CURL *c, const struct fetch_request *req)
{
	const char *m = req->method ? req->method : "GET";
	if (req->body) {
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, req->body);
		if (strcmp(m, "POST") != 0)
			curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, m);
	} else if (strcmp(m, "HEAD") == 0) {
		curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
	} else if (strcmp(m, "GET") == 0) {
		curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
	} else {
		curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, m);
	}
}

static void setup_handle(CURL *c, const struct fetch_request *req, const struct fetch_limits *lim,
			 struct xfer *x, struct curl_slist *hdrs, char *errbuf)
{
	curl_easy_setopt(c, CURLOPT_URL, req->url);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "theater/" THEATER_VERSION);
	set_protocols(c);
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, req->follow_redirects ? 1L : 0L);
	curl_easy_setopt(c, CURLOPT_MAXREDIRS, lim->max_redirects);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, lim->connect_timeout_ms);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, lim->total_timeout_ms);
	curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)lim->max_bytes);
	curl_easy_setopt(c, CURLOPT_FAILONERROR, req->fail_on_status ? 1L : 0L);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, x);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, x);
	if (hdrs)
		curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
	if (req->addr_check) {
		curl_easy_setopt(c, CURLOPT_OPENSOCKETFUNCTION, on_open_socket);
		curl_easy_setopt(c, CURLOPT_OPENSOCKETDATA, x);
		curl_easy_setopt(c, CURLOPT_CLOSESOCKETFUNCTION, on_close_socket);
		curl_easy_setopt(c, CURLOPT_CLOSESOCKETDATA, NULL);
		curl_easy_setopt(c, CURLOPT_PROXY, "");
	}
	set_method(c, req);
	if (req->log_progress) {
		shown_url(req->url, x->shown, sizeof(x->shown));
		x->t0_us = x->last_log_us = histo_now_us();
		curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
		curl_easy_setopt(c, CURLOPT_XFERINFODATA, x);
		curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
	}
}

/* Maps a finished transfer to our vocabulary. */
static enum err_code map_result(CURLcode cc, const struct xfer *x, long status,
				const char *url, const char *errbuf, size_t max_bytes,
				struct err *err)
{
	if (x->nomem || cc == CURLE_OUT_OF_MEMORY)
		return err_set(err, ERR_NOMEM, "fetch '%s': out of memory", url);
	if (x->body_full || cc == CURLE_FILESIZE_EXCEEDED)
		return err_set(err, ERR_TOO_LARGE, "fetch '%s': body larger than %zu bytes", url,
			       max_bytes);
	if (x->hdrs_full)
		return err_set(err, ERR_TOO_LARGE, "fetch '%s': headers larger than %d bytes", url,
			       FETCH_MAX_HEADER_BYTES);
	if (x->refused && cc != CURLE_OK)
		return err_set(err, ERR_FORBIDDEN_PATH, "fetch '%s': %s", url, x->why);
	const char *why = errbuf[0] ? errbuf : curl_easy_strerror(cc);
	switch (cc) {
	case CURLE_OK:
		return ERR_OK;
	case CURLE_HTTP_RETURNED_ERROR:
		return err_set(err, ERR_FETCH_STATUS, "fetch '%s': http status %ld", url, status);
	case CURLE_TOO_MANY_REDIRECTS:
		return err_set(err, ERR_REDIRECTS, "fetch '%s': too many redirects", url);
	case CURLE_OPERATION_TIMEDOUT:
		return err_set(err, ERR_TIMEOUT, "fetch '%s': timed out: %s", url, why);
	case CURLE_URL_MALFORMAT:
		return err_set(err, ERR_BAD_REFERENCE, "fetch '%s': malformed url", url);
	case CURLE_UNSUPPORTED_PROTOCOL:
		return err_set(err, ERR_FETCH, "fetch '%s': protocol not allowed: %s", url, why);
	default:
		return err_set(err, ERR_FETCH, "fetch '%s': %s", url, why);
	}
}

static enum err_code take_response(CURL *c, struct xfer *x, struct fetch_response *resp)
{
	char *eff = NULL;
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &resp->status);
	curl_easy_getinfo(c, CURLINFO_EFFECTIVE_URL, &eff);
	resp->effective_url = strdup(eff ? eff : "");
	resp->body = (uint8_t *)buf_steal(&x->body, &resp->body_len);
	resp->headers = buf_steal(&x->hdrs, &resp->headers_len);
	if (!resp->effective_url || !resp->body || !resp->headers) {
		fetch_response_release(resp);
		return ERR_NOMEM;
	}
	return ERR_OK;
}

/* One transfer: its easy handle and what its callbacks fill. */
struct fetch_job {
	struct fetch_job *next, *prev;   /* the fetcher's lists */
	CURL *c;
	struct xfer x;
	struct curl_slist *hdrs;
	struct fetch_limits lim;
	char *url;
	int fail_on_status, log_progress;
	char errbuf[CURL_ERROR_SIZE];
	fetch_done_fn done;
	void *user;
};

static void job_free(struct fetch_job *j)
{
	if (!j)
		return;
	if (j->x.on_data)
		j->x.on_data(j->x.on_data_user, NULL, 0);
	curl_easy_cleanup(j->c);
	curl_slist_free_all(j->hdrs);
	buf_release(&j->x.body);
	buf_release(&j->x.hdrs);
	free(j->url);
	free(j);
}

/* A handle ready to perform req within lim_in; NULL with err set. */
static struct fetch_job *job_new(const struct fetch_request *req,
				 const struct fetch_limits *lim_in, int async, struct err *err)
{
	struct fetch_job *j = calloc(1, sizeof(*j));
	if (!j) {
		err_set(err, ERR_NOMEM, "fetch: out of memory");
		return NULL;
	}
	limits_fill(lim_in, &j->lim);
	buf_init(&j->x.body, j->lim.max_bytes);
	buf_init(&j->x.hdrs, FETCH_MAX_HEADER_BYTES);
	j->x.check = req->addr_check;
	j->x.check_user = req->addr_check_user;
	j->fail_on_status = req->fail_on_status;
	j->log_progress = req->log_progress;
	if (check_request(req, err)) {
		job_free(j);
		return NULL;
	}
	pthread_once(&global_once, global_init);
	if (global_rc != CURLE_OK) {
		err_set(err, ERR_INTERNAL, "fetch: curl_global_init failed");
		job_free(j);
		return NULL;
	}
	if (!(j->url = strdup(req->url)) || build_headers(req, &j->hdrs) ||
	    !(j->c = curl_easy_init())) {
		err_set(err, ERR_NOMEM, "fetch '%s': out of memory", req->url);
		job_free(j);
		return NULL;
	}
	setup_handle(j->c, req, &j->lim, &j->x, j->hdrs, j->errbuf);
	/* an asynchronous transfer outlives the caller's buffer: its body is copied */
	if (async && req->body)
		curl_easy_setopt(j->c, CURLOPT_COPYPOSTFIELDS, (const char *)req->body);
	j->x.on_data = req->on_data;      /* from here on, job_free tells it the end */
	j->x.on_data_user = req->on_data_user;
	return j;
}

/* The outcome of a transfer that ended with cc. */
static enum err_code job_end(struct fetch_job *j, CURLcode cc, struct fetch_response *resp_out,
			     struct err *err)
{
	struct xfer *x = &j->x;
	enum err_code rc;
	memset(resp_out, 0, sizeof(*resp_out));
	if (j->log_progress && x->last_log_us != x->t0_us)   /* it logged progress: say how it ended */
		log_info("fetch", "'%s': %s after %.1f s (%.1f MiB)", x->shown,
			 cc == CURLE_OK ? "done" : "failed",
			 (double)(histo_now_us() - x->t0_us) / 1e6, (double)x->got / 1048576.0);
	long status = 0;
	curl_easy_getinfo(j->c, CURLINFO_RESPONSE_CODE, &status);
	if ((rc = map_result(cc, x, status, j->url, j->errbuf, j->lim.max_bytes, err)))
		return rc;
	if (j->fail_on_status && (status < 200 || status > 299))
		return err_set(err, ERR_FETCH_STATUS, "fetch '%s': http status %ld", j->url, status);
	if ((rc = take_response(j->c, x, resp_out)))
		err_set(err, rc, "fetch '%s': out of memory", j->url);
	return rc;
}

enum err_code fetch_request(const struct fetch_request *req, const struct fetch_limits *lim_in,
			    struct fetch_response *resp_out, struct err *err)
{
	memset(resp_out, 0, sizeof(*resp_out));
	struct fetch_job *j = job_new(req, lim_in, 0, err);
	if (!j)
		return err->code;
	enum err_code rc = job_end(j, curl_easy_perform(j->c), resp_out, err);
	job_free(j);
	return rc;
}

/* ---- the fetcher: many transfers on one thread (curl multi) ---- */

struct fetcher {
	pthread_t thread;
	CURLM *multi;
	pthread_mutex_t lock;
	struct fetch_job *queued;        /* under lock: added by fetch_start */
	int stopping;                    /* under lock */
	struct fetch_job *active;        /* the thread's: in the multi handle */
	unsigned nactive;
};

static void active_remove(struct fetcher *f, struct fetch_job *j)
{
	if (j->prev)
		j->prev->next = j->next;
	else
		f->active = j->next;
	if (j->next)
		j->next->prev = j->prev;
	f->nactive--;
}

/* Ends j: its callback gets the outcome (and owns the response), j is freed. */
static void job_complete(struct fetch_job *j, CURLcode cc, enum err_code forced)
{
	struct fetch_response resp;
	struct err e = {0};
	enum err_code rc;
	if (forced) {
		memset(&resp, 0, sizeof(resp));
		rc = err_set(&e, forced, "fetch '%s': the server is stopping", j->url);
	} else {
		rc = job_end(j, cc, &resp, &e);
	}
	j->done(j->user, rc, rc ? &e : NULL, &resp);
	job_free(j);
}

static void *fetcher_main(void *arg)
{
	pthread_setname_np(pthread_self(), "fetcher");
	struct fetcher *f = arg;
	for (;;) {
		pthread_mutex_lock(&f->lock);
		struct fetch_job *q = f->queued;
		f->queued = NULL;
		int stop = f->stopping;
		pthread_mutex_unlock(&f->lock);
		while (q) {
			struct fetch_job *j = q;
			q = q->next;
			if (stop) {
				job_complete(j, CURLE_OK, ERR_UNAVAILABLE);
				continue;
			}
			curl_easy_setopt(j->c, CURLOPT_PRIVATE, j);
			if (curl_multi_add_handle(f->multi, j->c) != CURLM_OK) {
				job_complete(j, CURLE_OUT_OF_MEMORY, 0);
				continue;
			}
			j->prev = NULL;
			j->next = f->active;
			if (f->active)
				f->active->prev = j;
			f->active = j;
			f->nactive++;
		}
		if (stop)
			break;
		int running = 0, left = 0;
		curl_multi_perform(f->multi, &running);
		CURLMsg *msg;
		while ((msg = curl_multi_info_read(f->multi, &left))) {
			if (msg->msg != CURLMSG_DONE)
				continue;
			struct fetch_job *j = NULL;
			CURLcode cc = msg->data.result;
			curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&j);
			curl_multi_remove_handle(f->multi, msg->easy_handle);
			active_remove(f, j);
			job_complete(j, cc, 0);
		}
		curl_multi_poll(f->multi, NULL, 0, 1000, NULL);
	}
	while (f->active) {            /* stopping: the rest end now */
		struct fetch_job *j = f->active;
		curl_multi_remove_handle(f->multi, j->c);
		active_remove(f, j);
		job_complete(j, CURLE_OK, ERR_UNAVAILABLE);
	}
	return NULL;
}

enum err_code fetcher_new(struct fetcher **out, struct err *err)
{
	pthread_once(&global_once, global_init);
	struct fetcher *f = calloc(1, sizeof(*f));
	if (!f || global_rc != CURLE_OK || !(f->multi = curl_multi_init())) {
		free(f);
		return err_set(err, ERR_NOMEM, "fetch: cannot start the fetcher");
	}
	pthread_mutex_init(&f->lock, NULL);
	if (pthread_create(&f->thread, NULL, fetcher_main, f) != 0) {
		curl_multi_cleanup(f->multi);
		pthread_mutex_destroy(&f->lock);
		free(f);
		return err_set(err, ERR_NOMEM, "fetch: cannot start the fetcher thread");
	}
	*out = f;
	return ERR_OK;
}

void fetcher_free(struct fetcher *f)
{
	if (!f)
		return;
	pthread_mutex_lock(&f->lock);
	f->stopping = 1;
	pthread_mutex_unlock(&f->lock);
	curl_multi_wakeup(f->multi);
	pthread_join(f->thread, NULL);
	curl_multi_cleanup(f->multi);
	pthread_mutex_destroy(&f->lock);
	free(f);
}

enum err_code fetch_start(struct fetcher *f, const struct fetch_request *req,
			  const struct fetch_limits *lim, fetch_done_fn done, void *user,
			  struct err *err)
{
	struct fetch_job *j = job_new(req, lim, 1, err);
	if (!j)
		return err->code;
	j->done = done;
	j->user = user;
	pthread_mutex_lock(&f->lock);
	int stopping = f->stopping;
	if (!stopping) {
		j->next = f->queued;     /* order among simultaneous starts does not matter */
		f->queued = j;
	}
	pthread_mutex_unlock(&f->lock);
	if (stopping) {
		j->x.on_data = NULL;      /* it never started: the caller still owns its user */
		job_free(j);
		return err_set(err, ERR_UNAVAILABLE, "fetch: the server is stopping");
	}
	curl_multi_wakeup(f->multi);
	return ERR_OK;
}

void fetch_response_release(struct fetch_response *resp)
{
	if (!resp)
		return;
	free(resp->headers);
	free(resp->body);
	free(resp->effective_url);
	memset(resp, 0, sizeof(*resp));
}

enum err_code fetch_url(const char *url, const struct fetch_limits *lim,
			uint8_t **data_out, size_t *len_out, struct err *err)
{
	return fetch_url_checked(url, lim, NULL, NULL, data_out, len_out, err);
}

enum err_code fetch_url_checked(const char *url, const struct fetch_limits *lim,
				fetch_addr_check_fn check, void *check_user, uint8_t **data_out,
				size_t *len_out, struct err *err)
{
	struct fetch_request req = {
		.method = "GET", .url = url, .follow_redirects = 1, .fail_on_status = 1,
		.log_progress = 1, .addr_check = check, .addr_check_user = check_user,
	};
	struct fetch_response resp;
	*data_out = NULL;
	*len_out = 0;
	enum err_code rc = fetch_request(&req, lim, &resp, err);
	if (rc)
		return rc;
	*data_out = resp.body;
	*len_out = resp.body_len;
	resp.body = NULL;
	fetch_response_release(&resp);
	return ERR_OK;
}

static enum err_code url_part(CURLU *u, CURLUPart part, unsigned flags, char *out, size_t size)
{
	char *v = NULL;
	CURLUcode uc = curl_url_get(u, part, &v, flags);
	if (uc != CURLUE_OK)
		return uc == CURLUE_OUT_OF_MEMORY ? ERR_NOMEM : ERR_BAD_REFERENCE;
	size_t n = strlen(v);
	enum err_code rc = n < size ? ERR_OK : ERR_BAD_REFERENCE;
	if (!rc)
		memcpy(out, v, n + 1);
	curl_free(v);
	return rc;
}

static int url_has_part(CURLU *u, CURLUPart part)
{
	char *v = NULL;
	CURLUcode uc = curl_url_get(u, part, &v, 0);
	curl_free(v);
	return uc == CURLUE_OK;
}

enum err_code fetch_url_split(const char *url, struct fetch_url_parts *out, struct err *err)
{
	char port[8];
	enum err_code rc;
	memset(out, 0, sizeof(*out));
	if (!url || !fetch_url_allowed(url) || strlen(url) > FETCH_MAX_URL)
		return err_set(err, ERR_BAD_REFERENCE, "url '%.200s': only http and https urls "
			       "of at most %d bytes are allowed", url ? url : "", FETCH_MAX_URL);
	pthread_once(&global_once, global_init);
	CURLU *u = curl_url();
	if (!u)
		return err_set(err, ERR_NOMEM, "url: out of memory");
	rc = curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK ? ERR_OK : ERR_BAD_REFERENCE;
	if (!rc)
		rc = url_part(u, CURLUPART_SCHEME, 0, out->scheme, sizeof(out->scheme));
	if (!rc)
		rc = url_part(u, CURLUPART_HOST, 0, out->host, sizeof(out->host));
	if (!rc)
		rc = url_part(u, CURLUPART_PORT, CURLU_DEFAULT_PORT, port, sizeof(port));
	if (!rc) {
		out->port = (unsigned)strtoul(port, NULL, 10);
		out->has_userinfo = url_has_part(u, CURLUPART_USER) ||
				    url_has_part(u, CURLUPART_PASSWORD);
	}
	curl_url_cleanup(u);
	if (rc == ERR_NOMEM)
		return err_set(err, rc, "url: out of memory");
	if (rc || !out->host[0])
		return err_set(err, ERR_BAD_REFERENCE, "url '%.200s' is malformed", url);
	return ERR_OK;
}

/* json_out.c - the JSON shapes the API returns for runs and chain events. */
#include "api/api_int.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "src/util/buf.h"
#include "src/util/crypto.h"

json_t *api_time_json(int64_t ms)
{
	if (ms <= 0)
		return json_null();
	time_t secs = (time_t)(ms / 1000);
	struct tm tm;
	gmtime_r(&secs, &tm);
	char text[40];
	size_t n = strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(text + n, sizeof(text) - n, ".%03dZ", (int)(ms % 1000));
	return json_string(text);
}

static json_t *str_or_null(const char *s)
{
	return s && *s ? json_string(s) : json_null();
}

json_t *api_run_json(const struct db_run *r)
{
	json_t *o = json_object();
	json_object_set_new(o, "id", json_string(r->id));
	json_object_set_new(o, "name", str_or_null(r->name));
	json_object_set_new(o, "status", str_or_null(r->status));
	json_object_set_new(o, "reason", str_or_null(r->reason));
	json_object_set_new(o, "parent_id", str_or_null(r->parent_id));
	json_object_set_new(o, "manifest_ref", str_or_null(r->manifest_ref));
	json_object_set_new(o, "package_ref", str_or_null(r->package_ref));
	json_object_set_new(o, "package_sha256", str_or_null(r->package_sha256));
	json_object_set_new(o, "created_at", api_time_json(r->created_at));
	json_object_set_new(o, "started_at", api_time_json(r->started_at));
	json_object_set_new(o, "stopped_at", api_time_json(r->stopped_at));
	json_object_set_new(o, "chain", json_pack("{s:I, s:o}", "length", (json_int_t)r->head_seq,
						  "head", str_or_null(r->head_hash)));
	if (r->damaged)
		json_object_set_new(json_object_get(o, "chain"), "damaged", json_true());
	return o;
}

json_t *api_event_json(const char *actor_id, uint64_t seq, const uint8_t *hash,
		       const uint8_t *parent, const char *type, const uint8_t *data,
		       size_t len, int64_t timestamp)
{
	char h[65], p[65];
	hex_encode(hash, 32, h);
	hex_encode(parent, 32, p);
	json_t *o = json_pack("{s:s, s:I, s:s, s:s, s:s}", "actor_id", actor_id, "seq",
			      (json_int_t)seq, "hash", h, "parent_hash", p, "event_type", type);
	if (!o)
		return NULL;
	json_object_set_new(o, "timestamp", api_time_json(timestamp));
	json_object_set_new(o, "size", json_integer((json_int_t)len));
	json_error_t je;
	json_t *v = json_loadb((const char *)data, len, JSON_DECODE_ANY, &je);
	if (v) {
		json_object_set_new(o, "data", v);
		return o;
	}
	char *b64 = base64_encode(data, len);
	json_object_set_new(o, "data_b64", b64 ? json_string(b64) : json_null());
	free(b64);
	return o;
}

/* ---- the run as text, without building a tree (GET /actors/{id}, issue 16) ---- */

static int utf8_valid(const unsigned char *s)
{
	while (*s) {
		unsigned c = *s;
		size_t n = c < 0x80 ? 0 : (c & 0xe0) == 0xc0 ? 1 : (c & 0xf0) == 0xe0 ? 2 :
			   (c & 0xf8) == 0xf0 ? 3 : 9;
		if (n == 9 || (n == 1 && c < 0xc2) || (n == 3 && c > 0xf4))
			return 0;
		uint32_t cp = n == 0 ? c : c & (0x3f >> n);
		for (size_t i = 1; i <= n; i++) {
			if ((s[i] & 0xc0) != 0x80)
				return 0;
			cp = cp << 6 | (s[i] & 0x3f);
		}
		if ((n == 2 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
		    (n == 3 && (cp < 0x10000 || cp > 0x10ffff)))
			return 0;
		s += n + 1;
	}
	return 1;
}

/* Appends s as jansson's JSON_COMPACT writes it (UTF-8 kept, '/' not escaped). */
static int put_str(struct buf *b, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	if (!utf8_valid((const unsigned char *)s))
		return -1;
	int rc = (int)buf_append(b, "\"", 1);
	for (const char *p = s; !rc && *p; p++) {
		unsigned char c = (unsigned char)*p;
		const char *run = p;
		while (*p && (unsigned char)*p >= 0x20 && *p != '"' && *p != '\\')
			p++;
		if (p > run)
			rc = (int)buf_append(b, run, (size_t)(p - run));
		if (!*p || rc)
			break;
		c = (unsigned char)*p;
		char esc[7] = {'\\', 0};
		size_t n = 2;
		switch (c) {
		case '"': esc[1] = '"'; break;
		case '\\': esc[1] = '\\'; break;
		case '\b': esc[1] = 'b'; break;
		case '\f': esc[1] = 'f'; break;
		case '\n': esc[1] = 'n'; break;
		case '\r': esc[1] = 'r'; break;
		case '\t': esc[1] = 't'; break;
		default:
			memcpy(esc + 1, "u00", 3);
			esc[4] = hex[c >> 4];
			esc[5] = hex[c & 15];
			n = 6;
		}
		rc = (int)buf_append(b, esc, n);
	}
	return rc ? rc : (int)buf_append(b, "\"", 1);
}

static int put_str_or_null(struct buf *b, const char *s)
{
	return s && *s ? put_str(b, s) : (int)buf_append(b, "null", 4);
}

static void put_digits(char *out, unsigned v, int n)
{
	while (n--) {
		out[n] = (char)('0' + v % 10);
		v /= 10;
	}
}

/* "YYYY-MM-DDTHH:MM:SS.mmmZ" as api_time_json writes it, or null. */
static int put_time(struct buf *b, int64_t ms)
{
	if (ms <= 0)
		return (int)buf_append(b, "null", 4);
	time_t secs = (time_t)(ms / 1000);
	struct tm tm;
	if (!gmtime_r(&secs, &tm) || tm.tm_year + 1900 > 9999) {
		json_t *t = api_time_json(ms);
		char *text = json_compact(t);
		json_decref(t);
		int rc = text ? (int)buf_append(b, text, strlen(text)) : -1;
		free(text);
		return rc;
	}
	char t[26] = "\"0000-00-00T00:00:00.000Z\"";
	put_digits(t + 1, (unsigned)tm.tm_year + 1900, 4);
	put_digits(t + 6, (unsigned)tm.tm_mon + 1, 2);
	put_digits(t + 9, (unsigned)tm.tm_mday, 2);
	put_digits(t + 12, (unsigned)tm.tm_hour, 2);
	put_digits(t + 15, (unsigned)tm.tm_min, 2);
	put_digits(t + 18, (unsigned)tm.tm_sec, 2);
	put_digits(t + 21, (unsigned)(ms % 1000), 3);
	return (int)buf_append(b, t, sizeof(t));
}

char *api_run_text(const struct db_run *r, size_t *len_out)
{
	return api_run_text_last(r, NULL, 0, len_out);
}

char *api_run_text_last(const struct db_run *r, const char *last_type, int64_t last_ts,
			size_t *len_out)
{
	struct buf b;
	buf_init(&b, 0);
	char num[48];
	if (buf_reserve(&b, 640))
		return NULL;
	int rc = buf_append(&b, "{\"id\":", 6) || put_str(&b, r->id) ||
		 buf_append(&b, ",\"name\":", 8) || put_str_or_null(&b, r->name) ||
		 buf_append(&b, ",\"status\":", 10) || put_str_or_null(&b, r->status) ||
		 buf_append(&b, ",\"reason\":", 10) || put_str_or_null(&b, r->reason) ||
		 buf_append(&b, ",\"parent_id\":", 13) || put_str_or_null(&b, r->parent_id) ||
		 buf_append(&b, ",\"manifest_ref\":", 16) || put_str_or_null(&b, r->manifest_ref) ||
		 buf_append(&b, ",\"package_ref\":", 15) || put_str_or_null(&b, r->package_ref) ||
		 buf_append(&b, ",\"package_sha256\":", 18) ||
		 put_str_or_null(&b, r->package_sha256) ||
		 buf_append(&b, ",\"created_at\":", 14) || put_time(&b, r->created_at) ||
		 buf_append(&b, ",\"started_at\":", 14) || put_time(&b, r->started_at) ||
		 buf_append(&b, ",\"stopped_at\":", 14) || put_time(&b, r->stopped_at) ||
		 buf_append(&b, num, (size_t)snprintf(num, sizeof(num), ",\"chain\":{\"length\":%llu",
						     (unsigned long long)r->head_seq)) ||
		 buf_append(&b, ",\"head\":", 8) || put_str_or_null(&b, r->head_hash) ||
		 (r->damaged && buf_append(&b, ",\"damaged\":true", 15)) ||
		 buf_append(&b, "}", 1);
	if (!rc && last_type)
		rc = buf_append(&b, ",\"last_event\":{\"type\":", 22) || put_str(&b, last_type) ||
		     buf_append(&b, num, (size_t)snprintf(num, sizeof(num), ",\"seq\":%llu,\"time\":",
							 (unsigned long long)r->head_seq)) ||
		     put_time(&b, last_ts) || buf_append(&b, "}", 1);
	if (!rc)
		rc = buf_append(&b, "}", 1);
	if (rc) {
		buf_release(&b);
		return NULL;
	}
	return buf_steal(&b, len_out);
}

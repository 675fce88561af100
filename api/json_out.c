/* json_out.c - the JSON shapes the API returns for runs and chain events. */
#include "api/api_int.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

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

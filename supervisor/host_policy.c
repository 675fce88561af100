/* host_policy.c - the manifest's permission_policy, as host functions read it,
 * and what they may reach of the server's settings (secrets, HTTP timeouts).
 *
 * The manifest is checked at spawn (src/manifest_check.c: every capability is
 * {type = "inherit" | "disallow" | "restrict", config}), so this file only
 * reads it. The manifest is immutable and owned by the actor for its whole
 * life (a->manifest), so the borrowed values handed out stay valid during the
 * host call that asked.
 */
#include <string.h>

#include "src/manifest.h"
#include "supervisor/host.h"
#include "supervisor/supervisor_int.h"

static const struct {
	unsigned grant;
	const char *cap;
} caps[] = {
	{GRANT_RUNTIME, "runtime"}, {GRANT_MESSAGE, "message_server"}, {GRANT_TIMING, "timing"},
	{GRANT_RANDOM, "random"}, {GRANT_STORE, "store"}, {GRANT_SUPERVISOR, "supervisor"},
	{GRANT_HTTP, "http_client"}, {GRANT_ENV, "environment"},
};

const char *host_policy_cap(unsigned grant)
{
	for (size_t i = 0; i < sizeof(caps) / sizeof(caps[0]); i++)
		if (caps[i].grant == grant)
			return caps[i].cap;
	return "unknown";
}

enum host_policy host_policy(struct actor *a, unsigned grant, const json_t **config_out)
{
	const json_t *pol = a->manifest ? a->manifest->permission_policy : NULL;
	const json_t *entry = pol ? json_object_get(pol, host_policy_cap(grant)) : NULL;
	const char *type = entry ? json_string_value(json_object_get(entry, "type")) : NULL;
	if (config_out)
		*config_out = NULL;
	if (!type || strcmp(type, "inherit") == 0)
		return HOST_POLICY_INHERIT;
	if (strcmp(type, "restrict") != 0)
		return HOST_POLICY_DISALLOW;
	if (config_out)
		*config_out = json_object_get(entry, "config");
	return HOST_POLICY_RESTRICT;
}

int host_disallowed(struct actor *a, unsigned grant, const char *module, const char *name,
		    struct wasm_value *results, int i64)
{
	if (host_policy(a, grant, NULL) != HOST_POLICY_DISALLOW)
		return 0;
	if (i64)
		results[0] = (struct wasm_value){.type = WASM_I64, .of.i64 = (uint64_t)(int64_t)HOST_EDENIED};
	else
		host_set_i32(&results[0], HOST_EDENIED);
	char msg[160];
	snprintf(msg, sizeof(msg), "denied by the manifest: permission_policy.%s is \"disallow\"",
		 host_policy_cap(grant));
	host_record(a, module, name, NULL, json_pack("{s:i, s:s}", "result", HOST_EDENIED,
						     "error", msg));
	return 1;
}

int64_t host_policy_int(struct actor *a, unsigned grant, const char *key, int64_t def)
{
	const json_t *cfg = NULL;
	if (host_policy(a, grant, &cfg) != HOST_POLICY_RESTRICT)
		return def;
	const json_t *v = json_object_get(cfg, key);
	return json_is_integer(v) ? (int64_t)json_integer_value(v) : def;
}

const json_t *host_policy_list(struct actor *a, unsigned grant, const char *key)
{
	const json_t *cfg = NULL;
	if (host_policy(a, grant, &cfg) != HOST_POLICY_RESTRICT)
		return NULL;
	const json_t *v = json_object_get(cfg, key);
	return json_is_array(v) ? v : NULL;
}

struct secrets *host_secrets(struct actor *a)
{
	return a->sup->cfg.secrets;
}

void host_http_timeouts(struct actor *a, uint32_t *def_ms, uint32_t *max_ms)
{
	uint32_t d = a->sup->cfg.http_timeout_ms, m = a->sup->cfg.http_timeout_max_ms;
	*max_ms = m ? m : 600000;
	*def_ms = d ? d : 60000;
	if (*def_ms > *max_ms)
		*def_ms = *max_ms;
}

/* host_runtime.c - theater:simple/runtime: log, self-id, shutdown. */
#include <stdlib.h>
#include <string.h>

#include "src/util/log.h"
#include "supervisor/host.h"

#define MOD "theater:simple/runtime"
#define LOG_MAX (64 * 1024)

static enum err_code rt_log(struct wasm_caller *c, void *user, const struct wasm_value *args,
			    struct wasm_value *results, struct err *err)
{
	(void)results;
	(void)err;
	uint8_t *text = NULL;
	int32_t rc = host_read(c, args[0].of.i32, args[1].of.i32, LOG_MAX, &text);
	if (rc == 0)
		log_debug("actor", "%s: %s", host_actor_id(user), (const char *)text);
	host_record(user, MOD, "log", rc ? json_pack("{s:i}", "error", rc)
				       : host_bytes_json(text, args[1].of.i32), NULL);
	free(text);
	return ERR_OK;
}

static enum err_code rt_self_id(struct wasm_caller *c, void *user, const struct wasm_value *args,
				struct wasm_value *results, struct err *err)
{
	(void)err;
	const char *id = host_actor_id(user);
	int32_t rc = host_write(c, user, args[0].of.i32, id, 36);
	results[0] = (struct wasm_value){.type = WASM_I32, .of.i32 = (uint32_t)(rc ? rc : 36)};
	host_record(user, MOD, "self-id", NULL, json_string(id));
	return ERR_OK;
}

static enum err_code rt_shutdown(struct wasm_caller *c, void *user, const struct wasm_value *args,
				 struct wasm_value *results, struct err *err)
{
	(void)results;
	(void)err;
	uint8_t *why = NULL;
	int32_t rc = host_read(c, args[0].of.i32, args[1].of.i32, 1024, &why);
	host_request_shutdown(user, rc ? "" : (const char *)why);
	host_record(user, MOD, "shutdown", rc ? NULL : host_bytes_json(why, args[1].of.i32), NULL);
	free(why);
	return ERR_OK;
}

const struct host_fn host_runtime_fns[] = {
	{MOD, "log", GRANT_RUNTIME, 2, 0, {WASM_I32, WASM_I32}, {0}, rt_log},
	{MOD, "self-id", GRANT_RUNTIME, 1, 1, {WASM_I32}, {WASM_I32}, rt_self_id},
	{MOD, "shutdown", GRANT_RUNTIME, 2, 0, {WASM_I32, WASM_I32}, {0}, rt_shutdown},
	{NULL, NULL, 0, 0, 0, {0}, {0}, NULL},
};

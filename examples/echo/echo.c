/* echo - answers every request with its own bytes, and logs what it gets.
 *
 * The smallest useful actor: the state passes through unchanged; each message
 * and request is logged with theater:simple/runtime/log (so it shows up in the
 * chain as its own event); a request's response is the request itself, byte
 * for byte (binary included).
 */
#define THEATER_ACTOR_IMPL
#include "theater/actor.h"

#include "theater/libc.h"
#include "theater/jbuf.h"

#define LOG_PREVIEW 200

/* "echo: <what> <n> bytes: <up to LOG_PREVIEW bytes>" */
static void log_bytes(const char *what, const char *data, uint32_t len)
{
	struct jb b;
	jb_init(&b, 64 + LOG_PREVIEW);
	jb_cstr(&b, "echo: ");
	jb_cstr(&b, what);
	jb_char(&b, ' ');
	jb_int(&b, len);
	jb_cstr(&b, " bytes: ");
	jb_raw(&b, data, len < LOG_PREVIEW ? len : LOG_PREVIEW);
	if (jb_ok(&b))
		theater_log(b.p, b.len);
}

THEATER_EXPORT("init")
struct theater_result *init(const char *state, uint32_t len)
{
	theater_log("echo: ready", 11);
	return theater_ok(state, len, 0, 0);
}

THEATER_EXPORT("handle-send")
struct theater_result *handle_send(const char *state, uint32_t len, const char *msg,
				   uint32_t msg_len)
{
	log_bytes("message of", msg, msg_len);
	return theater_ok(state, len, 0, 0);
}

THEATER_EXPORT("handle-request")
struct theater_result *handle_request(const char *state, uint32_t len, const char *req,
				      uint32_t req_len)
{
	log_bytes("request of", req, req_len);
	return theater_ok(state, len, req, req_len);
}

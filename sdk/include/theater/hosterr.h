/* theater/hosterr.h - names for the negative results of host functions, so that an
 * actor's error messages say what went wrong (docs/actor-abi.md). */
#ifndef THEATER_HOSTERR_H
#define THEATER_HOSTERR_H

#include <stdint.h>

static inline const char *hosterr_name(int32_t rc)
{
	switch (rc) {
	case THEATER_EINVAL: return "invalid argument";
	case THEATER_ENOTFOUND: return "not found";
	case THEATER_EDENIED: return "denied";
	case THEATER_ETIMEDOUT: return "timed out";
	case THEATER_ETOOBIG: return "too large";
	case THEATER_EFAILED: return "failed";
	case THEATER_EBUSY: return "busy";
	default: return rc < 0 ? "unknown error" : "ok";
	}
}

#endif

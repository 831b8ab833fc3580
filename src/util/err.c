#include "vrcloud/err.h"

const char *vr_err_str(int err)
{
	switch (err) {
	case VR_OK: return "success";
	case VR_ENOMEM: return "out of memory";
	case VR_EINVAL: return "invalid input";
	case VR_ENOTFOUND: return "not found";
	case VR_EDB: return "database error";
	case VR_EDB_SOFT: return "database temporarily unavailable";
	case VR_EAUTH: return "not authenticated";
	case VR_EFORBIDDEN: return "forbidden";
	case VR_ECONFLICT: return "conflict";
	case VR_EUNAVAIL: return "service unavailable";
	case VR_ETOOBIG: return "too large";
	case VR_EIO: return "I/O error";
	case VR_ERATE: return "rate limited";
	case VR_EEXIST: return "already exists";
	case VR_ECONFIG: return "bad configuration";
	}
	return "unknown error";
}

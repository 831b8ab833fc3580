/* Error codes shared by every module of vrcloud.
 * Functions that can fail return 0 on success or one of these negative
 * values; results travel through out-parameters. */
#ifndef VRCLOUD_ERR_H
#define VRCLOUD_ERR_H

enum vr_err {
	VR_OK = 0,
	VR_ENOMEM = -1,      /* allocation failed */
	VR_EINVAL = -2,      /* malformed input */
	VR_ENOTFOUND = -3,   /* no such object (or not visible to the caller) */
	VR_EDB = -4,         /* hard database error */
	VR_EDB_SOFT = -5,    /* retryable database error (serialization, connection) */
	VR_EAUTH = -6,       /* not authenticated */
	VR_EFORBIDDEN = -7,  /* authenticated but not allowed */
	VR_ECONFLICT = -8,   /* object state conflicts with the request */
	VR_EUNAVAIL = -9,    /* a backing service is down */
	VR_ETOOBIG = -10,    /* input over its size limit */
	VR_EIO = -11,        /* file or socket I/O failed */
	VR_ERATE = -12,      /* rate limit reached */
	VR_EEXIST = -13,     /* object already exists */
	VR_ECONFIG = -14,    /* bad configuration */
};

/* A short, static, human-readable text for an error code. */
const char *vr_err_str(int err);

#endif

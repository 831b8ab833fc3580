/* The replica store's instance journal and the calls over instances:
 * list, pin, drop (docs/replica-store.md). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "store/internal.h"
#include "vrcloud/alloc.h"
#include "vrcloud/err.h"


/* ---- the instance journal ---- */

uint32_t st_instance_flags(const struct vr_store_instance *in)
{
	return (in->pinned ? ST_PINNED : 0) | (in->available ? 0 : ST_UNAVAILABLE);
}

void st_instance_encode(uint8_t rec[ST_INSTANCE_REC], const struct vr_store_instance *in,
			uint32_t flags)
{
	memset(rec, 0, ST_INSTANCE_REC);
	memcpy(rec, in->id, VR_UUID_LEN);
	tx_put32(rec + 36, flags);
	tx_put64(rec + 40, in->seq);
	tx_put64(rec + 48, (uint64_t)in->point_in_time_ms);
	tx_put64(rec + 56, in->blocks);
	tx_put64(rec + 64, in->bytes);
	tx_put64(rec + 72, (uint64_t)in->committed_ms);
	memcpy(rec + 80, in->root, VR_TX_HASH);
}

int st_instance_decode(struct vr_store_instance *in, uint32_t *flags,
		       const uint8_t rec[ST_INSTANCE_REC])
{
	memset(in, 0, sizeof *in);
	memcpy(in->id, rec, VR_UUID_LEN);
	in->id[VR_UUID_LEN] = 0;
	if (!vr_uuid_valid(in->id))
		return VR_EIO;
	*flags = tx_get32(rec + 36);
	in->seq = tx_get64(rec + 40);
	in->point_in_time_ms = (int64_t)tx_get64(rec + 48);
	in->blocks = tx_get64(rec + 56);
	in->bytes = tx_get64(rec + 64);
	in->committed_ms = (int64_t)tx_get64(rec + 72);
	memcpy(in->root, rec + 80, VR_TX_HASH);
	in->pinned = *flags & ST_PINNED;
	in->available = !(*flags & ST_UNAVAILABLE);
	if (in->seq == 0 || (*flags & ~(ST_PINNED | ST_UNAVAILABLE)))
		return VR_EIO;
	return 0;
}

int st_journal_write(struct vr_store *s)
{
	size_t len = ST_JOURNAL_HDR + s->ninst * ST_INSTANCE_REC + VR_TX_HASH;
	uint8_t *buf = malloc(len);
	if (!buf)
		return st_fail(s, VR_EIO, "journal: out of memory for %zu instances", s->ninst);
	memset(buf, 0, ST_JOURNAL_HDR);
	memcpy(buf, ST_JOURNAL_MAGIC, 8);
	tx_put32(buf + 8, 1);
	tx_put32(buf + 12, (uint32_t)s->ninst);
	tx_put64(buf + 16, s->next_seq);
	tx_put64(buf + 24, s->base_seq);
	tx_put32(buf + 32, s->flags);
	for (size_t i = 0; i < s->ninst; i++)
		st_instance_encode(buf + ST_JOURNAL_HDR + i * ST_INSTANCE_REC, &s->inst[i],
				   st_instance_flags(&s->inst[i]));
	tx_sha256(buf + len - VR_TX_HASH, buf, len - VR_TX_HASH, NULL, 0, NULL, 0);
	int rc = st_write_atomic(s->dir, ST_JOURNAL, buf, len);
	free(buf);
	if (rc)
		return st_fail(s, VR_EIO, "journal %s/%s: %s", s->dir, ST_JOURNAL, strerror(errno));
	return 0;
}

int st_journal_read(struct vr_store *s)
{
	char *path = st_path(s, ST_JOURNAL);
	uint8_t *p;
	size_t len;
	int rc =
		st_read_file(path, &p, &len,
			  ST_JOURNAL_HDR + (size_t)ST_MAX_INSTANCES * ST_INSTANCE_REC + VR_TX_HASH);
	if (rc) {
		rc = st_fail(s, VR_EIO, "journal %s: %s", path, strerror(errno));
		free(path);
		return rc;
	}
	uint8_t h[VR_TX_HASH];
	if (len < ST_JOURNAL_HDR + VR_TX_HASH || memcmp(p, ST_JOURNAL_MAGIC, 8) ||
	    tx_get32(p + 8) != 1)
		goto bad;
	tx_sha256(h, p, len - VR_TX_HASH, NULL, 0, NULL, 0);
	if (memcmp(h, p + len - VR_TX_HASH, VR_TX_HASH))
		goto bad;
	size_t n = tx_get32(p + 12);
	if (len != ST_JOURNAL_HDR + n * ST_INSTANCE_REC + VR_TX_HASH)
		goto bad;
	s->next_seq = tx_get64(p + 16);
	s->base_seq = tx_get64(p + 24);
	s->flags = tx_get32(p + 32);
	if (s->flags & ~ST_MOVED_OUT)
		goto bad;
	s->cap = n + 16;
	s->inst = vr_calloc(s->cap, sizeof *s->inst);
	for (size_t i = 0; i < n; i++) {
		uint32_t flags;
		if (st_instance_decode(&s->inst[i], &flags,
				       p + ST_JOURNAL_HDR + i * ST_INSTANCE_REC))
			goto bad;
		if (s->inst[i].seq >= s->next_seq || (i && s->inst[i].seq <= s->inst[i - 1].seq))
			goto bad;
	}
	s->ninst = n;
	if (s->base_seq && (!n || s->base_seq != s->inst[n - 1].seq))
		goto bad;
	free(p);
	free(path);
	return 0;
bad:
	free(p);
	rc = st_fail(s, VR_EIO, "journal %s is corrupt", path);
	free(path);
	return rc;
}

ssize_t st_find(const struct vr_store *s, const char *instance_id)
{
	char canon[VR_UUID_LEN + 1];
	if (!instance_id || vr_uuid_canon(canon, instance_id))
		return -1;
	for (size_t i = 0; i < s->ninst; i++)
		if (!strcmp(s->inst[i].id, canon))
			return (ssize_t)i;
	return -1;
}


/* ---- instances ---- */

int vr_store_instances(struct vr_store *s, struct vr_store_instance **list, size_t *n)
{
	*list = NULL;
	*n = 0;
	if (!s->ninst)
		return 0;
	*list = malloc(s->ninst * sizeof **list);
	if (!*list)
		return st_fail(s, VR_ENOMEM, "out of memory for %zu instances", s->ninst);
	memcpy(*list, s->inst, s->ninst * sizeof **list);
	*n = s->ninst;
	return 0;
}

int vr_store_pin(struct vr_store *s, const char *instance_id, bool pinned)
{
	ssize_t i = st_find(s, instance_id);
	if (i < 0)
		return st_fail(s, VR_ENOTFOUND, "no instance %s", instance_id ? instance_id : "");
	if (s->inst[i].pinned == pinned)
		return 0;
	s->inst[i].pinned = pinned;
	int rc = st_journal_write(s);
	if (rc)
		s->inst[i].pinned = !pinned;
	return rc;
}

int vr_store_drop(struct vr_store *s, const char *instance_id)
{
	ssize_t found = st_find(s, instance_id);
	if (found < 0)
		return st_fail(s, VR_ENOTFOUND, "no instance %s", instance_id ? instance_id : "");
	size_t i = (size_t)found;
	if (i + 1 == s->ninst)
		return st_fail(s, VR_ECONFLICT, "instance %s is the newest", s->inst[i].id);
	if (s->inst[i].pinned)
		return st_fail(s, VR_ECONFLICT, "instance %s is pinned", s->inst[i].id);
	int rc;
	/* A middle instance's changes must stay reachable from its predecessor:
	 * the merged undo log is valid with or without this one applied first,
	 * so it replaces the predecessor's before the journal forgets this one. */
	if (i > 0 && s->inst[i].available && s->inst[i - 1].available) {
		rc = st_undo_merge(s, i);
		if (rc)
			return rc;
	}
	struct vr_store_instance gone = s->inst[i];
	memmove(&s->inst[i], &s->inst[i + 1], (s->ninst - i - 1) * sizeof *s->inst);
	s->ninst--;
	rc = st_journal_write(s);
	if (rc) {
		memmove(&s->inst[i + 1], &s->inst[i], (s->ninst - i) * sizeof *s->inst);
		s->inst[i] = gone;
		s->ninst++;
		return rc;
	}
	char *name = st_undo_name(gone.seq), *path = st_path(s, name);
	if (unlink(path) && errno != ENOENT)
		rc = st_fail(s, VR_EIO, "%s: %s", path, strerror(errno));
	else if (st_fsync_dir(s->dir))
		rc = st_fail(s, VR_EIO, "%s: %s", s->dir, strerror(errno));
	free(name);
	free(path);
	return rc;
}

void st_append_instance(struct vr_store *s, const struct vr_store_instance *in)
{
	if (s->ninst == s->cap) {
		s->cap = s->cap ? s->cap * 2 : 16;
		s->inst = vr_realloc(s->inst, s->cap * sizeof *s->inst);
	}
	s->inst[s->ninst++] = *in;
}


/* The agent's state of each protected replication
 * (STATE_DIR/replications/<id>.ini, docs/agent.md): what protect was told,
 * the newest committed instance, the recent transfer durations the schedule
 * estimates from, and per disk the changed-block log generation and record
 * the instance was read at. Written atomically. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vrcloud/agent_sync.h"
#include "vrcloud/alloc.h"
#include "vrcloud/buf.h"
#include "vrcloud/err.h"

char *vr_agent_repl_path(const char *state_dir, const char *id, const char *suffix)
{
	return vr_asprintf("%s/%s/%s%s", state_dir, VR_AGENT_REPL_DIR, id, suffix);
}

char *vr_agent_spool_path(const char *state_dir, const char *id)
{
	return vr_asprintf("%s/%s/%s.spool", state_dir, VR_AGENT_SPOOL_DIR, id);
}

struct parse {
	struct vr_agent_repl *r;
	char *error;
};

static int bad(struct parse *p, const char *section, const char *name)
{
	if (!p->error)
		p->error = vr_asprintf("bad value of [%s] %s", section, name);
	return 0;
}

static bool to_u64(const char *v, uint64_t *out)
{
	char *end;
	errno = 0;
	if (!*v || *v == '-')
		return false;
	unsigned long long x = strtoull(v, &end, 10);
	if (errno || *end)
		return false;
	*out = x;
	return true;
}

static bool to_bool(const char *v, bool *out)
{
	if (strcmp(v, "true") == 0 || strcmp(v, "1") == 0)
		*out = true;
	else if (strcmp(v, "false") == 0 || strcmp(v, "0") == 0)
		*out = false;
	else
		return false;
	return true;
}

static void set_str(char **field, const char *v)
{
	free(*field);
	*field = *v ? vr_strdup(v) : NULL;
}

static int on_replication(struct parse *p, const char *name, const char *v)
{
	struct vr_agent_repl *r = p->r;
	uint64_t n;
	if (strcmp(name, "id") == 0) {
		if (vr_uuid_canon(r->id, v))
			return bad(p, "replication", name);
	} else if (strcmp(name, "vm") == 0) {
		set_str(&r->vm_name, v);
	} else if (strcmp(name, "vmdir") == 0) {
		set_str(&r->vmdir, v);
	} else if (strcmp(name, "vdc") == 0) {
		set_str(&r->vdc, v);
	} else if (strcmp(name, "retention") == 0) {
		set_str(&r->retention, v);
	} else if (strcmp(name, "freeze_cmd") == 0) {
		set_str(&r->freeze_cmd, v);
	} else if (strcmp(name, "thaw_cmd") == 0) {
		set_str(&r->thaw_cmd, v);
	} else if (strcmp(name, "rpo") == 0) {
		if (!to_u64(v, &n) || n < 1 || n > 1440)
			return bad(p, "replication", name);
		r->rpo = (unsigned)n;
	} else if (strcmp(name, "quiesce") == 0) {
		if (!to_bool(v, &r->quiesce))
			return bad(p, "replication", name);
	} else if (strcmp(name, "compress") == 0) {
		if (!to_bool(v, &r->compress))
			return bad(p, "replication", name);
	} else {
		return bad(p, "replication", name);
	}
	return 1;
}

static int on_last(struct parse *p, const char *name, const char *v)
{
	struct vr_agent_repl *r = p->r;
	uint64_t n;
	if (strcmp(name, "instance") == 0) {
		if (*v && vr_uuid_canon(r->instance, v))
			return bad(p, "last", name);
	} else if (strcmp(name, "point_in_time_ms") == 0) {
		if (!to_u64(v, &n) || n > INT64_MAX)
			return bad(p, "last", name);
		r->point_in_time_ms = (int64_t)n;
	} else if (strcmp(name, "bytes") == 0) {
		if (!to_u64(v, &r->instance_bytes))
			return bad(p, "last", name);
	} else if (strcmp(name, "transfer_ms") == 0) {
		r->nrecent = 0;
		for (const char *s = v; *s && r->nrecent < VR_AGENT_RECENT;) {
			char *end;
			errno = 0;
			unsigned long long x = strtoull(s, &end, 10);
			if (errno || end == s || x > UINT32_MAX || (*end && *end != ','))
				return bad(p, "last", name);
			r->recent_ms[r->nrecent++] = (uint32_t)x;
			s = *end ? end + 1 : end;
		}
	} else {
		return bad(p, "last", name);
	}
	return 1;
}

static int on_disk(struct parse *p, const char *key, const char *name, const char *v)
{
	struct vr_agent_repl *r = p->r;
	struct vr_agent_disk_state *d = NULL;
	for (size_t i = 0; i < r->ndisks; i++)
		if (strcmp(r->disks[i].key, key) == 0)
			d = &r->disks[i];
	if (!d) {
		if (r->ndisks == VR_VM_MAX_DISKS || strlen(key) >= sizeof d->key || !*key)
			return bad(p, "disk", name);
		d = &r->disks[r->ndisks++];
		snprintf(d->key, sizeof d->key, "%s", key);
	}
	uint64_t *field = strcmp(name, "size") == 0	    ? &d->size
			  : strcmp(name, "generation") == 0 ? &d->generation
			  : strcmp(name, "seq") == 0	    ? &d->seq
							    : NULL;
	if (!field || !to_u64(v, field))
		return bad(p, "disk", name);
	return 1;
}

static int on_value(void *user, const char *section, const char *name, const char *value)
{
	struct parse *p = user;
	if (strcmp(section, "replication") == 0)
		return on_replication(p, name, value);
	if (strcmp(section, "last") == 0)
		return on_last(p, name, value);
	if (strncmp(section, "disk ", 5) == 0)
		return on_disk(p, section + 5, name, value);
	if (!p->error)
		p->error = vr_asprintf("unknown section [%s]", section);
	return 0;
}

/* The file's lines: "[section]", "key = value" (the value verbatim to the
 * end of the line: hook commands hold ';' and '#'), blank lines and
 * comments starting with '#' or ';'. Lines may be of any length. Returns 0
 * or the number of the first line that is none of those. */
static int read_lines(FILE *f, struct parse *p)
{
	char *line = NULL, *section = vr_strdup("");
	size_t cap = 0;
	int number = 0, bad_line = 0;
	ssize_t n;
	while (!bad_line && !p->error && (n = getline(&line, &cap, f)) >= 0) {
		number++;
		while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
			line[--n] = '\0';
		char *s = line;
		while (*s == ' ' || *s == '\t')
			s++;
		if (!*s || *s == '#' || *s == ';')
			continue;
		if (*s == '[') {
			char *end = strchr(s, ']');
			if (!end) {
				bad_line = number;
				break;
			}
			free(section);
			section = vr_strndup(s + 1, (size_t)(end - s - 1));
			continue;
		}
		char *eq = strchr(s, '=');
		if (!eq) {
			bad_line = number;
			break;
		}
		char *key_end = eq;
		while (key_end > s && (key_end[-1] == ' ' || key_end[-1] == '\t'))
			key_end--;
		*key_end = '\0';
		char *value = eq + 1;
		while (*value == ' ' || *value == '\t')
			value++;
		char *end = value + strlen(value);
		while (end > value && (end[-1] == ' ' || end[-1] == '\t'))
			*--end = '\0';
		if (!on_value(p, section, s, value) && !p->error)
			bad_line = number;
	}
	free(line);
	free(section);
	return bad_line;
}

int vr_agent_repl_load(struct vr_agent_repl *r, const char *state_dir, const char *id,
		       char **error_out)
{
	memset(r, 0, sizeof *r);
	if (error_out)
		*error_out = NULL;
	char *path = vr_agent_repl_path(state_dir, id, ".ini");
	FILE *f = fopen(path, "r");
	if (!f) {
		int rc = errno == ENOENT ? VR_ENOTFOUND : VR_EIO;
		if (error_out)
			*error_out = vr_asprintf("%s: %s", path, strerror(errno));
		free(path);
		return rc;
	}
	struct parse p = {r, NULL};
	int line = read_lines(f, &p);
	fclose(f);
	if (!p.error && line != 0)
		p.error = vr_asprintf("line %d is neither [section] nor key = value", line);
	if (!p.error && (!r->id[0] || !r->vmdir || !r->vm_name || !r->rpo))
		p.error = vr_strdup("[replication] id, vm, vmdir and rpo are required");
	if (p.error) {
		if (error_out)
			*error_out = vr_asprintf("%s: %s", path, p.error);
		free(p.error);
		free(path);
		vr_agent_repl_free(r);
		return VR_EINVAL;
	}
	free(path);
	return 0;
}

void vr_agent_repl_free(struct vr_agent_repl *r)
{
	if (!r)
		return;
	free(r->vm_name);
	free(r->vmdir);
	free(r->vdc);
	free(r->retention);
	free(r->freeze_cmd);
	free(r->thaw_cmd);
	memset(r, 0, sizeof *r);
}

/* An INI value on one line: no newline can be stored. */
static const char *one_line(const char *s)
{
	return s && !strpbrk(s, "\r\n") ? s : "";
}

static char *render(const struct vr_agent_repl *r)
{
	struct vr_buf b;
	vr_buf_init(&b, 0);
	vr_buf_printf(&b,
		      "# written by vrcloud-agent; replaced as a whole on every change\n"
		      "[replication]\nid = %s\nvm = %s\nvmdir = %s\nvdc = %s\nrpo = %u\n"
		      "quiesce = %s\ncompress = %s\nretention = %s\nfreeze_cmd = %s\n"
		      "thaw_cmd = %s\n",
		      r->id, one_line(r->vm_name), one_line(r->vmdir), one_line(r->vdc), r->rpo,
		      r->quiesce ? "true" : "false", r->compress ? "true" : "false",
		      one_line(r->retention), one_line(r->freeze_cmd), one_line(r->thaw_cmd));
	vr_buf_printf(&b,
		      "[last]\ninstance = %s\npoint_in_time_ms = %" PRId64 "\nbytes = %" PRIu64
		      "\ntransfer_ms = ",
		      r->instance, r->point_in_time_ms, r->instance_bytes);
	for (unsigned i = 0; i < r->nrecent; i++)
		vr_buf_printf(&b, "%s%" PRIu32, i ? "," : "", r->recent_ms[i]);
	vr_buf_appends(&b, "\n");
	for (size_t i = 0; i < r->ndisks; i++)
		vr_buf_printf(&b,
			      "[disk %s]\nsize = %" PRIu64 "\ngeneration = %" PRIu64
			      "\nseq = %" PRIu64 "\n",
			      r->disks[i].key, r->disks[i].size, r->disks[i].generation,
			      r->disks[i].seq);
	return vr_buf_take(&b, NULL);
}

static int write_all(int fd, const char *data, size_t len)
{
	while (len) {
		ssize_t n = write(fd, data, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return VR_EIO;
		data += n;
		len -= (size_t)n;
	}
	return 0;
}

int vr_agent_repl_save(const struct vr_agent_repl *r, const char *state_dir, char **error_out)
{
	char *dir = vr_asprintf("%s/%s", state_dir, VR_AGENT_REPL_DIR);
	if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
		*error_out = vr_asprintf("cannot make %s: %s", dir, strerror(errno));
		free(dir);
		return VR_EIO;
	}
	char *path = vr_agent_repl_path(state_dir, r->id, ".ini");
	char *tmp = vr_asprintf("%s.tmp", path);
	char *text = render(r);
	int rc = VR_EIO;
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd >= 0) {
		rc = write_all(fd, text, strlen(text));
		if (!rc && fsync(fd) != 0)
			rc = VR_EIO;
		if (close(fd) != 0)
			rc = VR_EIO;
		if (!rc && rename(tmp, path) != 0)
			rc = VR_EIO;
		if (!rc) {
			int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
			if (dfd >= 0) {
				fsync(dfd);
				close(dfd);
			}
		}
	}
	if (rc) {
		*error_out = vr_asprintf("cannot write %s: %s", path, strerror(errno));
		unlink(tmp);
	}
	free(text);
	free(tmp);
	free(path);
	free(dir);
	return rc;
}

static int by_text(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int vr_agent_repl_list(const char *state_dir, char ***ids_out, size_t *count_out)
{
	*ids_out = NULL;
	*count_out = 0;
	char *dir = vr_asprintf("%s/%s", state_dir, VR_AGENT_REPL_DIR);
	DIR *d = opendir(dir);
	free(dir);
	if (!d)
		return errno == ENOENT ? 0 : VR_EIO;
	struct dirent *e;
	char **ids = NULL;
	size_t n = 0;
	while ((e = readdir(d))) {
		size_t len = strlen(e->d_name);
		char id[VR_UUID_LEN + 1];
		if (len != VR_UUID_LEN + 4 || strcmp(e->d_name + VR_UUID_LEN, ".ini") != 0)
			continue;
		memcpy(id, e->d_name, VR_UUID_LEN);
		id[VR_UUID_LEN] = '\0';
		char canon[VR_UUID_LEN + 1];
		if (vr_uuid_canon(canon, id) || strcmp(canon, id) != 0)
			continue;
		ids = vr_realloc(ids, (n + 1) * sizeof *ids);
		ids[n++] = vr_strdup(id);
	}
	closedir(d);
	if (n)
		qsort(ids, n, sizeof *ids, by_text);
	*ids_out = ids;
	*count_out = n;
	return 0;
}

int vr_agent_repl_find(const char *state_dir, const char *what, char id_out[VR_UUID_LEN + 1])
{
	id_out[0] = '\0';
	char canon[VR_UUID_LEN + 1];
	char **ids;
	size_t n;
	if (vr_agent_repl_list(state_dir, &ids, &n))
		return VR_EIO;
	bool is_id = vr_uuid_canon(canon, what) == 0;
	int rc = VR_ENOTFOUND;
	for (size_t i = 0; i < n; i++) {
		struct vr_agent_repl r;
		if (is_id && strcmp(ids[i], canon) == 0) {
			snprintf(id_out, VR_UUID_LEN + 1, "%s", ids[i]);
			rc = 0;
		} else if (!is_id && vr_agent_repl_load(&r, state_dir, ids[i], NULL) == 0) {
			if (strcmp(r.vm_name, what) == 0) {
				rc = rc == 0 ? VR_ECONFLICT : rc == VR_ECONFLICT ? rc : 0;
				if (!id_out[0])
					snprintf(id_out, VR_UUID_LEN + 1, "%s", ids[i]);
			}
			vr_agent_repl_free(&r);
		}
	}
	for (size_t i = 0; i < n; i++)
		free(ids[i]);
	free(ids);
	return rc;
}

void vr_agent_repl_remove(const char *state_dir, const char *id)
{
	static const char *const suffixes[] = {".ini", ".progress", ".lock"};
	for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
		char *path = vr_agent_repl_path(state_dir, id, suffixes[i]);
		unlink(path);
		free(path);
	}
	char *spool = vr_agent_spool_path(state_dir, id);
	unlink(spool);
	char *tmp = vr_asprintf("%s.tmp", spool);
	unlink(tmp);
	free(tmp);
	free(spool);
}

int vr_agent_repl_lock(const char *state_dir, const char *id, int *fd_out)
{
	char *dir = vr_asprintf("%s/%s", state_dir, VR_AGENT_REPL_DIR);
	if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
		free(dir);
		return VR_EIO;
	}
	free(dir);
	char *path = vr_agent_repl_path(state_dir, id, ".lock");
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	free(path);
	if (fd < 0)
		return VR_EIO;
	if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		int busy = errno == EWOULDBLOCK;
		close(fd);
		return busy ? VR_ECONFLICT : VR_EIO;
	}
	*fd_out = fd;
	return 0;
}

void vr_agent_repl_add_duration(struct vr_agent_repl *r, uint32_t ms)
{
	unsigned n = r->nrecent < VR_AGENT_RECENT ? r->nrecent + 1 : VR_AGENT_RECENT;
	memmove(r->recent_ms + 1, r->recent_ms, (n - 1) * sizeof r->recent_ms[0]);
	r->recent_ms[0] = ms;
	r->nrecent = n;
}

/* The state's write lock: flock of the replications directory, held while a
 * state file is read, changed and written again. Returns the fd or -1. */
static int write_lock(const char *state_dir)
{
	char *dir = vr_asprintf("%s/%s", state_dir, VR_AGENT_REPL_DIR);
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	free(dir);
	if (fd < 0)
		return -1;
	while (flock(fd, LOCK_EX) != 0) {
		if (errno != EINTR) {
			close(fd);
			return -1;
		}
	}
	return fd;
}

static bool retention_valid(const char *v)
{
	/* COUNTxMINUTES[,COUNTxMINUTES...], or empty */
	if (!*v)
		return true;
	for (;;) {
		size_t count = strspn(v, "0123456789");
		if (!count || count > 4 || v[count] != 'x')
			return false;
		v += count + 1;
		size_t minutes = strspn(v, "0123456789");
		if (!minutes || minutes > 7)
			return false;
		v += minutes;
		if (!*v)
			return true;
		if (*v++ != ',')
			return false;
	}
}

static int settings_apply(struct vr_agent_repl *r, const struct vr_agent_settings *set,
			  bool *changed, char **error_out)
{
	uint64_t rpo = r->rpo;
	bool quiesce = r->quiesce, compress = r->compress;
	if ((set->rpo && (!to_u64(set->rpo, &rpo) || rpo < 1 || rpo > 1440)) ||
	    (set->quiesce && !to_bool(set->quiesce, &quiesce)) ||
	    (set->compress && !to_bool(set->compress, &compress)) ||
	    (set->retention && (strlen(set->retention) > 1000 ||
				!retention_valid(set->retention)))) {
		*error_out = vr_asprintf("replication %s: the new settings are not valid (rpo=%s "
					 "quiesce=%s compress=%s retention=%.100s)",
					 r->id, set->rpo ? set->rpo : "-",
					 set->quiesce ? set->quiesce : "-",
					 set->compress ? set->compress : "-",
					 set->retention ? set->retention : "-");
		return VR_EINVAL;
	}
	const char *old = r->retention ? r->retention : "";
	*changed = rpo != r->rpo || quiesce != r->quiesce || compress != r->compress ||
		   (set->retention && strcmp(set->retention, old) != 0);
	r->rpo = (unsigned)rpo;
	r->quiesce = quiesce;
	r->compress = compress;
	if (set->retention)
		set_str(&r->retention, set->retention);
	return 0;
}

int vr_agent_repl_configure(const char *state_dir, const char *id,
			    const struct vr_agent_settings *set, bool *changed_out,
			    char **error_out)
{
	*changed_out = false;
	*error_out = NULL;
	int lock = write_lock(state_dir);
	struct vr_agent_repl r;
	int rc = vr_agent_repl_load(&r, state_dir, id, error_out);
	if (!rc) {
		rc = settings_apply(&r, set, changed_out, error_out);
		if (!rc && *changed_out)
			rc = vr_agent_repl_save(&r, state_dir, error_out);
		vr_agent_repl_free(&r);
	}
	if (lock >= 0)
		close(lock);
	return rc;
}

int vr_agent_repl_save_synced(struct vr_agent_repl *r, const char *state_dir, char **error_out)
{
	int lock = write_lock(state_dir);
	struct vr_agent_repl now;
	if (vr_agent_repl_load(&now, state_dir, r->id, NULL) == 0) {
		r->rpo = now.rpo;
		r->quiesce = now.quiesce;
		r->compress = now.compress;
		free(r->retention);
		r->retention = now.retention;
		now.retention = NULL;
		vr_agent_repl_free(&now);
	}
	int rc = vr_agent_repl_save(r, state_dir, error_out);
	if (lock >= 0)
		close(lock);
	return rc;
}

/* The VM directory of a protected VM (DESIGN.md section 5, docs/agent.md):
 * VMDIR/vm.ini names the VM and its disks, one raw image per disk, each
 * with its changed-block log beside it (FILE.cbt). */
#include <errno.h>
#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "vrcloud/agent_sync.h"
#include "vrcloud/alloc.h"
#include "vrcloud/err.h"

struct parse {
	struct vr_vm *vm;
	char *error;
	bool have_size[VR_VM_MAX_DISKS];
	bool seen_vm;
};

/* Keep the first reason (owned); stops the parse. */
static int failed(struct parse *p, char *reason)
{
	if (!p->error)
		p->error = reason;
	else
		free(reason);
	return 0;
}

/* The decimal device key of a "disk KEY" section, or -1. */
static long long section_key(const char *section)
{
	if (strncmp(section, "disk ", 5) != 0)
		return -1;
	const char *k = section + 5;
	if (!*k || strlen(k) > 10 || (k[0] == '0' && k[1]))
		return -1;
	long long v = 0;
	for (; *k; k++) {
		if (*k < '0' || *k > '9')
			return -1;
		v = v * 10 + (*k - '0');
	}
	return v <= VR_VM_MAX_KEY ? v : -1;
}

static int parse_size(const char *value, uint64_t *out)
{
	char *end;
	errno = 0;
	if (!*value || *value == '-')
		return VR_EINVAL;
	unsigned long long v = strtoull(value, &end, 10);
	if (errno || *end || v == 0 || v % VR_TX_BLOCK || v > VR_TX_MAX_DISK_BYTES)
		return VR_EINVAL;
	*out = v;
	return 0;
}

static struct vr_vm_disk *disk_for(struct parse *p, long long key, size_t *index)
{
	struct vr_vm *vm = p->vm;
	for (size_t i = 0; i < vm->ndisks; i++)
		if (vm->disks[i].device_key == (uint32_t)key) {
			*index = i;
			return &vm->disks[i];
		}
	if (vm->ndisks == VR_VM_MAX_DISKS)
		return NULL;
	struct vr_vm_disk *d = &vm->disks[vm->ndisks];
	d->device_key = (uint32_t)key;
	snprintf(d->key, sizeof d->key, "%lld", key);
	*index = vm->ndisks++;
	return d;
}

static int on_value(void *user, const char *section, const char *name, const char *value)
{
	struct parse *p = user;
	struct vr_vm *vm = p->vm;
	if (p->error)
		return 0;
	if (strcmp(section, "vm") == 0) {
		p->seen_vm = true;
		if (strcmp(name, "name") == 0) {
			size_t len = strlen(value);
			if (!len || len > VR_VM_MAX_NAME)
				return failed(p, vr_asprintf("name must be 1 to 255 characters"));
			for (const char *c = value; *c; c++)
				if ((unsigned char)*c < 0x20 || *c == 0x7f)
					return failed(p,
						      vr_asprintf("name has a control character"));
			free(vm->name);
			vm->name = vr_strdup(value);
		} else if (strcmp(name, "power") == 0) {
			if (strcmp(value, "on") && strcmp(value, "off"))
				return failed(p, vr_asprintf("power must be on or off, not '%s'",
							     value));
			vm->power_on = strcmp(value, "on") == 0;
		} else {
			return failed(p, vr_asprintf("unknown key '%s' in [vm]", name));
		}
		return 1;
	}
	long long key = section_key(section);
	if (key < 0)
		return failed(
			p,
			vr_asprintf(
				"unknown section [%s] (want [vm] or [disk KEY], KEY 0 to 2147483647)",
				section));
	size_t index;
	struct vr_vm_disk *d = disk_for(p, key, &index);
	if (!d)
		return failed(p, vr_asprintf("more than 64 disks"));
	if (strcmp(name, "file") == 0) {
		if (!*value || d->file)
			return failed(p, vr_asprintf("[%s] needs one non-empty file", section));
		d->file = vr_strdup(value);
	} else if (strcmp(name, "size") == 0) {
		if (parse_size(value, &d->size))
			return failed(
				p,
				vr_asprintf(
					"size '%s' is not a positive multiple of 4096 (at most 64 TiB)",
					value));
		p->have_size[index] = true;
	} else {
		return failed(p, vr_asprintf("unknown key '%s' in [%s]", name, section));
	}
	return 1;
}

static int by_key(const void *a, const void *b)
{
	const struct vr_vm_disk *x = a, *y = b;
	return x->device_key < y->device_key ? -1 : x->device_key > y->device_key;
}

/* Paths, default sizes and the checks of the whole file. */
static char *finish(struct parse *p)
{
	struct vr_vm *vm = p->vm;
	if (!vm->name)
		return vr_asprintf("%s/%s: [vm] name is required", vm->dir, VR_VM_FILE);
	if (!vm->ndisks)
		return vr_asprintf("%s/%s: no [disk KEY] section", vm->dir, VR_VM_FILE);
	for (size_t i = 0; i < vm->ndisks; i++) {
		struct vr_vm_disk *d = &vm->disks[i];
		if (!d->file)
			return vr_asprintf("%s/%s: [disk %s] has no file", vm->dir, VR_VM_FILE,
					   d->key);
		d->path = d->file[0] == '/' ? vr_strdup(d->file)
					    : vr_asprintf("%s/%s", vm->dir, d->file);
		d->cbt_path = vr_asprintf("%s.cbt", d->path);
		if (!p->have_size[i]) {
			struct stat st;
			if (stat(d->path, &st) != 0)
				return vr_asprintf("[disk %s] %s: %s (and no size is given)",
						   d->key, d->path, strerror(errno));
			if (!S_ISREG(st.st_mode) || st.st_size <= 0 ||
			    (uint64_t)st.st_size % VR_TX_BLOCK ||
			    (uint64_t)st.st_size > VR_TX_MAX_DISK_BYTES)
				return vr_asprintf("[disk %s] %s is not a raw image of a positive "
						   "multiple of 4096 bytes",
						   d->key, d->path);
			d->size = (uint64_t)st.st_size;
		}
	}
	qsort(vm->disks, vm->ndisks, sizeof vm->disks[0], by_key);
	for (size_t i = 0; i < vm->ndisks; i++)
		for (size_t j = i + 1; j < vm->ndisks; j++)
			if (strcmp(vm->disks[i].path, vm->disks[j].path) == 0)
				return vr_asprintf("%s/%s: disks %s and %s name the same file",
						   vm->dir, VR_VM_FILE, vm->disks[i].key,
						   vm->disks[j].key);
	return NULL;
}

int vr_vm_load(struct vr_vm *vm, const char *dir, char **error_out)
{
	memset(vm, 0, sizeof *vm);
	*error_out = NULL;
	size_t len = strlen(dir);
	while (len > 1 && dir[len - 1] == '/')
		len--;
	vm->dir = vr_strndup(dir, len);
	char *path = vr_asprintf("%s/%s", vm->dir, VR_VM_FILE);
	FILE *f = fopen(path, "r");
	if (!f) {
		int missing = errno == ENOENT;
		*error_out = vr_asprintf("%s: %s", path, strerror(errno));
		free(path);
		vr_vm_free(vm);
		return missing ? VR_ENOTFOUND : VR_EIO;
	}
	struct parse p = {.vm = vm};
	int line = ini_parse_file(f, on_value, &p);
	fclose(f);
	if (p.error && line > 0) {
		char *reason = vr_asprintf("%s line %d: %s", path, line, p.error);
		free(p.error);
		p.error = reason;
	} else if (!p.error && line > 0) {
		p.error = vr_asprintf("%s line %d: not an INI line", path, line);
	} else if (!p.error && line < 0) {
		p.error = vr_asprintf("%s: cannot be read", path);
	}
	free(path);
	if (!p.error)
		p.error = finish(&p);
	if (p.error) {
		*error_out = p.error;
		vr_vm_free(vm);
		return VR_EINVAL;
	}
	return 0;
}

void vr_vm_free(struct vr_vm *vm)
{
	if (!vm)
		return;
	for (size_t i = 0; i < vm->ndisks; i++) {
		free(vm->disks[i].file);
		free(vm->disks[i].path);
		free(vm->disks[i].cbt_path);
	}
	free(vm->dir);
	free(vm->name);
	memset(vm, 0, sizeof *vm);
}

const struct vr_vm_disk *vr_vm_disk_find(const struct vr_vm *vm, const char *key)
{
	for (size_t i = 0; i < vm->ndisks; i++)
		if (strcmp(vm->disks[i].key, key) == 0)
			return &vm->disks[i];
	return NULL;
}

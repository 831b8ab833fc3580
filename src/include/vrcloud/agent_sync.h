/* vrcloud-agent, data side (docs/agent.md): the VMs a site protects, the
 * state it keeps per replication, the sender of instances (changed-block
 * log -> spool -> transfer encoder over a data connection) and the
 * schedule that holds each replication's RPO. */
#ifndef VRCLOUD_AGENT_SYNC_H
#define VRCLOUD_AGENT_SYNC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vrcloud/agent.h"
#include "vrcloud/transfer.h"
#include "vrcloud/uuid.h"

/* --- the VM directory (VMDIR/vm.ini) ----------------------------------- */

#define VR_VM_FILE	"vm.ini"
#define VR_VM_MAX_NAME	255
#define VR_VM_MAX_DISKS VR_TX_MAX_DISKS
#define VR_VM_MAX_KEY	2147483647u

struct vr_vm_disk {
	char key[16]; /* the decimal device key, e.g. "2000" */
	uint32_t device_key;
	char *file;	/* as vm.ini names it */
	char *path;	/* VMDIR/file, or file when absolute */
	char *cbt_path; /* path + ".cbt" */
	uint64_t size;	/* bytes, a multiple of 4096 */
};

struct vr_vm {
	char *dir;
	char *name;
	bool power_on;
	size_t ndisks;
	struct vr_vm_disk disks[VR_VM_MAX_DISKS]; /* in device key order */
};

/* Read dir/vm.ini: [vm] name (required), power (on|off, default off);
 * [disk KEY] file (required), size (default the file's size). Refused with
 * VR_EINVAL and *error_out (caller frees): unknown sections or keys, a key
 * that is not 0 to 2147483647, a repeated key or file, no disks or more than
 * 64, a size that is not a positive multiple of 4096, a disk file without a
 * size that does not exist; VR_ENOTFOUND without vm.ini, VR_EIO. */
int vr_vm_load(struct vr_vm *vm, const char *dir, char **error_out);
void vr_vm_free(struct vr_vm *vm);
/* The disk with that device key, or NULL. */
const struct vr_vm_disk *vr_vm_disk_find(const struct vr_vm *vm, const char *key);

#endif

/* vrcloud-agent protect and unprotect (docs/agent.md). */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "agent-commands.h"
#include "vrcloud/agent.h"
#include "vrcloud/agent_sync.h"
#include "vrcloud/alloc.h"
#include "vrcloud/buf.h"
#include "vrcloud/err.h"
#include "vrcloud/log.h"
#include "vrcloud/xml.h"

enum { EXIT_RUNTIME = 1, EXIT_USAGE = 2, EXIT_CONFIG = 3, EXIT_REFUSED = 4, EXIT_FAILED = 5 };

#define SPEC_TYPE "Content-Type: application/vnd.vmware.hcs.replicationGroupSpecParams+xml"

char *vr_agent_cmd_read_secret(const char *path)
{
	FILE *f = path ? fopen(path, "r") : stdin;
	if (!f)
		return NULL;
	char *line = NULL;
	size_t cap = 0;
	ssize_t n = getline(&line, &cap, f);
	if (path)
		fclose(f);
	if (n < 0) {
		free(line);
		return NULL;
	}
	while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r' || line[n - 1] == ' '))
		line[--n] = '\0';
	return line;
}

/* --- site.ini ------------------------------------------------------------- */

struct site {
	char peer_id[VR_UUID_LEN + 1];
	char vdc[VR_UUID_LEN + 1];
	char api_url[1024]; /* as value: NUL-terminated by sscanf */
};

static void site_read(struct site *s, const char *dir)
{
	memset(s, 0, sizeof *s);
	char *path = vr_asprintf("%s/%s", dir, VR_AGENT_SITE_FILE);
	FILE *f = fopen(path, "r");
	free(path);
	if (!f)
		return;
	char line[1200], value[1024];
	while (fgets(line, sizeof line, f)) {
		if (sscanf(line, "peer_id = %1023s", value) == 1 &&
		    vr_uuid_canon(s->peer_id, value))
			s->peer_id[0] = '\0';
		else if (sscanf(line, "vdc = %1023s", value) == 1 && vr_uuid_canon(s->vdc, value))
			s->vdc[0] = '\0';
		else if (sscanf(line, "api_url = %1023s", value) == 1)
			memcpy(s->api_url, value, sizeof s->api_url);
	}
	fclose(f);
}

/* --- the API session of protect and unprotect ------------------------------- */

struct login {
	const char *api_url, *user, *password_file, *ca_file, *state_dir;
	unsigned timeout;
	char api[1024];
};

static int api_open(struct vr_agent_api **api, struct login *l, const char *cmd)
{
	struct site site;
	site_read(&site, l->state_dir);
	const char *url = l->api_url ? l->api_url : site.api_url[0] ? site.api_url : NULL;
	if (!url || !l->user || !strchr(l->user, '@')) {
		fprintf(stderr,
			"vrcloud-agent %s: --user USER@ORG is required, and --api URL unless "
			"%s/%s names it\n",
			cmd, l->state_dir, VR_AGENT_SITE_FILE);
		return EXIT_USAGE;
	}
	snprintf(l->api, sizeof l->api, "%s", url);
	for (size_t n = strlen(l->api); n > 0 && l->api[n - 1] == '/'; n--)
		l->api[n - 1] = '\0';
	char *password = vr_agent_cmd_read_secret(l->password_file);
	if (!password) {
		fprintf(stderr, "vrcloud-agent %s: cannot read the password from %s\n", cmd,
			l->password_file ? l->password_file : "standard input");
		return EXIT_CONFIG;
	}
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		free(password);
		fprintf(stderr, "vrcloud-agent %s: cannot start the HTTP client\n", cmd);
		return EXIT_RUNTIME;
	}
	vr_xml_global_init();
	struct vr_agent_api_options o = {l->api, l->ca_file, l->user, password};
	char *error = NULL;
	int rc = vr_agent_api_open(api, &o, &error);
	explicit_bzero(password, strlen(password));
	free(password);
	if (rc) {
		fprintf(stderr, "vrcloud-agent %s: %s\n", cmd, error ? error : "cannot log in");
		free(error);
		vr_xml_global_cleanup();
		curl_global_cleanup();
	}
	return rc;
}

static void api_close(struct vr_agent_api *api)
{
	vr_agent_api_close(api);
	vr_xml_global_cleanup();
	curl_global_cleanup();
}

/* --- protect ------------------------------------------------------------ */

#define MAX_RULES 16

struct rules {
	unsigned n;
	unsigned long instances[MAX_RULES], minutes[MAX_RULES];
};

/* "24x60,7x1440": COUNTxMINUTES per rule. false when malformed. */
static bool rules_parse(struct rules *r, const char *text)
{
	r->n = 0;
	for (const char *p = text; *p;) {
		char *end;
		unsigned long n = strtoul(p, &end, 10);
		if (end == p || (*end != 'x' && *end != 'X') || r->n == MAX_RULES)
			return false;
		const char *q = end + 1;
		unsigned long d = strtoul(q, &end, 10);
		if (end == q || (*end && *end != ',') || n < 1 || n > 1024 || d < 5 || d > 525600)
			return false;
		r->instances[r->n] = n;
		r->minutes[r->n++] = d;
		p = *end ? end + 1 : end;
	}
	return r->n > 0;
}

/* The ReplicationGroupSpecParams of the VM (caller frees). */
static char *spec_xml(const struct vr_vm *vm, const char *peer, unsigned rpo, bool quiesce,
		      bool compress, const struct rules *rules)
{
	struct vr_xml *w = vr_xml_new();
	vr_xml_start(w, "ReplicationGroupSpecParams");
	vr_xml_attr(w, "xmlns", "http://www.vmware.com/vr/v6.0");
	if (peer && peer[0])
		vr_xml_elem(w, "PeerId", peer);
	vr_xml_elem(w, "VmName", vm->name);
	vr_xml_elemf(w, "Rpo", "%u", rpo);
	vr_xml_elem_bool(w, "QuiesceGuestEnabled", quiesce);
	vr_xml_elem_bool(w, "NetworkCompressionEnabled", compress);
	for (size_t i = 0; i < vm->ndisks; i++) {
		const char *base = strrchr(vm->disks[i].file, '/');
		char name[256];
		snprintf(name, sizeof name, "%s", base ? base + 1 : vm->disks[i].file);
		vr_xml_start(w, "Disk");
		vr_xml_elem(w, "DeviceKey", vm->disks[i].key);
		vr_xml_elem(w, "Name", name);
		vr_xml_elemf(w, "SizeBytes", "%" PRIu64, vm->disks[i].size);
		vr_xml_end(w);
	}
	if (rules) {
		vr_xml_start(w, "RetentionPolicy");
		for (unsigned i = 0; i < rules->n; i++) {
			vr_xml_start(w, "Rule");
			vr_xml_elemf(w, "NumberOfInstances", "%lu", rules->instances[i]);
			vr_xml_elemf(w, "DistanceMinutes", "%lu", rules->minutes[i]);
			vr_xml_end(w);
		}
		vr_xml_end(w);
	}
	vr_xml_end(w);
	struct vr_buf out;
	vr_buf_init(&out, 0);
	if (vr_xml_finish(w, &out)) {
		vr_buf_free(&out);
		return NULL;
	}
	return vr_buf_take(&out, NULL);
}

static void protect_usage(FILE *out)
{
	fputs("Usage: vrcloud-agent protect VMDIR --rpo MIN --user USER@ORG [OPTION]...\n"
	      "Protect the VM of VMDIR (its vm.ini names the VM and its disks): configure its\n"
	      "replication through vrcloud-api, wait for the configuration Task to succeed and\n"
	      "keep the replication's state in the state directory. The daemon then syncs it\n"
	      "by its RPO; the first sync is a full one that compares hashes with the replica.\n"
	      "\n"
	      "      --vdc VDC_ID         the VDC (default: the one site.ini names)\n"
	      "      --rpo MIN            recovery point objective, 1 to 1440 minutes (required)\n"
	      "      --quiesce            run the freeze and thaw hooks around each instance\n"
	      "      --compress           compress the blocks on the wire\n"
	      "      --retention RULES    instances to keep, e.g. 24x60,7x1440 (count x minutes)\n"
	      "      --freeze-cmd CMD     shell command that quiesces the VM (with --quiesce)\n"
	      "      --thaw-cmd CMD       shell command that lets it go on (with --quiesce)\n"
	      "  -a, --api URL            vrcloud-api's base URL (default: site.ini's)\n"
	      "  -u, --user USER@ORG      a user of the VDC's organization (required)\n"
	      "  -w, --password-file FILE read the password from FILE (default: standard input)\n"
	      "  -d, --state-dir DIR      the agent's state directory (default " VR_AGENT_STATE_DIR
	      ")\n"
	      "      --ca-file FILE       CA certificates of an https API\n"
	      "      --timeout S          seconds the configuration Task may take (default 120)\n"
	      "  -h, --help               show this help and exit\n"
	      "\n"
	      "Prints replication=ID on success. Exit status: 0 protected, 1 the API could not\n"
	      "be reached, 2 bad usage, 3 VMDIR or the state directory unusable, 4 the API\n"
	      "refused, 5 the configuration Task failed or timed out.\n",
	      out);
}

enum {
	OPT_VDC = 400,
	OPT_RPO,
	OPT_QUIESCE,
	OPT_COMPRESS,
	OPT_RETENTION,
	OPT_FREEZE,
	OPT_THAW,
	OPT_CA,
	OPT_TIMEOUT,
	OPT_LOCAL,
};

static bool parse_uint(const char *s, unsigned lo, unsigned hi, unsigned *out)
{
	char *end;
	errno = 0;
	unsigned long v = strtoul(s, &end, 10);
	if (errno || end == s || *end || *s == '-' || v < lo || v > hi)
		return false;
	*out = (unsigned)v;
	return true;
}

static const struct option login_options[] = {
	{"api", required_argument, NULL, 'a'},
	{"user", required_argument, NULL, 'u'},
	{"password-file", required_argument, NULL, 'w'},
	{"state-dir", required_argument, NULL, 'd'},
	{"ca-file", required_argument, NULL, OPT_CA},
	{"timeout", required_argument, NULL, OPT_TIMEOUT},
};

/* A login option; false when opt is none. */
static bool login_option(struct login *l, int opt, bool *bad)
{
	switch (opt) {
	case 'a': l->api_url = optarg; return true;
	case 'u': l->user = optarg; return true;
	case 'w': l->password_file = optarg; return true;
	case 'd': l->state_dir = optarg; return true;
	case OPT_CA: l->ca_file = optarg; return true;
	case OPT_TIMEOUT:
		if (!parse_uint(optarg, 1, 86400, &l->timeout))
			*bad = true;
		return true;
	default: return false;
	}
}

static int protect_post(struct vr_agent_api *api, const struct login *l, const char *vdc,
			const char *body, char id[VR_UUID_LEN + 1])
{
	char *path = vr_asprintf("/api/vdc/%s/replications", vdc);
	struct vr_agent_answer a;
	char *error = NULL;
	int rc = vr_agent_api_call(api, "POST", path, body, SPEC_TYPE, &a, &error);
	free(path);
	char status[32], task[1024] = "";
	if (!rc && a.status != 202) {
		rc = vr_agent_api_refused(&a, "configuring the replication", &error);
	} else if (!rc) {
		if (vr_agent_task_read(&a, status, sizeof status, id, NULL, 0) || !id[0] ||
		    !a.location[0]) {
			vr_agent_fail(&error, "the answer names no replication or no Task");
			rc = VR_AGENT_PAIR_UNAVAILABLE;
		}
		snprintf(task, sizeof task, "%s", a.location);
	} else {
		rc = VR_AGENT_PAIR_UNAVAILABLE;
	}
	vr_agent_answer_free(&a);
	if (!rc) {
		fprintf(stderr,
			"vrcloud-agent protect: replication %s configured; waiting for its Task\n",
			id);
		rc = vr_agent_api_follow_task(api, task, l->timeout, "configuration", &error);
	}
	if (rc)
		fprintf(stderr, "vrcloud-agent protect: %s\n", error ? error : "failed");
	free(error);
	return rc;
}

int vr_agent_cmd_protect(int argc, char **argv)
{
	struct option options[32] = {
		{"vdc", required_argument, NULL, OPT_VDC},
		{"rpo", required_argument, NULL, OPT_RPO},
		{"quiesce", no_argument, NULL, OPT_QUIESCE},
		{"compress", no_argument, NULL, OPT_COMPRESS},
		{"retention", required_argument, NULL, OPT_RETENTION},
		{"freeze-cmd", required_argument, NULL, OPT_FREEZE},
		{"thaw-cmd", required_argument, NULL, OPT_THAW},
		{"help", no_argument, NULL, 'h'},
	};
	memcpy(options + 8, login_options, sizeof login_options);
	struct login l = {.state_dir = VR_AGENT_STATE_DIR, .timeout = 120};
	const char *vdc_arg = NULL, *retention = NULL, *freeze = NULL, *thaw = NULL;
	unsigned rpo = 0;
	bool quiesce = false, compress = false, bad = false;
	int opt;
	while ((opt = getopt_long(argc, argv, "a:u:w:d:h", options, NULL)) != -1) {
		if (login_option(&l, opt, &bad))
			continue;
		switch (opt) {
		case OPT_VDC: vdc_arg = optarg; break;
		case OPT_RPO: bad |= !parse_uint(optarg, 1, 1440, &rpo); break;
		case OPT_QUIESCE: quiesce = true; break;
		case OPT_COMPRESS: compress = true; break;
		case OPT_RETENTION: retention = optarg; break;
		case OPT_FREEZE: freeze = optarg; break;
		case OPT_THAW: thaw = optarg; break;
		case 'h': protect_usage(stdout); return 0;
		default: protect_usage(stderr); return EXIT_USAGE;
		}
	}
	struct rules parsed;
	bool rules_ok = !retention || rules_parse(&parsed, retention);
	const struct rules *rules = retention && rules_ok ? &parsed : NULL;
	if ((freeze && strpbrk(freeze, "\r\n")) || (thaw && strpbrk(thaw, "\r\n"))) {
		fprintf(stderr, "vrcloud-agent protect: a hook command is one line\n");
		return EXIT_USAGE;
	}
	if (bad || optind + 1 != argc || !rpo || !rules_ok || ((freeze || thaw) && !quiesce)) {
		fprintf(stderr, "vrcloud-agent protect: %s (see --help)\n",
			bad || !rpo ? "--rpo wants 1 to 1440 minutes, --timeout 1 to 86400 seconds"
			: optind + 1 != argc ? "one VMDIR is required"
			: !rules_ok
				? "--retention wants COUNTxMINUTES[,...], count 1 to 1024, minutes "
				  "5 to 525600"
				: "--freeze-cmd and --thaw-cmd go with --quiesce");
		return EXIT_USAGE;
	}
	struct vr_vm vm;
	char *error = NULL;
	if (vr_vm_load(&vm, argv[optind], &error)) {
		fprintf(stderr, "vrcloud-agent protect: %s\n", error);
		free(error);
		return EXIT_CONFIG;
	}
	struct site site;
	site_read(&site, l.state_dir);
	char vdc[VR_UUID_LEN + 1];
	if (vr_uuid_canon(vdc, vdc_arg ? vdc_arg : site.vdc)) {
		fprintf(stderr,
			"vrcloud-agent protect: --vdc wants the VDC's id (site.ini in %s "
			"names none)\n",
			l.state_dir);
		vr_vm_free(&vm);
		return EXIT_USAGE;
	}
	char dir[4096];
	if (!realpath(vm.dir, dir))
		snprintf(dir, sizeof dir, "%s", vm.dir);
	char existing[VR_UUID_LEN + 1];
	if (vr_agent_repl_find(l.state_dir, vm.name, existing) != VR_ENOTFOUND) {
		fprintf(stderr, "vrcloud-agent protect: %s is protected already (replication %s)\n",
			vm.name, existing);
		vr_vm_free(&vm);
		return EXIT_REFUSED;
	}
	struct vr_agent_api *api = NULL;
	int rc = api_open(&api, &l, "protect");
	char id[VR_UUID_LEN + 1] = "";
	if (!rc) {
		char *body = spec_xml(&vm, strcmp(site.vdc, vdc) == 0 ? site.peer_id : NULL, rpo,
				      quiesce, compress, rules);
		rc = body ? protect_post(api, &l, vdc, body, id) : VR_AGENT_PAIR_UNAVAILABLE;
		free(body);
		api_close(api);
	}
	if (!rc) {
		struct vr_agent_repl r;
		memset(&r, 0, sizeof r);
		snprintf(r.id, sizeof r.id, "%s", id);
		r.vm_name = vr_strdup(vm.name);
		r.vmdir = vr_strdup(dir);
		r.vdc = vr_strdup(vdc);
		r.retention = retention ? vr_strdup(retention) : NULL;
		r.freeze_cmd = freeze ? vr_strdup(freeze) : NULL;
		r.thaw_cmd = thaw ? vr_strdup(thaw) : NULL;
		r.rpo = rpo;
		r.quiesce = quiesce;
		r.compress = compress;
		r.ndisks = vm.ndisks;
		for (size_t i = 0; i < vm.ndisks; i++) {
			snprintf(r.disks[i].key, sizeof r.disks[i].key, "%s", vm.disks[i].key);
			r.disks[i].size = vm.disks[i].size;
		}
		if (vr_agent_repl_save(&r, l.state_dir, &error)) {
			fprintf(stderr, "vrcloud-agent protect: %s\n", error);
			free(error);
			rc = EXIT_CONFIG;
		} else {
			printf("replication=%s\nvm=%s\n", id, vm.name);
		}
		vr_agent_repl_free(&r);
	}
	vr_vm_free(&vm);
	return rc;
}

/* --- unprotect ------------------------------------------------------------ */

static void unprotect_usage(FILE *out)
{
	fputs("Usage: vrcloud-agent unprotect VM --user USER@ORG [OPTION]...\n"
	      "Stop protecting VM (its name or replication id): remove its replication through\n"
	      "vrcloud-api (DELETE /api/vr/replications/{id}: the replica and its instances go),\n"
	      "wait for the Task, then remove the agent's state of it. A replication the API\n"
	      "no longer knows is removed locally only.\n"
	      "\n"
	      "      --local-only         remove the local state only, leave the cloud alone\n"
	      "  -a, --api URL            vrcloud-api's base URL (default: site.ini's)\n"
	      "  -u, --user USER@ORG      a user of the VDC's organization\n"
	      "  -w, --password-file FILE read the password from FILE (default: standard input)\n"
	      "  -d, --state-dir DIR      the agent's state directory (default " VR_AGENT_STATE_DIR
	      ")\n"
	      "      --ca-file FILE       CA certificates of an https API\n"
	      "      --timeout S          seconds the removal Task may take (default 120)\n"
	      "  -h, --help               show this help and exit\n",
	      out);
}

static int unprotect_remote(struct vr_agent_api *api, const struct login *l, const char *id)
{
	char *path = vr_asprintf("/api/vr/replications/%s", id);
	struct vr_agent_answer a;
	char *error = NULL;
	int rc = vr_agent_api_call(api, "DELETE", path, NULL, NULL, &a, &error);
	free(path);
	char task[1024] = "";
	if (!rc && a.status == 404) {
		fprintf(stderr, "vrcloud-agent unprotect: the cloud has no replication %s\n", id);
	} else if (!rc && a.status != 202) {
		rc = vr_agent_api_refused(&a, "removing the replication", &error);
	} else if (!rc) {
		snprintf(task, sizeof task, "%s", a.location);
	} else {
		rc = VR_AGENT_PAIR_UNAVAILABLE;
	}
	vr_agent_answer_free(&a);
	if (!rc && task[0])
		rc = vr_agent_api_follow_task(api, task, l->timeout, "removal", &error);
	if (rc)
		fprintf(stderr, "vrcloud-agent unprotect: %s\n", error ? error : "failed");
	free(error);
	return rc;
}

int vr_agent_cmd_unprotect(int argc, char **argv)
{
	struct option options[16] = {
		{"local-only", no_argument, NULL, OPT_LOCAL},
		{"help", no_argument, NULL, 'h'},
	};
	memcpy(options + 2, login_options, sizeof login_options);
	struct login l = {.state_dir = VR_AGENT_STATE_DIR, .timeout = 120};
	bool local = false, bad = false;
	int opt;
	while ((opt = getopt_long(argc, argv, "a:u:w:d:h", options, NULL)) != -1) {
		if (login_option(&l, opt, &bad))
			continue;
		if (opt == OPT_LOCAL) {
			local = true;
		} else if (opt == 'h') {
			unprotect_usage(stdout);
			return 0;
		} else {
			unprotect_usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (bad || optind + 1 != argc) {
		unprotect_usage(stderr);
		return EXIT_USAGE;
	}
	char id[VR_UUID_LEN + 1];
	int found = vr_agent_repl_find(l.state_dir, argv[optind], id);
	if (found) {
		fprintf(stderr, "vrcloud-agent unprotect: %s\n",
			found == VR_ECONFLICT
				? "several replications have that VM name: name the id"
				: "no such protected VM here");
		return EXIT_USAGE;
	}
	int rc = 0;
	if (!local) {
		struct vr_agent_api *api = NULL;
		rc = api_open(&api, &l, "unprotect");
		if (!rc) {
			rc = unprotect_remote(api, &l, id);
			api_close(api);
		}
	}
	if (rc)
		return rc;
	int lock = -1;
	while (vr_agent_repl_lock(l.state_dir, id, &lock) == VR_ECONFLICT)
		sleep(1); /* a sync in flight ends first */
	vr_agent_repl_remove(l.state_dir, id);
	if (lock >= 0)
		close(lock);
	printf("unprotected=%s\n", id);
	return 0;
}

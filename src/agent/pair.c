/* vrcloud-agent pair: pair the site with a VDC through the API (docs/tunnels.md,
 * "Pairing"): log in, POST PairVcWithVdcParams, keep the one-time site
 * credential (mode 0600) and the site's identity in the state directory,
 * follow the Task until it ends, log out. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vrcloud/agent.h"
#include "vrcloud/alloc.h"
#include "vrcloud/err.h"

#define PAIR_TYPE "Content-Type: application/vnd.vmware.hcs.pairVcWithVdcParams+xml"

/* POST the pairing; keeps the credential and the identity. */
static int post_pairing(struct vr_agent_api *s, const struct vr_agent_pair_options *o,
			struct vr_agent_pair_result *r, char **error_out)
{
	char *name = vr_agent_xml_text(o->site_name);
	char *description = vr_agent_xml_text(o->description ? o->description : "");
	char *body = vr_asprintf("<PairVcWithVdcParams xmlns=\"http://www.vmware.com/vr/v6.0\">"
				 "<Description>%s</Description><SiteUuid>%s</SiteUuid>"
				 "<SiteName>%s</SiteName></PairVcWithVdcParams>",
				 description, r->site_uuid, name);
	char *path = vr_asprintf("/api/vdc/%s/peers", o->vdc);
	struct vr_agent_answer a;
	int rc = vr_agent_api_call(s, "POST", path, body, PAIR_TYPE, &a, error_out);
	free(name);
	free(description);
	free(body);
	free(path);
	if (rc) {
		rc = VR_AGENT_PAIR_UNAVAILABLE;
	} else if (a.status != 202) {
		rc = vr_agent_api_refused(&a, "pairing", error_out);
	} else if (!a.credential[0] || !a.location[0]) {
		vr_agent_fail(error_out,
			      "pairing: the answer carries no site credential or no Task");
		rc = VR_AGENT_PAIR_UNAVAILABLE;
	} else {
		char status[32], message[8];
		if (vr_agent_task_read(&a, status, sizeof status, r->peer_id, message,
				       sizeof message) ||
		    !r->peer_id[0]) {
			vr_agent_fail(error_out, "pairing: the Task names no peer");
			rc = VR_AGENT_PAIR_UNAVAILABLE;
		}
		snprintf(r->task_url, sizeof r->task_url, "%s", a.location);
	}
	if (!rc) {
		char *credential = vr_asprintf("%s\n", a.credential);
		rc = vr_agent_file_write(o->state_dir, VR_AGENT_CREDENTIAL_FILE, credential, 0600,
					 error_out);
		explicit_bzero(credential, strlen(credential));
		free(credential);
		char *site = vr_asprintf("# written by vrcloud-agent pair\n[site]\npeer_id = %s\n"
					 "site_uuid = %s\nsite_name = %s\nvdc = %s\napi_url = %s\n",
					 r->peer_id, r->site_uuid, o->site_name, o->vdc,
					 o->api_url);
		if (!rc)
			rc = vr_agent_file_write(o->state_dir, VR_AGENT_SITE_FILE, site, 0644,
						 error_out);
		free(site);
		if (rc)
			rc = VR_AGENT_PAIR_CONFIG;
	}
	vr_agent_answer_free(&a);
	return rc;
}

int vr_agent_pair(const struct vr_agent_pair_options *o, struct vr_agent_pair_result *r,
		  char **error_out)
{
	*error_out = NULL;
	memset(r, 0, sizeof *r);
	if (o->site_uuid) {
		if (vr_uuid_canon(r->site_uuid, o->site_uuid)) {
			vr_agent_fail(error_out, "--site-uuid '%s' is not a UUID", o->site_uuid);
			return VR_AGENT_PAIR_USAGE;
		}
	} else if (vr_uuid_generate(r->site_uuid)) {
		vr_agent_fail(error_out, "cannot make a site UUID");
		return VR_AGENT_PAIR_CONFIG;
	}
	struct stat st;
	if (stat(o->state_dir, &st) != 0 || !S_ISDIR(st.st_mode) ||
	    access(o->state_dir, W_OK) != 0) {
		vr_agent_fail(error_out, "state directory %s is not a writable directory",
			      o->state_dir);
		return VR_AGENT_PAIR_CONFIG;
	}
	struct vr_agent_api_options api = {o->api_url, o->ca_file, o->user, o->password};
	struct vr_agent_api *s = NULL;
	int rc = vr_agent_api_open(&s, &api, error_out);
	if (!rc)
		rc = post_pairing(s, o, r, error_out);
	if (!rc)
		rc = vr_agent_api_follow_task(s, r->task_url, o->timeout, "pairing", error_out);
	vr_agent_api_close(s);
	return rc;
}

/* GET /api/versions: the versions we speak and where to log in. */
#include <stdlib.h>

#include "api/api.h"
#include "vrcloud/err.h"

enum MHD_Result vr_api_versions_get(struct vr_request *req)
{
	struct vr_xml *w = vr_xml_new();
	char *login = vr_href(req, "/api/sessions");
	vr_xml_start(w, "SupportedVersions");
	vr_xml_attr(w, "xmlns", VR_NS_VERSIONS);
	for (int i = 0; vr_api_versions[i]; i++) {
		vr_xml_start(w, "VersionInfo");
		vr_xml_elem(w, "Version", vr_api_versions[i]);
		vr_xml_elem(w, "LoginUrl", login);
		vr_xml_end(w);
	}
	vr_xml_end(w);
	free(login);
	struct MHD_Response *response = vr_response_from_xml(w);
	if (!response)
		return vr_reply_err(req, VR_ENOMEM);
	MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE, "text/xml");
	return vr_reply_response(req, MHD_HTTP_OK, response);
}

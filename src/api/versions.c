/* GET /api/versions: the versions we speak and where to log in. */
#include <stdlib.h>

#include "api/api.h"

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
	struct vr_buf body;
	vr_buf_init(&body, 0);
	int rc = vr_xml_finish(w, &body);
	if (rc) {
		vr_buf_free(&body);
		return vr_reply_err(req, rc);
	}
	size_t len = 0;
	char *data = vr_buf_take(&body, &len);
	struct MHD_Response *response =
		MHD_create_response_from_buffer_with_free_callback(len, data, free);
	if (!response)
		return MHD_NO;
	MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE, "text/xml");
	return vr_reply_response(req, MHD_HTTP_OK, response);
}

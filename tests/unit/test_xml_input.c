/* Request documents: media types, the bodies real clients send, and hostile
 * bodies, through vr_input_check with the project's schema. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vrcloud/err.h"
#include "vrcloud/input.h"

static struct vr_xml_schema *schema;

static void load_schema(void)
{
	const char *srcdir = getenv("VRCLOUD_SRCDIR");
	char path[4096];
	snprintf(path, sizeof path, "%s/schema/vrcloud.xsd", srcdir ? srcdir : VR_SRCDIR);
	vr_xml_global_init();
	cr_assert_eq(vr_xml_schema_load(&schema, path), 0, "cannot load %s", path);
}

static void free_schema(void)
{
	vr_xml_schema_free(schema);
	schema = NULL;
}

TestSuite(input, .init = load_schema, .fini = free_schema);

static const char *const failover_types[] = {"application/vnd.vmware.hcs.failoverParams+xml",
					     NULL};
static const struct vr_input_spec failover = {
	"FailoverParams", VR_NS_VR, failover_types, true, false,
};
static const char *const test_failover_types[] = {
	"application/vnd.vmware.hcs.testFailoverParams+xml", "application/*+xml",
	"application/vnd.vmware.hcs.failoverParams+xml", NULL};
static const struct vr_input_spec test_failover = {
	"TestFailoverParams", VR_NS_VR, test_failover_types, false, false,
};

static int check(const struct vr_input_spec *spec, const char *type, const char *body,
		 xmlDocPtr *doc, struct vr_input_error *error)
{
	return vr_input_check(doc, error, spec, schema, type, body, strlen(body));
}

Test(input, media_types_compare_case_insensitively_without_parameters)
{
	cr_assert(vr_input_media_type_is("application/vnd.vmware.hcs.FailoverParams+xml",
					 "application/vnd.vmware.hcs.failoverParams+xml"));
	cr_assert(vr_input_media_type_is(" application/*+xml ; charset=UTF-8",
					 "application/*+xml"));
	cr_assert_not(vr_input_media_type_is("application/xml", "application/*+xml"));
	cr_assert_not(vr_input_media_type_is(NULL, "application/*+xml"));
	cr_assert_not(vr_input_media_type_is("application/*+xmlx", "application/*+xml"));
}

Test(input, raascli_test_failover_with_padded_boolean_is_accepted)
{
	xmlDocPtr doc;
	struct vr_input_error e;
	const char *body = "<TestFailoverParams xmlns=\"http://www.vmware.com/vr/v6.0\" "
			   "xmlns:vcloud_v1.5=\"http://www.vmware.com/vcloud/v1.5\" "
			   "name=\"xs:string\"><Synchronize> false </Synchronize>"
			   "</TestFailoverParams>";
	cr_assert_eq(check(&test_failover, "application/vnd.vmware.hcs.testFailoverParams+xml",
			   body, &doc, &e),
		     0, "%s", e.message);
	bool sync = true;
	cr_assert_eq(vr_input_child_bool(xmlDocGetRootElement(doc), "Synchronize", &sync), 0);
	cr_assert_not(sync);
	bool power;
	cr_assert_eq(vr_input_child_bool(xmlDocGetRootElement(doc), "PowerOn", &power),
		     VR_ENOTFOUND);
	xmlFreeDoc(doc);
}

Test(input, java_ns2_body_sent_as_failover_params_is_accepted)
{
	xmlDocPtr doc;
	struct vr_input_error e;
	const char *body =
		"<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>"
		"<ns2:TestFailoverParams xmlns=\"http://www.vmware.com/vcloud/v1.5\" "
		"xmlns:ns2=\"http://www.vmware.com/vr/v6.0\" "
		"xmlns:ns3=\"http://schemas.dmtf.org/ovf/envelope/1\"> <ns2:PowerOn>true</ns2:PowerOn>"
		" <ns2:Synchronize>false</ns2:Synchronize> </ns2:TestFailoverParams>";
	cr_assert_eq(check(&test_failover, "application/vnd.vmware.hcs.failoverParams+xml", body,
			   &doc, &e),
		     0, "%s", e.message);
	bool power = false;
	cr_assert_eq(vr_input_child_bool(xmlDocGetRootElement(doc), "PowerOn", &power), 0);
	cr_assert(power);
	xmlFreeDoc(doc);
}

Test(input, failover_without_content_type_and_empty_element_is_accepted)
{
	xmlDocPtr doc;
	struct vr_input_error e;
	cr_assert_eq(check(&failover, NULL,
			   "<FailoverParams xmlns=\"http://www.vmware.com/vr/v6.0\" "
			   "name=\"xs:string\"></FailoverParams>",
			   &doc, &e),
		     0, "%s", e.message);
	xmlFreeDoc(doc);
	cr_assert_eq(check(&failover, "application/vnd.vmware.hcs.FailoverParams+xml",
			   "<FailoverParams name=\"0c5b7c1e-0000-4000-8000-0000000000aa\" "
			   "xmlns=\"http://www.vmware.com/vr/v6.0\"><PowerOn>1</PowerOn>"
			   "</FailoverParams>",
			   &doc, &e),
		     0, "%s", e.message);
	xmlFreeDoc(doc);
}

Test(input, wrong_or_missing_media_type_is_415)
{
	xmlDocPtr doc;
	struct vr_input_error e;
	const char *body = "<TestFailoverParams xmlns=\"http://www.vmware.com/vr/v6.0\"/>";
	cr_assert_eq(check(&test_failover, "application/json", body, &doc, &e), VR_EINVAL);
	cr_assert_eq(e.status, 415);
	cr_assert_str_eq(e.minor, "UNSUPPORTED_MEDIA_TYPE");
	cr_assert_eq(check(&test_failover, NULL, body, &doc, &e), VR_EINVAL);
	cr_assert_eq(e.status, 415);
	cr_assert_null(doc);
}

Test(input, hostile_and_malformed_bodies_are_400)
{
	static const char *const bodies[] = {
		"<!DOCTYPE TestFailoverParams [<!ENTITY a \"aaaa\">]>"
		"<TestFailoverParams xmlns=\"http://www.vmware.com/vr/v6.0\"/>",
		"<?xml version=\"1.0\"?><!DOCTYPE x SYSTEM \"file:///etc/passwd\">"
		"<TestFailoverParams xmlns=\"http://www.vmware.com/vr/v6.0\"/>",
		"<TestFailoverParams xmlns=\"http://www.vmware.com/vr/v6.0\">",
		"<FailoverParams xmlns=\"http://www.vmware.com/vr/v6.0\"/>",
		"<TestFailoverParams xmlns=\"http://www.vmware.com/vcloud/v1.5\"/>",
		"<TestFailoverParams/>",
		"<TestFailoverParams xmlns=\"http://www.vmware.com/vr/v6.0\"><Bogus/>"
		"</TestFailoverParams>",
		"<TestFailoverParams xmlns=\"http://www.vmware.com/vr/v6.0\">"
		"<Synchronize>maybe</Synchronize></TestFailoverParams>",
		"not xml at all",
		"<p:TestFailoverParams xmlns=\"http://www.vmware.com/vr/v6.0\"/>",
	};
	for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
		xmlDocPtr doc = NULL;
		struct vr_input_error e;
		cr_assert_eq(check(&test_failover, "application/*+xml", bodies[i], &doc, &e),
			     VR_EINVAL, "accepted: %s", bodies[i]);
		cr_assert_eq(e.status, 400, "%s", bodies[i]);
		cr_assert_str_eq(e.minor, "BAD_REQUEST");
		cr_assert_neq(e.message[0], '\0');
		cr_assert_null(doc);
	}
}

Test(input, empty_body_only_where_optional)
{
	xmlDocPtr doc = (xmlDocPtr)1;
	struct vr_input_error e;
	static const char *const any[] = {"application/*+xml", NULL};
	struct vr_input_spec optional = {"FailoverParams", VR_NS_VR, any, true, true};
	cr_assert_eq(check(&optional, NULL, "  \n", &doc, &e), 0);
	cr_assert_null(doc);
	cr_assert_eq(check(&failover, NULL, "", &doc, &e), VR_EINVAL);
	cr_assert_eq(e.status, 400);
}

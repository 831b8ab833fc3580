/* Content negotiation: the API version from the Accept header. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "vrcloud/err.h"
#include "vrcloud/http.h"

struct outcome {
	int rc;
	const char *version;
	char unknown[40];
};

static struct outcome negotiate(const char *accept)
{
	struct outcome o;
	memset(o.unknown, 'Z', sizeof o.unknown);
	o.version = (const char *)1;
	o.rc = vr_negotiate(accept, &o.version, o.unknown, sizeof o.unknown);
	return o;
}

static void expect_version(const char *accept, const char *version)
{
	struct outcome o = negotiate(accept);
	cr_assert_eq(o.rc, 0, "refused '%s'", accept ? accept : "(null)");
	cr_assert_not_null(o.version);
	cr_assert_str_eq(o.version, version, "'%s'", accept ? accept : "(null)");
	/* always one of the static strings of the table */
	bool in_table = false;
	for (int i = 0; vr_api_versions[i]; i++)
		in_table |= o.version == vr_api_versions[i];
	cr_assert(in_table, "'%s' gave a version outside vr_api_versions", accept);
}

static void expect_refused(const char *accept, const char *unknown)
{
	struct outcome o = negotiate(accept);
	cr_assert_eq(o.rc, VR_EINVAL, "accepted '%s' as %s", accept, o.rc ? "" : o.version);
	cr_assert_null(o.version);
	cr_assert_str_eq(o.unknown, unknown, "'%s'", accept);
}

Test(negotiate, version_table)
{
	const char *want[] = {"1.5", "5.1", "5.5", "5.6", "5.7", "9.0", "20.0"};
	int n = 0;
	while (vr_api_versions[n])
		n++;
	cr_assert_eq(n, 7);
	for (int i = 0; i < n; i++)
		cr_assert_str_eq(vr_api_versions[i], want[i]);
	cr_assert_str_eq(vr_api_versions[n - 1], VR_API_VERSION_LATEST);
	cr_assert_str_eq(vr_api_versions_text(), "[1.5, 5.1, 5.5, 5.6, 5.7, 9.0, 20.0]");
}

Test(negotiate, every_supported_version)
{
	for (int i = 0; vr_api_versions[i]; i++) {
		char accept[128];
		snprintf(accept, sizeof accept, "application/*+xml;version=%s", vr_api_versions[i]);
		expect_version(accept, vr_api_versions[i]);
		snprintf(accept, sizeof accept,
			 "application/vnd.vmware.vcloud.session+xml;version=%s",
			 vr_api_versions[i]);
		expect_version(accept, vr_api_versions[i]);
	}
}

Test(negotiate, missing_and_star_mean_latest)
{
	expect_version(NULL, "20.0");
	expect_version("", "20.0");
	expect_version("application/*+xml", "20.0");
	expect_version("application/*+xml;version=*", "20.0");
	expect_version("*/*", "20.0");
	expect_version("application/*", "20.0");
	expect_version("application/xml", "20.0");
	expect_version("text/xml", "20.0");
	expect_version("*/*;version=5.5", "5.5");
}

Test(negotiate, vr_version_parameter_is_ignored)
{
	expect_version("application/*+xml;version=20.0;vr-version=4.0", "20.0");
	expect_version("application/*+xml;vr-version=4.0;version=9.0", "9.0");
	expect_version("application/*+xml;vr-version=4.0", "20.0");
	expect_version("application/*+xml;version=5.6;charset=utf-8", "5.6");
	expect_version("application/*+xml;charset=\"utf-8\";version=5.1", "5.1");
}

Test(negotiate, quoted_version)
{
	expect_version("application/*+xml;version=\"5.5\"", "5.5");
	expect_version("application/*+xml;version=\"*\"", "20.0");
}

Test(negotiate, whitespace)
{
	expect_version("  application/*+xml ; version = 5.1 ", "5.1");
	expect_version("application/*+xml;\tversion=5.7\t", "5.7");
	expect_version("text/html , application/*+xml;version=1.5", "1.5");
}

Test(negotiate, case_insensitive)
{
	expect_version("Application/*+XML;Version=5.6", "5.6");
	expect_version("APPLICATION/VND.VMWARE.HCS.REPLICATIONGROUP+XML;VERSION=9.0", "9.0");
}

Test(negotiate, q_zero_range_is_skipped)
{
	expect_version("application/*+xml;version=5.6;q=0, application/*+xml;version=1.5", "1.5");
	expect_version("application/*+xml;q=0.0;version=5.6, application/*+xml;version=5.5", "5.5");
	expect_version("application/*+xml;version=5.6;q=0.5", "5.6");
	expect_version("application/*+xml;version=5.6;q=1", "5.6");
}

/* A range refused only by q=0 names no unknown version: the 406 must not
 * claim that 5.6 is unknown. */
Test(negotiate, q_zero_alone_names_no_unknown_version)
{
	expect_refused("application/*+xml;q=0", "");
	expect_refused("application/*+xml;version=5.6;q=0", "");
	expect_refused("application/*+xml;version=*;q=0", "");
}

Test(negotiate, first_range_not_xml)
{
	expect_version("application/json, application/*+xml;version=5.6", "5.6");
	expect_version("application/json;version=5.5, application/*+xml;version=5.7", "5.7");
	expect_version("text/html, image/webp, application/*+xml;version=9.0", "9.0");
}

Test(negotiate, no_xml_type_at_all)
{
	expect_refused("application/json", "");
	expect_refused("application/json;version=5.5", "");
	expect_refused("text/html", "");
	expect_refused("text/html, image/png", "");
	expect_refused("application/+xml", "");
	expect_refused("application/vnd/x+xml", "");
	expect_refused("xml", "");
}

Test(negotiate, unknown_version)
{
	expect_refused("application/*+xml;version=31.0", "31.0");
	expect_refused("application/*+xml;version=5.60", "5.60");
	expect_refused("application/*+xml;version=\"31.0\"", "31.0");
	expect_refused("application/*+xml;version=", "(empty)");
	expect_refused("application/*+xml;version=\"\"", "(empty)");
	/* the first unknown one is reported */
	expect_refused("application/*+xml;version=31.0, application/*+xml;version=32.0", "31.0");
	expect_refused("application/json, application/*+xml;version=4.0", "4.0");
	/* a known one later in the list wins */
	expect_version("application/*+xml;version=31.0, application/*+xml;version=5.5", "5.5");
}

Test(negotiate, garbage)
{
	const char *junk[] = {";;;,,,",		",",  ";", "=",	   ";version=5.5",
			      ",,;version=5.5", "\t", "/", "a/b/c"};
	for (size_t i = 0; i < sizeof junk / sizeof junk[0]; i++) {
		struct outcome o = negotiate(junk[i]);
		cr_assert_eq(o.rc, VR_EINVAL, "accepted '%s'", junk[i]);
		cr_assert_str_eq(o.unknown, "", "'%s'", junk[i]);
	}
	/* a parameter without a value is ignored */
	expect_version("application/*+xml;version", "20.0");
}

Test(negotiate, long_unknown_version_is_cut_safely)
{
	char accept[512] = "application/*+xml;version=";
	memset(accept + strlen(accept), '9', 300);
	accept[26 + 300] = '\0';
	struct outcome o = negotiate(accept);
	cr_assert_eq(o.rc, VR_EINVAL);
	cr_assert_lt(strlen(o.unknown), sizeof o.unknown);
	cr_assert_gt(strlen(o.unknown), 0);
	cr_assert_eq(strspn(o.unknown, "9"), strlen(o.unknown));

	/* no room at all for the unknown text */
	const char *version = NULL;
	char none[1] = {'Q'};
	cr_assert_eq(vr_negotiate(accept, &version, none, 0), VR_EINVAL);
	cr_assert_eq(none[0], 'Q');
}

/* UUIDs: canonical form, strict parsing, random version-4 generation. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "vrcloud/err.h"
#include "vrcloud/uuid.h"

Test(uuid, canon_keeps_lowercase)
{
	char out[VR_UUID_LEN + 1];
	cr_assert_eq(vr_uuid_canon(out, "0f8fad5b-d9cb-469f-a165-70867728950e"), 0);
	cr_assert_str_eq(out, "0f8fad5b-d9cb-469f-a165-70867728950e");
	cr_assert(vr_uuid_valid("00000000-0000-0000-0000-000000000000"));
	cr_assert(vr_uuid_valid("ffffffff-ffff-ffff-ffff-ffffffffffff"));
}

Test(uuid, canon_lowercases_upper_and_mixed)
{
	char out[VR_UUID_LEN + 1];
	cr_assert_eq(vr_uuid_canon(out, "0F8FAD5B-D9CB-469F-A165-70867728950E"), 0);
	cr_assert_str_eq(out, "0f8fad5b-d9cb-469f-a165-70867728950e");
	cr_assert_eq(vr_uuid_canon(out, "AbCdEf01-2345-6789-aBcD-eF0123456789"), 0);
	cr_assert_str_eq(out, "abcdef01-2345-6789-abcd-ef0123456789");
	cr_assert_eq(strlen(out), VR_UUID_LEN);
}

Test(uuid, canon_in_place)
{
	char text[VR_UUID_LEN + 1] = "0F8FAD5B-D9CB-469F-A165-70867728950E";
	cr_assert_eq(vr_uuid_canon(text, text), 0);
	cr_assert_str_eq(text, "0f8fad5b-d9cb-469f-a165-70867728950e");
}

static void expect_bad(const char *text)
{
	char out[VR_UUID_LEN + 1] = "untouched";
	cr_expect_eq(vr_uuid_canon(out, text), VR_EINVAL, "accepted '%s'", text ? text : "(null)");
	cr_expect_not(vr_uuid_valid(text), "valid: '%s'", text ? text : "(null)");
}

Test(uuid, bad_lengths)
{
	expect_bad(NULL);
	expect_bad("");
	expect_bad("0f8fad5b-d9cb-469f-a165-70867728950");   /* 35 */
	expect_bad("0f8fad5b-d9cb-469f-a165-70867728950e0"); /* 37 */
	expect_bad("0f8fad5bd9cb469fa16570867728950e");	     /* 32, no hyphens */
	expect_bad("{0f8fad5b-d9cb-469f-a165-70867728950e}");
	expect_bad("urn:uuid:0f8fad5b-d9cb-469f-a165-70867728950e");
	expect_bad(" 0f8fad5b-d9cb-469f-a165-70867728950e");
	expect_bad("0f8fad5b-d9cb-469f-a165-70867728950e\n");
}

Test(uuid, bad_characters)
{
	expect_bad("0f8fad5b-d9cb-469f-a165-70867728950g");
	expect_bad("0f8fad5b-d9cb-469f-a165-7086772895 e");
	expect_bad("0f8fad5b-d9cb-469f-a165-7086772895.e");
	expect_bad("zf8fad5b-d9cb-469f-a165-70867728950e");
	expect_bad("0f8fad5b-d9cb-469f-a165-70867728950\xc3");
	/* a NUL inside: the text is shorter than 36 */
	expect_bad("0f8fad5b-d9cb-469f\0a165-70867728950e");
}

Test(uuid, bad_hyphens)
{
	expect_bad("0f8fad5bd-9cb-469f-a165-70867728950e");
	expect_bad("0f8fad5b-d9cb-469fa-165-70867728950e");
	expect_bad("0f8fad5b-d9cb-469f-a16570867728950e-");
	expect_bad("0f8fad5b_d9cb_469f_a165_70867728950e");
	expect_bad("0f8fad5b-d9cb-469f-a165-708677-8950e");
	expect_bad("------------------------------------");
}

Test(uuid, generate_is_version_4)
{
	for (int i = 0; i < 1000; i++) {
		char id[VR_UUID_LEN + 1];
		cr_assert_eq(vr_uuid_generate(id), 0);
		cr_assert_eq(strlen(id), VR_UUID_LEN);
		char canon[VR_UUID_LEN + 1];
		cr_assert_eq(vr_uuid_canon(canon, id), 0, "not a uuid: %s", id);
		cr_assert_str_eq(canon, id, "not lowercase: %s", id);
		cr_assert_eq(id[14], '4', "version nibble of %s", id);
		cr_assert(strchr("89ab", id[19]) != NULL, "variant nibble of %s", id);
	}
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(a, b);
}

Test(uuid, generate_is_unique_and_varied)
{
	enum { N = 20000 };
	char(*ids)[VR_UUID_LEN + 1] = calloc(N, sizeof *ids);
	cr_assert_not_null(ids);
	unsigned seen[36][16];
	memset(seen, 0, sizeof seen);
	for (int i = 0; i < N; i++) {
		cr_assert_eq(vr_uuid_generate(ids[i]), 0);
		for (int c = 0; c < VR_UUID_LEN; c++) {
			char ch = ids[i][c];
			if (ch != '-')
				seen[c][(ch <= '9') ? ch - '0' : ch - 'a' + 10]++;
		}
	}
	qsort(ids, N, sizeof *ids, cmp_str);
	for (int i = 1; i < N; i++)
		cr_assert_str_neq(ids[i - 1], ids[i], "duplicate %s", ids[i]);
	/* every random position takes every hex digit (20000 draws make a
	 * miss about e^-1250 likely) */
	for (int c = 0; c < VR_UUID_LEN; c++) {
		if (c == 8 || c == 13 || c == 18 || c == 23 || c == 14 || c == 19)
			continue;
		for (int d = 0; d < 16; d++)
			cr_assert_gt(seen[c][d], 0, "digit %x never at position %d", d, c);
	}
	free(ids);
}

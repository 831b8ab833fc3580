/* struct vr_buf: growth, the size cap, printf, and handing the contents over. */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vrcloud/buf.h"
#include "vrcloud/err.h"

Test(buf, starts_empty_and_grows)
{
	struct vr_buf b;
	vr_buf_init(&b, 0);
	cr_assert_null(b.data);
	cr_assert_eq(b.len, 0);

	/* 1 MiB in odd-sized pieces: content and terminator stay right */
	char piece[997];
	size_t total = 0;
	for (size_t i = 0; total + sizeof piece <= 1024 * 1024; i++) {
		memset(piece, 'a' + (int)(i % 26), sizeof piece);
		cr_assert_eq(vr_buf_append(&b, piece, sizeof piece), 0);
		total += sizeof piece;
	}
	cr_assert_eq(b.len, total);
	cr_assert_eq(b.data[b.len], '\0');
	cr_assert_geq(b.cap, b.len + 1);
	for (size_t i = 0; i < total; i++)
		cr_assert_eq(b.data[i], 'a' + (int)((i / sizeof piece) % 26), "byte %zu", i);
	vr_buf_free(&b);
	cr_assert_null(b.data);
	cr_assert_eq(b.len, 0);
}

Test(buf, empty_append_gives_empty_string)
{
	struct vr_buf b;
	vr_buf_init(&b, 0);
	cr_assert_eq(vr_buf_append(&b, "", 0), 0);
	cr_assert_not_null(b.data);
	cr_assert_str_eq(b.data, "");
	cr_assert_eq(vr_buf_appends(&b, "abc"), 0);
	cr_assert_eq(vr_buf_append(&b, "de\0f", 4), 0);
	cr_assert_eq(b.len, 7);
	cr_assert_eq(memcmp(b.data, "abcde\0f", 8), 0);
	vr_buf_free(&b);
}

Test(buf, limit_is_inclusive)
{
	struct vr_buf b;
	vr_buf_init(&b, 10);
	cr_assert_eq(vr_buf_appends(&b, "0123456789"), 0);
	cr_assert_eq(b.len, 10);
	cr_assert_eq(vr_buf_append(&b, "", 0), 0, "an empty append at the limit is fine");
	cr_assert_eq(vr_buf_appends(&b, "x"), VR_ETOOBIG);
	cr_assert_str_eq(b.data, "0123456789");
	vr_buf_free(&b);
}

Test(buf, too_big_leaves_buffer_unchanged)
{
	struct vr_buf b;
	vr_buf_init(&b, 16);
	cr_assert_eq(vr_buf_appends(&b, "hello"), 0);
	char *data = b.data;
	size_t cap = b.cap;

	cr_assert_eq(vr_buf_appends(&b, "this is far too long"), VR_ETOOBIG);
	cr_assert_eq(b.data, data);
	cr_assert_eq(b.len, 5);
	cr_assert_eq(b.cap, cap);
	cr_assert_str_eq(b.data, "hello");

	/* a single append larger than the whole limit */
	char big[64];
	memset(big, 'z', sizeof big);
	cr_assert_eq(vr_buf_append(&b, big, sizeof big), VR_ETOOBIG);
	cr_assert_str_eq(b.data, "hello");

	cr_assert_eq(vr_buf_printf(&b, "%s-%d", "abcdefgh", 12345), VR_ETOOBIG);
	cr_assert_eq(b.len, 5);
	cr_assert_str_eq(b.data, "hello");

	/* what still fits is still accepted */
	cr_assert_eq(vr_buf_printf(&b, " %s!", "world"), 0);
	cr_assert_str_eq(b.data, "hello world!");
	vr_buf_free(&b);
}

Test(buf, too_big_on_empty_buffer_allocates_nothing)
{
	struct vr_buf b;
	vr_buf_init(&b, 4);
	cr_assert_eq(vr_buf_appends(&b, "12345"), VR_ETOOBIG);
	cr_assert_null(b.data);
	cr_assert_eq(b.len, 0);
	vr_buf_free(&b);
}

/* A length no allocation can satisfy must fail cleanly: no size_t
 * overflow in the capacity arithmetic, no endless doubling loop. */
Test(buf, impossible_size_fails)
{
	alarm(10); /* a hang is a failure */
	struct vr_buf b;
	vr_buf_init(&b, 0);
	cr_assert_eq(vr_buf_appends(&b, "keep"), 0);
	const size_t sizes[] = {SIZE_MAX, SIZE_MAX - 1, SIZE_MAX / 2 + 2};
	for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
		int rc = vr_buf_append(&b, "x", sizes[i]);
		cr_assert(rc == VR_ENOMEM || rc == VR_ETOOBIG, "size %zu: rc %d", sizes[i], rc);
		cr_assert_eq(b.len, 4);
		cr_assert_str_eq(b.data, "keep");
	}
	vr_buf_free(&b);
}

Test(buf, printf_formats)
{
	struct vr_buf b;
	vr_buf_init(&b, 0);
	cr_assert_eq(vr_buf_printf(&b, "%s=%d;", "a", -7), 0);
	cr_assert_eq(vr_buf_printf(&b, "%05.1f|%x|%%|%c", 3.14159, 255u, 'Z'), 0);
	cr_assert_str_eq(b.data, "a=-7;003.1|ff|%|Z");
	cr_assert_eq(b.len, strlen("a=-7;003.1|ff|%|Z"));
	cr_assert_eq(vr_buf_printf(&b, "%s", ""), 0);
	cr_assert_eq(b.len, strlen("a=-7;003.1|ff|%|Z"));

	/* longer than any first allocation */
	char big[5000];
	memset(big, 'q', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	cr_assert_eq(vr_buf_printf(&b, "[%s]", big), 0);
	cr_assert_eq(b.len, strlen("a=-7;003.1|ff|%|Z") + 2 + sizeof big - 1);
	cr_assert_eq(b.data[b.len - 1], ']');
	cr_assert_eq(b.data[b.len], '\0');
	vr_buf_free(&b);
}

Test(buf, take_hands_over_and_resets)
{
	struct vr_buf b;
	vr_buf_init(&b, 100);
	cr_assert_eq(vr_buf_appends(&b, "document"), 0);
	size_t len = 0;
	char *data = vr_buf_take(&b, &len);
	cr_assert_str_eq(data, "document");
	cr_assert_eq(len, 8);
	cr_assert_null(b.data);
	cr_assert_eq(b.len, 0);
	cr_assert_eq(b.cap, 0);
	cr_assert_eq(b.limit, 100, "the limit survives a take");

	/* the buffer is reusable and independent of what was taken */
	cr_assert_eq(vr_buf_appends(&b, "next"), 0);
	cr_assert_str_eq(b.data, "next");
	cr_assert_str_eq(data, "document");
	free(data);

	/* len_out is optional */
	char *next = vr_buf_take(&b, NULL);
	cr_assert_str_eq(next, "next");
	free(next);
	cr_assert_null(b.data);
}

Test(buf, take_of_empty_is_null)
{
	struct vr_buf b;
	vr_buf_init(&b, 0);
	size_t len = 99;
	cr_assert_null(vr_buf_take(&b, &len));
	cr_assert_eq(len, 0);
}

Test(buf, free_is_null_safe_and_idempotent)
{
	vr_buf_free(NULL);
	struct vr_buf b;
	vr_buf_init(&b, 0);
	vr_buf_free(&b);
	cr_assert_eq(vr_buf_appends(&b, "x"), 0);
	vr_buf_free(&b);
	vr_buf_free(&b);
	cr_assert_null(b.data);
}

/* The hardened parse entry point: DTDs, entities and deep nesting are
 * refused, and no file is opened and no connection made on the way. File
 * access is watched with inotify, network access with a listening socket of
 * the test's own. Tests that could hang arm alarm(2): SIGALRM ends the
 * worker, which Criterion reports as a crash. (Criterion's own .timeout
 * leaks in its runner under LeakSanitizer when several such tests run at
 * once.) */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <libxml/tree.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "vrcloud/err.h"
#include "vrcloud/xml.h"

static void setup(void)
{
	vr_xml_global_init();
}

TestSuite(xml_parse, .init = setup);

/* --- helpers ----------------------------------------------------------- */

static int parse(const char *data, size_t len, xmlDocPtr *doc, const char **reason)
{
	*doc = NULL;
	*reason = NULL;
	return vr_xml_parse(doc, data, len, reason);
}

static void expect_refused(const char *data, size_t len, const char *reason_want)
{
	xmlDocPtr doc = (xmlDocPtr)1;
	const char *reason = NULL;
	int rc = vr_xml_parse(&doc, data, len, &reason);
	cr_assert_eq(rc, VR_EINVAL, "accepted: %.*s", (int)len, data);
	cr_assert_null(doc, "a refused parse returned a document");
	cr_assert_not_null(reason);
	if (reason_want)
		cr_assert_str_eq(reason, reason_want);
}

static void expect_refused_s(const char *data, const char *reason_want)
{
	expect_refused(data, strlen(data), reason_want);
}

/* The same document in UTF-16LE with a byte order mark: a byte search for
 * "<!DOCTYPE" cannot see it, so the parser's own guard is exercised. */
static char *utf16(const char *text, size_t *len_out)
{
	size_t n = strlen(text);
	char *out = malloc(2 + 2 * n);
	cr_assert_not_null(out);
	out[0] = (char)0xff;
	out[1] = (char)0xfe;
	for (size_t i = 0; i < n; i++) {
		out[2 + 2 * i] = text[i];
		out[3 + 2 * i] = 0;
	}
	*len_out = 2 + 2 * n;
	return out;
}

#define DOCTYPE_REASON	  "DOCTYPE and entity declarations are not allowed"
#define WELLFORMED_REASON "the request body is not well-formed XML"

/* tmpl with every "@" replaced by value. */
static void fill_template(char *out, size_t size, const char *tmpl, const char *value)
{
	size_t o = 0, vlen = strlen(value);
	for (const char *t = tmpl; *t; t++) {
		if (*t == '@') {
			cr_assert_lt(o + vlen, size);
			memcpy(out + o, value, vlen);
			o += vlen;
		} else {
			cr_assert_lt(o + 1, size);
			out[o++] = *t;
		}
	}
	out[o] = '\0';
}

/* A file holding a marker; an inotify watch reports any open of it. */
struct watched_file {
	char path[64];
	char marker[64];
	int inotify;
};

static void watched_file_make(struct watched_file *f)
{
	memset(f, 0, sizeof *f);
	snprintf(f->path, sizeof f->path, "/tmp/vrcloud-xxe-XXXXXX");
	int fd = mkstemp(f->path);
	cr_assert_geq(fd, 0);
	snprintf(f->marker, sizeof f->marker, "VRCLOUD-XXE-MARKER-%ld-%d", (long)time(NULL),
		 (int)getpid());
	size_t n = strlen(f->marker);
	cr_assert_eq(write(fd, f->marker, n), (ssize_t)n);
	close(fd);
	f->inotify = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	cr_assert_geq(f->inotify, 0);
	cr_assert_geq(inotify_add_watch(f->inotify, f->path, IN_OPEN | IN_ACCESS), 0);
}

/* How many opens/reads of the file were seen since the last call. */
static int watched_file_events(struct watched_file *f)
{
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	int events = 0;
	for (;;) {
		ssize_t n = read(f->inotify, buf, sizeof buf);
		if (n <= 0)
			break;
		for (char *p = buf; p < buf + n;) {
			struct inotify_event *e = (struct inotify_event *)(void *)p;
			if (e->mask & (IN_OPEN | IN_ACCESS))
				events++;
			p += sizeof *e + e->len;
		}
	}
	return events;
}

static void watched_file_remove(struct watched_file *f)
{
	close(f->inotify);
	unlink(f->path);
}

/* A listening socket on 127.0.0.1 that counts connection attempts. */
struct listener {
	int fd;
	int port;
};

static void listener_open(struct listener *l)
{
	l->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	cr_assert_geq(l->fd, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	cr_assert_eq(bind(l->fd, (struct sockaddr *)&sa, sizeof sa), 0);
	cr_assert_eq(listen(l->fd, 16), 0);
	socklen_t len = sizeof sa;
	cr_assert_eq(getsockname(l->fd, (struct sockaddr *)&sa, &len), 0);
	l->port = ntohs(sa.sin_port);
}

/* Connections that arrived, waiting up to wait_ms for a late one. */
static int listener_connections(struct listener *l, int wait_ms)
{
	int count = 0;
	struct pollfd p = {.fd = l->fd, .events = POLLIN};
	while (poll(&p, 1, wait_ms) > 0) {
		int c = accept(l->fd, NULL, NULL);
		if (c < 0)
			break;
		close(c);
		count++;
		wait_ms = 0;
	}
	return count;
}

/* --- accepted documents ----------------------------------------------- */

Test(xml_parse, good_document)
{
	const char *text = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
			   "<TestFailoverParams xmlns=\"http://www.vmware.com/vr/v6.0\">\n"
			   "  <Synchronize> false </Synchronize><PowerOn>1</PowerOn>\n"
			   "</TestFailoverParams>\n";
	xmlDocPtr doc;
	const char *reason;
	cr_assert_eq(parse(text, strlen(text), &doc, &reason), 0, "%s", reason);
	cr_assert_null(reason);
	xmlNodePtr root = xmlDocGetRootElement(doc);
	cr_assert_str_eq((const char *)root->name, "TestFailoverParams");
	cr_assert_str_eq((const char *)root->ns->href, VR_NS_VR);
	xmlFreeDoc(doc);
}

Test(xml_parse, length_is_honoured)
{
	/* only the first len bytes count: the rest is not part of the body */
	const char *text = "<a/>garbage that would not parse";
	xmlDocPtr doc;
	const char *reason;
	cr_assert_eq(parse(text, 4, &doc, &reason), 0);
	xmlFreeDoc(doc);
	expect_refused(text, strlen(text), WELLFORMED_REASON);
}

Test(xml_parse, predefined_and_character_references_are_fine)
{
	const char *text = "<a t=\"&lt;&#65;&#x42;\">&amp;&gt;&quot;&apos;&#x263A;</a>";
	xmlDocPtr doc;
	const char *reason;
	cr_assert_eq(parse(text, strlen(text), &doc, &reason), 0, "%s", reason);
	xmlNodePtr root = xmlDocGetRootElement(doc);
	xmlChar *t = xmlGetProp(root, BAD_CAST "t");
	xmlChar *c = xmlNodeGetContent(root);
	cr_assert_str_eq((const char *)t, "<AB");
	cr_assert_str_eq((const char *)c, "&>\"'\xe2\x98\xba");
	xmlFree(t);
	xmlFree(c);
	xmlFreeDoc(doc);
}

/* --- refused documents -------------------------------------------------- */

Test(xml_parse, empty)
{
	expect_refused("", 0, "the request body is empty");
	expect_refused_s(" \n\t ", NULL);
	expect_refused_s("<?xml version=\"1.0\"?>", NULL);
}

Test(xml_parse, not_well_formed)
{
	expect_refused_s("<a><b></a>", WELLFORMED_REASON);
	expect_refused_s("<a>", WELLFORMED_REASON);
	expect_refused_s("<a/><b/>", WELLFORMED_REASON);
	expect_refused_s("text only", WELLFORMED_REASON);
	expect_refused_s("<a x='1' x='2'/>", WELLFORMED_REASON);
	expect_refused_s("<a>&undefined;</a>", WELLFORMED_REASON);
	expect_refused_s("<a>\x01</a>", WELLFORMED_REASON);
	expect_refused_s("<a>\xff\xfe</a>", WELLFORMED_REASON);
	expect_refused_s("<a></a>trailing", WELLFORMED_REASON);
}

Test(xml_parse, doctype_refused)
{
	expect_refused_s("<!DOCTYPE a><a/>", DOCTYPE_REASON);
	expect_refused_s("<?xml version=\"1.0\"?>\n<!DOCTYPE a [\n]>\n<a/>", DOCTYPE_REASON);
	expect_refused_s("<!DOCTYPE a PUBLIC \"-//X//Y\" \"y.dtd\"><a/>", DOCTYPE_REASON);
	/* an entity declaration without its DOCTYPE */
	expect_refused_s("<a><!ENTITY x \"y\"></a>", NULL);
}

Test(xml_parse, doctype_in_utf16_refused)
{
	size_t len;
	char *doc = utf16("<!DOCTYPE a [<!ENTITY x \"expanded\">]><a>&x;</a>", &len);
	expect_refused(doc, len, NULL);
	free(doc);
	/* the UTF-16 encoding itself is not the problem */
	doc = utf16("<a>fine</a>", &len);
	xmlDocPtr parsed;
	const char *reason;
	cr_assert_eq(parse(doc, len, &parsed, &reason), 0, "%s", reason);
	xmlFreeDoc(parsed);
	free(doc);
}

static char *billion_laughs(void)
{
	char *doc = malloc(8192);
	cr_assert_not_null(doc);
	int o = sprintf(doc, "<?xml version=\"1.0\"?>\n<!DOCTYPE lolz [\n"
			     " <!ENTITY lol \"lol\">\n");
	for (int i = 1; i <= 9; i++) {
		o += sprintf(doc + o, " <!ENTITY lol%d \"", i);
		for (int j = 0; j < 10; j++) {
			if (i == 1)
				o += sprintf(doc + o, "&lol;");
			else
				o += sprintf(doc + o, "&lol%d;", i - 1);
		}
		o += sprintf(doc + o, "\">\n");
	}
	sprintf(doc + o, "]>\n<lolz>&lol9;</lolz>\n");
	return doc;
}

Test(xml_parse, billion_laughs)
{
	alarm(10); /* a hang is a failure */
	char *doc = billion_laughs();
	expect_refused_s(doc, DOCTYPE_REASON);
	size_t len;
	char *wide = utf16(doc, &len);
	expect_refused(wide, len, NULL);
	free(wide);
	free(doc);
}

/* Every variant of an external entity or DTD pointing at a file: refused,
 * the file never opened, its content never in a document or a reason. */
Test(xml_parse, xxe_local_file_not_read)
{
	struct watched_file f;
	watched_file_make(&f);

	/* positive control: the watch does see an open */
	int fd = open(f.path, O_RDONLY);
	cr_assert_geq(fd, 0);
	close(fd);
	cr_assert_gt(watched_file_events(&f), 0, "inotify saw nothing: the check is blind");

	const char *templates[] = {
		"<!DOCTYPE a [<!ENTITY x SYSTEM \"file://@\">]><a>&x;</a>",
		"<!DOCTYPE a [<!ENTITY x SYSTEM \"@\">]><a>&x;</a>",
		"<!DOCTYPE a [<!ENTITY % p SYSTEM \"file://@\"> %p;]><a/>",
		"<!DOCTYPE a [<!ENTITY x SYSTEM \"file://@\">]><a b=\"&x;\"/>",
		"<!DOCTYPE a SYSTEM \"file://@\"><a/>",
		"<!DOCTYPE a PUBLIC \"-//X//Y\" \"file://@\"><a>&x;</a>",
	};
	for (size_t i = 0; i < sizeof templates / sizeof templates[0]; i++) {
		char text[512];
		fill_template(text, sizeof text, templates[i], f.path);
		for (int wide = 0; wide < 2; wide++) {
			size_t len = strlen(text);
			char *data = wide ? utf16(text, &len) : strdup(text);
			xmlDocPtr doc = NULL;
			const char *reason = NULL;
			int rc = vr_xml_parse(&doc, data, len, &reason);
			cr_expect_eq(rc, VR_EINVAL, "accepted #%zu (utf16 %d): %s", i, wide, text);
			cr_expect_null(doc);
			if (reason)
				cr_expect_null(strstr(reason, f.marker));
			if (doc)
				xmlFreeDoc(doc);
			free(data);
			cr_assert_eq(watched_file_events(&f), 0,
				     "#%zu (utf16 %d) opened the file: %s", i, wide, text);
		}
	}
	watched_file_remove(&f);
}

Test(xml_parse, xxe_etc_passwd_refused)
{
	const char *text = "<?xml version=\"1.0\"?>"
			   "<!DOCTYPE r [<!ENTITY xxe SYSTEM \"file:///etc/passwd\">]>"
			   "<r>&xxe;</r>";
	expect_refused_s(text, DOCTYPE_REASON);
	size_t len;
	char *wide = utf16(text, &len);
	expect_refused(wide, len, NULL);
	free(wide);
}

/* XInclude is not processed: the include element stays an element. */
Test(xml_parse, xinclude_not_processed)
{
	struct watched_file f;
	watched_file_make(&f);
	char text[512];
	snprintf(text, sizeof text,
		 "<a xmlns:xi=\"http://www.w3.org/2001/XInclude\">"
		 "<xi:include href=\"file://%s\" parse=\"text\"/></a>",
		 f.path);
	xmlDocPtr doc;
	const char *reason;
	cr_assert_eq(parse(text, strlen(text), &doc, &reason), 0, "%s", reason);
	xmlChar *content = xmlNodeGetContent(xmlDocGetRootElement(doc));
	cr_assert_null(strstr((const char *)content, f.marker));
	xmlFree(content);
	xmlNodePtr inc = xmlDocGetRootElement(doc)->children;
	cr_assert_not_null(inc);
	cr_assert_str_eq((const char *)inc->name, "include");
	xmlFreeDoc(doc);
	cr_assert_eq(watched_file_events(&f), 0, "the include target was opened");
	watched_file_remove(&f);
}

/* Entities and DTDs pointing at a server: refused without a connection. */
Test(xml_parse, xxe_network_no_connection)
{
	alarm(20); /* a hang is a failure */
	struct listener l;
	listener_open(&l);

	/* positive control: a connection to the listener is seen */
	int c = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)l.port)};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	cr_assert_eq(connect(c, (struct sockaddr *)&sa, sizeof sa), 0);
	cr_assert_eq(listener_connections(&l, 1000), 1, "the listener is blind");
	close(c);

	const char *templates[] = {
		"<!DOCTYPE a [<!ENTITY x SYSTEM \"http://127.0.0.1:@/x\">]><a>&x;</a>",
		"<!DOCTYPE a [<!ENTITY % p SYSTEM \"http://127.0.0.1:@/p.dtd\"> %p;]><a/>",
		"<!DOCTYPE a SYSTEM \"http://127.0.0.1:@/a.dtd\"><a/>",
		"<!DOCTYPE a PUBLIC \"-//X//Y\" \"http://127.0.0.1:@/a.dtd\"><a/>",
		"<a xmlns:xi=\"http://www.w3.org/2001/XInclude\">"
		"<xi:include href=\"http://127.0.0.1:@/i.xml\"/></a>",
		"<a xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" "
		"xsi:schemaLocation=\"urn:x http://127.0.0.1:@/s.xsd\"/>",
	};
	for (size_t i = 0; i < sizeof templates / sizeof templates[0]; i++) {
		char text[512];
		char port[16];
		snprintf(port, sizeof port, "%d", l.port);
		fill_template(text, sizeof text, templates[i], port);
		for (int wide = 0; wide < 2; wide++) {
			size_t len = strlen(text);
			char *data = wide ? utf16(text, &len) : strdup(text);
			xmlDocPtr doc = NULL;
			const char *reason = NULL;
			int rc = vr_xml_parse(&doc, data, len, &reason);
			if (strstr(text, "DOCTYPE"))
				cr_expect_eq(rc, VR_EINVAL, "accepted #%zu (utf16 %d): %s", i, wide,
					     text);
			if (doc)
				xmlFreeDoc(doc);
			free(data);
			cr_assert_eq(listener_connections(&l, 100), 0,
				     "#%zu (utf16 %d) connected out: %s", i, wide, text);
		}
	}
	close(l.fd);
}

Test(xml_parse, xxe_unreachable_url_refused)
{
	alarm(10); /* a hang is a failure */
	expect_refused_s("<!DOCTYPE a [<!ENTITY x SYSTEM \"http://127.0.0.1:1/x\">]><a>&x;</a>",
			 DOCTYPE_REASON);
	expect_refused_s("<!DOCTYPE a SYSTEM \"http://127.0.0.1:1/x\"><a/>", DOCTYPE_REASON);
}

/* A document of depth levels: <e><e>...</e></e> */
static char *nested(int levels)
{
	char *doc = malloc((size_t)levels * 7 + 1);
	cr_assert_not_null(doc);
	char *p = doc;
	for (int i = 0; i < levels; i++)
		p += sprintf(p, "<e>");
	for (int i = 0; i < levels; i++)
		p += sprintf(p, "</e>");
	return doc;
}

Test(xml_parse, nesting_limit)
{
	cr_assert_eq(VR_XML_MAX_DEPTH, 32);
	char *ok = nested(32);
	xmlDocPtr doc;
	const char *reason;
	cr_assert_eq(parse(ok, strlen(ok), &doc, &reason), 0, "32 deep: %s", reason);
	xmlFreeDoc(doc);
	free(ok);

	char *deep = nested(33);
	expect_refused_s(deep, "the request document is nested too deeply");
	free(deep);

	/* deep on one branch only, after a shallow sibling */
	char text[1024] = "<r><s/>";
	char *inner = nested(32);
	strcat(text, inner);
	strcat(text, "</r>");
	expect_refused_s(text, "the request document is nested too deeply");
	free(inner);
}

Test(xml_parse, very_deep_nesting_refused)
{
	alarm(10); /* a hang is a failure */
	char *deep = nested(100000);
	expect_refused_s(deep, NULL);
	free(deep);
}

Test(xml_parse, text_and_comments_do_not_count_as_depth)
{
	char *inner = nested(31);
	char text[1024];
	snprintf(text, sizeof text, "<r><!-- c --><?pi x?>text%s</r>", inner);
	xmlDocPtr doc;
	const char *reason;
	cr_assert_eq(parse(text, strlen(text), &doc, &reason), 0, "%s", reason);
	xmlFreeDoc(doc);
	free(inner);
}

/* The documents a worker sends (checked against schema/internal-1.xsd) and
 * reads (through vr_xml_parse), and the parameters of recovery jobs. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/tree.h>
#include <libxml/xmlmemory.h>

#include "vrcloud/err.h"
#include "vrcloud/input.h"
#include "vrcloud/store.h"
#include "vrcloud/worker.h"
#include "vrcloud/xml.h"
#include "worker/internal.h"

#define SERVER "6f1c2a9e-4b7d-4e0a-9c3b-2d5e8f7a1b60"
#define JOB    "0b8e6c1d-2f3a-4b5c-8d9e-1a2b3c4d5e6f"
#define TASK   "9a8b7c6d-5e4f-4a3b-9c2d-1e0f9a8b7c6d"

static struct vr_xml_schema *schema;

static void setup(void)
{
	vr_xml_global_init();
	cr_assert_eq(vr_xml_schema_load(&schema, VR_SRCDIR "/schema/vrcloud.xsd"), 0);
}

static void teardown(void)
{
	vr_xml_schema_free(schema);
}

TestSuite(worker_documents, .init = setup, .fini = teardown);

/* Parse a built document, check it against the schema and its root; the
 * caller frees the result. */
static xmlDocPtr valid_doc(const struct vr_buf *buf, const char *root)
{
	xmlDocPtr doc = NULL;
	const char *reason = NULL;
	cr_assert_eq(vr_xml_parse(&doc, buf->data, buf->len, &reason), 0, "%s", reason);
	char *message = NULL;
	cr_assert_eq(vr_xml_schema_validate(schema, doc, &message), 0, "%s\n%s",
		     message ? message : "", buf->data);
	xmlNodePtr r = xmlDocGetRootElement(doc);
	cr_assert_str_eq((const char *)r->name, root);
	cr_assert_str_eq((const char *)r->ns->href, VR_WORKER_NS);
	return doc;
}

static void expect_child(xmlDocPtr doc, const char *name, const char *text)
{
	xmlChar *value = vr_input_child_text(xmlDocGetRootElement(doc), name);
	if (!text) {
		cr_assert_null(value, "%s should be absent", name);
		return;
	}
	cr_assert_not_null(value, "%s is missing", name);
	cr_assert_str_eq((const char *)value, text);
	xmlFree(value);
}

Test(worker_documents, replica_server)
{
	struct vr_buf buf;
	vr_buf_init(&buf, 0);
	cr_assert_eq(vr_worker_doc_server(&buf, "worker-1", "replica1.example.test:44046"), 0);
	xmlDocPtr doc = valid_doc(&buf, "ReplicaServer");
	expect_child(doc, "Name", "worker-1");
	expect_child(doc, "TrafficAddress", "replica1.example.test:44046");
	expect_child(doc, "Id", NULL);
	xmlFreeDoc(doc);
	vr_buf_free(&buf);
}

Test(worker_documents, replica_server_refuses_what_the_schema_would)
{
	struct vr_buf buf;
	vr_buf_init(&buf, 0);
	cr_assert_eq(vr_worker_doc_server(&buf, "", "a:1"), VR_EINVAL);
	cr_assert_eq(vr_worker_doc_server(&buf, "_x", "a:1"), VR_EINVAL);
	cr_assert_eq(vr_worker_doc_server(&buf, "w<1>", "a:1"), VR_EINVAL);
	cr_assert_eq(vr_worker_doc_server(&buf, "w1", ""), VR_EINVAL);
	char address[300];
	memset(address, 'a', sizeof address - 1);
	address[sizeof address - 1] = '\0';
	cr_assert_eq(vr_worker_doc_server(&buf, "w1", address), VR_EINVAL);
	cr_assert_eq(buf.len, 0, "nothing is written on a refusal");
	vr_buf_free(&buf);
}

Test(worker_documents, job_start)
{
	struct vr_buf buf;
	vr_buf_init(&buf, 0);
	cr_assert_eq(vr_worker_doc_job_start(&buf, SERVER, 3), 0);
	xmlDocPtr doc = valid_doc(&buf, "JobStart");
	expect_child(doc, "ServerId", SERVER);
	expect_child(doc, "Deliveries", "3");
	xmlFreeDoc(doc);
	cr_assert_eq(vr_worker_doc_job_start(&buf, "not-a-uuid", 1), VR_EINVAL);
	vr_buf_free(&buf);
}

Test(worker_documents, job_progress_escapes_the_message)
{
	struct vr_buf buf;
	vr_buf_init(&buf, 0);
	const char *message = "Copying <disk \"a&b\"> ]]> 50%";
	cr_assert_eq(vr_worker_doc_job_progress(&buf, SERVER, 50, message), 0);
	xmlDocPtr doc = valid_doc(&buf, "JobProgress");
	expect_child(doc, "ServerId", SERVER);
	expect_child(doc, "Progress", "50");
	expect_child(doc, "Message", message);
	xmlFreeDoc(doc);
	vr_buf_free(&buf);

	vr_buf_init(&buf, 0);
	cr_assert_eq(vr_worker_doc_job_progress(&buf, SERVER, 0, NULL), 0);
	doc = valid_doc(&buf, "JobProgress");
	expect_child(doc, "Message", NULL);
	xmlFreeDoc(doc);
	cr_assert_eq(vr_worker_doc_job_progress(&buf, SERVER, 101, NULL), VR_EINVAL);
	cr_assert_eq(vr_worker_doc_job_progress(&buf, SERVER, -1, NULL), VR_EINVAL);
	vr_buf_free(&buf);
}

Test(worker_documents, job_result)
{
	struct vr_buf buf;
	vr_buf_init(&buf, 0);
	struct vr_worker_result ok = {.outcome = VR_OUTCOME_SUCCESS};
	cr_assert_eq(vr_worker_doc_job_result(&buf, SERVER, &ok), 0);
	xmlDocPtr doc = valid_doc(&buf, "JobResult");
	expect_child(doc, "Outcome", "success");
	expect_child(doc, "MajorErrorCode", NULL);
	expect_child(doc, "VendorSpecificErrorCode", NULL);
	xmlFreeDoc(doc);
	vr_buf_free(&buf);

	vr_buf_init(&buf, 0);
	struct vr_worker_result failed = {
		.outcome = VR_OUTCOME_ERROR,
		.major = 500,
		.minor = "INTERNAL_SERVER_ERROR",
		.vendor = "UnknownJobAction",
		.message = "no action 'x'",
	};
	cr_assert_eq(vr_worker_doc_job_result(&buf, SERVER, &failed), 0);
	doc = valid_doc(&buf, "JobResult");
	expect_child(doc, "ServerId", SERVER);
	expect_child(doc, "Outcome", "error");
	expect_child(doc, "MajorErrorCode", "500");
	expect_child(doc, "MinorErrorCode", "INTERNAL_SERVER_ERROR");
	expect_child(doc, "VendorSpecificErrorCode", "UnknownJobAction");
	expect_child(doc, "Message", "no action 'x'");
	xmlFreeDoc(doc);
	vr_buf_free(&buf);

	vr_buf_init(&buf, 0);
	struct vr_worker_result canceled = {.outcome = VR_OUTCOME_CANCELED};
	cr_assert_eq(vr_worker_doc_job_result(&buf, SERVER, &canceled), 0);
	doc = valid_doc(&buf, "JobResult");
	expect_child(doc, "Outcome", "canceled");
	xmlFreeDoc(doc);
	vr_buf_free(&buf);

	/* a recovery job's images */
	vr_buf_init(&buf, 0);
	struct vr_worker_disk disks[2] = {{.key = "2000", .path = "/r/a/disk-0.img", .size = 4096},
					  {.key = "2001", .path = "/r/a/disk-1.img", .size = 8192}};
	struct vr_worker_result recovered = {.outcome = VR_OUTCOME_SUCCESS,
					     .instance_id = SERVER,
					     .disks = disks,
					     .ndisks = 2};
	cr_assert_eq(vr_worker_doc_job_result(&buf, SERVER, &recovered), 0);
	doc = valid_doc(&buf, "JobResult");
	expect_child(doc, "InstanceId", SERVER);
	cr_assert(strstr(buf.data, "<Disk><Key>2001</Key><Path>/r/a/disk-1.img</Path>"
				   "<Size>8192</Size></Disk>"),
		  "%s", buf.data);
	xmlFreeDoc(doc);
	struct vr_worker_result bogus = {.outcome = (enum vr_worker_outcome)7};
	cr_assert_eq(vr_worker_doc_job_result(&buf, SERVER, &bogus), VR_EINVAL);
	vr_buf_free(&buf);
}

/* --- reading answers -------------------------------------------------- */

static int parse_server(const char *body, char id[VR_UUID_LEN + 1])
{
	const char *reason = NULL;
	return vr_worker_parse_server(id, body, strlen(body), &reason);
}

Test(worker_documents, server_answer)
{
	char id[VR_UUID_LEN + 1];
	cr_assert_eq(parse_server("<?xml version=\"1.0\"?>\n<ReplicaServer xmlns=\"" VR_WORKER_NS
				  "\"><Id> 6F1C2A9E-4B7D-4E0A-9C3B-2D5E8F7A1B60 </Id>"
				  "<Name>worker-1</Name><TrafficAddress>h:1</TrafficAddress>"
				  "</ReplicaServer>",
				  id),
		     0);
	cr_assert_str_eq(id, SERVER, "the id is canonical");
	cr_assert_eq(parse_server("<ReplicaServer xmlns=\"urn:other\"><Id>" SERVER
				  "</Id></ReplicaServer>",
				  id),
		     VR_EINVAL, "another namespace");
	cr_assert_eq(parse_server("<Job xmlns=\"" VR_WORKER_NS "\"><Id>" SERVER "</Id></Job>", id),
		     VR_EINVAL, "another root");
	cr_assert_eq(parse_server("<ReplicaServer xmlns=\"" VR_WORKER_NS
				  "\"><Name>w</Name></ReplicaServer>",
				  id),
		     VR_EINVAL, "no Id");
	cr_assert_eq(parse_server("<ReplicaServer xmlns=\"" VR_WORKER_NS
				  "\"><Id>42</Id></ReplicaServer>",
				  id),
		     VR_EINVAL, "not a UUID");
	cr_assert_eq(parse_server("<!DOCTYPE x [<!ENTITY e \"" SERVER
				  "\">]><ReplicaServer xmlns=\"" VR_WORKER_NS
				  "\"><Id>&e;</Id></ReplicaServer>",
				  id),
		     VR_EINVAL, "entities are refused");
	cr_assert_eq(parse_server("<ReplicaServer", id), VR_EINVAL);
	cr_assert_str_eq(id, "");
	const char *reason = NULL;
	cr_assert_eq(vr_worker_parse_server(id, NULL, 0, &reason), VR_EINVAL);
	cr_assert_not_null(reason);
}

/* The Job document exactly as vrcloud-api writes it. */
static const char job_answer[] =
	"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
	"<Job xmlns=\"urn:vrcloud:internal:1\"><Id>" JOB "</Id><TaskId>" TASK "</TaskId>"
	"<Action>testFailover</Action><Lane>replication:" SERVER "</Lane>"
	"<State>running</State><Deliveries>2</Deliveries>"
	"<Params>{\"PowerOn\": false, \"Synchronize\": false, \"InstanceId\": null}</Params>"
	"</Job>\n";

Test(worker_documents, job_answer)
{
	struct vr_worker_job job;
	const char *reason = NULL;
	cr_assert_eq(vr_worker_parse_job(&job, job_answer, strlen(job_answer), &reason), 0, "%s",
		     reason);
	cr_assert_str_eq(job.id, JOB);
	cr_assert_str_eq(job.task_id, TASK);
	cr_assert_str_eq(job.action, "testFailover");
	cr_assert_str_eq(job.lane, "replication:" SERVER);
	cr_assert_str_eq(job.state, "running");
	cr_assert_eq(job.deliveries, 2);
	cr_assert_str_eq(job.params,
			 "{\"PowerOn\": false, \"Synchronize\": false, \"InstanceId\": null}");
	vr_worker_job_clear(&job);
	cr_assert_null(job.params);
}

static void expect_job_refused(const char *from, const char *to, const char *why)
{
	char body[2048];
	const char *at = strstr(job_answer, from);
	cr_assert_not_null(at, "%s", from);
	snprintf(body, sizeof body, "%.*s%s%s", (int)(at - job_answer), job_answer, to,
		 at + strlen(from));
	struct vr_worker_job job;
	const char *reason = NULL;
	cr_assert_eq(vr_worker_parse_job(&job, body, strlen(body), &reason), VR_EINVAL, "%s", body);
	cr_assert_not_null(strstr(reason, why), "%s", reason);
	cr_assert_null(job.params, "nothing is kept on a refusal");
}

Test(worker_documents, job_answer_refusals)
{
	expect_job_refused("<Id>" JOB "</Id>", "<Id>x</Id>", "Id");
	expect_job_refused("<TaskId>" TASK "</TaskId>", "", "TaskId");
	expect_job_refused("<Action>testFailover</Action>", "<Action> </Action>", "Action");
	expect_job_refused("<Lane>", "<Lan>", "well-formed");
	expect_job_refused("<State>running</State>", "", "State");
	expect_job_refused("<Deliveries>2</Deliveries>", "<Deliveries>-2</Deliveries>",
			   "Deliveries");
	expect_job_refused("<Deliveries>2</Deliveries>", "<Deliveries>99999999999</Deliveries>",
			   "Deliveries");
	expect_job_refused("urn:vrcloud:internal:1", "urn:vrcloud:internal:2", "root");
	char action[200];
	snprintf(action, sizeof action, "<Action>%0150d</Action>", 0);
	expect_job_refused("<Action>testFailover</Action>", action, "Action");
}

Test(worker_documents, error_answer)
{
	const char *body =
		"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
		"<Error xmlns=\"http://www.vmware.com/vcloud/v1.5\" majorErrorCode=\"409\""
		" minorErrorCode=\"JOB_NOT_HEAD\" message=\"An older job...\"/>";
	char minor[64];
	const char *reason = NULL;
	cr_assert_eq(vr_worker_parse_error(minor, sizeof minor, body, strlen(body), &reason), 0);
	cr_assert_str_eq(minor, "JOB_NOT_HEAD");
	body = "<Error xmlns=\"http://www.vmware.com/vcloud/v1.5\" majorErrorCode=\"500\"/>";
	cr_assert_eq(vr_worker_parse_error(minor, sizeof minor, body, strlen(body), &reason), 0);
	cr_assert_str_eq(minor, "");
	body = "<html><body>Bad Gateway</body></html>";
	cr_assert_eq(vr_worker_parse_error(minor, sizeof minor, body, strlen(body), &reason),
		     VR_EINVAL);
	cr_assert_str_eq(minor, "");
}

Test(worker_documents, outcome_tokens)
{
	cr_assert_str_eq(vr_worker_outcome_token(VR_OUTCOME_SUCCESS), "success");
	cr_assert_str_eq(vr_worker_outcome_token(VR_OUTCOME_ERROR), "error");
	cr_assert_str_eq(vr_worker_outcome_token(VR_OUTCOME_CANCELED), "canceled");
	cr_assert_null(vr_worker_outcome_token((enum vr_worker_outcome)3));
}

/* --- recovery parameters ---------------------------------------------- */

Test(worker_documents, recovery_params_as_the_api_writes_them)
{
	struct vr_recovery_params p;
	cr_assert_eq(vr_worker_recovery_params_parse(
			     &p,
			     "{\"PowerOn\": false, \"Synchronize\": true, \"InstanceId\": \"" JOB
			     "\"}"),
		     0);
	cr_assert_not(p.power_on);
	cr_assert(p.synchronize);
	cr_assert_str_eq(p.instance_id, JOB);
	cr_assert_eq(vr_worker_recovery_params_parse(
			     &p,
			     "{\"PowerOn\": true, \"Synchronize\": false, \"InstanceId\": null}"),
		     0);
	cr_assert(p.power_on);
	cr_assert_not(p.synchronize);
	cr_assert_str_eq(p.instance_id, "");
}

Test(worker_documents, recovery_params_defaults_and_extras)
{
	struct vr_recovery_params p;
	static const char *const fine[] = {"", "  ", "{}", " { } "};
	for (size_t i = 0; i < sizeof fine / sizeof fine[0]; i++) {
		cr_assert_eq(vr_worker_recovery_params_parse(&p, fine[i]), 0, "%s", fine[i]);
		cr_assert(p.power_on);
		cr_assert_not(p.synchronize);
		cr_assert_str_eq(p.instance_id, "");
	}
	cr_assert_eq(vr_worker_recovery_params_parse(&p, NULL), 0);
	cr_assert_eq(vr_worker_recovery_params_parse(
			     &p, "{\"Note\": \"a \\\"quoted\\\" \\u00e9 text\", \"Rpo\": -1.5e3,"
				 " \"Flag\": true, \"PowerOn\": false}"),
		     0, "unknown keys of any scalar type are ignored");
	cr_assert_not(p.power_on);
	cr_assert_eq(vr_worker_recovery_params_parse(&p, "{\"Instance\\u0049d\": \"" JOB "\"}"), 0,
		     "an escaped key is the same key");
	cr_assert_str_eq(p.instance_id, JOB);
}

Test(worker_documents, recovery_params_refusals)
{
	static const char *const bad[] = {
		"{\"Other\": [1]}",
		"{\"Other\": {\"a\": 1}}",
		"{\"PowerOn\": \"yes\"}",
		"{\"PowerOn\": 1}",
		"{\"Synchronize\": null}",
		"{\"InstanceId\": \"not-a-uuid\"}",
		"{\"InstanceId\": 5}",
		"{\"PowerOn\": true",
		"{\"PowerOn\" true}",
		"{\"PowerOn\": true,}",
		"{PowerOn: true}",
		"{\"PowerOn\": true} x",
		"[true]",
		"{\"a\": \"unterminated}",
		"{\"a\": \"bad \\q escape\"}",
		"{\"a\": \"bad \\u12 escape\"}",
		"{\"a\": truee}",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		struct vr_recovery_params p;
		cr_assert_eq(vr_worker_recovery_params_parse(&p, bad[i]), VR_EINVAL, "%s", bad[i]);
	}
}

Test(worker_documents, the_peer_is_read_from_the_parameters_of_any_action)
{
	static const char peer[] = "70000000-0000-4000-8000-000000000007";
	const char *fine[] = {
		"{\"PeerId\": \"70000000-0000-4000-8000-000000000007\"}",
		"{\"PowerOn\": true, \"PeerId\" : \"70000000-0000-4000-8000-000000000007\","
		" \"InstanceId\": null}",
		"{\"Disks\": [{\"SizeBytes\": 1}], \"PeerId\":\"70000000-0000-4000-8000-000000000007\"}",
	};
	for (size_t i = 0; i < sizeof fine / sizeof fine[0]; i++) {
		char out[VR_UUID_LEN + 1];
		cr_assert_eq(vr_worker_params_peer(out, fine[i]), 0, "%s", fine[i]);
		cr_assert_str_eq(out, peer);
	}
	const char *bad[] = {
		"",
		"{}",
		"{\"PeerId\": null}",
		"{\"PeerId\": \"not-a-uuid\"}",
		"{\"Name\": \"a \\\"PeerId\\\" inside\"}",
		"{\"PeerIds\": \"70000000-0000-4000-8000-000000000007\"}",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		char out[VR_UUID_LEN + 1];
		cr_assert_eq(vr_worker_params_peer(out, bad[i]), VR_ENOTFOUND, "%s", bad[i]);
	}
	cr_assert_eq(vr_worker_params_peer((char[VR_UUID_LEN + 1]){0}, NULL), VR_ENOTFOUND);
}

/* --- the replication port's documents (src/worker/instances.c) --------- */

Test(worker_documents, instance_record)
{
	struct vr_store_instance inst;
	memset(&inst, 0, sizeof inst);
	snprintf(inst.id, sizeof inst.id, "%s", "6F1C2A9E-4B7D-4E0A-9C3B-2D5E8F7A1B61");
	inst.point_in_time_ms = 1764151200123;
	inst.blocks = 656;
	inst.bytes = 2686976;
	for (int i = 0; i < VR_TX_HASH; i++)
		inst.root[i] = (uint8_t)(i * 7 + 1);
	struct vr_buf out;
	vr_buf_init(&out, 0);
	cr_assert_eq(vr_worker_doc_instance(&out, SERVER, &inst, 12), 0);
	xmlDocPtr doc = valid_doc(&out, "InstanceRecord");
	expect_child(doc, "ServerId", SERVER);
	expect_child(doc, "InstanceId", "6f1c2a9e-4b7d-4e0a-9c3b-2d5e8f7a1b61");
	expect_child(doc, "PointInTimeMs", "1764151200123");
	expect_child(doc, "TransferSeconds", "12");
	expect_child(doc, "TransferBytes", "2686976");
	expect_child(doc, "Blocks", "656");
	expect_child(doc, "HashRoot",
		     "01080f161d242b323940474e555c636a71787f868d949ba2a9b0b7bec5ccd3da");
	xmlFreeDoc(doc);
	vr_buf_free(&out);
	/* what the schema would refuse is not written */
	vr_buf_init(&out, 0);
	cr_assert_eq(vr_worker_doc_instance(&out, "not-a-uuid", &inst, 1), VR_EINVAL);
	inst.point_in_time_ms = 0;
	cr_assert_eq(vr_worker_doc_instance(&out, SERVER, &inst, 1), VR_EINVAL);
	snprintf(inst.id, sizeof inst.id, "%s", "short");
	inst.point_in_time_ms = 1;
	cr_assert_eq(vr_worker_doc_instance(&out, SERVER, &inst, 1), VR_EINVAL);
	vr_buf_free(&out);
}

static const char retention_answer[] =
	"<InstanceRetention xmlns=\"" VR_WORKER_NS "\"><ReplicationId>" JOB
	"</ReplicationId><InstanceId>" TASK "</InstanceId><Sequence>7</Sequence><Keep>" TASK
	"</Keep><Keep>" SERVER "</Keep></InstanceRetention>";

Test(worker_documents, retention_answer)
{
	struct vr_worker_retention r;
	const char *reason = NULL;
	cr_assert_eq(vr_worker_parse_retention(&r, retention_answer, strlen(retention_answer),
					       &reason),
		     0, "%s", reason);
	cr_assert_eq(r.seq, 7);
	cr_assert_eq(r.nkeep, 2);
	cr_assert_str_eq(r.keep[0], TASK);
	cr_assert_str_eq(r.keep[1], SERVER);
	vr_worker_retention_free(&r);
	static const char *const bad[] = {
		"<InstanceRetention xmlns=\"" VR_WORKER_NS "\"><Sequence>7</Sequence>"
		"</InstanceRetention>",
		"<InstanceRetention xmlns=\"" VR_WORKER_NS "\"><Sequence>x</Sequence><Keep>" TASK
		"</Keep></InstanceRetention>",
		"<InstanceRetention xmlns=\"" VR_WORKER_NS "\"><Sequence>1</Sequence>"
		"<Keep>nope</Keep></InstanceRetention>",
		"<InstanceRetention xmlns=\"urn:other\"><Sequence>1</Sequence><Keep>" TASK
		"</Keep></InstanceRetention>",
		"<Job xmlns=\"" VR_WORKER_NS "\"/>",
		"not xml",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		reason = NULL;
		cr_assert_eq(vr_worker_parse_retention(&r, bad[i], strlen(bad[i]), &reason),
			     VR_EINVAL, "#%zu accepted", i);
		cr_assert_not_null(reason);
		cr_assert_null(r.keep);
	}
}

Test(worker_documents, configure_disks_as_the_api_writes_them)
{
	struct vr_store_disk disks[4];
	unsigned n = 0;
	const char *json = "{\"Disks\": [{\"DeviceKey\": 2000, \"SizeBytes\": 268435456},"
			   " {\"DeviceKey\": 2001, \"SizeBytes\": 4096}],"
			   " \"PeerId\": \"" SERVER "\", \"VmName\": \"a \\\"Disks\\\": [] vm\"}";
	cr_assert_eq(vr_worker_params_disks(disks, 4, &n, json), 0);
	cr_assert_eq(n, 2);
	cr_assert_str_eq(disks[0].key, "2000");
	cr_assert_eq(disks[0].size, 268435456);
	cr_assert_str_eq(disks[1].key, "2001");
	cr_assert_eq(disks[1].size, 4096);
	/* the VM name's escaped "Disks" comes first: it is no key */
	const char *first = "{\"VmName\": \"x\\\"Disks\\\": [\", \"Disks\": [{\"SizeBytes\": 8192,"
			    " \"DeviceKey\": 0, \"Other\": true}]}";
	cr_assert_eq(vr_worker_params_disks(disks, 4, &n, first), 0);
	cr_assert_eq(n, 1);
	cr_assert_str_eq(disks[0].key, "0");
	static const char *const bad[] = {
		NULL,
		"{}",
		"{\"Disks\": []}",
		"{\"Disks\": [{\"DeviceKey\": 1}]}",
		"{\"Disks\": [{\"DeviceKey\": 1, \"SizeBytes\": 1024}]}",
		"{\"Disks\": [{\"DeviceKey\": 1, \"SizeBytes\": 0}]}",
		"{\"Disks\": [{\"DeviceKey\": -1, \"SizeBytes\": 4096}]}",
		"{\"Disks\": [{\"DeviceKey\": 1.5, \"SizeBytes\": 4096}]}",
		"{\"Disks\": [{\"DeviceKey\": 1, \"SizeBytes\": 140737488355328}]}",
		"{\"Disks\": [{\"DeviceKey\": 1, \"SizeBytes\": 4096}",
		"{\"Disks\": [{\"DeviceKey\": 1, \"SizeBytes\": 4096}, {\"DeviceKey\": 2,"
		" \"SizeBytes\": 4096}, {\"DeviceKey\": 3, \"SizeBytes\": 4096}, {\"DeviceKey\": 4,"
		" \"SizeBytes\": 4096}, {\"DeviceKey\": 5, \"SizeBytes\": 4096}]}",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		cr_assert_eq(vr_worker_params_disks(disks, 4, &n, bad[i]), VR_EINVAL,
			     "#%zu accepted", i);
}

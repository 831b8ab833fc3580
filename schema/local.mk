# XML Schemas of every document vrcloud emits or accepts, their examples,
# and the test that validates the examples against them.
# schema/vrcloud.xsd is the entry point; it imports the other files by
# relative location, so they are installed side by side.
schemadir = $(datadir)/vrcloud/schema
dist_schema_DATA = \
	schema/vrcloud.xsd \
	schema/vcloud-1.5.xsd \
	schema/vcloud-extension-1.5.xsd \
	schema/versions.xsd \
	schema/vr-6.0.xsd \
	schema/internal-1.xsd \
	schema/extension-1.xsd

EXTRA_DIST += schema/README.md

EXTRA_DIST += \
	schema/examples/valid/internal-job-result.xml \
	schema/examples/valid/internal-job-result-recovered.xml \
	schema/examples/valid/internal-job.xml \
	schema/examples/valid/internal-replica-server.xml \
	schema/examples/valid/internal-site-verify.xml \
	schema/examples/valid/internal-site.xml \
	schema/examples/valid/internal-replication-server-lookup.xml \
	schema/examples/valid/internal-replication-server.xml \
	schema/examples/valid/internal-instance-record.xml \
	schema/examples/valid/internal-instance-retention.xml \
	schema/examples/valid/internal-server-statistics.xml \
	schema/examples/invalid/internal-instance-record-short-hash.xml \
	schema/examples/invalid/internal-job-result-disk-key-not-a-number.xml \
	schema/examples/invalid/internal-replication-server-lookup-bad-peer.xml \
	schema/examples/invalid/internal-site-verify-empty-credential.xml \
	schema/examples/invalid/internal-site-missing-vdc.xml \
	schema/examples/invalid/internal-job-result-bad-outcome.xml \
	schema/examples/invalid/internal-progress-over-100.xml \
	schema/examples/invalid/admin-vr-server-missing-replications-count.xml \
	schema/examples/invalid/move-replication-group-params-no-moref.xml \
	schema/examples/invalid/edit-recovery-details-params-wrong-order.xml \
	schema/examples/invalid/error-major-code-not-int.xml \
	schema/examples/invalid/error-missing-major-code.xml \
	schema/examples/invalid/failover-params-wrong-namespace.xml \
	schema/examples/invalid/instance-list-bad-timestamp.xml \
	schema/examples/invalid/link-missing-rel.xml \
	schema/examples/invalid/network-mapping-target-before-source.xml \
	schema/examples/invalid/peer-unknown-pairing-state.xml \
	schema/examples/invalid/reconfigure-replication-group-params-no-instances.xml \
	schema/examples/invalid/reference-missing-href.xml \
	schema/examples/invalid/references-reference-before-link.xml \
	schema/examples/invalid/replication-group-missing-href.xml \
	schema/examples/invalid/replication-group-rpo-not-a-number.xml \
	schema/examples/invalid/replication-group-spec-params-no-disk.xml \
	schema/examples/invalid/replication-group-spec-params-empty-disk.xml \
	schema/examples/invalid/replication-group-spec-params-rpo-too-small.xml \
	schema/examples/invalid/replication-group-unknown-element.xml \
	schema/examples/invalid/replication-group-unknown-recovery-state.xml \
	schema/examples/invalid/replication-group-unknown-test-state.xml \
	schema/examples/invalid/replication-group-wrong-order.xml \
	schema/examples/invalid/session-missing-org.xml \
	schema/examples/invalid/supported-versions-missing-login-url.xml \
	schema/examples/invalid/switch-vr-server-params-missing-uuid.xml \
	schema/examples/invalid/task-bad-status.xml \
	schema/examples/invalid/task-error-after-user.xml \
	schema/examples/invalid/task-progress-out-of-range.xml \
	schema/examples/invalid/task-site-credential-too-short.xml \
	schema/examples/invalid/test-failover-params-bad-boolean.xml \
	schema/examples/invalid/test-failover-params-wrong-order.xml \
	schema/examples/invalid/vrcs-nodes-node-missing-role.xml \
	schema/examples/valid/admin-vr-server.xml \
	schema/examples/valid/edit-recovery-details-params.xml \
	schema/examples/valid/error.xml \
	schema/examples/valid/failback-replication-group.xml \
	schema/examples/valid/failover-params-instance.xml \
	schema/examples/valid/failover-params-python.xml \
	schema/examples/valid/failover-params-raascli-empty.xml \
	schema/examples/valid/move-replication-group-params.xml \
	schema/examples/valid/org-list.xml \
	schema/examples/valid/org.xml \
	schema/examples/valid/pair-vc-with-vdc-params.xml \
	schema/examples/valid/peer.xml \
	schema/examples/valid/peer-pairing.xml \
	schema/examples/valid/query-result-records.xml \
	schema/examples/valid/reconfigure-replication-group-params.xml \
	schema/examples/valid/reconfigure-replication-group-params-keep-newest.xml \
	schema/examples/valid/references-past-end.xml \
	schema/examples/valid/references.xml \
	schema/examples/valid/replication-group-details.xml \
	schema/examples/valid/replication-group-instance-list.xml \
	schema/examples/valid/replication-group-spec-params.xml \
	schema/examples/valid/replication-group.xml \
	schema/examples/valid/replication-group-retention.xml \
	schema/examples/valid/session.xml \
	schema/examples/valid/supported-versions.xml \
	schema/examples/valid/switch-vr-server-params.xml \
	schema/examples/valid/task-error.xml \
	schema/examples/valid/task-pair-site.xml \
	schema/examples/valid/task-running.xml \
	schema/examples/valid/test-failover-params-java.xml \
	schema/examples/valid/test-failover-params-python.xml \
	schema/examples/valid/test-failover-params-raascli.xml \
	schema/examples/valid/vdc.xml \
	schema/examples/valid/vr-network-mappings.xml \
	schema/examples/valid/vr-network-mappings-request.xml \
	schema/examples/valid/vr-recovery-details.xml \
	schema/examples/valid/vr-server-statistics.xml \
	schema/examples/valid/vrcs-nodes.xml

TESTS += tests/schema/check-examples.sh
EXTRA_DIST += tests/schema/check-examples.sh

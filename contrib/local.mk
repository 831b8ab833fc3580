# contrib/: the set-up commands, their shared service library, and the test
# harness scripts they drive (contrib/install-openapi-linter is listed with
# the API description).
EXTRA_DIST += \
	contrib/install-deps \
	contrib/lib/services.sh \
	contrib/run-tests \
	contrib/tunnel-test-ca \
	contrib/vrcloud-up \
	tests/ci-summary.sh \
	tests/with-services.sh

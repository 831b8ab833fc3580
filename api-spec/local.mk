# OpenAPI description of the REST API, its route list and its lint test.
# tests/api-spec/lint.sh skips (77) when no linter is installed, except under CI=true;
# install one with contrib/install-openapi-linter.

EXTRA_DIST += \
	api-spec/openapi.yaml \
	api-spec/redocly.yaml \
	api-spec/routes.txt \
	tests/api-spec/lint.sh \
	contrib/install-openapi-linter

TESTS += tests/api-spec/lint.sh

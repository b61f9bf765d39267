"""Each function behind its route: an integration on its alias `live`, an invoke permission, and the HTTP API's
CORS configuration, which is meters-local's policy (local/src/cors.rs) with the configured origins."""
import json

import pytest

from cfn.stacks import MODES, api_functions, broken_rules, cfn_lint, meters_local, resolved, resources


def test_every_function_behind_a_route_has_an_integration_on_its_live_alias_and_an_invoke_permission():
    # The API invokes each function's alias `live` (AutoPublishAlias), which SAM names <Function>Aliaslive.
    integrations = {r["Properties"]["IntegrationUri"]["Ref"].removesuffix("Aliaslive") for r in resources().values()
                    if r["Type"] == "AWS::ApiGatewayV2::Integration"}
    permissions = {r["Properties"]["FunctionName"]["Ref"].removesuffix("Aliaslive") for r in resources().values()
                   if r["Type"] == "AWS::Lambda::Permission"}
    assert integrations == set(api_functions())
    assert permissions == set(api_functions())


def cors(origins):
    overrides = {**MODES["gateway"], "CorsAllowedOrigins": origins}
    return resolved(overrides).resolve(resources()["MetersApi"]["Properties"]).get("CorsConfiguration")


ORIGINS = "https://app.example.com,http://localhost:5173"


def test_cors_allowed_origins_configures_the_http_apis_cors_with_meters_locals_policy_and_those_origins():
    policy = json.loads(meters_local("cors-policy"))
    assert cors(ORIGINS) == {**policy, "AllowOrigins": ORIGINS.split(",")}


def test_cors_exposes_the_headers_the_apis_flows_read_and_allows_the_ones_they_send():
    configuration = cors(ORIGINS)
    assert {"etag", "location", "x-request-id", "retry-after", "idempotent-replayed"} <= set(configuration["ExposeHeaders"])
    assert {"authorization", "content-type", "if-match", "if-none-match", "idempotency-key"} <= set(configuration["AllowHeaders"])


def test_without_cors_allowed_origins_the_api_has_no_cors_configuration():
    assert cors("") is None


def test_with_cors_allowed_origins_cfn_lint_is_clean():
    assert cfn_lint("template.yaml", {**MODES["gateway"], "CorsAllowedOrigins": ORIGINS}) == ""


@pytest.mark.parametrize("bad", ["https://app.example.com, http://localhost:5173", "app.example.com",
                                 "https://app.example.com/path", "https://*.example.com"])
def test_cors_allowed_origins_refuses(bad):
    assert broken_rules({**MODES["gateway"], "CorsAllowedOrigins": bad}) != []


def test_the_outputs_name_the_api_id_and_every_function_behind_a_route():
    from cfn.stacks import app_template  # noqa: PLC0415

    outputs = app_template()["Outputs"]
    assert outputs["ApiId"]["Value"] == {"Ref": "MetersApi"}
    assert {f: outputs[f"{f}Name"]["Value"] for f in api_functions()} == {f: {"Ref": f} for f in api_functions()}


def test_the_stage_throttles_with_the_list_route_tighter_logs_access_as_json_and_has_detailed_metrics():
    stage = resources()["MetersApiStage"]["Properties"]
    assert stage["DefaultRouteSettings"]["ThrottlingRateLimit"] == {"Ref": "ApiRateLimit"}
    assert stage["RouteSettings"]["GET /api/v1/meters"]["ThrottlingRateLimit"] == {"Ref": "ListRateLimit"}
    assert stage["DefaultRouteSettings"]["DetailedMetricsEnabled"] is True
    access_log = stage["AccessLogSettings"]["Format"]
    for field in ("$context.requestId", "$context.integrationErrorMessage", "$context.status",
                  "$context.authorizer.claims.sub", "$context.authorizer.claims.client_id", "$context.authorizer.error"):
        assert field in access_log

"""template.yaml in each authentication mode: cfn-lint is clean, the Rules refuse what a mode lacks, the
functions' environment holds exactly the mode's variables (no secret outside hs256 mode), and the JWT authorizer
guards every route in gateway mode only."""
import pytest

from cfn.stacks import DOMAIN, MODES, PAGED, SECRET, broken_rules, cfn_lint, resolved, resources

COMMON_ENV = {"TABLE_NAME", "AUTH_MODE", "JWT_ACCOUNTS_CLAIM", "POWERTOOLS_SERVICE_NAME", "METRICS_NAMESPACE",
              "DYNAMODB_ENDPOINT", "RUST_LOG"}
MODE_ENV = {
    "gateway": set(),
    "jwks": {"JWT_JWKS_URL", "JWT_ALGORITHM", "JWT_ISSUER", "JWT_AUDIENCE"},
    "hs256": {"JWT_SECRET", "JWT_ALGORITHM", "JWT_ISSUER", "JWT_AUDIENCE"},
}


def environment(mode):
    from cfn.stacks import app_template  # noqa: PLC0415

    return resolved(MODES[mode]).resolve(app_template()["Globals"]["Function"]["Environment"]["Variables"])


@pytest.mark.parametrize("mode", MODES)
def test_cfn_lint_is_clean_in_each_mode(mode):
    assert cfn_lint("template.yaml", MODES[mode]) == ""


@pytest.mark.parametrize("mode", MODES)
def test_each_modes_parameters_pass_the_rules(mode):
    assert broken_rules(MODES[mode]) == []


@pytest.mark.parametrize("mode", MODES)
def test_the_functions_get_exactly_the_modes_variables(mode):
    env = environment(mode)
    assert set(env) == COMMON_ENV | MODE_ENV[mode]
    assert env["DYNAMODB_ENDPOINT"] == "", "declared empty: AWS itself"
    assert env["AUTH_MODE"] == ("gateway" if mode == "gateway" else "function")


@pytest.mark.parametrize("mode", ["gateway", "jwks"])
def test_no_secret_reaches_the_functions_outside_hs256_mode(mode):
    env = environment(mode)
    assert "JWT_SECRET" not in env and not [k for k, v in env.items() if SECRET in str(v)]


def test_hs256_mode_verifies_with_hs256():
    assert environment("hs256")["JWT_ALGORITHM"] == "HS256"


@pytest.mark.parametrize("mode", MODES)
def test_the_jwt_authorizer_exists_and_guards_every_route_in_gateway_mode_only(mode):
    resolver = resolved(MODES[mode])
    assert resolver.conditions[resources()["JwtAuthorizer"]["Condition"]] == (mode == "gateway")
    routes = {name: resolver.resolve(r["Properties"]) for name, r in resources().items() if r["Type"] == "AWS::ApiGatewayV2::Route"}
    assert len(routes) == 5
    for name, route in routes.items():
        assert route["AuthorizationType"] == ("JWT" if mode == "gateway" else "NONE"), name
        assert ("AuthorizerId" in route) == (mode == "gateway"), name


REFUSALS = {
    "gateway without an issuer": {"AuthMode": "gateway", "JwtAudience": "a"},
    "gateway without an audience": {"AuthMode": "gateway", "JwtIssuer": "https://id.example"},
    "jwks without a URL": {"AuthMode": "jwks"},
    "jwks with a plain-http URL": {"AuthMode": "jwks", "JwtJwksUrl": "http://id.example/jwks"},
    "hs256 without a secret": {"AuthMode": "hs256"},
    "hs256 with a short secret": {"AuthMode": "hs256", "JwtSecret": "short"},
    "a secret outside hs256 mode": {**MODES["jwks"], "JwtSecret": SECRET},
    "a custom domain without its certificate": {**MODES["gateway"], "DomainName": "api.example.com"},
    "a prod stack that pages no one": {**MODES["gateway"], "Stage": "prod"},
    "an alarm address that is no address": {**MODES["gateway"], "AlarmEmail": "on-call"},
    "a throttle of zero, which would turn the API off": {**MODES["gateway"], "ApiRateLimit": "0"},
    "a list throttle of zero": {**MODES["gateway"], "ListBurstLimit": "0"},
    "a 5xx threshold of zero, which pages on every error": {**MODES["gateway"], "Api5xxPercentThreshold": "0"},
    "no traffic floor for the rate alarms": {**MODES["gateway"], "AlarmMinimumRequests": "0"},
}


@pytest.mark.parametrize("case", REFUSALS)
def test_the_template_refuses(case):
    assert broken_rules(REFUSALS[case]) != []


def test_a_prod_stack_that_pages_someone_passes_the_rules():
    assert broken_rules({**MODES["gateway"], "Stage": "prod", **PAGED}) == []
    assert broken_rules({**MODES["gateway"], "Stage": "prod", "AlarmHttpsEndpoint": "https://events.pagerduty.com/x"}) == []


def test_with_a_custom_domain_cfn_lint_is_clean_and_the_parameters_pass_the_rules():
    domain = {**MODES["gateway"], **DOMAIN}
    assert cfn_lint("template.yaml", domain) == ""
    assert broken_rules(domain) == []


def api_addresses(overrides):
    resolver = resolved(overrides)
    api = resolver.resolve(resources()["MetersApi"]["Properties"])
    made = {name for name in ("MetersApiDomain", "MetersApiMapping") if resolver.exists(resources()[name])}
    return api["DisableExecuteApiEndpoint"], made


def test_a_custom_domain_makes_the_domain_and_its_mapping_and_turns_the_execute_api_address_off():
    assert api_addresses({**MODES["gateway"], **DOMAIN}) == (True, {"MetersApiDomain", "MetersApiMapping"})


def test_without_a_custom_domain_neither_exists_and_the_execute_api_address_serves():
    assert api_addresses(MODES["gateway"]) == (False, set())

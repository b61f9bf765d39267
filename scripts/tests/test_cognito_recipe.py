"""The Cognito recipe (docs/identity-providers.md) works in gateway mode as written: the tokens Cognito issues, shaped by the trigger
this repository ships (pipeline/cognito-accounts-claim.py, run here on Cognito's version 3 events), pass the JWT
authorizer the template makes from the recipe's parameters, and carry the accounts in the claim the functions
read. A user's access token and the pipeline's machine token (the smoke test's) alike."""
import importlib.util
import json
import re
import shlex

import pytest

from cfn.stacks import ROOT, app_template, resolved

PLACEHOLDERS = {"<region>": "eu-west-1", "<pool id>": "eu-west-1_AbCdEf", "<app client id>": "4webapp1client",
                "<smoke client id>": "7smoke2client"}
SMOKE_ACCOUNT = "6f1c2b1e-0d7a-4c55-9a43-4f0b8d3a1e22"
USER_ACCOUNTS = ["0b1d5a3c-2f4e-4d6a-8b9c-1e2f3a4b5c6d", "9e8d7c6b-5a49-4382-9170-6f5e4d3c2b1a"]


def recipe_parameters() -> dict:
    page = (ROOT / "docs" / "identity-providers.md").read_text()
    section = page[page.index("**Amazon Cognito.**"):page.index("**Any OIDC provider")]
    (line,) = [line for line in section.splitlines() if "METERS_PARAMETER_OVERRIDES=" in line]
    overrides = shlex.split(line.strip())[0].split("=", 1)[1]
    for placeholder, value in PLACEHOLDERS.items():
        overrides = overrides.replace(placeholder, value)
    return dict(pair.split("=", 1) for pair in overrides.split())


def trigger():
    spec = importlib.util.spec_from_file_location("trigger", ROOT / "pipeline" / "cognito-accounts-claim.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def cognito_event(source, client, attributes=None):
    """A version 3 pre-token-generation event, as Cognito's developer guide shows it."""
    return {"version": "3", "triggerSource": source, "region": "eu-west-1", "userPoolId": PLACEHOLDERS["<pool id>"],
            "userName": None if source.endswith("ClientCredentials") else "ana",
            "callerContext": {"awsSdkVersion": "aws-sdk-unknown-unknown", "clientId": client},
            "request": {"userAttributes": attributes or {}, "groupConfiguration": None, "scopes": ["meters/smoke"]},
            "response": {"claimsAndScopeOverrideDetails": None}}


def access_token(event, monkeypatch, accounts_by_client):
    """The access token Cognito issues after the trigger: its own claims (no `aud`) and those the trigger added."""
    parameters = recipe_parameters()
    monkeypatch.setenv("ACCOUNTS_CLAIM", parameters.get("JwtAccountsClaim", "account_ids"))
    monkeypatch.setenv("ACCOUNTS_BY_CLIENT", json.dumps(accounts_by_client))
    answered = trigger().handler(event, None)
    added = answered["response"]["claimsAndScopeOverrideDetails"]["accessTokenGeneration"]["claimsToAddOrOverride"]
    client = event["callerContext"]["clientId"]
    issuer = f"https://cognito-idp.eu-west-1.amazonaws.com/{PLACEHOLDERS['<pool id>']}"
    return {"sub": client if event["userName"] is None else "ana-sub", "token_use": "access", "scope": "meters/smoke",
            "iss": issuer, "client_id": client, "exp": 4102444800, "iat": 1796601600, "version": 2, **added}


def authorizer_accepts(claims) -> bool:
    """API Gateway's HTTP API JWT authorizer: `iss` must be the issuer; `aud` one of the audience or, when the token
    has none, `client_id` one of it."""
    parameters = recipe_parameters()
    config = resolved(parameters).resolve(app_template()["Resources"]["JwtAuthorizer"]["Properties"])["JwtConfiguration"]
    audience = config["Audience"]
    presented = claims["aud"] if "aud" in claims else claims.get("client_id")
    return claims["iss"] == config["Issuer"] and presented in audience


def accounts_the_functions_read(claims) -> list:
    parameters = recipe_parameters()
    claim = resolved(parameters).resolve(app_template()["Globals"]["Function"]["Environment"]["Variables"])["JWT_ACCOUNTS_CLAIM"]
    return claims.get(claim, [])


def test_the_recipe_deploys_in_gateway_mode_with_both_clients_in_the_audience():
    parameters = recipe_parameters()
    assert parameters["AuthMode"] == "gateway"
    assert parameters["JwtAudience"].split(",") == [PLACEHOLDERS["<app client id>"], PLACEHOLDERS["<smoke client id>"]]
    assert re.fullmatch(r"https://cognito-idp\.eu-west-1\.amazonaws\.com/eu-west-1_\w+", parameters["JwtIssuer"])


def test_the_pipelines_machine_token_passes_the_authorizer_and_grants_the_smoke_account(monkeypatch):
    event = cognito_event("TokenGeneration_ClientCredentials", PLACEHOLDERS["<smoke client id>"])
    claims = access_token(event, monkeypatch, {PLACEHOLDERS["<smoke client id>"]: [SMOKE_ACCOUNT]})
    assert authorizer_accepts(claims)
    assert accounts_the_functions_read(claims) == [SMOKE_ACCOUNT]


def test_a_users_access_token_passes_the_authorizer_with_the_accounts_of_their_attribute(monkeypatch):
    event = cognito_event("TokenGeneration_Authentication", PLACEHOLDERS["<app client id>"],
                          {"sub": "ana-sub", "custom:account_ids": ", ".join(USER_ACCOUNTS)})
    claims = access_token(event, monkeypatch, {})
    assert authorizer_accepts(claims)
    assert accounts_the_functions_read(claims) == USER_ACCOUNTS


@pytest.mark.parametrize("client", ["someone-elses-client"])
def test_a_client_outside_the_audience_is_refused_by_the_authorizer(client, monkeypatch):
    claims = access_token(cognito_event("TokenGeneration_ClientCredentials", client), monkeypatch, {client: [SMOKE_ACCOUNT]})
    assert not authorizer_accepts(claims)


def test_a_machine_client_the_trigger_does_not_know_gets_no_account(monkeypatch):
    event = cognito_event("TokenGeneration_ClientCredentials", PLACEHOLDERS["<smoke client id>"])
    assert accounts_the_functions_read(access_token(event, monkeypatch, {})) == []

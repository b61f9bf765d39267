"""A Cognito pre-token-generation trigger (event version 3) that writes the accounts a token may act for into the
claim the Meters API reads (the stack's JwtAccountsClaim, default `account_ids`), in access tokens (and in ID
tokens, for users). Cognito calls version 3 triggers for users' sign-ins and for machine clients'
client-credentials grants alike (docs/identity-providers.md).

- A user's accounts: their custom attribute `custom:account_ids` (ids separated by commas), set by your admin
  tooling.
- A machine client's: ACCOUNTS_BY_CLIENT, a JSON object of app client id to account ids (the pipeline's smoke
  client: `{"<smoke client id>": ["<smoke account>"]}`).

Deploy it as a Lambda function (Python 3.12, handler `cognito-accounts-claim.handler`), give it to the user pool
as its pre-token-generation trigger with event version V3_0, and keep ACCOUNTS_CLAIM equal to the stack's
JwtAccountsClaim. scripts/tests/test_cognito_recipe.py runs it on Cognito's events."""
import json
import os

CLIENT_CREDENTIALS = "TokenGeneration_ClientCredentials"


def accounts_of(event: dict) -> list[str]:
    if event.get("triggerSource") == CLIENT_CREDENTIALS:
        by_client = json.loads(os.environ.get("ACCOUNTS_BY_CLIENT", "{}"))
        return list(by_client.get(event["callerContext"]["clientId"], []))
    attribute = event.get("request", {}).get("userAttributes", {}).get("custom:account_ids", "")
    return [account.strip() for account in attribute.split(",") if account.strip()]


def handler(event, context):
    claims = {os.environ.get("ACCOUNTS_CLAIM", "account_ids"): accounts_of(event)}
    details = {"accessTokenGeneration": {"claimsToAddOrOverride": claims}}
    if event.get("triggerSource") != CLIENT_CREDENTIALS:  # a client-credentials grant issues no ID token
        details["idTokenGeneration"] = {"claimsToAddOrOverride": claims}
    event.setdefault("response", {})["claimsAndScopeOverrideDetails"] = details
    return event

#!/usr/bin/env python3
"""What `sam local invoke` would give each function with each fixture environment, resolved by SAM's own code.

For every function of template.yaml and each of events/env.json (the functions' own token checks) and
events/env-gateway-mode.json (claims from API Gateway's authorizer): the template is read with the parameter
overrides samconfig.toml gives `sam local invoke`, the function's environment is made by SAM's
LocalLambdaRunner._make_env_vars with the file as --env-vars, and the result is checked: DynamoDB Local's
endpoint, the authentication mode the fixtures need, the development secret where tokens are verified, and
the architecture the local build has. Needs no Docker: nothing is invoked.
"""

import json
import os
import pathlib
import sys
import tomllib

from samcli.cli.types import CfnParameterOverridesType
from samcli.commands.local.lib.local_lambda import LocalLambdaRunner
from samcli.lib.providers.sam_function_provider import SamFunctionProvider
from samcli.lib.providers.sam_stack_provider import SamLocalStackProvider

from checks import run

ROOT = pathlib.Path(__file__).resolve().parent.parent
FUNCTIONS = ["ListMetersFunction", "CreateMeterFunction", "GetMeterFunction", "UpdateMeterFunction",
             "DeleteMeterFunction"]
DEV_SECRET = "meters-development-secret-for-local-use-only"
# SAM leaves nested Fn::If unresolved locally and passes them as empty strings, which the functions read as
# unset: an empty JWT_ALGORITHM (and no JWT_JWKS_URL) is HS256 by default.
EXPECTED = {
    "env.json": {"AUTH_MODE": "function", "JWT_SECRET": DEV_SECRET, "JWT_ALGORITHM": "", "JWT_JWKS_URL": ""},
    "env-gateway-mode.json": {"AUTH_MODE": "gateway"},
}


def local_invoke_overrides():
    config = tomllib.loads((ROOT / "samconfig.toml").read_text())
    raw = config["default"]["local_invoke"]["parameters"]["parameter_overrides"]
    return CfnParameterOverridesType().convert(raw, None, None)


class EnvVarsOnly:
    """What LocalLambdaRunner._make_env_vars reads of its runner: the --env-vars file, credentials, debugging."""

    def __init__(self, env_vars_values):
        self.env_vars_values = env_vars_values

    def get_aws_creds(self):
        return {"region": "us-east-1", "key": "local", "secret": "local"}

    def is_debugging(self):
        return False


def checks():
    overrides = local_invoke_overrides()
    yield "samconfig's local_invoke overrides choose hs256 and the local build's x86_64", \
        lambda: overrides.get("AuthMode") == "hs256" and overrides.get("Architecture") == "x86_64"
    stacks, _ = SamLocalStackProvider.get_stacks(str(ROOT / "template.yaml"), parameter_overrides=overrides)
    provider = SamFunctionProvider(stacks)
    for env_file, expected in EXPECTED.items():
        values = json.loads((ROOT / "events" / env_file).read_text())
        for name in FUNCTIONS:
            function = provider.get(name)

            def resolved(function=function, values=values):
                # The shell's own variables take part in SAM's resolution: keep this machine's out of it.
                saved = {key: os.environ.pop(key) for key in list(os.environ)
                         if key in ("DYNAMODB_ENDPOINT", "AUTH_MODE", "JWT_SECRET", "TABLE_NAME")}
                try:
                    return LocalLambdaRunner._make_env_vars(EnvVarsOnly(values), function).resolve()
                finally:
                    os.environ.update(saved)

            yield f"{env_file}, {name}: DYNAMODB_ENDPOINT is DynamoDB Local on the Docker host", \
                lambda r=resolved: r()["DYNAMODB_ENDPOINT"] == "http://host.docker.internal:8000"
            yield f"{env_file}, {name}: {sorted(expected.items())}", \
                lambda r=resolved, x=expected: all(r().get(key) == value for key, value in x.items())
            yield f"{env_file}, {name}: table meters-local", lambda r=resolved: r()["TABLE_NAME"] == "meters-local"
            # The stack's bucket does not exist locally: the fixtures leave list-meters without snapshots.
            yield f"{env_file}, {name}: no snapshot bucket (SNAPSHOT_BUCKET empty or absent)", \
                lambda r=resolved: r().get("SNAPSHOT_BUCKET", "") == ""
            yield f"{env_file}, {name}: built for x86_64", \
                lambda f=function: list(f.architectures or []) == ["x86_64"]


def main():
    return run("local-invoke", checks())


if __name__ == "__main__":
    sys.exit(main())

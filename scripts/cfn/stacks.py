"""The stacks this repository deploys, as the checks model them: each samconfig.toml environment (its stack name,
region, tags and parameters) in each authentication mode, with and without the custom domain, deployed by the
execution role of its pipeline/bootstrap.yaml stack."""
from __future__ import annotations

import functools
import pathlib
import shlex
import tomllib
from dataclasses import dataclass

from . import template
from .deployment import Deployment, Stack

ROOT = pathlib.Path(__file__).resolve().parent.parent.parent
SECRET = "a-test-stack-secret-of-at-least-32-characters"
MODES = {
    "gateway": {"AuthMode": "gateway", "JwtIssuer": "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbC",
                "JwtAudience": "4f1c2a9b7d3e"},
    "jwks": {"AuthMode": "jwks", "JwtJwksUrl": "https://id.example/.well-known/jwks.json"},
    "hs256": {"AuthMode": "hs256", "JwtSecret": SECRET},
}
DOMAIN = {"DomainName": "api.example.com",
          "CertificateArn": "arn:aws:acm:eu-west-1:123456789012:certificate/0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b"}
# A prod stack must page someone (the template's rule ProductionPagesSomeone); the pipeline passes the address.
PAGED = {"AlarmEmail": "oncall@example.com"}
REPOSITORY = "example-org/meters-api"


@functools.cache
def app_template() -> dict:
    return template.load(ROOT / "template.yaml")


@functools.cache
def bootstrap_template() -> dict:
    return template.load(ROOT / "pipeline" / "bootstrap.yaml")


@functools.cache
def samconfig() -> dict:
    return tomllib.loads((ROOT / "samconfig.toml").read_text())


def pairs(text: str) -> dict:
    """samconfig's `Key=Value Key2="value"` strings (parameter_overrides, tags), as SAM CLI reads them."""
    return dict(item.split("=", 1) for item in shlex.split(text or ""))


@dataclass(frozen=True)
class Environment:
    name: str  # dev or prod: samconfig's config-env and GitHub's environment

    @property
    def config(self) -> dict:
        return samconfig()[self.name]

    @property
    def stack(self) -> Stack:
        globals_ = self.config["global"]["parameters"]
        return Stack(globals_["stack_name"], globals_["region"], tags=pairs(self.config["deploy"]["parameters"].get("tags")))

    @functools.cached_property
    def bootstrap(self) -> Deployment:
        pipeline = Stack(f"{self.stack.name}-pipeline", self.stack.region)
        return Deployment(bootstrap_template(), {"GitHubRepository": REPOSITORY, "Environment": self.name,
                                                 "StackName": self.stack.name}, pipeline)

    def policy(self, logical: str) -> list[dict]:
        """The statements of a bootstrap role's policies, resolved: a managed policy, or a role's inline ones and
        those of the managed policies it names."""
        resource = self.bootstrap.template["Resources"][logical]
        properties = self.bootstrap.properties(logical)
        if resource["Type"] == "AWS::IAM::ManagedPolicy":
            return list(properties["PolicyDocument"]["Statement"])
        statements = [st for policy in properties.get("Policies", []) for st in policy["PolicyDocument"]["Statement"]]
        for arn in properties.get("ManagedPolicyArns", []):
            owner = next(name for name in self.bootstrap.resources if self.bootstrap.physical(name).arn == arn)
            statements += self.policy(owner)
        return statements

    def parameters(self, mode: str, domain: bool) -> dict:
        overrides = pairs(self.config["deploy"]["parameters"].get("parameter_overrides"))
        overrides.update(MODES[mode])
        overrides["PermissionsBoundaryArn"] = self.bootstrap.physical("StackRolesBoundary").arn
        if overrides.get("Stage") == "prod":
            overrides.update(PAGED)
        if domain:
            overrides.update(DOMAIN)
        return overrides

    def deployment(self, mode: str, domain: bool) -> Deployment:
        bucket = self.bootstrap.physical("ArtifactsBucket").ref
        return Deployment(app_template(), self.parameters(mode, domain), self.stack,
                          code_location=f"s3://{bucket}/{self.stack.name}/3f2a9c0d1e7b4a5c6d8e9f0a1b2c3d4e")


ENVIRONMENTS = [Environment("dev"), Environment("prod")]
CONFIGURATIONS = [(env, mode, domain) for env in ENVIRONMENTS for mode in MODES for domain in (False, True)]


def configuration_id(configuration) -> str:
    env, mode, domain = configuration
    return f"{env.name}-{mode}{'-domain' if domain else ''}"


def resolved(overrides: dict):
    """template.yaml as CloudFormation resolves it with these parameters (before the SAM transform)."""
    source = app_template()
    return template.Resolver(source, template.parameter_values(source, overrides),
                             {"AWS::StackName": "meters-api-test", "AWS::Region": "eu-west-1", "AWS::AccountId": "123456789012"})


def broken_rules(overrides: dict) -> list[str]:
    """The Rules (and parameter constraints) that refuse these parameters."""
    try:
        return resolved(overrides).broken_rules()
    except template.ParameterRefused as refused:
        return [str(refused)]


def resources() -> dict:
    return app_template()["Resources"]


def functions() -> list[str]:
    """Every function of the stack, in template order."""
    return [name for name, r in resources().items() if r["Type"] == "AWS::Serverless::Function"]


def api_functions() -> list[str]:
    """The functions behind a route (meter-events and the like have none)."""
    return [name for name in functions() if "DeploymentPreference" in resources()[name]["Properties"]]


def cfn_lint(path: str, overrides: dict | None = None) -> str:
    """cfn-lint's findings, informational rules included, with these parameter values ('' when clean)."""
    import subprocess  # noqa: PLC0415

    values = [f"{name}={value}" for name, value in (overrides or {}).items()]
    result = subprocess.run(["cfn-lint", "--include-checks", "I", *(["--parameters", *values] if values else []), "--", path],
                            cwd=ROOT, capture_output=True, text=True)
    return "" if result.returncode == 0 else (result.stdout + result.stderr)


@functools.cache
def meters_local(*arguments: str) -> str:
    """What meters-local prints for a subcommand (the store's table definition, the CORS policy)."""
    import subprocess  # noqa: PLC0415

    return subprocess.run(["cargo", "run", "--quiet", "--locked", "-p", "meters-local", "--", *arguments],
                          cwd=ROOT, capture_output=True, text=True, check=True).stdout

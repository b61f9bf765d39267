"""The one deploy of the Meters API, for the pipeline and for people alike (scripts/deploy is its front door).

    scripts/deploy ENV [BUILD_DIR] [--plan | --execute CHANGE_SET] [--allow-replacement LOGICAL_ID]...

It builds nothing: BUILD_DIR (default .aws-sam/build) is `sam build`'s output or the pipeline's tested artefact.
Stack, region, parameters and tags come from samconfig.toml's ENV (dev or prod), with METERS_PARAMETER_OVERRIDES
(`Key=Value …`) on top for what an environment keeps outside the repository (its identity provider, its on-call).

1. The artefact: every function's `bootstrap` is there, inside BUILD_DIR, and executable.
2. The stack's state: a stack whose first create failed (ROLLBACK_COMPLETE) holds nothing and is deleted, with the
   execution role; a stack in another failed or busy state is refused, naming the runbook.
3. The plan: the artefact packaged by `sam package`, the packaged template uploaded beside it, and a change set
   created (a new stack's with OnStackFailure=DELETE, and the table's deletion protection off, so that a failed
   first create leaves nothing behind).
4. The review: every change printed (and written to the job summary under GitHub Actions), and the change set
   refused if it would replace or remove a resource that holds data, unless --allow-replacement names it.
5. The deploy: the change set executed and waited for; a new stack then gets its table's deletion protection.

--plan stops after 4 and writes `change_set=ARN` to $GITHUB_OUTPUT; --execute CHANGE_SET runs 4 and 5 on a change
set a plan made (the pipeline's approved job). Without either, all five run.

AWS: METERS_ARTIFACTS_BUCKET and METERS_EXECUTION_ROLE_ARN (pipeline/bootstrap.yaml's outputs; the pipeline's
roles need both); without them SAM's managed bucket and the caller's rights, as `sam deploy` uses.
"""
from __future__ import annotations

import argparse
import datetime
import hashlib
import os
import pathlib
import shlex
import stat
import subprocess
import sys
import tempfile
import tomllib
from dataclasses import dataclass, field

ROOT = pathlib.Path(__file__).resolve().parent.parent

# Resource types that hold data or what others built on them (consumers' rules on the bus, parked change events,
# logs): a change set that would replace or remove one is refused unless the operator names it.
STATEFUL_TYPES = {
    "AWS::DynamoDB::Table": "the meters",
    "AWS::S3::Bucket": "the listing snapshots",
    "AWS::Events::EventBus": "consumers' rules",
    "AWS::Events::Archive": "the archived change events",
    "AWS::SQS::Queue": "messages waiting in it",
    "AWS::KMS::Key": "what it encrypted",
    "AWS::Logs::LogGroup": "its logs",
}
# The states a deploy may start from, and those that need a person (docs/runbooks.md: a deploy failed, or a stack is stuck).
READY = {"CREATE_COMPLETE", "UPDATE_COMPLETE", "UPDATE_ROLLBACK_COMPLETE", "IMPORT_COMPLETE", "IMPORT_ROLLBACK_COMPLETE",
         "REVIEW_IN_PROGRESS"}
FAILED_FIRST_CREATE = "ROLLBACK_COMPLETE"
NO_CHANGES = ("didn't contain changes", "No updates are to be performed")


class DeployError(Exception):
    pass


class NeedsRecovery(Exception):
    """A plan found a failed first create, which only the deploy role may delete."""


@dataclass
class Environment:
    name: str
    stack: str
    region: str
    parameters: dict
    tags: dict
    capabilities: list

    @classmethod
    def from_samconfig(cls, name: str, extra: str = "") -> "Environment":
        config = tomllib.loads((ROOT / "samconfig.toml").read_text()).get(name)
        if not config or "stack_name" not in config.get("global", {}).get("parameters", {}):
            raise DeployError(f"samconfig.toml has no [{name}.global.parameters] stack_name")
        deploy = config.get("deploy", {}).get("parameters", {})
        pairs = lambda text: dict(item.split("=", 1) for item in shlex.split(text or ""))  # noqa: E731
        parameters = pairs(deploy.get("parameter_overrides"))
        parameters.update(pairs(extra))
        capabilities = deploy.get("capabilities", "CAPABILITY_IAM")
        return cls(name, config["global"]["parameters"]["stack_name"], config["global"]["parameters"]["region"],
                   parameters, pairs(deploy.get("tags")), capabilities.split() if isinstance(capabilities, str) else capabilities)


@dataclass
class Change:
    action: str
    logical: str
    kind: str
    replacement: str
    recreating: list = field(default_factory=list)  # the properties whose change recreates the resource

    @classmethod
    def from_description(cls, change: dict) -> "Change":
        resource = change["ResourceChange"]
        recreating = sorted({detail["Target"].get("Name") or detail["Target"].get("Attribute", "?")
                             for detail in resource.get("Details", [])
                             if detail.get("Target", {}).get("RequiresRecreation") in ("Always", "Conditionally")})
        return cls(resource.get("Action", "?"), resource["LogicalResourceId"], resource.get("ResourceType", "?"),
                   resource.get("Replacement", "False") if resource.get("Action") in ("Modify", "Dynamic") else "-",
                   recreating)

    def loses_data(self) -> bool:
        if self.kind not in STATEFUL_TYPES:
            return False
        return self.action == "Remove" or self.replacement in ("True", "Conditional")

    def refusal(self) -> str:
        what = STATEFUL_TYPES[self.kind]
        if self.action == "Remove":
            return f"{self.logical} ({self.kind}) would be removed from the stack, and with it {what}"
        cause = ", ".join(self.recreating) or "a property CloudFormation does not name"
        certainty = "would" if self.replacement == "True" else "may"
        return (f"{self.logical} ({self.kind}) {certainty} be replaced by a new, empty one because {cause} changed: "
                f"the stack would point at it, away from {what}")


def review(changes: list[Change], allowed: set[str]) -> list[str]:
    """The refusals: stateful resources the change set would replace or remove, but for those named as allowed."""
    return [c.refusal() for c in changes if c.loses_data() and c.logical not in allowed]


def summary(stack: str, change_set: str, changes: list[Change], refusals: list[str]) -> str:
    lines = [f"### Change set for `{stack}`", "", f"`{change_set}`", ""]
    if not changes:
        lines.append("No changes.")
    else:
        lines += ["| action | resource | type | replacement | recreated by |", "|---|---|---|---|---|"]
        lines += [f"| {c.action} | {c.logical} | {c.kind} | {c.replacement} | {', '.join(c.recreating)} |" for c in changes]
    if refusals:
        lines += ["", "**Refused** (scripts/deploy --allow-replacement LOGICAL_ID, after the runbook's restore plan):", ""]
        lines += [f"- {refusal}" for refusal in refusals]
    return "\n".join(lines) + "\n"


def check_artefact(build: pathlib.Path) -> None:
    """Every function of the built template has its `bootstrap`, inside the build folder and executable (SAM zips
    files with the modes they have, and a 0644 `bootstrap` fails every invoke); each one's architecture and
    SHA-256 printed, to compare with the build that was tested."""
    import yaml  # noqa: PLC0415

    class Template(yaml.SafeLoader):
        pass

    Template.add_multi_constructor("!", lambda loader, suffix, node: None)
    path = build / "template.yaml"
    if not path.is_file():
        raise DeployError(f"{path} is missing: run sam build, or unpack the pipeline's artefact, first")
    resources = yaml.load(path.read_text(), Loader=Template).get("Resources", {})
    functions = {name: r["Properties"]["CodeUri"] for name, r in resources.items() if r.get("Type") == "AWS::Serverless::Function"}
    if not functions:
        raise DeployError(f"{path} names no function")
    machines = {0x3E: "x86_64", 0xB7: "arm64"}
    failures = []
    root = build.resolve()
    for name, code in sorted(functions.items()):
        bootstrap = build / code / "bootstrap"
        # A cached `sam build` names its functions' code in .aws-sam/cache (reached by links), so the build folder
        # alone, carried elsewhere, would not hold them.
        if root not in bootstrap.resolve().parents:
            failures.append(f"{name}: {bootstrap} is outside {root} (a cached build? build with --no-cached)")
            continue
        if not bootstrap.is_file():
            failures.append(f"{name}: {bootstrap} is missing")
            continue
        mode = stat.S_IMODE(bootstrap.stat().st_mode)
        content = bootstrap.read_bytes()
        machine = machines.get(int.from_bytes(content[18:20], "little"), "unknown") if content[:4] == b"\x7fELF" else "not ELF"
        print(f"scripts/deploy: {name:22} {oct(mode)} {machine:7} sha256 {hashlib.sha256(content).hexdigest()}")
        if mode & 0o111 != 0o111:
            failures.append(f"{name}: {bootstrap} is mode {oct(mode)}, not executable: Lambda would refuse to run it")
    if failures:
        raise DeployError("not deployed:\n  " + "\n  ".join(failures))


class Deployer:
    def __init__(self, env: Environment, cloudformation, s3, execution_role: str | None, bucket: str | None,
                 allowed: set[str], out=print):
        self.env, self.cfn, self.s3 = env, cloudformation, s3
        self.role, self.bucket, self.allowed, self.out = execution_role, bucket, allowed, out

    def say(self, text: str) -> None:
        self.out(f"scripts/deploy: {text}")

    def status(self) -> tuple[str | None, list]:
        try:
            (stack,) = self.cfn.describe_stacks(StackName=self.env.stack)["Stacks"]
        except self.cfn.exceptions.ClientError as error:
            if "does not exist" in str(error):
                return None, []
            raise
        return stack["StackStatus"], stack.get("Parameters", [])

    def recover(self) -> tuple[str | None, list]:
        """The stack's state, after deleting a failed first create (it holds nothing: every resource that would
        outlive a delete is RetainExceptOnCreate)."""
        status, parameters = self.status()
        if status == FAILED_FIRST_CREATE:
            self.say(f"{self.env.stack} is {status}: its first create failed and left nothing; deleting it to start again")
            options = {"RoleARN": self.role} if self.role else {}
            self.cfn.delete_stack(StackName=self.env.stack, **options)
            self.cfn.get_waiter("stack_delete_complete").wait(StackName=self.env.stack, WaiterConfig={"Delay": 10, "MaxAttempts": 180})
            return None, []
        if status is not None and status not in READY:
            raise DeployError(f"{self.env.stack} is {status}: not deployed (docs/runbooks.md: a deploy failed, or a stack is stuck)")
        return status, parameters

    def create_change_set(self, template_url: str, status: str | None, previous: list) -> tuple[str, str]:
        creating = status in (None, "REVIEW_IN_PROGRESS")
        values = dict(self.env.parameters)
        # A new stack's table without deletion protection, so that a failed first create can delete it; on for
        # every update (deploy() turns it on right after a create).
        values["TableDeletionProtection"] = "false" if creating else "true"
        parameters = [{"ParameterKey": k, "ParameterValue": v} for k, v in sorted(values.items())]
        if not creating:
            parameters += [{"ParameterKey": p["ParameterKey"], "UsePreviousValue": True} for p in previous
                           if p["ParameterKey"] not in values]
        name = "deploy-" + datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%d-%H%M%S")
        request = {"StackName": self.env.stack, "ChangeSetName": name, "TemplateURL": template_url,
                   "ChangeSetType": "CREATE" if creating else "UPDATE", "Parameters": parameters,
                   "Capabilities": self.env.capabilities, "Tags": [{"Key": k, "Value": v} for k, v in self.env.tags.items()],
                   "Description": f"scripts/deploy {self.env.name}"}
        if creating:
            request["OnStackFailure"] = "DELETE"
        if self.role:
            request["RoleARN"] = self.role
        arn = self.cfn.create_change_set(**request)["Id"]
        self.say(f"change set {name} ({request['ChangeSetType']}) for {self.env.stack}")
        return arn, request["ChangeSetType"]

    def wait_for_change_set(self, arn: str) -> bool:
        """Whether it holds changes (one without is deleted)."""
        from botocore.exceptions import WaiterError  # noqa: PLC0415

        try:
            self.cfn.get_waiter("change_set_create_complete").wait(ChangeSetName=arn, WaiterConfig={"Delay": 5, "MaxAttempts": 120})
        except WaiterError:  # the waiter fails on FAILED, which is also how "no changes" ends
            description = self.cfn.describe_change_set(ChangeSetName=arn)
            reason = description.get("StatusReason", "")
            if any(text in reason for text in NO_CHANGES):
                self.cfn.delete_change_set(ChangeSetName=arn)
                return False
            raise DeployError(f"change set {arn} failed: {reason}") from None
        return True

    def changes(self, arn: str) -> list[Change]:
        changes, token = [], None
        while True:
            page = self.cfn.describe_change_set(ChangeSetName=arn, **({"NextToken": token} if token else {}))
            changes += [Change.from_description(c) for c in page.get("Changes", [])]
            token = page.get("NextToken")
            if not token:
                return changes

    def reviewed(self, arn: str) -> list[Change]:
        changes = self.changes(arn)
        refusals = review(changes, self.allowed)
        text = summary(self.env.stack, arn, changes, refusals)
        self.out(text)
        if os.environ.get("GITHUB_STEP_SUMMARY"):
            with open(os.environ["GITHUB_STEP_SUMMARY"], "a") as file:
                file.write(text)
        if refusals:
            raise DeployError("refused:\n  " + "\n  ".join(refusals))
        return changes

    def plan(self, template_url: str, may_delete: bool = True) -> str | None:
        """The reviewed change set's ARN; None when there is nothing to deploy. A plan that may not delete (the
        pipeline's plan role) leaves a failed first create to the deploy job, and says so."""
        if not may_delete and self.status()[0] == FAILED_FIRST_CREATE:
            self.say(f"{self.env.stack} is {FAILED_FIRST_CREATE} (its first create failed and left nothing): approving "
                     "the deploy deletes it and creates it anew")
            raise NeedsRecovery
        status, previous = self.recover()
        arn, _ = self.create_change_set(template_url, status, previous)
        if not self.wait_for_change_set(arn):
            self.say(f"{self.env.stack} is already what this artefact makes: nothing to deploy")
            return None
        try:
            self.reviewed(arn)
        except DeployError:
            self.cfn.delete_change_set(ChangeSetName=arn)
            raise
        return arn

    def execute(self, arn: str) -> None:
        kind = "CREATE" if self.status()[0] == "REVIEW_IN_PROGRESS" else "UPDATE"
        self.reviewed(arn)
        self.cfn.execute_change_set(ChangeSetName=arn)
        self.say(f"executing {arn}")
        self.wait_for_stack(kind)
        if kind == "CREATE":
            self.protect_table()

    def wait_for_stack(self, kind: str) -> None:
        from botocore.exceptions import WaiterError  # noqa: PLC0415

        waiter = "stack_create_complete" if kind == "CREATE" else "stack_update_complete"
        try:
            # A prod deploy shifts each function's traffic over 5 minutes, watched by its canary alarm.
            self.cfn.get_waiter(waiter).wait(StackName=self.env.stack, WaiterConfig={"Delay": 15, "MaxAttempts": 240})
        except WaiterError:
            events = self.cfn.describe_stack_events(StackName=self.env.stack)["StackEvents"]
            failed = [f"{e['LogicalResourceId']}: {e.get('ResourceStatusReason', '')}" for e in events
                      if e.get("ResourceStatus", "").endswith("_FAILED")][:10]
            after = ("CloudFormation deletes a stack whose first create failed" if kind == "CREATE"
                     else "CloudFormation rolled the stack back to its previous state")
            raise DeployError(f"{self.env.stack} failed ({after}):\n  " + "\n  ".join(failed)) from None

    def protect_table(self) -> None:
        """A new stack's table gets its deletion protection, now that the create cannot fail any more."""
        status, previous = self.status()
        parameters = [{"ParameterKey": p["ParameterKey"], "UsePreviousValue": True} for p in previous
                      if p["ParameterKey"] != "TableDeletionProtection"]
        parameters.append({"ParameterKey": "TableDeletionProtection", "ParameterValue": "true"})
        request = {"StackName": self.env.stack, "ChangeSetName": "deploy-protect-table", "UsePreviousTemplate": True,
                   "ChangeSetType": "UPDATE", "Parameters": parameters, "Capabilities": self.env.capabilities,
                   "Description": "scripts/deploy: the new stack's table gets its deletion protection"}
        if self.role:
            request["RoleARN"] = self.role
        arn = self.cfn.create_change_set(**request)["Id"]
        if self.wait_for_change_set(arn):
            self.reviewed(arn)
            self.cfn.execute_change_set(ChangeSetName=arn)
            self.wait_for_stack("UPDATE")
        self.say(f"{self.env.stack}'s table has deletion protection")

    def outputs(self) -> dict:
        (stack,) = self.cfn.describe_stacks(StackName=self.env.stack)["Stacks"]
        return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}

    def upload_template(self, packaged: pathlib.Path, bucket: str) -> str:
        body = packaged.read_bytes()
        key = f"{self.env.stack}/{hashlib.sha256(body).hexdigest()}.template"
        self.s3.put_object(Bucket=bucket, Key=key, Body=body)
        # Path-style, from the client's own endpoint (an emulator's, under AWS_ENDPOINT_URL), as SAM CLI does.
        return f"{self.s3.meta.endpoint_url}/{bucket}/{key}"


def package(build: pathlib.Path, env: Environment, bucket: str | None, scratch: pathlib.Path) -> tuple[pathlib.Path, str]:
    """`sam package`: the functions' code zipped and uploaded under the stack's prefix; the packaged template and
    the bucket it names."""
    packaged = scratch / "packaged.yaml"
    command = ["sam", "package", "--template-file", str(build / "template.yaml"), "--output-template-file", str(packaged),
               "--region", env.region, "--no-progressbar"]
    command += ["--s3-bucket", bucket, "--s3-prefix", env.stack] if bucket else ["--resolve-s3", "--s3-prefix", env.stack]
    subprocess.run(command, check=True, stdout=sys.stderr)
    if not bucket:
        uri = next(line.split("s3://", 1)[1] for line in packaged.read_text().splitlines() if "s3://" in line)
        bucket = uri.split("/", 1)[0]
    return packaged, bucket


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/deploy", description=__doc__.split("\n\n")[0])
    parser.add_argument("environment", choices=["dev", "prod"])
    parser.add_argument("build", nargs="?", default=".aws-sam/build")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--plan", action="store_true", help="create and review the change set, do not execute it")
    mode.add_argument("--execute", metavar="CHANGE_SET",
                      help="review and execute a change set --plan made (empty: the plan found a failed first create; "
                           "recover, plan and execute here)")
    parser.add_argument("--allow-replacement", metavar="LOGICAL_ID", action="append", default=[],
                        help="let the change set replace or remove this stateful resource")
    args = parser.parse_args(argv)

    import boto3  # noqa: PLC0415  SAM CLI's own, in the venv scripts/deploy puts first on PATH

    try:
        env = Environment.from_samconfig(args.environment, os.environ.get("METERS_PARAMETER_OVERRIDES", ""))
        cloudformation = boto3.client("cloudformation", region_name=env.region)
        s3 = boto3.client("s3", region_name=env.region)
        deployer = Deployer(env, cloudformation, s3, os.environ.get("METERS_EXECUTION_ROLE_ARN") or None,
                            os.environ.get("METERS_ARTIFACTS_BUCKET") or None, set(args.allow_replacement))
        if args.execute:
            deployer.execute(args.execute)
        else:
            build = pathlib.Path(args.build)
            check_artefact(build)
            deployer.say(f"stack {env.stack} in {env.region} from {build}")
            with tempfile.TemporaryDirectory() as scratch:
                packaged, bucket = package(build, env, deployer.bucket, pathlib.Path(scratch))
                try:
                    arn = deployer.plan(deployer.upload_template(packaged, bucket), may_delete=not args.plan)
                except NeedsRecovery:
                    arn = None
            if args.plan:
                if arn:
                    deployer.say(f"change set ready for review: {arn}")
                if os.environ.get("GITHUB_OUTPUT"):
                    with open(os.environ["GITHUB_OUTPUT"], "a") as file:
                        file.write(f"change_set={arn or ''}\n")
                return 0
            if arn:
                deployer.execute(arn)
        if not args.plan:
            api_url = deployer.outputs().get("ApiUrl", "")
            deployer.say(f"{env.stack} serves {api_url}")
            if os.environ.get("GITHUB_OUTPUT"):
                with open(os.environ["GITHUB_OUTPUT"], "a") as file:
                    file.write(f"api_url={api_url}\n")
    except DeployError as error:
        print(f"scripts/deploy: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

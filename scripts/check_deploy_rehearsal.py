"""What scripts/deploy-rehearsal's plan left in the emulator, checked against samconfig.toml, pipeline/bootstrap.yaml
and the tested artefact. Usage (from deploy-rehearsal, with AWS_ENDPOINT_URL set):
check_deploy_rehearsal.py BUILD_DIR REFUSED_STATUS REFUSED_LOG OBJECTS_AFTER_REFUSAL CALLS OUTPUTS SUMMARY"""
import hashlib
import io
import json
import os
import stat
import sys
import tomllib
import zipfile
from pathlib import Path

import boto3
import yaml

from cfn import calls as aws_calls
from cfn.iam import evaluate
from cfn.stacks import Environment, pairs
from checks import run

ROOT = Path(__file__).resolve().parent.parent
build, refused_status, refused_log, objects_after_refusal = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
recorded = [json.loads(line) for line in Path(sys.argv[5]).read_text().splitlines()]
outputs = dict(line.split("=", 1) for line in Path(sys.argv[6]).read_text().splitlines())
summary = Path(sys.argv[7]).read_text()
bucket = os.environ["METERS_ARTIFACTS_BUCKET"]
execution_role = os.environ["METERS_EXECUTION_ROLE_ARN"]
config = tomllib.loads((ROOT / "samconfig.toml").read_text())["dev"]
stack, region = config["global"]["parameters"]["stack_name"], config["global"]["parameters"]["region"]
# samconfig's, what the workflow adds from the environment's variables, and a new stack's table unprotected.
expected_parameters = {**pairs(config["deploy"]["parameters"]["parameter_overrides"]),
                       **pairs(os.environ["METERS_PARAMETER_OVERRIDES"]), "TableDeletionProtection": "false"}
cloudformation = boto3.client("cloudformation", region_name=region)
s3 = boto3.client("s3", region_name=region)


class Template(yaml.SafeLoader):
    pass


# Short-form intrinsic functions (!Ref, !Sub, …) read as None: only the functions' CodeUri matters here.
Template.add_multi_constructor("!", lambda loader, suffix, node: None)


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def change_sets():
    return cloudformation.list_change_sets(StackName=stack)["Summaries"]


def change_set():
    (summary,) = change_sets()
    return cloudformation.describe_change_set(StackName=stack, ChangeSetName=summary["ChangeSetName"])


def functions_code():
    """Each function of the uploaded template: (its S3 key, the tested bootstrap's bytes)."""
    # The packaged template SAM uploaded beside the zips, which the change set was created from (moto's
    # GetTemplate does not answer for a change set).
    (key,) = [item["Key"] for item in s3.list_objects_v2(Bucket=bucket)["Contents"] if item["Key"].endswith(".template")]
    template = yaml.load(s3.get_object(Bucket=bucket, Key=key)["Body"].read(), Loader=Template)
    built = yaml.load((build / "template.yaml").read_text(), Loader=Template)["Resources"]
    code = {}
    for name, resource in template["Resources"].items():
        if resource["Type"] == "AWS::Serverless::Function":
            uri = resource["Properties"]["CodeUri"]
            assert uri.startswith(f"s3://{bucket}/{stack}/"), f"{name}: {uri}"
            tested = (build / built[name]["Properties"]["CodeUri"] / "bootstrap").read_bytes()
            code[name] = (uri.removeprefix(f"s3://{bucket}/"), tested)
    # Every function the build made was uploaded, whatever their number.
    assert sorted(code) == sorted(n for n, r in built.items() if r["Type"] == "AWS::Serverless::Function"), sorted(code)
    return code


def uploaded_bootstraps_are_the_tested_binaries_and_executable():
    for name, (key, tested) in functions_code().items():
        archive = zipfile.ZipFile(io.BytesIO(s3.get_object(Bucket=bucket, Key=key)["Body"].read()))
        entry = archive.getinfo("bootstrap")
        mode = entry.external_attr >> 16
        assert stat.S_IMODE(mode) == 0o755, f"{name}: bootstrap is {oct(stat.S_IMODE(mode))} in its zip"
        assert sha256(archive.read(entry)) == sha256(tested), f"{name}: the uploaded bootstrap is not the tested one"
        assert tested[:4] == b"\x7fELF" and int.from_bytes(tested[18:20], "little") == 0xB7, f"{name}: not arm64"
    return True


def every_upload_is_under_the_stack_prefix():
    keys = [item["Key"] for item in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
    return keys and all(key.startswith(f"{stack}/") for key in keys)


def every_call_is_allowed_to_the_plan_role():
    """Each AWS call the plan made (scripts/deploy's and the SAM CLI's, recorded by scripts/record-calls), as the
    IAM requests it is, against the dev plan role's policy in pipeline/bootstrap.yaml."""
    policy = Environment("dev").policy("PlanRole")
    refused = [(call["operation"], request.action, request.resource) for call in recorded
               for request in aws_calls.requests(call["service"], call["operation"], call["params"], region,
                                                 "123456789012", stack)
               if not evaluate(policy, request)]
    assert not refused, refused
    return {c["operation"] for c in recorded} >= {"PutObject", "CreateChangeSet", "DescribeChangeSet"}


def no_stack_in_another_region():
    other = boto3.client("cloudformation", region_name="us-east-1")
    return not other.list_stacks()["StackSummaries"]


checks = [
    ("a build with a 0644 bootstrap is refused, naming the function",
     lambda: refused_status != 0 and "GetMeterFunction" in open(refused_log).read()
     and "not executable" in open(refused_log).read()),
    ("the refused deploy uploaded nothing", lambda: objects_after_refusal == 0),
    (f"one change set for the stack {stack} in {region}, samconfig's dev stack and region",
     lambda: len(change_sets()) == 1),
    ("no stack in any other region", no_stack_in_another_region),
    ("the change set's parameters are samconfig's dev parameter_overrides",
     lambda: {p["ParameterKey"]: p["ParameterValue"] for p in change_set()["Parameters"]} == expected_parameters),
    ("the stack is deployed with the pipeline's CloudFormation execution role",
     lambda: cloudformation.describe_stacks(StackName=stack)["Stacks"][0].get("RoleARN") == execution_role),
    ("the stack carries samconfig's dev tags",
     lambda: {t["Key"]: t["Value"] for t in cloudformation.describe_stacks(StackName=stack)["Stacks"][0]["Tags"]}
     == dict(pair.split("=", 1) for pair in config["deploy"]["parameters"]["tags"].split())),
    ("every upload is under the stack's prefix of the pipeline's bucket", every_upload_is_under_the_stack_prefix),
    ("each function's uploaded bootstrap is mode 0755 and the tested arm64 binary (same SHA-256)",
     uploaded_bootstraps_are_the_tested_binaries_and_executable),
    ("the plan hands its change set to the deploy job (change_set in $GITHUB_OUTPUT)",
     lambda: outputs.get("change_set") == change_set()["ChangeSetId"]),
    ("the plan's review lists every change for the approver ($GITHUB_STEP_SUMMARY) and refuses none",
     lambda: "| Add | MetersTable | AWS::DynamoDB::Table |" in summary and "Refused" not in summary),
    ("every AWS call of the plan is one the pipeline's plan role may make", every_call_is_allowed_to_the_plan_role),
]
sys.exit(run("deploy-rehearsal", checks))

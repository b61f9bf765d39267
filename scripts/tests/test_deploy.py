"""scripts/deploy against CloudFormation as botocore's Stubber plays it (the responses in AWS's own shapes; a
replacement captured in fixtures/): a first create that cannot leave anything behind, a failed one recovered,
a change set that would replace the table refused with its reason, and every call each path makes allowed to the
pipeline role that makes it (cfn/calls.py)."""
import datetime
import json
import pathlib

import boto3
import pytest
from botocore.stub import ANY, Stubber

import deploy
from cfn import calls
from cfn.iam import evaluate
from cfn.stacks import ENVIRONMENTS

FIXTURES = pathlib.Path(__file__).parent / "fixtures"
ENV = {env.name: env for env in ENVIRONMENTS}
NOW = datetime.datetime(2026, 12, 7, tzinfo=datetime.timezone.utc)


class Aws:
    """A CloudFormation client under a Stubber, recording every call as the IAM requests it makes."""

    def __init__(self, env_name):
        self.env = deploy.Environment.from_samconfig(env_name)
        self.model = ENV[env_name]
        self.cfn = boto3.client("cloudformation", region_name=self.env.region, aws_access_key_id="k", aws_secret_access_key="s")
        self.stub = Stubber(self.cfn)
        self.calls = []
        self.cfn.meta.events.register("before-parameter-build.cloudformation.*", self.record)
        self.role = self.model.bootstrap.physical("ExecutionRole").arn
        self.stack_id = f"arn:aws:cloudformation:{self.env.region}:123456789012:stack/{self.env.stack}/0f1e2d3c"
        self.output = []

    def record(self, params, model, **_):
        self.calls.append((model.name, dict(params)))

    def deployer(self, allowed=()):
        return deploy.Deployer(self.env, self.cfn, None, self.role, "artefacts", set(allowed), out=self.output.append)

    def stack(self, status, parameters=()):
        self.stub.add_response("describe_stacks", {"Stacks": [{
            "StackName": self.env.stack, "StackId": self.stack_id, "CreationTime": NOW, "StackStatus": status,
            "Parameters": [{"ParameterKey": k, "ParameterValue": v} for k, v in parameters],
            "Outputs": [{"OutputKey": "ApiUrl", "OutputValue": "https://api.example.com/api/v1/meters"}]}]})

    def no_stack(self):
        self.stub.add_client_error("describe_stacks", "ValidationError", f"Stack with id {self.env.stack} does not exist")

    def change_set(self, expected=None, changes=(), status="CREATE_COMPLETE", reason=None):
        arn = f"arn:aws:cloudformation:{self.env.region}:123456789012:changeSet/deploy/{len(self.calls)}"
        self.stub.add_response("create_change_set", {"Id": arn, "StackId": self.stack_id}, expected or ANY_REQUEST)
        description = {"ChangeSetId": arn, "StackName": self.env.stack, "Status": status, "Changes": list(changes),
                       **({"StatusReason": reason} if reason else {})}
        self.stub.add_response("describe_change_set", description)  # the waiter
        return arn, description

    def permissions_of(self, role):
        policy = self.model.policy(role)
        refused = []
        for operation, params in self.calls:
            for request in calls.requests("cloudformation", operation, params, self.env.region, "123456789012", self.env.stack):
                if not evaluate(policy, request):
                    refused.append(f"{operation}: {request.action} on {request.resource} {request.context}")
        return refused


ANY_REQUEST = {k: ANY for k in ("StackName", "ChangeSetName", "TemplateURL", "ChangeSetType", "Parameters",
                                "Capabilities", "Tags", "Description", "RoleARN")}
URL = "https://s3.eu-west-1.amazonaws.com/artefacts/meters-api-dev/t.template"


def add(logical, kind):
    return {"Type": "Resource", "ResourceChange": {"Action": "Add", "LogicalResourceId": logical, "ResourceType": kind}}


def expect_create(aws):
    return {**ANY_REQUEST, "ChangeSetType": "CREATE", "OnStackFailure": "DELETE", "RoleARN": aws.role,
            "Parameters": ANY}


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_a_first_deploy_creates_the_stack_so_that_a_failure_leaves_nothing_then_protects_the_table(env):
    aws = Aws(env)
    aws.no_stack()
    arn, described = aws.change_set(expect_create(aws), [add("MetersTable", "AWS::DynamoDB::Table")])
    aws.stub.add_response("describe_change_set", described)  # the review
    aws.stack("REVIEW_IN_PROGRESS")
    aws.stub.add_response("describe_change_set", described)
    aws.stub.add_response("execute_change_set", {}, {"ChangeSetName": arn})
    aws.stack("CREATE_COMPLETE")
    # Then the deletion protection, on the template and parameters the stack already has.
    aws.stack("CREATE_COMPLETE", [("TableDeletionProtection", "false"), ("Stage", env)])
    protect, protected = aws.change_set({"StackName": aws.env.stack, "ChangeSetName": "deploy-protect-table",
                                         "UsePreviousTemplate": True, "ChangeSetType": "UPDATE", "Capabilities": ANY,
                                         "Description": ANY, "RoleARN": aws.role, "Parameters": [
                                             {"ParameterKey": "Stage", "UsePreviousValue": True},
                                             {"ParameterKey": "TableDeletionProtection", "ParameterValue": "true"}]},
                                        [{"Type": "Resource", "ResourceChange": {"Action": "Modify", "LogicalResourceId": "MetersTable",
                                          "ResourceType": "AWS::DynamoDB::Table", "Replacement": "False"}}])
    aws.stub.add_response("describe_change_set", protected)
    aws.stub.add_response("execute_change_set", {}, {"ChangeSetName": protect})
    aws.stack("UPDATE_COMPLETE")
    with aws.stub:
        deployer = aws.deployer()
        planned = deployer.plan(URL)
        deployer.execute(planned)
    aws.stub.assert_no_pending_responses()
    created = next(params for name, params in aws.calls if name == "CreateChangeSet")
    assert {"ParameterKey": "TableDeletionProtection", "ParameterValue": "false"} in created["Parameters"]
    assert {t["Key"]: t["Value"] for t in created["Tags"]} == aws.model.stack.tags
    assert aws.permissions_of("DeployRole") == []


def test_a_change_set_that_would_replace_the_table_is_refused_naming_the_resource_and_the_property():
    aws = Aws("dev")
    aws.stack("UPDATE_COMPLETE", [("Stage", "dev")])
    captured = json.loads((FIXTURES / "change-set-replacing-the-table.json").read_text())
    arn, _ = aws.change_set(None, captured["Changes"])
    aws.stub.add_response("describe_change_set", captured)
    aws.stub.add_response("delete_change_set", {}, {"ChangeSetName": arn})
    with aws.stub, pytest.raises(deploy.DeployError) as refused:
        aws.deployer().plan(URL)
    aws.stub.assert_no_pending_responses()
    message = str(refused.value)
    assert "MetersTable (AWS::DynamoDB::Table) would be replaced by a new, empty one because LocalSecondaryIndexes changed" in message
    assert "MeterEventsFailures (AWS::SQS::Queue) would be removed" in message
    assert "ListMetersFunction" not in message
    assert "**Refused**" in "\n".join(aws.output)
    assert aws.permissions_of("PlanRole") == []


def test_an_operator_can_allow_a_named_replacement_and_only_that_one():
    captured = json.loads((FIXTURES / "change-set-replacing-the-table.json").read_text())
    changes = [deploy.Change.from_description(c) for c in captured["Changes"]]
    assert deploy.review(changes, {"MetersTable", "MeterEventsFailures"}) == []
    assert [r.split(" ")[0] for r in deploy.review(changes, {"MetersTable"})] == ["MeterEventsFailures"]


def test_a_stack_whose_first_create_failed_is_deleted_with_the_execution_role_and_created_anew():
    aws = Aws("prod")
    aws.stack("ROLLBACK_COMPLETE")
    aws.stub.add_response("delete_stack", {}, {"StackName": aws.env.stack, "RoleARN": aws.role})
    aws.no_stack()  # the delete waiter's end
    _, described = aws.change_set(expect_create(aws), [add("MetersTable", "AWS::DynamoDB::Table")])
    aws.stub.add_response("describe_change_set", described)
    with aws.stub:
        assert aws.deployer().plan(URL)
    aws.stub.assert_no_pending_responses()
    assert aws.permissions_of("DeployRole") == []


def test_the_pipelines_plan_leaves_a_failed_first_create_to_the_approved_deploy_job():
    aws = Aws("prod")
    aws.stack("ROLLBACK_COMPLETE")
    with aws.stub, pytest.raises(deploy.NeedsRecovery):
        aws.deployer().plan(URL, may_delete=False)
    assert "approving the deploy deletes it" in "\n".join(aws.output)
    assert aws.permissions_of("PlanRole") == []


@pytest.mark.parametrize("status", ["UPDATE_ROLLBACK_FAILED", "DELETE_FAILED", "UPDATE_IN_PROGRESS"])
def test_a_stack_that_needs_a_person_is_not_deployed_and_the_message_names_the_runbook(status):
    aws = Aws("dev")
    aws.stack(status)
    with aws.stub, pytest.raises(deploy.DeployError, match="docs/runbooks.md"):
        aws.deployer().plan(URL)


def test_an_artefact_that_is_already_deployed_deploys_nothing():
    aws = Aws("dev")
    aws.stack("UPDATE_COMPLETE", [("Stage", "dev")])
    arn, _ = aws.change_set(None, [], status="FAILED",
                            reason="The submitted information didn't contain changes. Submit different information to create a change set.")
    aws.stub.add_response("describe_change_set", {"ChangeSetId": arn, "Status": "FAILED",
                                                  "StatusReason": "The submitted information didn't contain changes."})
    aws.stub.add_response("delete_change_set", {}, {"ChangeSetName": arn})
    with aws.stub:
        assert aws.deployer().plan(URL) is None
    assert aws.permissions_of("PlanRole") == []


def test_an_update_keeps_the_parameters_the_environment_does_not_give_and_keeps_the_table_protected():
    aws = Aws("prod")
    aws.stack("UPDATE_COMPLETE", [("JwtIssuer", "https://issuer.example"), ("Stage", "prod")])
    _, described = aws.change_set(None, [])
    aws.stub.add_response("describe_change_set", described)
    with aws.stub:
        aws.deployer().plan(URL)
    created = next(params for name, params in aws.calls if name == "CreateChangeSet")
    assert created["ChangeSetType"] == "UPDATE" and "OnStackFailure" not in created
    assert {"ParameterKey": "JwtIssuer", "UsePreviousValue": True} in created["Parameters"]
    assert {"ParameterKey": "TableDeletionProtection", "ParameterValue": "true"} in created["Parameters"]
    assert {"ParameterKey": "Stage", "ParameterValue": "prod"} in created["Parameters"]

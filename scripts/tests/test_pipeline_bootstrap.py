"""pipeline/bootstrap.yaml: per environment, a plan role GitHub may assume only from `<env>-plan` and a deploy role
only from `<env>`, which change only their own stack and pass only its execution role; an execution role that
reaches only the stack's resources and makes roles only with the boundary."""
import pytest

from cfn.iam import Request, evaluate
from cfn.stacks import ENVIRONMENTS, REPOSITORY, bootstrap_template, cfn_lint

ENVS = {env.name: env for env in ENVIRONMENTS}


def test_cfn_lint_is_clean():
    assert cfn_lint("pipeline/bootstrap.yaml") == ""


def test_githubs_oidc_provider_is_for_the_audience_sts():
    provider = bootstrap_template()["Resources"]["GitHubOidcProvider"]["Properties"]
    assert provider["Url"] == "https://token.actions.githubusercontent.com" and provider["ClientIdList"] == ["sts.amazonaws.com"]


@pytest.mark.parametrize("env", ENVS)
@pytest.mark.parametrize("role, github_environment", [("PlanRole", "{env}-plan"), ("DeployRole", "{env}")])
def test_each_role_trusts_only_its_github_environment_of_this_repository(env, role, github_environment):
    trust = ENVS[env].bootstrap.properties(role)["AssumeRolePolicyDocument"]["Statement"]
    assert len(trust) == 1 and trust[0]["Action"] == "sts:AssumeRoleWithWebIdentity"
    assert trust[0]["Condition"] == {"StringEquals": {
        "token.actions.githubusercontent.com:aud": "sts.amazonaws.com",
        "token.actions.githubusercontent.com:sub": f"repo:{REPOSITORY}:environment:{github_environment.format(env=env)}"}}


@pytest.mark.parametrize("env", ENVS)
def test_the_plan_role_creates_change_sets_only_as_the_execution_role_and_never_executes_them(env):
    e = ENVS[env]
    stack_arn = f"arn:aws:cloudformation:{e.stack.region}:{e.stack.account}:stack/{e.stack.name}/id"
    execution_role = e.bootstrap.physical("ExecutionRole").arn
    plan = e.policy("PlanRole")
    assert evaluate(plan, Request("cloudformation:CreateChangeSet", stack_arn, {"cloudformation:RoleArn": execution_role}))
    assert not evaluate(plan, Request("cloudformation:CreateChangeSet", stack_arn, {}))
    assert not evaluate(plan, Request("cloudformation:CreateChangeSet", stack_arn.replace(e.stack.name, "other"),
                                      {"cloudformation:RoleArn": execution_role}))
    for action in ("cloudformation:ExecuteChangeSet", "cloudformation:DeleteStack", "cloudformation:UpdateStack"):
        assert not evaluate(plan, Request(action, stack_arn, {"cloudformation:RoleArn": execution_role})), action
    assert evaluate(e.policy("DeployRole"), Request("cloudformation:ExecuteChangeSet", stack_arn))
    assert evaluate(e.policy("DeployRole"), Request("cloudformation:DeleteStack", stack_arn, {"cloudformation:RoleArn": execution_role}))


@pytest.mark.parametrize("env", ENVS)
@pytest.mark.parametrize("role", ["PlanRole", "DeployRole"])
def test_each_role_passes_only_its_execution_role_only_to_cloudformation(env, role):
    e = ENVS[env]
    passes = [(st["Resource"], st["Condition"]) for st in e.policy(role) if "iam:PassRole" in str(st["Action"])]
    assert passes == [(e.bootstrap.physical("ExecutionRole").arn,
                       {"StringEquals": {"iam:PassedToService": "cloudformation.amazonaws.com"}})]


@pytest.mark.parametrize("env", ENVS)
def test_the_execution_role_reaches_only_the_stacks_resources(env):
    e = ENVS[env]
    name = e.stack.name
    unscoped = [st["Sid"] for st in e.policy("ExecutionRole") if st["Effect"] == "Allow"
                and not any(f":{name}-*" in r or f"/{name}-*" in r or f":::{name}-*" in r or f"/{name}/*" in r
                            for r in ([st["Resource"]] if isinstance(st["Resource"], str) else st["Resource"]))
                and f"function:{name}-*" not in str(st.get("Condition"))
                and f"'aws:RequestTag/aws:cloudformation:stack-name': '{name}'" not in str(st.get("Condition"))
                and f"'aws:ResourceTag/aws:cloudformation:stack-name': '{name}'" not in str(st.get("Condition"))]
    # HTTP APIs have random ids; DynamoDB's service-linked roles are AWS's; the rest supports no resource type.
    assert set(unscoped) == {"HttpApi", "DynamoDbServiceLinkedRoles", "UnscopableByIamReference"}


@pytest.mark.parametrize("env", ENVS)
def test_the_execution_role_makes_roles_only_with_the_boundary_and_can_never_take_it_off(env):
    e = ENVS[env]
    boundary = e.bootstrap.physical("StackRolesBoundary").arn
    role = f"arn:aws:iam::{e.stack.account}:role/{e.stack.name}-ListMetersFunctionRole-X"
    policy = e.policy("ExecutionRole")
    for action in ("iam:CreateRole", "iam:PutRolePolicy", "iam:AttachRolePolicy", "iam:PutRolePermissionsBoundary"):
        assert evaluate(policy, Request(action, role, {"iam:PermissionsBoundary": boundary})), action
        assert not evaluate(policy, Request(action, role, {})), action
        assert not evaluate(policy, Request(action, role, {"iam:PermissionsBoundary": boundary + "-other"})), action
    assert not evaluate(policy, Request("iam:DeleteRolePermissionsBoundary", role, {"iam:PermissionsBoundary": boundary}))
    assert not evaluate(policy, Request("iam:CreatePolicyVersion", boundary))


@pytest.mark.parametrize("env", ENVS)
def test_the_boundary_reaches_only_the_stacks_resources_and_what_supports_no_resource(env):
    e = ENVS[env]
    statements = e.bootstrap.properties("StackRolesBoundary")["PolicyDocument"]["Statement"]
    unscoped = {st["Sid"] for st in statements
                if not all(e.stack.name in r for r in ([st["Resource"]] if isinstance(st["Resource"], str) else st["Resource"]))}
    assert unscoped == {"StreamsAreListedAccountWide", "Tracing", "CanaryAlarmsAreDescribedAccountWide"}


@pytest.mark.parametrize("env", ENVS)
def test_the_artefacts_bucket_is_outside_what_the_execution_role_may_change(env):
    e = ENVS[env]
    assert not e.bootstrap.physical("ArtifactsBucket").ref.startswith(f"{e.stack.name}-")

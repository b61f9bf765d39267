"""CloudFormation templates as CloudFormation reads them: the short tags (!Ref, !Sub, …) in their long forms,
parameters checked against their constraints, conditions and intrinsic functions evaluated, and the SAM
transform applied by SAM's own translator (the aws-sam-translator that SAM CLI and cfn-lint use).

`resolve` evaluates what the checks need. A Ref or GetAtt of a resource is answered by the `physical` callback
when one is given (deployment.py models the names and ARNs CloudFormation gives), and is otherwise left as it is.
"""
from __future__ import annotations

import copy
import os
import pathlib
import re

import yaml

NO_VALUE = object()


class Loader(yaml.SafeLoader):
    """Reads CloudFormation's short tags (!Ref, !If, …) as their long forms."""


def _tag(loader, suffix, node):
    name = "Ref" if suffix == "Ref" else f"Fn::{suffix}"
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
        return {name: value.split(".", 1) if suffix == "GetAtt" else value}
    if isinstance(node, yaml.SequenceNode):
        return {name: loader.construct_sequence(node, deep=True)}
    return {name: loader.construct_mapping(node, deep=True)}


Loader.add_multi_constructor("!", _tag)


def load(path) -> dict:
    return yaml.load(pathlib.Path(path).read_text(), Loader=Loader)


class ParameterRefused(ValueError):
    pass


def parameter_values(template: dict, overrides: dict) -> dict:
    """Every parameter's value (its default unless overridden), refused as CloudFormation refuses it."""
    values = {name: str(spec.get("Default", "")) for name, spec in template.get("Parameters", {}).items()}
    unknown = set(overrides) - set(values)
    if unknown:
        raise ParameterRefused(f"unknown parameters {sorted(unknown)}")
    values.update({k: str(v) for k, v in overrides.items()})
    for name, value in values.items():
        spec = template["Parameters"][name]
        if "AllowedPattern" in spec and not re.fullmatch(spec["AllowedPattern"], value):
            raise ParameterRefused(f"{name}={value!r} does not match its AllowedPattern")
        if "AllowedValues" in spec and value not in [str(v) for v in spec["AllowedValues"]]:
            raise ParameterRefused(f"{name}={value!r} is not one of its AllowedValues")
        if spec.get("Type") == "Number":
            try:
                number = float(value)
            except ValueError:
                raise ParameterRefused(f"{name}={value!r} is not a number") from None
            if "MinValue" in spec and number < float(spec["MinValue"]):
                raise ParameterRefused(f"{name}={value} is below its MinValue {spec['MinValue']}")
            if "MaxValue" in spec and number > float(spec["MaxValue"]):
                raise ParameterRefused(f"{name}={value} is above its MaxValue {spec['MaxValue']}")
    # A list parameter is a list of strings to the template, as CloudFormation splits it ("" is [""]).
    return {name: value.split(",") if template["Parameters"][name].get("Type") == "CommaDelimitedList" else value
            for name, value in values.items()}


class Resolver:
    """Evaluates intrinsic functions against parameter values, pseudo parameters and (optionally) a model of
    the resources' physical names and attributes."""

    def __init__(self, template: dict, parameters: dict, pseudo: dict | None = None, physical=None):
        self.template = template
        self.parameters = parameters
        self.pseudo = {"AWS::Partition": "aws", "AWS::URLSuffix": "amazonaws.com", **(pseudo or {})}
        self.physical = physical
        self.conditions: dict[str, bool] = {}
        for name, expression in template.get("Conditions", {}).items():
            self.conditions[name] = bool(self.resolve(expression))

    def exists(self, resource: dict) -> bool:
        return "Condition" not in resource or self.conditions[resource["Condition"]]

    def _ref(self, name):
        if name == "AWS::NoValue":
            return NO_VALUE
        if name in self.parameters:
            return self.parameters[name]
        if name in self.pseudo:
            return self.pseudo[name]
        if self.physical and name in self.template.get("Resources", {}):
            return self.physical(name).ref
        return {"Ref": name}

    def _get_att(self, logical, attribute):
        if self.physical and logical in self.template.get("Resources", {}):
            return self.physical(logical).attribute(attribute)
        return {"Fn::GetAtt": [logical, attribute]}

    def _sub(self, argument):
        text, variables = (argument, {}) if isinstance(argument, str) else argument
        variables = {k: self.resolve(v) for k, v in variables.items()}

        def replace(match):
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in variables:
                value = variables[name]
            elif "." in name and name.split(".", 1)[0] in self.template.get("Resources", {}):
                value = self._get_att(*name.split(".", 1))
            else:
                value = self._ref(name)
            if not isinstance(value, str):
                raise _Unresolved
            return value

        try:
            return re.sub(r"\$\{([^}]+)\}", replace, text)
        except _Unresolved:
            return {"Fn::Sub": argument}

    def resolve(self, value):
        if isinstance(value, list):
            return [v for v in (self.resolve(item) for item in value) if v is not NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            (name, argument), = value.items()
            if name == "Ref":
                return self._ref(argument)
            if name == "Fn::GetAtt":
                logical, attribute = argument if isinstance(argument, list) else argument.split(".", 1)
                return self._get_att(logical, attribute)
            if name == "Fn::Sub":
                return self._sub(argument)
            if name == "Fn::If":
                condition, then, otherwise = argument
                return self.resolve(then if self.conditions[condition] else otherwise)
            if name == "Fn::Equals":
                left, right = (self.resolve(a) for a in argument)
                return left == right
            if name == "Fn::Not":
                return not self.resolve(argument[0])
            if name == "Fn::And":
                return all(self.resolve(a) for a in argument)
            if name == "Fn::Or":
                return any(self.resolve(a) for a in argument)
            if name == "Condition":
                return self.conditions[argument]
            if name == "Fn::Split":
                separator, text = argument
                text = self.resolve(text)
                return text.split(separator) if isinstance(text, str) else value
            if name == "Fn::Join":
                separator, parts = argument
                parts = self.resolve(parts)
                return separator.join(parts) if all(isinstance(p, str) for p in parts) else value
            if name == "Fn::Select":
                index, items = argument
                items = self.resolve(items)
                return items[int(self.resolve(index))] if isinstance(items, list) else value
        return {k: v for k, v in ((k, self.resolve(v)) for k, v in value.items()) if v is not NO_VALUE}

    def broken_rules(self) -> list[str]:
        broken = []
        for name, rule in self.template.get("Rules", {}).items():
            if "RuleCondition" in rule and not self.resolve(rule["RuleCondition"]):
                continue
            if not all(self.resolve(a["Assert"]) for a in rule["Assertions"]):
                broken.append(name)
        return broken


class _Unresolved(Exception):
    pass


def sam_transform(template: dict, parameters: dict, region: str = "eu-west-1",
                  code_location: str = "s3://artefacts/code.zip") -> dict:
    """The template as CloudFormation's AWS::Serverless-2016-10-31 transform gives it, by SAM's own translator.
    The functions' code is given an S3 location (`code_location`), as `sam package` does."""
    from samtranslator.translator.transform import transform  # the translator SAM CLI and cfn-lint ship

    class NoManagedPolicies:
        def load(self):
            return {}

    source = copy.deepcopy(template)
    source.setdefault("Globals", {}).setdefault("Function", {})["CodeUri"] = code_location
    for resource in source["Resources"].values():
        if resource["Type"] == "AWS::Serverless::Function":
            resource["Properties"].pop("CodeUri", None)
    previous = os.environ.get("AWS_DEFAULT_REGION")
    os.environ["AWS_DEFAULT_REGION"] = region
    try:
        return transform(source, dict(parameters), NoManagedPolicies())
    finally:
        if previous is None:
            os.environ.pop("AWS_DEFAULT_REGION", None)
        else:
            os.environ["AWS_DEFAULT_REGION"] = previous

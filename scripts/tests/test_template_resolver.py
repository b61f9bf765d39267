"""cfn/template.py: parameters refused as CloudFormation refuses them, and intrinsic functions evaluated."""
import pytest

from cfn.template import ParameterRefused, Resolver, parameter_values

TEMPLATE = {
    "Parameters": {
        "Mode": {"Type": "String", "Default": "a", "AllowedValues": ["a", "b"]},
        "Rate": {"Type": "Number", "Default": 5, "MinValue": 1},
        "Name": {"Type": "String", "Default": "", "AllowedPattern": "^$|^[a-z]+$"},
    },
    "Conditions": {"IsB": {"Fn::Equals": [{"Ref": "Mode"}, "b"]}, "Named": {"Fn::Not": [{"Fn::Equals": [{"Ref": "Name"}, ""]}]}},
    "Resources": {"Thing": {"Type": "AWS::SQS::Queue"}},
}


def test_parameters_outside_their_constraints_are_refused():
    for overrides in ({"Mode": "c"}, {"Rate": "0"}, {"Name": "UPPER"}, {"Unknown": "x"}, {"Rate": "many"}):
        with pytest.raises(ParameterRefused):
            parameter_values(TEMPLATE, overrides)
    assert parameter_values(TEMPLATE, {"Mode": "b"}) == {"Mode": "b", "Rate": "5", "Name": ""}


def test_conditions_and_intrinsics_resolve_against_parameters_and_pseudo_parameters():
    resolver = Resolver(TEMPLATE, parameter_values(TEMPLATE, {"Mode": "b"}), {"AWS::StackName": "s"})
    assert resolver.conditions == {"IsB": True, "Named": False}
    assert resolver.resolve({"Fn::If": ["IsB", {"Fn::Sub": "${AWS::StackName}-${Mode}-${!Literal}"}, "no"]}) == "s-b-${Literal}"
    assert resolver.resolve({"Fn::Split": [",", "x,y"]}) == ["x", "y"]
    assert resolver.resolve({"Fn::Join": ["-", ["x", {"Ref": "Mode"}]]}) == "x-b"
    assert resolver.resolve([{"Ref": "AWS::NoValue"}, 1]) == [1]
    # A resource with no physical model is left as it is.
    assert resolver.resolve({"Fn::GetAtt": ["Thing", "Arn"]}) == {"Fn::GetAtt": ["Thing", "Arn"]}
    assert resolver.resolve({"Fn::Sub": "${Thing.Arn}/x"}) == {"Fn::Sub": "${Thing.Arn}/x"}

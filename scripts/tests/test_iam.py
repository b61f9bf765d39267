"""IAM evaluation (cfn/iam.py) as AWS documents it, and the proof's reading of the references: the two blockers a
production review found in the pipeline's execution role are what this proof names."""
import pytest

from cfn import permissions
from cfn.deployment import Deployment, Stack
from cfn.iam import Request, arn_like, evaluate

ALLOW_TABLE = {"Sid": "Table", "Effect": "Allow", "Action": "dynamodb:*",
               "Resource": "arn:aws:dynamodb:eu-west-1:123456789012:table/stack-*"}
TABLE = "arn:aws:dynamodb:eu-west-1:123456789012:table/stack-MetersTable-X"


def test_an_allow_matches_actions_case_insensitively_and_resources_by_wildcard():
    assert evaluate([ALLOW_TABLE], Request("DynamoDB:GetItem", TABLE))
    assert not evaluate([ALLOW_TABLE], Request("dynamodb:GetItem", TABLE.replace("stack-", "other-")))


def test_an_explicit_deny_wins_over_any_allow():
    deny = {"Sid": "No", "Effect": "Deny", "Action": "dynamodb:DeleteTable", "Resource": "*"}
    decision = evaluate([ALLOW_TABLE, deny], Request("dynamodb:DeleteTable", TABLE))
    assert not decision and decision.statement == "No"


def test_an_action_without_resource_types_is_allowed_only_by_a_statement_on_any_resource():
    assert not evaluate([ALLOW_TABLE], Request("dynamodb:ListTables", "*"))
    assert evaluate([{"Effect": "Allow", "Action": "dynamodb:ListTables", "Resource": "*"}], Request("dynamodb:ListTables", "*"))


def test_a_condition_on_a_key_the_request_lacks_fails_unless_negated_if_exists_or_for_all_values():
    def allowed(condition, context):
        statement = {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*", "Condition": condition}
        return bool(evaluate([statement], Request("s3:GetObject", "arn:aws:s3:::b/k", context)))
    assert not allowed({"StringEquals": {"aws:RequestTag/team": "a"}}, {})
    assert allowed({"StringNotEquals": {"aws:RequestTag/team": "a"}}, {})
    assert allowed({"StringEqualsIfExists": {"aws:RequestTag/team": "a"}}, {})
    assert allowed({"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["x*"]}}, {})
    assert allowed({"Null": {"aws:RequestTag/team": "true"}}, {})
    assert not allowed({"Null": {"aws:RequestTag/team": "true"}}, {"aws:RequestTag/team": "a"})
    assert allowed({"StringEquals": {"aws:RequestTag/team": ["b", "a"]}}, {"aws:RequestTag/team": "a"})
    assert not allowed({"ForAllValues:StringLike": {"aws:TagKeys": ["a*"]}}, {"aws:TagKeys": ["ab", "b"]})


def test_an_operator_the_evaluator_does_not_model_is_refused_rather_than_guessed():
    statement = {"Effect": "Allow", "Action": "*", "Resource": "*", "Condition": {"IpAddress": {"aws:SourceIp": "1.2.3.4"}}}
    with pytest.raises(ValueError):
        evaluate([statement], Request("s3:GetObject", "*", {"aws:SourceIp": "1.2.3.4"}))


def test_arn_like_compares_the_parts_of_an_arn():
    assert arn_like("arn:aws:lambda:*:*:function:stack-*", "arn:aws:lambda:eu-west-1:1:function:stack-F:live")
    assert not arn_like("arn:aws:lambda:*:*:function:stack-*", "arn:aws:lambda:eu-west-1:1:layer:stack-F")


# The stack of a function fed by a table's stream and a KMS key, deployed with the statements the execution role
# had before the review: key creation conditioned on a tag CloudFormation never sends to a KMS key, and the
# stream mapping's tagging conditioned on lambda:FunctionArn, a key lambda:TagResource does not carry.
SMALL_STACK = {
    "Transform": "AWS::Serverless-2016-10-31",
    "Resources": {
        "Table": {"Type": "AWS::DynamoDB::Table", "Properties": {
            "BillingMode": "PAY_PER_REQUEST", "KeySchema": [{"AttributeName": "k", "KeyType": "HASH"}],
            "AttributeDefinitions": [{"AttributeName": "k", "AttributeType": "S"}],
            "StreamSpecification": {"StreamViewType": "NEW_IMAGE"}}},
        "Key": {"Type": "AWS::KMS::Key", "Properties": {"KeyPolicy": {"Statement": []}}},
        "Reader": {"Type": "AWS::Serverless::Function", "Properties": {
            "Runtime": "provided.al2023", "Handler": "bootstrap",
            "Events": {"Stream": {"Type": "DynamoDB", "Properties": {
                "Stream": {"Fn::GetAtt": ["Table", "StreamArn"]}, "StartingPosition": "TRIM_HORIZON"}}}}},
    },
}
BEFORE_THE_REVIEW = [
    {"Sid": "Functions", "Effect": "Allow", "Action": "lambda:*", "Resource": "arn:aws:lambda:eu-west-1:123456789012:function:small-*"},
    {"Sid": "StreamMapping", "Effect": "Allow", "Resource": "*",
     "Action": ["lambda:CreateEventSourceMapping", "lambda:GetEventSourceMapping", "lambda:TagResource"],
     "Condition": {"ArnLike": {"lambda:FunctionArn": "arn:aws:lambda:eu-west-1:123456789012:function:small-*"}}},
    {"Sid": "AlarmTopicKeyCreated", "Effect": "Allow", "Action": ["kms:CreateKey", "kms:TagResource"], "Resource": "*",
     "Condition": {"StringEquals": {"aws:RequestTag/aws:cloudformation:stack-name": "small"}}},
]


def test_the_proof_names_the_key_that_cannot_be_created_and_the_stream_mapping_that_cannot_be_tagged():
    d = Deployment(SMALL_STACK, {}, Stack("small"), code_location="s3://artefacts/small/code.zip")
    gaps = {(gap.logical, gap.action) for gap in permissions.gaps(d, BEFORE_THE_REVIEW)}
    assert ("Key", "kms:CreateKey") in gaps
    assert ("ReaderStream", "lambda:TagResource") in gaps
    # Creating and reading the mapping, scoped by the function it feeds, was right.
    assert ("ReaderStream", "lambda:CreateEventSourceMapping") not in gaps

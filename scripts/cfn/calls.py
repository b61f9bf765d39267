"""The AWS API calls a deploy makes (scripts/deploy and the SAM CLI it runs), as the IAM requests they are:
what the pipeline's plan and deploy roles must allow. A call this does not know is refused, so that a new call
is looked at before it reaches a role."""
from __future__ import annotations

from .iam import Request

TRANSFORM = "arn:aws:cloudformation:{region}:aws:transform/Serverless-2016-10-31"
S3_OBJECT = {"PutObject": "s3:PutObject", "HeadObject": "s3:GetObject", "GetObject": "s3:GetObject",
             "GetObjectTagging": "s3:GetObjectTagging"}
S3_BUCKET = {"ListObjectsV2": "s3:ListBucket", "ListObjects": "s3:ListBucket", "HeadBucket": "s3:ListBucket",
             "GetBucketLocation": "s3:GetBucketLocation"}
# Calls no policy governs.
FREE = {("sts", "GetCallerIdentity")}


class UnknownCall(KeyError):
    pass


def requests(service: str, operation: str, params: dict, region: str, account: str, stack_name: str) -> list[Request]:
    """`stack_name`: the stack every call of one deploy is about (a change set's ARN alone does not name it, and
    IAM authorises change-set calls on their stack)."""
    if (service, operation) in FREE:
        return []
    if service == "s3" and operation in S3_OBJECT:
        return [Request(S3_OBJECT[operation], f"arn:aws:s3:::{params['Bucket']}/{params['Key']}")]
    if service == "s3" and operation in S3_BUCKET:
        return [Request(S3_BUCKET[operation], f"arn:aws:s3:::{params['Bucket']}")]
    if service == "cloudformation":
        name = params.get("StackName") or stack_name
        if name.startswith("arn:"):
            name = name.split(":stack/")[1].split("/")[0]
        if name != stack_name:
            raise UnknownCall(f"{service}:{operation} on stack {name}, not the deploy's {stack_name}")
        stack = f"arn:aws:cloudformation:{region}:{account}:stack/{name}/0f1e2d3c"
        context = {"cloudformation:RoleArn": params["RoleARN"]} if "RoleARN" in params else {}
        found = [Request(f"cloudformation:{operation}", stack, context)]
        if operation == "CreateChangeSet" and not params.get("UsePreviousTemplate"):
            found.append(Request("cloudformation:CreateChangeSet", TRANSFORM.format(region=region)))
        if "RoleARN" in params and operation in ("CreateChangeSet", "DeleteStack", "CreateStack", "UpdateStack"):
            found.append(Request("iam:PassRole", params["RoleARN"], {"iam:PassedToService": "cloudformation.amazonaws.com"}))
        return found
    raise UnknownCall(f"{service}:{operation}: say in cfn/calls.py which IAM request it is")

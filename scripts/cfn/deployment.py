"""One deploy of a stack, modelled closely enough to say which IAM requests CloudFormation will make for it.

`Stack` is where it goes; `Deployment` holds the template after the SAM transform with the names and ARNs
CloudFormation gives its resources (`physical`), so that the execution role's policy can be evaluated on the real
ARNs. `requests` turns each handler permission of each resource (reference.py) into the IAM requests it makes:
the ARN it acts on and the condition keys that request carries.
"""
from __future__ import annotations

import functools
import urllib.parse
from dataclasses import dataclass, field

from . import reference, template
from .iam import Request

# CloudFormation names a resource it names itself `<stack>-<logical id>-<random suffix>`.
SUFFIX = "Q7WJ2K4M9XZA"


@dataclass(frozen=True)
class Stack:
    name: str
    region: str = "eu-west-1"
    account: str = "123456789012"
    tags: dict = field(default_factory=dict)  # the stack's own tags (samconfig's `tags`), which its resources get

    @property
    def id(self):
        return f"arn:aws:cloudformation:{self.region}:{self.account}:stack/{self.name}/0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b"


@dataclass
class Physical:
    ref: str
    arn: str
    attributes: dict = field(default_factory=dict)
    collection: str | None = None  # API Gateway: the collection a create POSTs to

    def attribute(self, name):
        if name == "Arn":
            return self.attributes.get("Arn", self.arn)
        if name not in self.attributes:
            raise KeyError(f"attribute {name} is not modelled")
        return self.attributes[name]


class Deployment:
    def __init__(self, source: dict, overrides: dict, stack: Stack, code_location: str | None = None):
        """`code_location`, the S3 URI `sam package` uploads the functions' code to, for a SAM template; None
        for a plain CloudFormation template."""
        self.stack = stack
        self.parameters = template.parameter_values(source, overrides)
        self.template = (template.sam_transform(source, self.parameters, stack.region, code_location)
                         if code_location else source)
        pseudo = {"AWS::StackName": stack.name, "AWS::Region": stack.region, "AWS::AccountId": stack.account,
                  "AWS::StackId": stack.id}
        self.resolver = template.Resolver(self.template, self.parameters, pseudo, physical=self.physical)
        self.resources = {name: resource for name, resource in self.template["Resources"].items()
                          if self.resolver.exists(resource)}

    @functools.cache
    def properties(self, logical: str) -> dict:
        return self.resolver.resolve(self.template["Resources"][logical].get("Properties", {}))

    def type_of(self, logical: str) -> str:
        return self.template["Resources"][logical]["Type"]

    def _name(self, logical, given=None, lower=False):
        name = given if isinstance(given, str) and given else f"{self.stack.name}-{logical}-{SUFFIX}"
        return name.lower() if lower else name

    @functools.cache
    def physical(self, logical: str) -> Physical:
        kind = self.type_of(logical)
        props = self.template["Resources"][logical].get("Properties", {})
        r, a = self.stack.region, self.stack.account
        prop = lambda key: self.resolver.resolve(props.get(key))  # noqa: E731
        apigw = f"arn:aws:apigateway:{r}::"
        if kind == "AWS::Lambda::Function":
            name = self._name(logical, prop("FunctionName"))
            return Physical(name, f"arn:aws:lambda:{r}:{a}:function:{name}")
        if kind == "AWS::Lambda::Version":
            function = self._function_arn(prop("FunctionName"))
            return Physical(f"{function}:1", f"{function}:1", {"Version": "1", "FunctionArn": function})
        if kind == "AWS::Lambda::Alias":
            arn = f"{self._function_arn(prop('FunctionName'))}:{prop('Name')}"
            return Physical(arn, arn)
        if kind == "AWS::Lambda::Permission":
            return Physical(f"{logical}-statement", self._function_arn(prop("FunctionName")))
        if kind == "AWS::Lambda::EventSourceMapping":
            uuid = "6f0b8d3a-1e22-4c55-9a43-0d7a6f1c2b1e"
            return Physical(uuid, f"arn:aws:lambda:{r}:{a}:event-source-mapping:{uuid}")
        if kind == "AWS::IAM::Role":
            name = self._name(logical, prop("RoleName"))
            return Physical(name, f"arn:aws:iam::{a}:role{prop('Path') or '/'}{name}", {"RoleId": "AROAEXAMPLE"})
        if kind == "AWS::IAM::ManagedPolicy":
            arn = f"arn:aws:iam::{a}:policy{prop('Path') or '/'}{self._name(logical, prop('ManagedPolicyName'))}"
            return Physical(arn, arn)
        if kind == "AWS::IAM::OIDCProvider":
            arn = f"arn:aws:iam::{a}:oidc-provider/token.actions.githubusercontent.com"
            return Physical(arn, arn)
        if kind == "AWS::DynamoDB::Table":
            name = self._name(logical, prop("TableName"))
            arn = f"arn:aws:dynamodb:{r}:{a}:table/{name}"
            return Physical(name, arn, {"StreamArn": f"{arn}/stream/2026-12-07T00:00:00.000"})
        if kind == "AWS::S3::Bucket":
            name = self._name(logical, prop("BucketName"), lower=True)
            return Physical(name, f"arn:aws:s3:::{name}", {"DomainName": f"{name}.s3.amazonaws.com"})
        if kind == "AWS::S3::BucketPolicy":
            bucket = prop("Bucket")
            return Physical(bucket, f"arn:aws:s3:::{bucket}")
        if kind == "AWS::SQS::Queue":
            name = self._name(logical, prop("QueueName"))
            url = f"https://sqs.{r}.amazonaws.com/{a}/{name}"
            return Physical(url, f"arn:aws:sqs:{r}:{a}:{name}", {"QueueName": name, "QueueUrl": url})
        if kind == "AWS::SQS::QueuePolicy":
            return Physical(f"{logical}-policy", self._queue_arn(prop("Queues")[0]))
        if kind == "AWS::SNS::Topic":
            name = self._name(logical, prop("TopicName"))
            arn = f"arn:aws:sns:{r}:{a}:{name}"
            return Physical(arn, arn, {"TopicName": name, "TopicArn": arn})
        if kind == "AWS::SNS::TopicPolicy":
            return Physical(f"{logical}-policy", prop("Topics")[0])
        if kind == "AWS::SNS::Subscription":
            topic = prop("TopicArn")
            return Physical(f"{topic}:0a1b2c3d", topic)
        if kind == "AWS::Logs::LogGroup":
            name = self._name(logical, prop("LogGroupName"))
            arn = f"arn:aws:logs:{r}:{a}:log-group:{name}"
            return Physical(name, arn, {"Arn": f"{arn}:*"})
        if kind == "AWS::Logs::MetricFilter":
            return Physical(f"{logical}-filter", f"arn:aws:logs:{r}:{a}:log-group:{prop('LogGroupName')}")
        if kind == "AWS::CloudWatch::Alarm":
            name = self._name(logical, prop("AlarmName"))
            return Physical(name, f"arn:aws:cloudwatch:{r}:{a}:alarm:{name}")
        if kind == "AWS::CloudWatch::Dashboard":
            name = self._name(logical, prop("DashboardName"))
            return Physical(name, f"arn:aws:cloudwatch::{a}:dashboard/{name}")
        if kind == "AWS::Events::EventBus":
            name = prop("Name")
            return Physical(name, f"arn:aws:events:{r}:{a}:event-bus/{name}", {"Name": name})
        if kind == "AWS::Events::EventBusPolicy":
            return Physical(f"{logical}-policy", f"arn:aws:events:{r}:{a}:event-bus/{prop('EventBusName')}")
        if kind == "AWS::Events::Archive":
            name = self._name(logical, prop("ArchiveName"))
            return Physical(name, f"arn:aws:events:{r}:{a}:archive/{name}")
        if kind == "AWS::Events::Rule":
            name = self._name(logical, prop("Name"))
            bus = prop("EventBusName")
            path = f"{bus}/{name}" if bus and bus != "default" else name
            return Physical(name, f"arn:aws:events:{r}:{a}:rule/{path}")
        if kind == "AWS::KMS::Key":
            key = "1a2b3c4d-5e6f-4a5b-8c9d-0e1f2a3b4c5d"
            return Physical(key, f"arn:aws:kms:{r}:{a}:key/{key}")
        if kind == "AWS::CodeDeploy::Application":
            name = self._name(logical, prop("ApplicationName"))
            return Physical(name, f"arn:aws:codedeploy:{r}:{a}:application:{name}")
        if kind == "AWS::CodeDeploy::DeploymentGroup":
            name = self._name(logical, prop("DeploymentGroupName"))
            return Physical(name, f"arn:aws:codedeploy:{r}:{a}:deploymentgroup:{prop('ApplicationName')}/{name}")
        if kind == "AWS::ApiGatewayV2::Api":
            api = "a1b2c3d4e5"
            return Physical(api, f"{apigw}/apis/{api}", {"ApiEndpoint": f"https://{api}.execute-api.{r}.amazonaws.com"},
                            collection=f"{apigw}/apis")
        if kind in ("AWS::ApiGatewayV2::Stage", "AWS::ApiGatewayV2::Route", "AWS::ApiGatewayV2::Integration",
                    "AWS::ApiGatewayV2::Authorizer"):
            part = {"Stage": "stages", "Route": "routes", "Integration": "integrations", "Authorizer": "authorizers"}[
                kind.rsplit("::", 1)[1]]
            own = prop("StageName") if part == "stages" else f"{logical.lower()[:7]}"
            return Physical(own, f"{apigw}/apis/{prop('ApiId')}/{part}/{own}", collection=f"{apigw}/apis/{prop('ApiId')}/{part}")
        if kind == "AWS::ApiGatewayV2::DomainName":
            name = prop("DomainName")
            return Physical(name, f"{apigw}/domainnames/{name}",
                            {"RegionalDomainName": f"d-a1b2c3d4e5.execute-api.{r}.amazonaws.com"}, collection=f"{apigw}/domainnames")
        if kind == "AWS::ApiGatewayV2::ApiMapping":
            domain = prop("DomainName")
            return Physical("m1a2b3", f"{apigw}/domainnames/{domain}/apimappings/m1a2b3",
                            collection=f"{apigw}/domainnames/{domain}/apimappings")
        raise NotImplementedError(f"{logical}: resources of type {kind} are not modelled (deployment.py, physical)")

    def _function_arn(self, name_or_arn: str) -> str:
        if name_or_arn.startswith("arn:"):
            return name_or_arn
        return f"arn:aws:lambda:{self.stack.region}:{self.stack.account}:function:{name_or_arn}"

    def _queue_arn(self, url: str) -> str:
        return f"arn:aws:sqs:{self.stack.region}:{self.stack.account}:{url.rsplit('/', 1)[1]}"

    def tags(self, logical: str) -> dict:
        """The tags CloudFormation gives the resource: its system tags where its type takes them, the stack's
        tags and the resource's own."""
        kind = self.type_of(logical)
        tagging = reference.tagging(kind)
        tags = {}
        if tagging.system_tags:
            tags.update({"aws:cloudformation:stack-name": self.stack.name, "aws:cloudformation:stack-id": self.stack.id,
                         "aws:cloudformation:logical-id": logical})
        if reference.schema(kind).get("tagging", {}).get("taggable"):
            tags.update(self.stack.tags)
            own = self.properties(logical).get("Tags", {})
            tags.update(own if isinstance(own, dict) else {t["Key"]: t["Value"] for t in own})
        return tags


def apigateway_tags_arn(stack: Stack, arn: str) -> str:
    return f"arn:aws:apigateway:{stack.region}::/tags/{urllib.parse.quote(arn, safe='')}"


__all__ = ["Stack", "Deployment", "Physical", "Request", "apigateway_tags_arn"]

#!/usr/bin/env python3
"""Checks template.yaml in each authentication mode: cfn-lint with the mode's parameters, and the template as
CloudFormation would resolve it: the Rules refuse what
each mode lacks, the functions' environment holds exactly the mode's variables (no secret outside hs256 mode),
the JWT authorizer exists and guards every route in gateway mode only, and every function has its route,
integration and invoke permission.

Usage: check_template.py   (prints `template: N passed, M failed`)
"""
import pathlib
import json
import re
import subprocess
import sys

import yaml

from checks import run

ROOT = pathlib.Path(__file__).resolve().parent.parent
FUNCTIONS = ["ListMetersFunction", "CreateMeterFunction", "GetMeterFunction", "UpdateMeterFunction", "DeleteMeterFunction"]


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
TEMPLATE = yaml.load((ROOT / "template.yaml").read_text(), Loader=Loader)
NO_VALUE = object()


def resolve(value, parameters, conditions):
    """Evaluates the intrinsics the checks need; others are left as they are."""
    if isinstance(value, list):
        return [v for v in (resolve(item, parameters, conditions) for item in value) if v is not NO_VALUE]
    if not isinstance(value, dict):
        return value
    if len(value) == 1:
        (name, argument), = value.items()
        if name == "Ref":
            if argument == "AWS::NoValue":
                return NO_VALUE
            return parameters.get(argument, {"Ref": argument})
        if name == "Fn::If":
            condition, then, otherwise = argument
            return resolve(then if conditions[condition] else otherwise, parameters, conditions)
        if name == "Fn::Equals":
            left, right = (resolve(a, parameters, conditions) for a in argument)
            return left == right
        if name == "Fn::Not":
            return not resolve(argument[0], parameters, conditions)
        if name == "Fn::And":
            return all(resolve(a, parameters, conditions) for a in argument)
        if name == "Fn::Split":
            separator, text = argument
            return resolve(text, parameters, conditions).split(separator)
        if name == "Condition":
            return conditions[argument]
    return {k: v for k, v in ((k, resolve(v, parameters, conditions)) for k, v in value.items()) if v is not NO_VALUE}


def parameters_for(overrides):
    values = {name: str(spec.get("Default", "")) for name, spec in TEMPLATE["Parameters"].items()}
    values.update(overrides)
    for name, value in values.items():
        spec = TEMPLATE["Parameters"][name]
        if "AllowedPattern" in spec and not re.fullmatch(spec["AllowedPattern"], value):
            raise ValueError(f"{name} does not match its AllowedPattern")
        if "AllowedValues" in spec and value not in [str(v) for v in spec["AllowedValues"]]:
            raise ValueError(f"{name} is not one of its AllowedValues")
    return values


def conditions_for(parameters):
    conditions = {}
    for name, expression in TEMPLATE["Conditions"].items():
        conditions[name] = resolve(expression, parameters, conditions)
    return conditions


def broken_rules(overrides):
    """The Rules (and parameter constraints) that refuse these parameters."""
    try:
        parameters = parameters_for(overrides)
    except ValueError as refused:
        return [str(refused)]
    conditions = conditions_for(parameters)
    broken = []
    for name, rule in TEMPLATE["Rules"].items():
        if "RuleCondition" in rule and not resolve(rule["RuleCondition"], parameters, conditions):
            continue
        if not all(resolve(a["Assert"], parameters, conditions) for a in rule["Assertions"]):
            broken.append(name)
    return broken


SECRET = "a-test-stack-secret-of-at-least-32-characters"
MODES = {
    "gateway": {"AuthMode": "gateway", "JwtIssuer": "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbC",
                "JwtAudience": "4f1c2a9b7d3e"},
    "jwks": {"AuthMode": "jwks", "JwtJwksUrl": "https://id.example/.well-known/jwks.json"},
    "hs256": {"AuthMode": "hs256", "JwtSecret": SECRET},
}


def cfn_lint_is_clean(overrides):
    """cfn-lint, informational rules included, with the mode's parameter values."""
    values = [f"{name}={value}" for name, value in overrides.items()]
    result = subprocess.run(["cfn-lint", "--include-checks", "I", "--parameters", *values, "--", "template.yaml"],
                            cwd=ROOT, capture_output=True, text=True)
    if result.returncode != 0:
        print(result.stdout + result.stderr)
    return result.returncode == 0


def checks():
    for mode, overrides in MODES.items():
        yield f"{mode}: cfn-lint (informational rules included) is clean", lambda o=overrides: cfn_lint_is_clean(o)
        yield f"{mode}: its parameters pass the rules", lambda o=overrides: broken_rules(o) == []
        parameters = parameters_for(overrides)
        conditions = conditions_for(parameters)
        env = resolve(TEMPLATE["Globals"]["Function"]["Environment"]["Variables"], parameters, conditions)
        expected_env = {
            "gateway": {"TABLE_NAME", "AUTH_MODE", "JWT_ACCOUNTS_CLAIM"},
            "jwks": {"TABLE_NAME", "AUTH_MODE", "JWT_JWKS_URL", "JWT_ALGORITHM", "JWT_ISSUER", "JWT_AUDIENCE", "JWT_ACCOUNTS_CLAIM"},
            "hs256": {"TABLE_NAME", "AUTH_MODE", "JWT_SECRET", "JWT_ALGORITHM", "JWT_ISSUER", "JWT_AUDIENCE", "JWT_ACCOUNTS_CLAIM"},
        }[mode] | {"POWERTOOLS_SERVICE_NAME", "METRICS_NAMESPACE", "DYNAMODB_ENDPOINT", "RUST_LOG"}
        yield f"{mode}: the functions get exactly {sorted(expected_env)}", lambda e=env, x=expected_env: set(e) == x
        yield f"{mode}: DYNAMODB_ENDPOINT is declared empty (AWS itself)", lambda e=env: e["DYNAMODB_ENDPOINT"] == ""
        yield f"{mode}: AUTH_MODE is {'gateway' if mode == 'gateway' else 'function'}", \
            lambda e=env, m=mode: e["AUTH_MODE"] == ("gateway" if m == "gateway" else "function")
        if mode != "hs256":
            yield f"{mode}: no secret in the functions' environment", \
                lambda e=env: not any(SECRET in str(v) for v in e.values()) and "JWT_SECRET" not in e
        else:
            yield "hs256: the algorithm is HS256", lambda e=env: e["JWT_ALGORITHM"] == "HS256"
        resources = TEMPLATE["Resources"]
        authorizer = resources["JwtAuthorizer"]
        yield f"{mode}: the JWT authorizer {'exists' if mode == 'gateway' else 'is absent'}", \
            lambda c=conditions, m=mode: c[authorizer["Condition"]] == (m == "gateway")
        routes = {name: resolve(r["Properties"], parameters, conditions) for name, r in resources.items()
                  if r["Type"] == "AWS::ApiGatewayV2::Route"}
        yield f"{mode}: every route is {'guarded by the JWT authorizer' if mode == 'gateway' else 'left to the function'}", \
            lambda rs=routes, m=mode: len(rs) == 5 and all(
                r["AuthorizationType"] == ("JWT" if m == "gateway" else "NONE")
                and (("AuthorizerId" in r) == (m == "gateway")) for r in rs.values())
    refusals = {
        "gateway without an issuer": {"AuthMode": "gateway", "JwtAudience": "a"},
        "gateway without an audience": {"AuthMode": "gateway", "JwtIssuer": "https://id.example"},
        "jwks without a URL": {"AuthMode": "jwks"},
        "jwks with a plain-http URL": {"AuthMode": "jwks", "JwtJwksUrl": "http://id.example/jwks"},
        "hs256 without a secret": {"AuthMode": "hs256"},
        "hs256 with a short secret": {"AuthMode": "hs256", "JwtSecret": "short"},
        "a secret outside hs256 mode": {**MODES["jwks"], "JwtSecret": SECRET},
        "a custom domain without its certificate": {**MODES["gateway"], "DomainName": "api.example.com"},
    }
    for case, overrides in refusals.items():
        yield f"refused: {case}", lambda o=overrides: broken_rules(o) != []
    # The API invokes each function's alias `live` (AutoPublishAlias), which SAM names <Function>Aliaslive.
    integrations = {r["Properties"]["IntegrationUri"]["Ref"].removesuffix("Aliaslive") for r in TEMPLATE["Resources"].values()
                    if r["Type"] == "AWS::ApiGatewayV2::Integration"}
    permissions = {r["Properties"]["FunctionName"]["Ref"].removesuffix("Aliaslive") for r in TEMPLATE["Resources"].values()
                   if r["Type"] == "AWS::Lambda::Permission"}
    table = TEMPLATE["Resources"]["MetersTable"]["Properties"]
    create_statements = TEMPLATE["Resources"]["CreateMeterFunction"]["Properties"]["Policies"][0]["Statement"]
    yield "create may delete only idempotency records, never a meter", \
        lambda: [st.get("Condition") for st in create_statements if "DeleteItem" in str(st["Action"])] == [
            {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["#idempotency#*"]}}]
    statements = {name: TEMPLATE["Resources"][name]["Properties"]["Policies"][0]["Statement"] for name in FUNCTIONS}
    yield "every table permission of every function is limited by partition key (dynamodb:LeadingKeys)", \
        lambda: all("dynamodb:LeadingKeys" in str(st.get("Condition")) for sts in statements.values()
                    for st in sts if "dynamodb:" in str(st["Action"]) and "id-index" not in str(st["Resource"]))
    yield "only create may write the id counter, and only by UpdateItem", \
        lambda: [(name, st["Action"]) for name, sts in statements.items() for st in sts
                 if "#meter-id-counter" in str(st.get("Condition"))] == [("CreateMeterFunction", "dynamodb:UpdateItem")]
    actions = lambda st: [st["Action"]] if isinstance(st["Action"], str) else st["Action"]
    table_statements = lambda name: [st for st in statements[name] if "dynamodb:" in str(st["Action"])]
    yield "list and get may only read the table", \
        lambda: all(action in ("dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:Query")
                    for name in ("ListMetersFunction", "GetMeterFunction") for st in table_statements(name)
                    for action in actions(st))
    yield "create, update and delete may put items in accounts' partitions (a write that closes the head's window keeps it in the change log)", \
        lambda: all(any("dynamodb:PutItem" in actions(st) and "????????-????" in str(st.get("Condition"))
                        for st in statements[name])
                    for name in ("CreateMeterFunction", "UpdateMeterFunction", "DeleteMeterFunction"))
    snapshot_statements = lambda name: [st for st in statements[name] if "s3:" in str(st["Action"])]
    yield "only list may reach the snapshots: objects under listings/ read and replaced, the bucket listed", \
        lambda: (all(snapshot_statements(name) == [] for name in FUNCTIONS if name != "ListMetersFunction")
                 and [(actions(st), st["Resource"]) for st in snapshot_statements("ListMetersFunction")] == [
                     (["s3:GetObject", "s3:PutObject"], {"Fn::Sub": "${ListingSnapshots.Arn}/listings/*"}),
                     (["s3:ListBucket"], {"Fn::GetAtt": ["ListingSnapshots", "Arn"]})])
    function_env = lambda name: TEMPLATE["Resources"][name]["Properties"].get("Environment", {}).get("Variables", {})
    yield "only list has SNAPSHOT_BUCKET, naming the stack's bucket", \
        lambda: ([name for name in FUNCTIONS if "SNAPSHOT_BUCKET" in function_env(name)] == ["ListMetersFunction"]
                 and function_env("ListMetersFunction")["SNAPSHOT_BUCKET"] == {"Ref": "ListingSnapshots"})
    bucket = TEMPLATE["Resources"]["ListingSnapshots"]["Properties"]
    yield "the snapshot bucket is encrypted, private, owner-enforced, TLS-only, and lets unreplaced snapshots expire", \
        lambda: (bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
                 and all(bucket["PublicAccessBlockConfiguration"].values()) and len(bucket["PublicAccessBlockConfiguration"]) == 4
                 and bucket["OwnershipControls"]["Rules"] == [{"ObjectOwnership": "BucketOwnerEnforced"}]
                 and bucket["LifecycleConfiguration"]["Rules"][0]["ExpirationInDays"] >= 14
                 and TEMPLATE["Resources"]["ListingSnapshotsPolicy"]["Properties"]["PolicyDocument"]["Statement"][0]["Condition"]
                 == {"Bool": {"aws:SecureTransport": False}})
    # The store's own schema (table_definition() in shared/src/store/dynamodb/schema.rs), as meters-local
    # prints it: the table the template declares must be the one the store creates and reads.
    dump = subprocess.run(["cargo", "run", "--quiet", "--locked", "-p", "meters-local", "--", "table-definition"],
                          cwd=ROOT, capture_output=True, text=True, check=True).stdout
    definition = json.loads(dump)
    for part in definition:
        yield f"the table's {part} are the store's (table_definition())", \
            lambda p=part: table.get(p) == definition[p]
    resources = TEMPLATE["Resources"]
    globals_ = TEMPLATE["Globals"]["Function"]
    yield "every function is traced (Tracing: Active) and published behind the alias live", \
        lambda: globals_.get("Tracing") == "Active" and globals_.get("AutoPublishAlias") == "live" and all(
            resources[f]["Properties"].get("Tracing", "Active") == "Active" for f in FUNCTIONS)
    def own_log_group(function):
        group = resources[function]["Properties"]["LoggingConfig"]["LogGroup"]["Ref"]
        return resources[group]["Type"] == "AWS::Logs::LogGroup" and group == function.removesuffix("Function") + "Logs"
    yield "every function logs JSON to its own log group", \
        lambda: all(resources[f]["Properties"]["LoggingConfig"]["LogFormat"] == "JSON" and own_log_group(f) for f in FUNCTIONS)
    def alarmed(function):
        name = function.removesuffix("Function")
        alarm, log_filter = resources.get(f"{name}ErrorsAlarm"), resources.get(f"{name}ErrorLogsFilter")
        if not alarm or not log_filter:
            return False
        metrics = alarm["Properties"]["Metrics"]
        watched = {str(m["MetricStat"]["Metric"].get("MetricName")) for m in metrics if "MetricStat" in m}
        dims = str([m["MetricStat"]["Metric"].get("Dimensions") for m in metrics if "MetricStat" in m])
        return (log_filter["Properties"]["LogGroupName"] == {"Ref": f"{name}Logs"}
                and log_filter["Properties"]["FilterPattern"] == '{ $.level = "ERROR" }'
                and log_filter["Properties"]["MetricTransformations"][0]["MetricName"] in watched
                and "Errors" in watched and "Invocations" in watched and f"'Ref': '{function}'" in dims
                and "/ invoked" in str([m.get("Expression") for m in metrics])
                and alarm["Properties"]["AlarmActions"] == [{"Ref": "AlarmTopic"}])
    yield "every function has its alarm: a rate of ERROR log lines and failed invocations per invocation, to the topic", \
        lambda: all(alarmed(f) for f in FUNCTIONS)
    def canary(function):
        """The rollback alarm: the new version's 5xx (EMF by function and version) and failed invocations
        (Lambda's ExecutedVersion), never the old version's."""
        alarm = resources.get(function.removesuffix("Function") + "CanaryAlarm")
        if not alarm:
            return False
        version = {"Fn::GetAtt": [function, "Version.Version"]}
        stats = [m["MetricStat"]["Metric"] for m in alarm["Properties"]["Metrics"] if "MetricStat" in m]
        return len(stats) == 2 and all({"Name": d, "Value": version} in m["Dimensions"]
                                       for m, d in zip(stats, ["version", "ExecutedVersion"]))
    yield "every function deploys through CodeDeploy, rolled back by an alarm on the new version alone (canary in prod)", \
        lambda: all(resources[f]["Properties"]["DeploymentPreference"]["Alarms"] == [{"Ref": f.removesuffix("Function") + "CanaryAlarm"}]
                    and canary(f)
                    and resources[f]["Properties"]["DeploymentPreference"]["Type"]
                    == {"Fn::If": ["Production", "Canary10Percent5Minutes", "AllAtOnce"]} for f in FUNCTIONS)
    alarms = {name: r for name, r in resources.items() if r["Type"] == "AWS::CloudWatch::Alarm"}
    paging = {name: a for name, a in alarms.items() if not name.endswith("CanaryAlarm")}
    yield "the API (5xx and 4xx rates, latency), Lambda and DynamoDB alarms exist, and every paging alarm notifies the topic", \
        lambda: {"Api5xxRateAlarm", "Api4xxRateAlarm", "ApiLatencyAlarm", "LambdaThrottlesAlarm", "TableThrottlesAlarm",
                 "TableSystemErrorsAlarm"} <= set(paging) and all(
            a["Properties"]["AlarmActions"] == [{"Ref": "AlarmTopic"}] for a in paging.values())
    # One message in the change events' failures queue is an event that was never delivered: that pages at
    # once. Every other paging alarm waits out noise.
    immediate = {"MeterEventsFailuresAlarm"}
    yield "no paging alarm fires on one period but the undelivered events': the others need three 5-minute periods running", \
        lambda: all(a["Properties"]["EvaluationPeriods"] >= 3 and a["Properties"].get("DatapointsToAlarm", 0) >= 3
                    for name, a in paging.items() if name not in immediate) and all(
            paging[name]["Properties"]["Threshold"] == 0 for name in immediate)
    yield from change_event_checks(resources)
    yield "the 4xx alarm is a rate: 4xx answers per request", \
        lambda: ("100 * failed / answered" in str(alarms["Api4xxRateAlarm"]["Properties"]["Metrics"])
                 and "'MetricName': '4xx'" in str(alarms["Api4xxRateAlarm"]["Properties"]["Metrics"]))
    key = resources.get("AlarmTopicKey", {})
    yield "the alarm topic is encrypted with the stack's own key, whose policy lets CloudWatch publish", \
        lambda: (resources["AlarmTopic"]["Properties"]["KmsMasterKeyId"] == {"Ref": "AlarmTopicKey"}
                 and any(st["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
                         and {"kms:Decrypt", "kms:GenerateDataKey*"} <= set(st["Action"])
                         for st in key["Properties"]["KeyPolicy"]["Statement"]))
    log_groups = [r for r in resources.values() if r["Type"] == "AWS::Logs::LogGroup"]
    yield "log groups are retained when the stack goes", \
        lambda: bool(log_groups) and all(g.get("DeletionPolicy") == "Retain" for g in log_groups)
    yield "verbosity is RUST_LOG (LogLevel), never Lambda's ApplicationLogLevel, which would drop the EMF metrics", \
        lambda: (globals_["Environment"]["Variables"]["RUST_LOG"] == {"Ref": "LogLevel"}
                 and all("ApplicationLogLevel" not in resources[f]["Properties"]["LoggingConfig"] for f in FUNCTIONS))
    stage = resources["MetersApiStage"]["Properties"]
    yield "the stage throttles (list tighter), logs access as JSON with the request id, has detailed metrics", \
        lambda: (stage["DefaultRouteSettings"]["ThrottlingRateLimit"] == {"Ref": "ApiRateLimit"}
                 and stage["RouteSettings"]["GET /api/v1/meters"]["ThrottlingRateLimit"] == {"Ref": "ListRateLimit"}
                 and stage["DefaultRouteSettings"]["DetailedMetricsEnabled"] is True
                 and "$context.requestId" in stage["AccessLogSettings"]["Format"]
                 and "$context.integrationErrorMessage" in stage["AccessLogSettings"]["Format"])
    yield "the access log names who made each request (the authorizer's sub and client_id, in gateway mode)", \
        lambda: all(f"$context.authorizer.claims.{claim}" in stage["AccessLogSettings"]["Format"]
                    for claim in ("sub", "client_id"))
    domain = {**MODES["gateway"], "DomainName": "api.example.com",
              "CertificateArn": "arn:aws:acm:eu-west-1:123456789012:certificate/0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b"}
    yield "with a custom domain: cfn-lint is clean and its parameters pass the rules", \
        lambda: cfn_lint_is_clean(domain) and broken_rules(domain) == []
    def api_addresses(overrides):
        parameters = parameters_for(overrides)
        conditions = conditions_for(parameters)
        api = resolve(resources["MetersApi"]["Properties"], parameters, conditions)
        made = {name for name in ("MetersApiDomain", "MetersApiMapping") if conditions[resources[name]["Condition"]]}
        return api["DisableExecuteApiEndpoint"], made
    yield "a custom domain makes the domain and its API mapping, and turns the execute-api address off", \
        lambda: api_addresses(domain) == (True, {"MetersApiDomain", "MetersApiMapping"})
    yield "without one, neither exists and the execute-api address serves", \
        lambda: api_addresses(MODES["gateway"]) == (False, set())
    # meters-local answers browsers as the HTTP API does: its policy (local/src/cors.rs) is the template's.
    policy = json.loads(subprocess.run(["cargo", "run", "--quiet", "--locked", "-p", "meters-local", "--", "cors-policy"],
                                       cwd=ROOT, capture_output=True, text=True, check=True).stdout)
    def cors(origins):
        parameters = parameters_for({**MODES["gateway"], "CorsAllowedOrigins": origins})
        api = resolve(resources["MetersApi"]["Properties"], parameters, conditions_for(parameters))
        return api.get("CorsConfiguration")
    origins = "https://app.example.com,http://localhost:5173"
    yield "CorsAllowedOrigins configures the HTTP API's CORS with meters-local's policy and exactly those origins", \
        lambda: cors(origins) == {**policy, "AllowOrigins": origins.split(",")}
    yield "CORS exposes the headers the API's flows read, and allows the ones they send", \
        lambda: {"etag", "location", "x-request-id", "retry-after", "idempotent-replayed"} <= set(cors(origins)["ExposeHeaders"]) \
        and {"authorization", "content-type", "if-match", "if-none-match", "idempotency-key"} <= set(cors(origins)["AllowHeaders"])
    yield "without CorsAllowedOrigins the API has no CORS configuration", lambda: cors("") is None
    yield "with CorsAllowedOrigins: cfn-lint is clean", \
        lambda: cfn_lint_is_clean({**MODES["gateway"], "CorsAllowedOrigins": origins})
    for bad in ("https://app.example.com, http://localhost:5173", "app.example.com", "https://app.example.com/path"):
        yield f"refused: CorsAllowedOrigins {bad!r}", \
            lambda b=bad: broken_rules({**MODES["gateway"], "CorsAllowedOrigins": b}) != []
    outputs = TEMPLATE["Outputs"]
    yield "the outputs name the API id and every function", \
        lambda: outputs["ApiId"]["Value"] == {"Ref": "MetersApi"} and all(
            outputs[f"{f}Name"]["Value"] == {"Ref": f} for f in FUNCTIONS)
    yield "every function has an integration and an invoke permission", \
        lambda: integrations == set(FUNCTIONS) and permissions == set(FUNCTIONS)


# Stream records as Lambda's event source mapping filters them: a meter's, and the bookkeeping beside it.
ACCOUNT = "6f1c2b1e-0d7a-4c55-9a43-4f0b8d3a1e22"
METER_IMAGE = {"account_id": {"S": ACCOUNT}, "id": {"N": "7"}, "name": {"S": "Main"}, "serial_number": {"S": "EM-1"}}
BOOKKEEPING = {
    "the account's head": {"account_id": {"S": ACCOUNT}, "id": {"N": "0"}, "meter_count": {"N": "1"}},
    "a tombstone": {"account_id": {"S": ACCOUNT}, "id": {"N": "-7"}, "deleted_by": {"M": {}}},
    "the id counter": {"account_id": {"S": "#meter-id-counter"}, "id": {"N": "0"}, "last_id": {"N": "7"}},
    "an idempotency record": {"account_id": {"S": f"#idempotency#{ACCOUNT}#k"}, "id": {"N": "0"}, "body": {"S": "{}"}},
    "a window of the change log": {"account_id": {"S": ACCOUNT}, "id": {"N": "-10000000000000000064"},
                                   "recent_since": {"N": "32"}, "log_until": {"N": "64"}, "r7": {"N": "3"}},
}


def stream_record(event_name, item):
    images = {"INSERT": ["NewImage"], "MODIFY": ["NewImage", "OldImage"], "REMOVE": ["OldImage"]}[event_name]
    return {"eventName": event_name, "dynamodb": {"Keys": {k: item[k] for k in ("account_id", "id")},
                                                  **{image: item for image in images}}}


def matches(pattern, event):
    """The part of EventBridge's pattern language the filters use: lists of values, and `exists`."""
    for key, wanted in pattern.items():
        if isinstance(wanted, dict):
            if not isinstance(event.get(key), dict) or not matches(wanted, event[key]):
                return False
            continue
        present = key in event
        if not any((isinstance(w, dict) and w.get("exists") == present) or (present and event[key] == w) for w in wanted):
            return False
    return True


def change_event_checks(resources):
    function = resources["MeterEventsFunction"]["Properties"]
    source = function["Events"]["TableStream"]["Properties"]
    filters = [json.loads(f["Pattern"]) for f in source["FilterCriteria"]["Filters"]]
    delivered = lambda record: any(matches(f, record) for f in filters)
    yield "meter-events reads the table's stream, which carries new and old images", \
        lambda: source["Stream"] == {"Fn::GetAtt": ["MetersTable", "StreamArn"]} and \
        resources["MetersTable"]["Properties"]["StreamSpecification"] == {"StreamViewType": "NEW_AND_OLD_IMAGES"}
    yield "meter-events reports partial batch failures, bisects, retries a bounded number of times, then hands the batch to the failures queue", \
        lambda: source["FunctionResponseTypes"] == ["ReportBatchItemFailures"] and source["BisectBatchOnFunctionError"] is True \
        and 0 < source["MaximumRetryAttempts"] <= 100 and source["DestinationConfig"]["OnFailure"] == {
            "Type": "SQS", "Destination": {"Fn::GetAtt": ["MeterEventsFailures", "Arn"]}}
    for event_name in ("INSERT", "MODIFY", "REMOVE"):
        yield f"the stream filter lets a meter's {event_name} through", \
            lambda e=event_name: delivered(stream_record(e, METER_IMAGE))
        for what, item in BOOKKEEPING.items():
            yield f"the stream filter stops {what}'s {event_name}", \
                lambda e=event_name, i=item: not delivered(stream_record(e, i))
    yield "meter-events publishes to the stack's bus (EVENT_BUS_NAME) and holds no secret", \
        lambda: function["Environment"]["Variables"] == {"EVENT_BUS_NAME": {"Ref": "MeterEventsBus"}, "JWT_SECRET": ""}
    statements = function["Policies"][0]["Statement"]
    yield "meter-events may put events on its bus, send to its failures queue and read accounts' items, nothing else", \
        lambda: sorted((st["Action"], json.dumps(st["Resource"])) for st in statements) == sorted([
            ("events:PutEvents", json.dumps({"Fn::GetAtt": ["MeterEventsBus", "Arn"]})),
            ("sqs:SendMessage", json.dumps({"Fn::GetAtt": ["MeterEventsFailures", "Arn"]})),
            ("dynamodb:GetItem", json.dumps({"Fn::GetAtt": ["MetersTable", "Arn"]}))]) and all(
            "dynamodb:LeadingKeys" in str(st.get("Condition")) for st in statements if "dynamodb" in st["Action"])
    policy = resources["MeterEventsBusPolicy"]["Properties"]
    yield "the bus's policy refuses PutEvents to every principal but the stack's publisher", \
        lambda: policy["EventBusName"] == {"Ref": "MeterEventsBus"} and policy["Statement"] == {
            "Effect": "Deny", "Principal": "*", "Action": "events:PutEvents",
            "Resource": {"Fn::GetAtt": ["MeterEventsBus", "Arn"]},
            "Condition": {"ArnNotEquals": {"aws:PrincipalArn": {"Fn::GetAtt": ["MeterEventsFunctionRole", "Arn"]}}}}
    alarms = {name: resources[name]["Properties"] for name in ("MeterEventsFailuresAlarm", "MeterEventsIteratorAgeAlarm")}
    yield "a message in the failures queue and a stream falling behind both page", \
        lambda: alarms["MeterEventsFailuresAlarm"]["Dimensions"] == [
            {"Name": "QueueName", "Value": {"Fn::GetAtt": ["MeterEventsFailures", "QueueName"]}}] \
        and alarms["MeterEventsIteratorAgeAlarm"]["MetricName"] == "IteratorAge" \
        and all(a["AlarmActions"] == [{"Ref": "AlarmTopic"}] for a in alarms.values())


def pipeline_checks():
    """pipeline/bootstrap.yaml: GitHub's OIDC provider and, per environment, a deploy role GitHub may assume only
    from that environment, which may only change its own stack and pass its own execution role."""
    bootstrap = yaml.load((ROOT / "pipeline/bootstrap.yaml").read_text(), Loader=Loader)
    resources = bootstrap["Resources"]

    def lint_is_clean():
        result = subprocess.run(["cfn-lint", "--include-checks", "I", "--", "pipeline/bootstrap.yaml"],
                                cwd=ROOT, capture_output=True, text=True)
        if result.returncode != 0:
            print(result.stdout + result.stderr)
        return result.returncode == 0
    yield "pipeline: cfn-lint (informational rules included) is clean", lint_is_clean
    yield "pipeline: GitHub's OIDC provider, for the audience sts.amazonaws.com", \
        lambda: (resources["GitHubOidcProvider"]["Properties"]["Url"] == "https://token.actions.githubusercontent.com"
                 and resources["GitHubOidcProvider"]["Properties"]["ClientIdList"] == ["sts.amazonaws.com"])
    for env in ("Dev", "Prod"):
        role = resources[f"{env}DeployRole"]["Properties"]
        trust = role["AssumeRolePolicyDocument"]["Statement"]
        yield f"pipeline: the {env.lower()} deploy role trusts only this repository's {env.lower()} environment, with the aud check", \
            lambda t=trust, e=env.lower(): len(t) == 1 and t[0]["Action"] == "sts:AssumeRoleWithWebIdentity" and t[0]["Condition"] == {
                "StringEquals": {"token.actions.githubusercontent.com:aud": "sts.amazonaws.com",
                                 "token.actions.githubusercontent.com:sub": {"Fn::Sub": f"repo:${{GitHubRepository}}:environment:{e}"}}}
        statements = role["Policies"][0]["PolicyDocument"]["Statement"]
        yield f"pipeline: the {env.lower()} deploy role passes only its own execution role, only to CloudFormation", \
            lambda st=statements, e=env: [(x["Resource"], x["Condition"]) for x in st if "iam:PassRole" in str(x["Action"])] == [
                ({"Fn::GetAtt": [f"{e}CloudFormationExecutionRole", "Arn"]},
                 {"StringEquals": {"iam:PassedToService": "cloudformation.amazonaws.com"}})]
        yield f"pipeline: the {env.lower()} deploy role changes only its own stack", \
            lambda st=statements, e=env: all(f"stack/${{{e}StackName}}/*" in str(x["Resource"])
                                             for x in st if "cloudformation:" in str(x["Action"]))
        managed = resources[f"{env}StackResources"]["Properties"]["PolicyDocument"]["Statement"]
        yield f"pipeline: the {env.lower()} execution role reaches only its stack's resources (by name, by the stack's tag, or by the stack's function a stream mapping feeds; HTTP APIs and log delivery have no name to scope by)", \
            lambda m=managed, e=env: all(f"${{{e}StackName}}" in str(x["Resource"]) or f"'Ref': '{e}StackName'" in str(x.get("Condition"))
                                         or f"function:${{{e}StackName}}-*" in str(x.get("Condition"))
                                         or x["Sid"] in ("AccessLogDelivery", "HttpApi") for x in m)


def main():
    return run("template", [*checks(), *pipeline_checks()])


if __name__ == "__main__":
    sys.exit(main())

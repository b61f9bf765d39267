"""Alarms that mean something and reach a person: rate and latency alarms judged only on real traffic (their
metric math evaluated on sample nights and storms), every function under the alarms that apply to it and on the
dashboard, every alarm and every failed deploy to the topic, which CloudWatch may publish to."""
import re

import pytest

from cfn import metric_math
from cfn.stacks import MODES, api_functions, app_template, functions, resolved, resources


def alarm(name, overrides=None):
    return resolved({**MODES["gateway"], **(overrides or {})}).resolve(resources()[name]["Properties"])


def periods(count=3, **values):
    return [dict(values) for _ in range(count)]


def test_a_quiet_night_with_one_404_a_period_pages_no_one():
    assert not metric_math.fires(alarm("Api4xxRateAlarm"), periods(failed=1, answered=1))


def test_a_storm_of_401s_pages():
    assert metric_math.fires(alarm("Api4xxRateAlarm"), periods(failed=600, answered=1000))


def test_a_4xx_rate_over_the_threshold_for_only_two_periods_pages_no_one():
    storm = periods(2, failed=600, answered=1000)
    assert not metric_math.fires(alarm("Api4xxRateAlarm"), [{"failed": 1, "answered": 1000}, *storm])


def test_one_slow_request_of_a_quiet_night_is_no_p99():
    assert not metric_math.fires(alarm("ApiLatencyAlarm"), periods(latency=4000, answered=1))


def test_a_slow_api_under_traffic_pages():
    assert metric_math.fires(alarm("ApiLatencyAlarm"), periods(latency=1500, answered=400))


def test_the_traffic_floor_is_the_parameters():
    floor = {"AlarmMinimumRequests": "500"}
    assert not metric_math.fires(alarm("Api4xxRateAlarm", floor), periods(failed=300, answered=400))
    assert metric_math.fires(alarm("Api4xxRateAlarm", floor), periods(failed=300, answered=600))


def test_a_total_outage_of_a_quiet_night_still_pages_but_one_5xx_does_not():
    assert metric_math.fires(alarm("Api5xxRateAlarm"), periods(failed=3, answered=3))
    assert not metric_math.fires(alarm("Api5xxRateAlarm"), periods(failed=1, answered=2))
    assert metric_math.fires(alarm("Api5xxRateAlarm"), periods(failed=20, answered=1000))


@pytest.mark.parametrize("function", api_functions())
def test_each_functions_error_alarm_is_a_rate_with_a_floor(function):
    errors = alarm(function.removesuffix("Function") + "ErrorsAlarm")
    assert not metric_math.fires(errors, periods(logged=1, crashed=0, invoked=1))
    assert metric_math.fires(errors, periods(logged=2, crashed=1, invoked=3))
    assert metric_math.fires(errors, periods(logged=30, crashed=0, invoked=1000))
    assert not metric_math.fires(errors, periods(logged=5, crashed=0, invoked=1000))


@pytest.mark.parametrize("function", api_functions())
def test_every_function_behind_a_route_has_its_error_alarm_on_its_error_lines_and_failed_invocations(function):
    name = function.removesuffix("Function")
    log_filter = resources()[f"{name}ErrorLogsFilter"]["Properties"]
    assert log_filter["LogGroupName"] == {"Ref": f"{name}Logs"}
    assert log_filter["FilterPattern"] == '{ $.level = "ERROR" }'
    metrics = resources()[f"{name}ErrorsAlarm"]["Properties"]["Metrics"]
    watched = {m["MetricStat"]["Metric"]["MetricName"] for m in metrics if "MetricStat" in m}
    assert watched == {log_filter["MetricTransformations"][0]["MetricName"], "Errors", "Invocations"}


@pytest.mark.parametrize("function", api_functions())
def test_every_deploy_is_rolled_back_by_an_alarm_on_the_new_version_alone(function):
    name = function.removesuffix("Function")
    preference = resources()[function]["Properties"]["DeploymentPreference"]
    assert preference["Alarms"] == [{"Ref": f"{name}CanaryAlarm"}]
    assert preference["Type"] == {"Fn::If": ["Production", "Canary10Percent5Minutes", "AllAtOnce"]}
    version = {"Fn::GetAtt": [function, "Version.Version"]}
    stats = [m["MetricStat"]["Metric"] for m in resources()[f"{name}CanaryAlarm"]["Properties"]["Metrics"] if "MetricStat" in m]
    assert [{"Name": d, "Value": version} in m["Dimensions"] for m, d in zip(stats, ["version", "ExecutedVersion"])] == [True, True]


@pytest.mark.parametrize("function", api_functions())
def test_every_failed_stopped_or_rolled_back_deploy_notifies_the_topic(function):
    triggers = resources()[function]["Properties"]["DeploymentPreference"]["TriggerConfigurations"]
    assert [(t["TriggerTargetArn"], set(t["TriggerEvents"])) for t in triggers] == [
        ({"Ref": "AlarmTopic"}, {"DeploymentFailure", "DeploymentRollback", "DeploymentStop"})]


def paging():
    return {name: r["Properties"] for name, r in resources().items()
            if r["Type"] == "AWS::CloudWatch::Alarm" and not name.endswith("CanaryAlarm")}


def test_every_paging_alarm_notifies_the_topic_and_says_when_it_clears():
    for name, properties in paging().items():
        assert properties["AlarmActions"] == [{"Ref": "AlarmTopic"}], name
        assert properties["OKActions"] == [{"Ref": "AlarmTopic"}], name


def test_only_an_undelivered_change_event_pages_on_one_period_the_others_wait_three():
    immediate = {name for name, p in paging().items() if p["EvaluationPeriods"] < 3 or p.get("DatapointsToAlarm", 0) < 3}
    assert immediate == {"MeterEventsFailuresAlarm"}
    assert paging()["MeterEventsFailuresAlarm"]["Threshold"] == 0


def test_the_alarm_topic_is_one_cloudwatch_of_this_account_may_publish_to_with_no_key_to_deny_it():
    topic = resources()["AlarmTopic"]["Properties"]
    assert "KmsMasterKeyId" not in topic
    assert not [n for n, r in resources().items() if r["Type"] == "AWS::KMS::Key"]
    statements = resources()["AlarmTopicPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    allow = [st for st in statements if st["Effect"] == "Allow"]
    assert allow == [{"Sid": "CloudWatchAlarmsOfThisAccount", "Effect": "Allow", "Principal": {"Service": "cloudwatch.amazonaws.com"},
                      "Action": "sns:Publish", "Resource": {"Ref": "AlarmTopic"},
                      "Condition": {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}}]


def test_an_email_and_an_https_endpoint_can_each_subscribe_to_the_topic():
    subscriptions = {r["Properties"]["Protocol"]: r["Properties"]["Endpoint"] for r in resources().values()
                     if r["Type"] == "AWS::SNS::Subscription"}
    assert subscriptions == {"email": {"Ref": "AlarmEmail"}, "https": {"Ref": "AlarmHttpsEndpoint"}}


def test_every_function_is_under_the_throttles_alarm():
    watched = {m["MetricStat"]["Metric"]["Dimensions"][0]["Value"]["Ref"]
               for m in resources()["LambdaThrottlesAlarm"]["Properties"]["Metrics"] if "MetricStat" in m}
    assert watched == set(functions())
    expression = next(m["Expression"] for m in resources()["LambdaThrottlesAlarm"]["Properties"]["Metrics"] if "Expression" in m)
    assert set(re.findall(r"t\d+", expression)) == {m["Id"] for m in resources()["LambdaThrottlesAlarm"]["Properties"]["Metrics"] if "MetricStat" in m}


def test_the_system_errors_alarm_covers_every_operation_the_functions_call():
    called = {action.split(":")[1] for f in functions() for st in resources()[f]["Properties"]["Policies"][0]["Statement"]
              for action in ([st["Action"]] if isinstance(st["Action"], str) else st["Action"]) if action.startswith("dynamodb:")}
    called.add("TransactWriteItems")  # authorised as its items' PutItem and UpdateItem
    watched = {d["Value"] for m in resources()["TableSystemErrorsAlarm"]["Properties"]["Metrics"] if "MetricStat" in m
               for d in m["MetricStat"]["Metric"]["Dimensions"] if d["Name"] == "Operation"}
    assert called <= watched, called - watched


def dashboard():
    return resources()["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]


def test_the_dashboard_shows_every_alarm():
    alarms = {name for name, r in resources().items() if r["Type"] == "AWS::CloudWatch::Alarm" and not name.endswith("CanaryAlarm")}
    assert set(re.findall(r'"\$\{(\w+)\.Arn\}"', dashboard())) == alarms


@pytest.mark.parametrize("metric", ["Invocations", "Errors", "Duration", "Throttles"])
def test_the_dashboard_shows_every_functions(metric):
    shown = re.findall(r'\["(?:AWS/Lambda|\.)", "(?:' + metric + r'|\.)", "(?:FunctionName|\.)", "\$\{(\w+)\}"\]', dashboard())
    assert set(functions()) <= set(shown), set(functions()) - set(shown)


def test_the_dashboards_throttles_are_throttles_not_every_4xx():
    assert '"4xx"' not in dashboard()
    throttled = resources()["ApiThrottledFilter"]["Properties"]
    assert throttled["LogGroupName"] == {"Ref": "ApiAccessLogs"} and throttled["FilterPattern"] == '{ $.status = "429" }'
    assert "ApiThrottledRequests" in dashboard()


@pytest.mark.parametrize("function", functions())
def test_every_function_is_traced_published_behind_live_and_logs_json_to_its_own_group_without_platform_chatter(function):
    properties = resources()[function]["Properties"]
    globals_ = app_template()["Globals"]["Function"]
    assert globals_["Tracing"] == "Active" and properties.get("Tracing", "Active") == "Active"
    assert globals_["AutoPublishAlias"] == "live"
    logging = properties["LoggingConfig"]
    group = logging["LogGroup"]["Ref"]
    assert resources()[group]["Type"] == "AWS::Logs::LogGroup" and group == function.removesuffix("Function") + "Logs"
    assert logging["LogFormat"] == "JSON" and logging["SystemLogLevel"] == "WARN"
    # Verbosity is RUST_LOG (LogLevel): Lambda's ApplicationLogLevel would drop the EMF metrics.
    assert "ApplicationLogLevel" not in logging
    assert globals_["Environment"]["Variables"]["RUST_LOG"] == {"Ref": "LogLevel"}


def test_a_failed_change_event_and_a_stream_falling_behind_both_page():
    failures = resources()["MeterEventsFailuresAlarm"]["Properties"]
    assert failures["Dimensions"] == [{"Name": "QueueName", "Value": {"Fn::GetAtt": ["MeterEventsFailures", "QueueName"]}}]
    assert resources()["MeterEventsIteratorAgeAlarm"]["Properties"]["MetricName"] == "IteratorAge"

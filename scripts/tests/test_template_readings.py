"""The readings path in the template: the queue only ReadingsSenderArns may send to, its dead-letter queue, the
function's event source mapping with partial batch failures, its IAM (one UpdateItem naming only a reading's
attributes, in accounts' partitions, and the dead-letter queue), and the alarms on both queues."""
import json

from cfn.stacks import meters_local, resolved, resources

UUID_PATTERN = ["????????-????-????-????-????????????"]


def function():
    return resources()["ApplyReadingsFunction"]["Properties"]


def test_the_function_may_update_only_a_readings_attributes_in_accounts_partitions_and_park_on_its_queue():
    statements = function()["Policies"][0]["Statement"]
    assert [(st["Action"], st["Resource"]) for st in statements] == [
        ("dynamodb:UpdateItem", {"Fn::GetAtt": ["MetersTable", "Arn"]}),
        ("sqs:SendMessage", {"Fn::GetAtt": ["ReadingsDeadLetters", "Arn"]})]
    condition = statements[0]["Condition"]
    assert condition["ForAllValues:StringLike"] == {"dynamodb:LeadingKeys": UUID_PATTERN}
    # The list is the code's own: what the adapter's one UpdateItem names.
    assert condition["ForAllValues:StringEquals"]["dynamodb:Attributes"] == json.loads(meters_local("reading-attributes"))


def test_the_function_reads_the_readings_queue_reporting_each_failed_message_and_parks_on_the_dead_letter_queue():
    source = function()["Events"]["Readings"]
    assert source["Type"] == "SQS"
    assert source["Properties"]["Queue"] == {"Fn::GetAtt": ["ReadingsQueue", "Arn"]}
    assert source["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert source["Properties"]["BatchSize"] <= 100
    assert function()["Environment"]["Variables"]["READINGS_DEAD_LETTER_QUEUE_URL"] == {"Ref": "ReadingsDeadLetters"}
    assert function()["Environment"]["Variables"]["JWT_SECRET"] == ""


def test_a_message_is_never_delivered_again_while_a_batch_may_still_hold_it_and_ends_on_the_dead_letter_queue():
    queue = resources()["ReadingsQueue"]["Properties"]
    timeout = function()["Timeout"]
    assert queue["VisibilityTimeout"] >= 6 * timeout
    assert queue["RedrivePolicy"]["deadLetterTargetArn"] == {"Fn::GetAtt": ["ReadingsDeadLetters", "Arn"]}
    assert queue["SqsManagedSseEnabled"] and resources()["ReadingsDeadLetters"]["Properties"]["SqsManagedSseEnabled"]
    dead = resources()["ReadingsDeadLetters"]["Properties"]
    assert dead["MessageRetentionPeriod"] > queue["MessageRetentionPeriod"], "a parked reading outlives the queue's"
    for name in ("ReadingsQueue", "ReadingsDeadLetters"):
        assert resources()[name]["UpdateReplacePolicy"] == "Retain", name


def test_only_the_senders_the_parameter_names_may_send_readings_and_with_none_nobody_may():
    def policy(senders):
        queue_policy = resolved({"ReadingsSenderArns": senders}).resolve(resources()["ReadingsQueuePolicy"])
        return queue_policy["Properties"]["PolicyDocument"]["Statement"]

    role = "arn:aws:iam::123456789012:role/readings-ingest-*"
    allow, deny = policy(role)
    assert (allow["Effect"], allow["Action"], allow["Condition"]) == (
        "Allow", "sqs:SendMessage", {"ArnLike": {"aws:PrincipalArn": [role]}})
    assert (deny["Effect"], deny["Principal"], deny["Action"]) == ("Deny", "*", "sqs:SendMessage")
    assert deny["Condition"] == {"ArnNotLike": {"aws:PrincipalArn": [role]}}
    # The default names nobody: no allow, and a deny without condition.
    (only,) = policy("")
    assert (only["Effect"], only["Principal"], only.get("Condition")) == ("Deny", "*", None)


def test_parked_readings_and_late_readings_each_raise_an_alarm_to_the_topic():
    alarms = {name: r["Properties"] for name, r in resources().items() if r["Type"] == "AWS::CloudWatch::Alarm"}
    dead = alarms["ReadingsDeadLettersAlarm"]
    assert (dead["MetricName"], dead["Dimensions"][0]["Value"]) == (
        "ApproximateNumberOfMessagesVisible", {"Fn::GetAtt": ["ReadingsDeadLetters", "QueueName"]})
    late = alarms["ReadingsAgeAlarm"]
    assert (late["MetricName"], late["Dimensions"][0]["Value"]) == (
        "ApproximateAgeOfOldestMessage", {"Fn::GetAtt": ["ReadingsQueue", "QueueName"]})
    for alarm in (dead, late):
        assert alarm["AlarmActions"] == [{"Ref": "AlarmTopic"}] and "docs/runbooks.md" in alarm["AlarmDescription"]

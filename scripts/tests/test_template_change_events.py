"""meter-events: the table's stream to EventBridge, through a filter that lets meters through and stops every
bookkeeping item beside them (the stream's records as Lambda's event source mapping filters them)."""
import json

import pytest

from cfn.stacks import meters_local, resources

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
EVENT_NAMES = ["INSERT", "MODIFY", "REMOVE"]


def source():
    return resources()["MeterEventsFunction"]["Properties"]["Events"]["TableStream"]["Properties"]


def stream_record(event_name, item):
    images = {"INSERT": ["NewImage"], "MODIFY": ["NewImage", "OldImage"], "REMOVE": ["OldImage"]}[event_name]
    return {"eventName": event_name, "dynamodb": {"Keys": {k: item[k] for k in ("account_id", "id")},
                                                  **{image: item for image in images}}}


def matches(pattern, event):
    """The part of EventBridge's pattern language the filters use: lists of values, and `exists`."""
    for key, wanted in pattern.items():
        if isinstance(wanted, dict):
            # A path under an absent field is absent: `{"exists": false}` below it matches.
            inner = event.get(key) if isinstance(event.get(key), dict) else {}
            if not matches(wanted, inner):
                return False
            continue
        present = key in event
        if not any((isinstance(w, dict) and w.get("exists") == present) or (present and event[key] == w) for w in wanted):
            return False
    return True


def delivered(record):
    return any(matches(json.loads(f["Pattern"]), record) for f in source()["FilterCriteria"]["Filters"])


def test_meter_events_reads_the_tables_stream_which_carries_new_and_old_images():
    assert source()["Stream"] == {"Fn::GetAtt": ["MetersTable", "StreamArn"]}
    assert resources()["MetersTable"]["Properties"]["StreamSpecification"] == {"StreamViewType": "NEW_AND_OLD_IMAGES"}


def test_meter_events_reports_partial_failures_bisects_retries_boundedly_then_parks_the_batch():
    assert source()["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert source()["BisectBatchOnFunctionError"] is True
    assert 0 < source()["MaximumRetryAttempts"] <= 100
    assert source()["DestinationConfig"]["OnFailure"] == {"Type": "SQS", "Destination": {"Fn::GetAtt": ["MeterEventsFailures", "Arn"]}}


@pytest.mark.parametrize("event_name", EVENT_NAMES)
def test_the_stream_filter_lets_a_meters_change_through(event_name):
    assert delivered(stream_record(event_name, METER_IMAGE))


@pytest.mark.parametrize("event_name", EVENT_NAMES)
@pytest.mark.parametrize("what", BOOKKEEPING)
def test_the_stream_filter_stops_bookkeeping(what, event_name):
    assert not delivered(stream_record(event_name, BOOKKEEPING[what]))


READ_IMAGE = {**METER_IMAGE, "last_reading_at": {"S": "2026-12-01T00:15:00Z"}, "readings": {"N": "3"},
              "written_by_reading": {"BOOL": True}}


def test_the_stream_filter_stops_a_readings_record_and_lets_the_next_metadata_write_through():
    # The mark is the code's own: the readings function's write names it (meters-local reading-attributes).
    assert "written_by_reading" in json.loads(meters_local("reading-attributes"))
    assert not delivered(stream_record("MODIFY", READ_IMAGE))
    # A PUT after a reading removes the mark; a delete of a meter last read is still a delete.
    put = {k: v for k, v in READ_IMAGE.items() if k != "written_by_reading"}
    assert delivered({"eventName": "MODIFY", "dynamodb": {"Keys": {}, "NewImage": put, "OldImage": READ_IMAGE}})
    assert delivered(stream_record("REMOVE", READ_IMAGE))

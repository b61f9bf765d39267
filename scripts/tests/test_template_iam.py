"""What each function's role may do: exactly the DynamoDB actions its store methods call, in accounts'
partitions (dynamodb:LeadingKeys), the snapshots for list only, and meter-events' bus, queue and tombstones."""
import json

from cfn.stacks import api_functions, resources


def statements(function):
    return resources()[function]["Properties"]["Policies"][0]["Statement"]


def actions(statement):
    return [statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"]


def table_statements(function):
    return [st for st in statements(function) if "dynamodb:" in str(st["Action"])]


def test_create_may_delete_only_idempotency_records_never_a_meter():
    conditions = [st.get("Condition") for st in statements("CreateMeterFunction") if "dynamodb:DeleteItem" in actions(st)]
    assert conditions == [{"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["#idempotency#*"]}}]


def test_every_table_permission_of_every_function_is_limited_by_partition_key():
    unlimited = [(f, st["Action"]) for f in api_functions() for st in table_statements(f)
                 if "id-index" not in str(st["Resource"]) and "dynamodb:LeadingKeys" not in str(st.get("Condition"))]
    assert unlimited == []


def test_only_create_may_write_the_id_counter_and_only_by_update_item():
    writers = [(f, st["Action"]) for f in api_functions() for st in statements(f) if "#meter-id-counter" in str(st.get("Condition"))]
    assert writers == [("CreateMeterFunction", "dynamodb:UpdateItem")]


def test_list_and_get_may_only_read_the_table():
    allowed = {"dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:Query"}
    assert {a for f in ("ListMetersFunction", "GetMeterFunction") for st in table_statements(f) for a in actions(st)} <= allowed


def test_create_update_and_delete_may_put_items_in_accounts_partitions():
    # A write that closes the head's window keeps it in the change log.
    for function in ("CreateMeterFunction", "UpdateMeterFunction", "DeleteMeterFunction"):
        assert any("dynamodb:PutItem" in actions(st) and "????????-????" in str(st.get("Condition"))
                   for st in statements(function)), function


def test_only_list_may_reach_the_snapshots_objects_under_listings_read_and_replaced_and_the_bucket_listed():
    snapshot = lambda f: [st for st in statements(f) if "s3:" in str(st["Action"])]  # noqa: E731
    assert [f for f in api_functions() if f != "ListMetersFunction" and snapshot(f)] == []
    assert [(actions(st), st["Resource"]) for st in snapshot("ListMetersFunction")] == [
        (["s3:GetObject", "s3:PutObject"], {"Fn::Sub": "${ListingSnapshots.Arn}/listings/*"}),
        (["s3:ListBucket"], {"Fn::GetAtt": ["ListingSnapshots", "Arn"]})]


def test_only_list_has_snapshot_bucket_naming_the_stacks_bucket():
    env = lambda f: resources()[f]["Properties"].get("Environment", {}).get("Variables", {})  # noqa: E731
    assert [f for f in api_functions() if "SNAPSHOT_BUCKET" in env(f)] == ["ListMetersFunction"]
    assert env("ListMetersFunction")["SNAPSHOT_BUCKET"] == {"Ref": "ListingSnapshots"}


def test_meter_events_may_put_on_its_bus_send_to_its_failures_queue_and_read_accounts_items_nothing_else():
    function = resources()["MeterEventsFunction"]["Properties"]
    sts = function["Policies"][0]["Statement"]
    assert sorted((st["Action"], json.dumps(st["Resource"])) for st in sts) == sorted([
        ("events:PutEvents", json.dumps({"Fn::GetAtt": ["MeterEventsBus", "Arn"]})),
        ("sqs:SendMessage", json.dumps({"Fn::GetAtt": ["MeterEventsFailures", "Arn"]})),
        ("dynamodb:GetItem", json.dumps({"Fn::GetAtt": ["MetersTable", "Arn"]}))])
    assert all("dynamodb:LeadingKeys" in str(st.get("Condition")) for st in sts if "dynamodb" in st["Action"])
    assert function["Environment"]["Variables"] == {"EVENT_BUS_NAME": {"Ref": "MeterEventsBus"}, "JWT_SECRET": ""}


def test_the_buss_policy_refuses_put_events_to_every_principal_but_the_stacks_publisher():
    policy = resources()["MeterEventsBusPolicy"]["Properties"]
    assert policy["EventBusName"] == {"Ref": "MeterEventsBus"}
    assert policy["Statement"] == {
        "Effect": "Deny", "Principal": "*", "Action": "events:PutEvents",
        "Resource": {"Fn::GetAtt": ["MeterEventsBus", "Arn"]},
        "Condition": {"ArnNotEquals": {"aws:PrincipalArn": {"Fn::GetAtt": ["MeterEventsFunctionRole", "Arn"]}}}}


def test_every_role_of_the_stack_carries_the_permissions_boundary_when_one_is_given():
    from cfn.stacks import app_template  # noqa: PLC0415

    boundary = {"Fn::If": ["HasPermissionsBoundary", {"Ref": "PermissionsBoundaryArn"}, {"Ref": "AWS::NoValue"}]}
    assert app_template()["Globals"]["Function"]["PermissionsBoundary"] == boundary
    roles = {name: r["Properties"].get("PermissionsBoundary") for name, r in resources().items() if r["Type"] == "AWS::IAM::Role"}
    assert roles and all(b == boundary for b in roles.values())
    for function in api_functions():
        assert resources()[function]["Properties"]["DeploymentPreference"]["Role"] == {"Fn::GetAtt": ["CodeDeployRole", "Arn"]}

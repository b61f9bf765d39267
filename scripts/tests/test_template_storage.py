"""The table is the store's own (table_definition() in shared/src/store/dynamodb/schema.rs, as meters-local prints
it), and what holds data survives a stack delete but never a failed first create."""
import json

import pytest

from cfn.stacks import resources

RETAINED = ["MetersTable", "ListingSnapshots", "MeterEventsBus", "MeterEventsFailures"]


@pytest.mark.parametrize("part", ["AttributeDefinitions", "KeySchema", "GlobalSecondaryIndexes", "LocalSecondaryIndexes"])
def test_the_tables_definition_is_the_stores(part):
    from cfn.stacks import meters_local  # noqa: PLC0415

    definition = json.loads(meters_local("table-definition"))
    assert part in definition
    assert resources()["MetersTable"]["Properties"].get(part) == definition[part]


@pytest.mark.parametrize("logical", RETAINED + [n for n, r in resources().items() if r["Type"] == "AWS::Logs::LogGroup"])
def test_what_holds_data_is_kept_when_the_stack_goes_and_replaced_never_silently(logical):
    resource = resources()[logical]
    # RetainExceptOnCreate: a failed first create leaves nothing behind to block the retry.
    assert resource.get("DeletionPolicy") == "RetainExceptOnCreate"
    assert resource.get("UpdateReplacePolicy") == "Retain"


def test_the_table_has_point_in_time_recovery_encryption_and_deletion_protection_from_a_parameter():
    table = resources()["MetersTable"]["Properties"]
    assert table["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert table["SSESpecification"] == {"SSEEnabled": True}
    assert table["DeletionProtectionEnabled"] == {"Ref": "TableDeletionProtection"}
    from cfn.stacks import app_template  # noqa: PLC0415

    assert app_template()["Parameters"]["TableDeletionProtection"]["Default"] == "true"


def test_the_snapshot_bucket_is_encrypted_private_owner_enforced_tls_only_and_lets_unreplaced_snapshots_expire():
    bucket = resources()["ListingSnapshots"]["Properties"]
    assert bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    assert bucket["PublicAccessBlockConfiguration"] == {k: True for k in (
        "BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets")}
    assert bucket["OwnershipControls"]["Rules"] == [{"ObjectOwnership": "BucketOwnerEnforced"}]
    assert bucket["LifecycleConfiguration"]["Rules"][0]["ExpirationInDays"] >= 14
    statement = resources()["ListingSnapshotsPolicy"]["Properties"]["PolicyDocument"]["Statement"][0]
    assert statement["Effect"] == "Deny" and statement["Condition"] == {"Bool": {"aws:SecureTransport": False}}


def test_the_bus_has_an_archive_of_every_change_event_for_a_retention_the_parameters_give():
    archive = resources()["MeterEventsArchive"]["Properties"]
    assert archive["SourceArn"] == {"Fn::GetAtt": ["MeterEventsBus", "Arn"]}
    assert archive["RetentionDays"] == {"Ref": "ChangeEventsArchiveDays"}
    assert "EventPattern" not in archive

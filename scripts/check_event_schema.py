#!/usr/bin/env python3
"""The change events against their JSON Schema (events/meter-events/meter-change.schema.json):

- the schema is valid JSON Schema (2020-12), and its meter is openapi.yaml's Meter: its `$defs` are
  openapi.yaml's schemas that Meter uses, so the events' `meter` and `previous` are the API's JSON shape;
- each example (events/meter-events/MeterCreated.json, MeterUpdated.json, MeterDeleted.json) is valid;
- every event meter-events published in the end-to-end test (functions/tests/change_events.rs writes them to
  target/tmp/meter-events-published.json) is valid, and there is one of each type;
- docs/change-events.md names the schema, the examples and each type;
- the readings queue's message schema (events/apply-readings/reading.schema.json) is valid, its account, meter
  id, value and time are openapi.yaml's, and its examples (one-reading.json, batch.json) and the bodies of the
  queue batch fixture the function test runs (sqs-batch.json) that it applies are valid; the parked readings'
  schema (parked.schema.json) holds its example and every reading the function test parked (written to
  target/tmp/apply-readings-parked.json); docs/readings.md names them.

Usage: check_event_schema.py [--write-defs]   (prints `event-schema: N passed, M failed`; --write-defs
copies openapi.yaml's schemas into the schema's $defs after openapi.yaml changed)
"""
import json
import pathlib
import sys

import jsonschema
import yaml

from checks import run

ROOT = pathlib.Path(__file__).resolve().parent.parent
FOLDER = ROOT / "events" / "meter-events"
SCHEMA_PATH = FOLDER / "meter-change.schema.json"
TYPES = ["MeterCreated", "MeterUpdated", "MeterDeleted"]
PUBLISHED = ROOT / "target" / "tmp" / "meter-events-published.json"


def openapi_defs():
    """openapi.yaml's Meter and every schema it refers to, with references rewritten to `#/$defs/…`."""
    schemas = yaml.safe_load((ROOT / "openapi.yaml").read_text())["components"]["schemas"]
    wanted, found = ["Meter"], {}
    while wanted:
        name = wanted.pop()
        if name in found:
            continue
        text = json.dumps(schemas[name]).replace("#/components/schemas/", "#/$defs/")
        found[name] = json.loads(text)
        wanted += [ref.split("/")[-1] for ref in _refs(found[name])]
    return dict(sorted(found.items()))


def _refs(node):
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)


def main():
    schema = json.loads(SCHEMA_PATH.read_text())
    if sys.argv[1:] == ["--write-defs"]:
        schema["$defs"] = {**{k: v for k, v in schema["$defs"].items() if k in ("Actor", "Detail")}, **openapi_defs()}
        SCHEMA_PATH.write_text(json.dumps(schema, indent=2) + "\n")
        return 0
    validator = jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())

    def valid(event):
        errors = sorted(validator.iter_errors(event), key=str)
        for error in errors[:5]:
            print(f"  {'/'.join(map(str, error.absolute_path))}: {error.message}")
        return not errors

    checks = [
        ("the schema is valid JSON Schema 2020-12", lambda: jsonschema.Draft202012Validator.check_schema(schema) is None),
        ("its meter is openapi.yaml's Meter ($defs copied from openapi.yaml)",
         lambda: {k: v for k, v in schema["$defs"].items() if k not in ("Actor", "Detail")} == openapi_defs()),
    ]
    for kind in TYPES:
        example = json.loads((FOLDER / f"{kind}.json").read_text())
        checks.append((f"the example {kind}.json is valid and is a {kind}",
                       lambda e=example, k=kind: valid(e) and e["detail-type"] == k))
    # What the bus received in the end-to-end test, as EventBridge delivers it to a rule's target.
    published = json.loads(PUBLISHED.read_text()) if PUBLISHED.exists() else []
    checks.append(("meter-events published events in the end-to-end test (run cargo test first)", lambda: bool(published)))
    for n, entry in enumerate(published):
        event = {"version": "0", "id": "00000000-0000-0000-0000-000000000000", "detail-type": entry["DetailType"],
                 "source": entry["Source"], "account": "123456789012", "time": "2026-12-01T00:00:00Z",
                 "region": "eu-west-1", "resources": [], "detail": entry["Detail"]}
        checks.append((f"published event {n + 1} ({entry['DetailType']}) is valid", lambda e=event: valid(e)))
    checks.append(("one of each type was published", lambda: {e["DetailType"] for e in published} == set(TYPES)))
    page = (ROOT / "docs" / "change-events.md").read_text()
    checks.append(("docs/change-events.md names the schema, the examples and each type",
                   lambda: "meter-change.schema.json" in page and all(f"{kind}.json" in page for kind in TYPES)
                   and all(kind in page for kind in TYPES)))
    checks += reading_checks()
    return run("event-schema", checks)


READINGS = ROOT / "events" / "apply-readings"
PARKED = ROOT / "target" / "tmp" / "apply-readings-parked.json"
# The batch fixture's messages whose readings all apply, or are not later (functions/tests/readings.rs).
APPLIED_MESSAGES = [1, 2, 3, 8]


def reading_checks():
    schema = json.loads((READINGS / "reading.schema.json").read_text())
    parked_schema = json.loads((READINGS / "parked.schema.json").read_text())
    openapi = yaml.safe_load((ROOT / "openapi.yaml").read_text())["components"]["schemas"]

    def validator(of):
        return jsonschema.Draft202012Validator(of, format_checker=jsonschema.FormatChecker())

    def valid(of, document):
        errors = sorted(validator(of).iter_errors(document), key=str)
        for error in errors[:5]:
            print(f"  {'/'.join(map(str, error.absolute_path))}: {error.message}")
        return not errors

    batch = json.loads((READINGS / "sqs-batch.json").read_text())["Records"]
    checks = [
        ("the readings schema is valid JSON Schema 2020-12",
         lambda: jsonschema.Draft202012Validator.check_schema(schema) is None),
        ("its account, meter id, value and time are openapi.yaml's",
         lambda: all(schema["$defs"][name] == openapi[name]
                     for name in ("AccountId", "MeterId", "ReadingValue", "Timestamp"))),
        ("the parked readings' schema is valid JSON Schema 2020-12",
         lambda: jsonschema.Draft202012Validator.check_schema(parked_schema) is None),
        ("the example parked.json is a parked reading",
         lambda: valid(parked_schema, json.loads((READINGS / "parked.json").read_text()))),
    ]
    for name in ("one-reading.json", "batch.json"):
        checks.append((f"the example {name} is a readings message",
                       lambda n=name: valid(schema, json.loads((READINGS / n).read_text()))))
    for n in APPLIED_MESSAGES:
        checks.append((f"message {n} of sqs-batch.json is a readings message",
                       lambda n=n: valid(schema, json.loads(batch[n - 1]["body"]))))
    parked = json.loads(PARKED.read_text()) if PARKED.exists() else []
    checks.append(("apply-readings parked readings in the function test (run cargo test first)", lambda: bool(parked)))
    for n, one in enumerate(parked):
        checks.append((f"parked reading {n + 1} is valid", lambda o=one: valid(parked_schema, o)))
    page = (ROOT / "docs" / "readings.md").read_text()
    checks.append(("docs/readings.md names the schemas and the examples",
                   lambda: all(name in page for name in ("reading.schema.json", "parked.schema.json",
                                                         "one-reading.json", "batch.json", "sqs-batch.json"))))
    return checks


if __name__ == "__main__":
    sys.exit(main())

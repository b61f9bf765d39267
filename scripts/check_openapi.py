#!/usr/bin/env python3
"""Checks openapi.yaml against the running API: validates the document itself (OpenAPI 3.1), then starts
meters-local on a free loopback port, calls every operation for its main outcomes, and validates each
status and body against the schema the document gives for that operation and status.

Usage: check_openapi.py PATH_TO_METERS_LOCAL_BINARY
"""
import json
import re
import os
import pathlib
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

import yaml
from jsonschema import Draft202012Validator, FormatChecker
from openapi_spec_validator import validate
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

ROOT = pathlib.Path(__file__).resolve().parent.parent
SPEC = yaml.safe_load((ROOT / "openapi.yaml").read_text())
SPEC_URI = "urn:meters-openapi"
REGISTRY = Registry().with_resource(SPEC_URI, Resource.from_contents(SPEC, default_specification=DRAFT202012))
SECRET = "openapi-check-secret-of-at-least-32-bytes"
ACCOUNT = "6f1c2b1e-0d7a-4c55-9a43-4f0b8d3a1e22"
OTHER = "0b7e9d4c-1a2b-4c3d-8e9f-001122334455"


def node_path(ref):
    return ref.lstrip("#/").split("/")


def response_schema(template, method, status):
    responses = SPEC["paths"][template][method.lower()]["responses"]
    if str(status) not in responses:
        raise AssertionError(f"{method} {template} answered {status}, which openapi.yaml does not document")
    response = responses[str(status)]
    while "$ref" in response:
        target = SPEC
        for part in node_path(response["$ref"]):
            target = target[part]
        response = target
    content = response.get("content", {}).get("application/json")
    return content and content["schema"]


def schema_validator(schema):
    return Draft202012Validator(schema, registry=REGISTRY, format_checker=FormatChecker())


def rewrite_refs(schema):
    """Points the document's local `#/...` references at the registered document."""
    if isinstance(schema, dict):
        return {k: (SPEC_URI + v if k == "$ref" and v.startswith("#") else rewrite_refs(v)) for k, v in schema.items()}
    if isinstance(schema, list):
        return [rewrite_refs(item) for item in schema]
    return schema


def wait_for(port):
    """Until something listens on the loopback port (10 s at most)."""
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main(binary):
    validate(SPEC)
    env = {**os.environ, "JWT_SECRET": SECRET}
    env.pop("DYNAMODB_ENDPOINT", None)
    port = free_port()
    data_dir = tempfile.mkdtemp(prefix="meters-openapi-")
    token = subprocess.run([binary, "token", "--account", ACCOUNT, "--data-dir", data_dir], env=env, check=True,
                           capture_output=True, text=True).stdout.strip()
    stranger = subprocess.run([binary, "token", "--account", OTHER, "--data-dir", data_dir], env=env, check=True,
                              capture_output=True, text=True).stdout.strip()
    server = subprocess.Popen([binary, "--memory", "--port", str(port), "--data-dir", data_dir], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(port)

        def call(method, path, body=None, bearer=token, raw=None, headers=None):
            data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
            request = urllib.request.Request(base + path, data=data, method=method)
            if bearer:
                request.add_header("Authorization", f"Bearer {bearer}")
            for name, value in (headers or {}).items():
                request.add_header(name, value)
            try:
                with urllib.request.urlopen(request) as response:
                    return response.status, response.read()
            except urllib.error.HTTPError as error:
                return error.code, error.read()

        meter = {"account_id": ACCOUNT, "name": "Main incomer", "serial_number": "EM-1", "meter_type": "SOLAR",
                 "communication_type": "MODBUS", "description": "roof", "reading_interval": 900, "building_block_id": 3,
                 "gateway_id": None, "tariff_id": 12, "last_reading_value": 10423.5,
                 "last_reading_at": "2026-11-24T23:45:00Z", "location": "Roof", "billing_direction": "ACCPAY"}
        q = f"?account_id={ACCOUNT}"
        cases = [
            ("POST", "/api/v1/meters", "/api/v1/meters", {"body": meter}, 201),
            ("POST", "/api/v1/meters", "/api/v1/meters", {"body": meter, "headers": {"Idempotency-Key": "k-1"}}, 201),
            ("POST", "/api/v1/meters", "/api/v1/meters", {"body": meter, "headers": {"Idempotency-Key": "k-1"}}, 201),
            ("POST", "/api/v1/meters", "/api/v1/meters",
             {"body": {**meter, "name": "other"}, "headers": {"Idempotency-Key": "k-1"}}, 422),
            ("POST", "/api/v1/meters", "/api/v1/meters", {"body": {**meter, "meter_type": "STEAM"}}, 400),
            ("POST", "/api/v1/meters", "/api/v1/meters", {"body": meter, "bearer": None}, 401),
            ("POST", "/api/v1/meters", "/api/v1/meters", {"body": meter, "bearer": stranger}, 403),
            ("POST", "/api/v1/meters", "/api/v1/meters", {"raw": b"{\"x\":\"" + b"a" * 70000 + b"\"}"}, 413),
            ("GET", "/api/v1/meters", "/api/v1/meters" + q + "&sortBy=name&sortOrder=DESC", {}, 200),
            ("GET", "/api/v1/meters", "/api/v1/meters" + q + "&limit=0", {}, 400),
            # The drifts a schema-driven fuzzer found, each now the same on both sides: page has a maximum, C1
            # control characters are refused in serial_number, and a body's id must be the path's.
            ("GET", "/api/v1/meters", "/api/v1/meters" + q + "&page=1000000000", {}, 200),
            ("GET", "/api/v1/meters", "/api/v1/meters" + q + "&meter_type=SOLAR&tariff_id=12&billing_direction=ACCPAY"
             "&updated_since=2020-01-01T00:00:00Z&sortBy=name", {}, 200),
            ("GET", "/api/v1/meters", "/api/v1/meters" + q + "&meter_type=STEAM", {}, 400),
            ("GET", "/api/v1/meters", "/api/v1/meters" + q + "&updated_since=yesterday", {}, 400),
            ("GET", "/api/v1/meters", "/api/v1/meters" + q + "&page=1000000001", {}, 400),
            ("POST", "/api/v1/meters", "/api/v1/meters", {"body": {**meter, "serial_number": "EM-\u0085-1"}}, 400),
            ("PUT", "/api/v1/meters/{id}", "/api/v1/meters/1", {"body": {"account_id": ACCOUNT, "id": 2}}, 400),
            ("GET", "/api/v1/meters", "/api/v1/meters" + q, {"bearer": None}, 401),
            ("GET", "/api/v1/meters", "/api/v1/meters" + q, {"bearer": stranger}, 403),
            ("GET", "/api/v1/meters/{id}", "/api/v1/meters/1" + q, {}, 200),
            ("GET", "/api/v1/meters/{id}", "/api/v1/meters/abc" + q, {}, 400),
            ("GET", "/api/v1/meters/{id}", "/api/v1/meters/1" + q, {"bearer": "not-a-token"}, 401),
            ("GET", "/api/v1/meters/{id}", "/api/v1/meters/1" + q, {"bearer": stranger}, 403),
            ("GET", "/api/v1/meters/{id}", "/api/v1/meters/999" + q, {}, 404),
            ("GET", "/api/v1/meters/{id}", "/api/v1/meters/1" + q, {"headers": {"If-None-Match": '"1-1"'}}, 304),
            ("PUT", "/api/v1/meters/{id}", "/api/v1/meters/1", {"body": {"account_id": ACCOUNT}, "headers": {"If-Match": '"1-9"'}}, 412),
            ("PUT", "/api/v1/meters/{id}", "/api/v1/meters/1", {"body": {"account_id": ACCOUNT, "location": None}}, 200),
            ("PUT", "/api/v1/meters/{id}", "/api/v1/meters/1", {"body": {"account_id": ACCOUNT, "serial_number": "X"}}, 400),
            ("PUT", "/api/v1/meters/{id}", "/api/v1/meters/1", {"body": {"account_id": ACCOUNT}, "bearer": None}, 401),
            ("PUT", "/api/v1/meters/{id}", "/api/v1/meters/1", {"body": {"account_id": OTHER}, "bearer": stranger}, 403),
            ("PUT", "/api/v1/meters/{id}", "/api/v1/meters/999", {"body": {"account_id": ACCOUNT}}, 404),
            ("DELETE", "/api/v1/meters/{id}", "/api/v1/meters/0" + q, {}, 400),
            ("DELETE", "/api/v1/meters/{id}", "/api/v1/meters/1" + q, {"bearer": None}, 401),
            ("DELETE", "/api/v1/meters/{id}", "/api/v1/meters/1" + q, {"bearer": stranger}, 403),
            ("DELETE", "/api/v1/meters/{id}", "/api/v1/meters/1" + q, {"headers": {"If-Match": '"1-1"'}}, 412),
            ("DELETE", "/api/v1/meters/{id}", "/api/v1/meters/1" + q, {}, 204),
            ("DELETE", "/api/v1/meters/{id}", "/api/v1/meters/1" + q, {}, 404),
        ]
        passed, failures = 0, []
        for method, template, path, options, expected in cases:
            status, body = call(method, path, **options)
            name = f"{method} {path[:60]} -> {expected}"
            try:
                assert status == expected, f"answered {status}: {body[:200]!r}"
                schema = response_schema(template, method, status)
                if schema is None:
                    assert body == b"", f"documented without a body, but got {body[:200]!r}"
                else:
                    errors = list(schema_validator(rewrite_refs(schema)).iter_errors(json.loads(body)))
                    assert not errors, "; ".join(f"{list(e.absolute_path)}: {e.message}" for e in errors[:3])
                passed += 1
            except AssertionError as failure:
                failures.append(f"{name}: {failure}")
        # The document's field lists are the API's: the meter's fields (from a live meter), what create and
        # update accept (from the live "unknown field; allowed: …" errors), what sortBy accepts (from its error).
        def allowed(method, path, body):
            _, answer = call(method, path, body=body)
            return json.loads(answer)["error"].split("allowed: ", 1)[1].split(", ")

        _, created = call("POST", "/api/v1/meters", body=meter)
        _, sort_error = call("GET", "/api/v1/meters" + q + "&sortBy=__none__")
        components = SPEC["components"]["schemas"]
        field_lists = [
            ("Meter properties", components["Meter"]["properties"], json.loads(created)["data"].keys()),
            ("Meter required", components["Meter"]["required"], json.loads(created)["data"].keys()),
            ("CreateMeter properties", components["CreateMeter"]["properties"],
             allowed("POST", "/api/v1/meters", {**meter, "__probe__": 1})),
            ("UpdateMeter properties", components["UpdateMeter"]["properties"],
             allowed("PUT", "/api/v1/meters/2", {"account_id": ACCOUNT, "__probe__": 1})),
            ("sortBy enum", next(p["schema"]["enum"] for p in SPEC["paths"]["/api/v1/meters"]["get"]["parameters"]
                                 if p.get("name") == "sortBy"),
             json.loads(sort_error)["error"].split("must be one of ", 1)[1].split(", ")),
        ]
        # The spec refuses what the server refuses: the same page and serial number break openapi.yaml's schemas.
        page_schema = next(p["schema"] for p in SPEC["paths"]["/api/v1/meters"]["get"]["parameters"] if p.get("name") == "page")
        for name, schema, value in [
            ("page 1000000001", page_schema, 1000000001),
            ("serial number with a C1 control", components["SerialNumber"], "EM-\u0085-1"),
        ]:
            if list(schema_validator(rewrite_refs(schema)).iter_errors(value)):
                passed += 1
            else:
                failures.append(f"openapi.yaml accepts the {name} the server refuses")
        # The error codes: the server's one list, openapi.yaml's enum and docs/api.md's table, the same both ways.
        codes = json.loads(subprocess.run([binary, "error-codes"], capture_output=True, text=True, check=True).stdout)
        api_page = (ROOT / "docs" / "api.md").read_text()
        table = re.findall(r"^\| `([a-z_]+)` \| (\d{3}) \|", api_page.split("## Error codes", 1)[1], re.M)
        field_lists += [
            ("ErrorEnvelope code enum", components["ErrorEnvelope"]["properties"]["code"]["enum"],
             [code["code"] for code in codes]),
            ("docs/api.md's error code table", [f"{code} {status}" for code, status in table],
             [f"{code['code']} {code['status']}" for code in codes]),
        ]
        for name, documented, served in field_lists:
            if sorted(documented) == sorted(served):
                passed += 1
            else:
                failures.append(f"{name}: openapi.yaml has {sorted(documented)}, the API has {sorted(served)}")
        # 503, live: a second server in JWKS mode whose key set cannot be fetched (nothing listens there).
        try:
            status, body = unavailable_answer(binary)
            assert status == 503, f"answered {status}: {body[:200]!r}"
            errors = list(schema_validator(rewrite_refs(response_schema("/api/v1/meters", "GET", 503)))
                          .iter_errors(json.loads(body)))
            assert not errors, "; ".join(e.message for e in errors[:3])
            passed += 1
        except AssertionError as failure:
            failures.append(f"GET /api/v1/meters -> 503 (keys unavailable): {failure}")
        for failure in failures:
            print(f"FAILED {failure}")
        print(f"openapi: {passed} passed, {len(failures)} failed")
        return 1 if failures else 0
    finally:
        server.terminate()
        server.wait(timeout=10)


def unavailable_answer(binary):
    """What a JWKS-mode meters-local answers when the key set cannot be fetched."""
    import base64

    def b64(value):
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    closed = free_port()
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("JWT_") and k != "DYNAMODB_ENDPOINT"}
    env["JWT_JWKS_URL"] = f"http://127.0.0.1:{closed}/jwks"
    server = subprocess.Popen([binary, "--memory", "--port", str(port)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(port)
        token = f"{b64({'alg': 'RS256', 'kid': 'k1'})}.{b64({'exp': int(time.time()) + 600})}.c2ln"
        request = urllib.request.Request(f"http://127.0.0.1:{port}/api/v1/meters?account_id={ACCOUNT}")
        request.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(request) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()
    finally:
        server.terminate()
        server.wait(timeout=10)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))

#!/usr/bin/env python3
"""Writes the event fixtures in this folder: API Gateway HTTP API (v2) events for every function and case,
and REST API (v1) events for create and get.

The tokens are signed with the development secret in env.json and live until 2100, so the fixtures keep
working; `shared/tests/event_fixtures.rs` runs every one through its handler. Run this again after changing
the secret or the cases: python3 events/generate.py
"""
import base64
import hashlib
import hmac
import json
import pathlib

HERE = pathlib.Path(__file__).resolve().parent
SECRET = json.loads((HERE / "env.json").read_text())["Parameters"]["JWT_SECRET"]
ACCOUNT = "6f1c2b1e-0d7a-4c55-9a43-4f0b8d3a1e22"
OTHER_ACCOUNT = "0b7e9d4c-1a2b-4c3d-8e9f-001122334455"
EXPIRES = 4102444800  # 2100-01-01T00:00:00Z


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def token(account: str) -> str:
    header = b64url(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
    claims = {"sub": "fixture", "iat": 1764000000, "exp": EXPIRES, "account_ids": [account]}
    payload = b64url(json.dumps(claims, separators=(",", ":")).encode())
    signature = hmac.new(SECRET.encode(), f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{b64url(signature)}"


def headers(bearer):
    h = {"content-type": "application/json", "host": "abc123.execute-api.eu-west-1.amazonaws.com"}
    if bearer:
        h["authorization"] = f"Bearer {bearer}"
    return h


def http_api(method, path, query="", body=None, bearer=None):
    meter_id = path[len("/api/v1/meters/"):] if path.startswith("/api/v1/meters/") else None
    route = "/api/v1/meters/{id}" if meter_id is not None else "/api/v1/meters"
    event = {
        "version": "2.0",
        "routeKey": f"{method} {route}",
        "rawPath": path,
        "rawQueryString": query,
        "headers": headers(bearer),
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "abc123",
            "domainName": "abc123.execute-api.eu-west-1.amazonaws.com",
            "domainPrefix": "abc123",
            "requestId": "fixture-request",
            "routeKey": f"{method} {route}",
            "stage": "$default",
            "time": "25/Nov/2026:10:00:00 +0000",
            "timeEpoch": 1795600000000,
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "203.0.113.7", "userAgent": "fixture"},
        },
        "isBase64Encoded": False,
    }
    if query:
        event["queryStringParameters"] = dict(pair.split("=", 1) for pair in query.split("&"))
    if meter_id is not None:
        event["pathParameters"] = {"id": meter_id}
    if body is not None:
        event["body"] = json.dumps(body)
    return event


def rest_api(method, path, query=None, body=None, bearer=None, encode=False):
    meter_id = path[len("/api/v1/meters/"):] if path.startswith("/api/v1/meters/") else None
    h = {k.title(): v for k, v in headers(bearer).items()}
    text = json.dumps(body) if body is not None else None
    return {
        "resource": "/api/v1/meters/{id}" if meter_id else "/api/v1/meters",
        "path": path,
        "httpMethod": method,
        "headers": h,
        "multiValueHeaders": {k: [v] for k, v in h.items()},
        "queryStringParameters": query,
        "multiValueQueryStringParameters": {k: [v] for k, v in query.items()} if query else None,
        "pathParameters": {"id": meter_id} if meter_id else None,
        "stageVariables": None,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "abc123",
            "resourceId": "r1",
            "stage": "prod",
            "requestId": "fixture-request",
            "httpMethod": method,
            "resourcePath": "/api/v1/meters/{id}" if meter_id else "/api/v1/meters",
            "identity": {"sourceIp": "203.0.113.7"},
        },
        "body": base64.b64encode(text.encode()).decode() if (text and encode) else text,
        "isBase64Encoded": bool(text and encode),
    }


MINE, THEIRS = token(ACCOUNT), token(OTHER_ACCOUNT)
Q = f"account_id={ACCOUNT}"
NEW_METER = {
    "account_id": ACCOUNT, "name": "Main incomer", "serial_number": "EM-2024-000917", "meter_type": "ELECTRICITY",
    "communication_type": "MODBUS", "reading_interval": 900, "tariff_id": 12, "location": "Basement switch room",
    "billing_direction": "ACCREC",
}
CHANGES = {"account_id": ACCOUNT, "name": "Main incomer (north)", "tariff_id": None, "last_reading_value": 10423.5,
           "last_reading_at": "2026-11-24T23:45:00Z"}

FIXTURES = {
    "list-meters/success.json": http_api("GET", "/api/v1/meters", f"{Q}&sortBy=name&sortOrder=asc&page=1&limit=20", bearer=MINE),
    "list-meters/invalid-limit.json": http_api("GET", "/api/v1/meters", f"{Q}&limit=500", bearer=MINE),
    "list-meters/no-token.json": http_api("GET", "/api/v1/meters", Q),
    "list-meters/other-account.json": http_api("GET", "/api/v1/meters", Q, bearer=THEIRS),
    "create-meter/success.json": http_api("POST", "/api/v1/meters", body=NEW_METER, bearer=MINE),
    "create-meter/invalid-body.json": http_api("POST", "/api/v1/meters", body={**NEW_METER, "meter_type": "STEAM"}, bearer=MINE),
    "create-meter/no-token.json": http_api("POST", "/api/v1/meters", body=NEW_METER),
    "create-meter/other-account.json": http_api("POST", "/api/v1/meters", body=NEW_METER, bearer=THEIRS),
    "create-meter/rest-api-success.json": rest_api("POST", "/api/v1/meters", body=NEW_METER, bearer=MINE, encode=True),
    "get-meter/success.json": http_api("GET", "/api/v1/meters/1", Q, bearer=MINE),
    "get-meter/invalid-id.json": http_api("GET", "/api/v1/meters/abc", Q, bearer=MINE),
    "get-meter/not-found.json": http_api("GET", "/api/v1/meters/999", Q, bearer=MINE),
    "get-meter/no-token.json": http_api("GET", "/api/v1/meters/1", Q),
    "get-meter/other-account.json": http_api("GET", "/api/v1/meters/1", Q, bearer=THEIRS),
    "get-meter/rest-api-success.json": rest_api("GET", "/api/v1/meters/1", {"account_id": ACCOUNT}, bearer=MINE),
    "update-meter/success.json": http_api("PUT", "/api/v1/meters/1", body=CHANGES, bearer=MINE),
    "update-meter/invalid-body.json": http_api("PUT", "/api/v1/meters/1", body={**CHANGES, "serial_number": "CHANGED"}, bearer=MINE),
    "update-meter/no-token.json": http_api("PUT", "/api/v1/meters/1", body=CHANGES),
    "update-meter/other-account.json": http_api("PUT", "/api/v1/meters/1", body=CHANGES, bearer=THEIRS),
    "delete-meter/success.json": http_api("DELETE", "/api/v1/meters/1", Q, bearer=MINE),
    "delete-meter/invalid-id.json": http_api("DELETE", "/api/v1/meters/0", Q, bearer=MINE),
    "delete-meter/no-token.json": http_api("DELETE", "/api/v1/meters/1", Q),
    "delete-meter/other-account.json": http_api("DELETE", "/api/v1/meters/1", Q, bearer=THEIRS),
}

if __name__ == "__main__":
    for name, event in FIXTURES.items():
        path = HERE / name
        path.parent.mkdir(exist_ok=True)
        path.write_text(json.dumps(event, indent=2) + "\n")
    print(f"wrote {len(FIXTURES)} fixtures")

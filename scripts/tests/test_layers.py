"""The bottom layer is held by the compiler: `meters-core` (the domain and the store's ports) has no AWS SDK,
`lambda_http` or `hyper` anywhere in the dependencies it builds with, so no file of it can use them. The layers
above it are held by `shared/tests/suite/layers.rs`."""
import json
import subprocess

import pytest

from cfn.stacks import ROOT

# Crates that reach a network, a table or a request: none may be under the bottom layer.
FORBIDDEN_PREFIXES = ("aws-sdk-", "aws-config", "aws-smithy-", "lambda_http", "lambda_runtime", "hyper", "reqwest")


@pytest.fixture(scope="module")
def metadata():
    out = subprocess.run(
        ["cargo", "metadata", "--format-version", "1", "--locked"],
        cwd=ROOT, check=True, capture_output=True, text=True,
    ).stdout
    return json.loads(out)


def built_with(metadata, package_name):
    """Every package `package_name` builds with (normal and build dependencies, transitively), by name."""
    nodes = {node["id"]: node for node in metadata["resolve"]["nodes"]}
    names = {package["id"]: package["name"] for package in metadata["packages"]}
    start = next(package["id"] for package in metadata["packages"] if package["name"] == package_name)
    seen, stack = set(), [start]
    while stack:
        for dep in nodes[stack.pop()]["deps"]:
            if any(kind["kind"] != "dev" for kind in dep["dep_kinds"]) and dep["pkg"] not in seen:
                seen.add(dep["pkg"])
                stack.append(dep["pkg"])
    return {names[package] for package in seen}


def forbidden(names):
    return sorted(name for name in names if name.startswith(FORBIDDEN_PREFIXES))


def test_the_bottom_layer_builds_with_no_aws_sdk_lambda_http_or_hyper(metadata):
    assert forbidden(built_with(metadata, "meters-core")) == []


def test_the_crate_above_it_does_and_the_check_sees_it(metadata):
    found = forbidden(built_with(metadata, "meters"))
    assert {"aws-sdk-dynamodb", "lambda_http", "hyper"} <= set(found), found
    assert "meters-core" in built_with(metadata, "meters")

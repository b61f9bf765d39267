"""One route table: the endpoints the code routes by (`Endpoint::ALL`, as `meters-local routes` prints it) are the
template's routes, each integrated with the function built from its binary, and `cargo lambda watch`'s router."""
import json
import tomllib

from cfn.stacks import ROOT, meters_local, resources


def table():
    return {(r["method"], r["route"]): r["function"] for r in json.loads(meters_local("routes"))}


def test_the_templates_routes_are_the_route_table_each_to_its_functions_binary():
    routed = {}
    for route in (r["Properties"] for r in resources().values() if r["Type"] == "AWS::ApiGatewayV2::Route"):
        method, path = route["RouteKey"].split(" ", 1)
        integration = resources()[route["Target"]["Fn::Sub"].split("${", 1)[1].rstrip("}")]
        function = integration["Properties"]["IntegrationUri"]["Ref"].removesuffix("Aliaslive")
        routed[(method, path)] = resources()[function]["Metadata"]["BuildProperties"]["Binary"]
    assert routed == table()


def test_cargo_lambda_watchs_router_is_the_route_table():
    router = tomllib.loads((ROOT / "Cargo.toml").read_text())["workspace"]["metadata"]["lambda"]["watch"]["router"]
    watched = {(entry["method"], path): entry["function"] for path, entries in router.items() for entry in entries}
    assert watched == table()


def test_every_endpoints_function_is_a_binary_of_the_functions_crate():
    binaries = {b["name"] for b in tomllib.loads((ROOT / "functions" / "Cargo.toml").read_text())["bin"]}
    assert set(table().values()) <= binaries

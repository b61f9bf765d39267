#!/usr/bin/env python3
"""Writes BENCHMARKS.md (to stdout) from the figures scripts/bench left in DIR."""
import io
import json
import os
import pathlib
import platform
import re
import subprocess
import sys
import zipfile

from benchmarks_page import GENERATED, kept_by_hand

out = pathlib.Path(sys.argv[1])
release = pathlib.Path("target/release")
lambda_figures = json.loads((out / "lambda.json").read_text())


def cpu():
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


def memory_gib():
    for line in open("/proc/meminfo"):
        if line.startswith("MemTotal"):
            return int(line.split()[1]) / 1024 / 1024
    return 0


def zipped(path):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.write(path, "bootstrap")
    return len(buffer.getvalue())


def criterion(name):
    estimates = json.loads((pathlib.Path("target/criterion") / name / "new" / "estimates.json").read_text())
    return estimates["median"]["point_estimate"]


def wrk(name):
    text = (out / f"wrk-{name}.txt").read_text()
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", text)
    p99_ms = float(p99.group(1)) * {"us": 0.001, "ms": 1, "s": 1000}[p99.group(2)]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    return rps, p99_ms, int(errors.group(1)) if errors else 0


rustc = subprocess.run(["rustc", "--version"], capture_output=True, text=True).stdout.strip()
print("# Benchmarks\n")
print(GENERATED)
print("Produced by `scripts/bench` (figures below are from its last run; the tuning log at the end records")
print("before/after figures of each change, each from the same command).\n")
print(f"Machine: {cpu()}, {os.cpu_count()} cores, {memory_gib():.0f} GiB; {platform.system()} {platform.release()};")
print(f"{rustc}; release profile of the workspace `Cargo.toml`. DynamoDB Local 3.3.0 (in memory, same machine).\n")

print("## Functions\n")
print(f"Cold start: median of {lambda_figures['functions'][0]['cold_runs']} process starts; init is process start to the")
print("first poll of the Runtime API (what Lambda bills as init), first invocation is the first event's latency.")
print("The floor's starts alternate with the functions', each after 50 ms of quiet, once the machine is idle")
print("(benches/TUNING.md, step 10).")
print(f"Warm: {lambda_figures['functions'][0]['warm_invocations']} invocations in one process, measured at the Runtime API")
print("(event handed out to response received). Bare SDK: the same DynamoDB operation(s) called directly from the")
print("benchmark process with the same client configuration, in the same run.\n")
print(f"Hello-world `lambda_runtime` floor init: **{lambda_figures['floor_init_ms']:.2f} ms**.\n")
print("| function | init (ms) | init / floor | first invocation (ms) | warm p50 (ms) | warm p99 (ms) | bare SDK p50 (ms) | warm / bare | peak RSS (MiB) |")
print("|---|---|---|---|---|---|---|---|---|")
for f in lambda_figures["functions"]:
    print(f"| {f['function']} | {f['init_ms']:.2f} | {f['init_ratio']:.2f} | {f['first_invocation_ms']:.2f} | {f['warm_p50_ms']:.3f} | "
          f"{f['warm_p99_ms']:.3f} | {f['bare_sdk_p50_ms']:.3f} | {f['warm_to_bare']:.2f} | {f['peak_rss_mib']:.1f} |")

# The same over TLS (a CA made for the run, trusted through DYNAMODB_CA_BUNDLE), at full CPU and at Lambda's
# 128 MB CPU share, each beside the floor of its own run.
for name, title in (("lambda-tls.json", "over TLS, full CPU"), ("lambda-tls-128.json", "over TLS, 7.2 % of one core (128 MB)")):
    path = out / name
    if not path.exists():
        continue
    figures = json.loads(path.read_text())
    share = figures.get("cpu_share_percent")
    note = "" if share or "128" not in name else " (no cgroup CPU quota could be made: full CPU)"
    print(f"\n**{title}**{note}: floor init {figures['floor_init_ms']:.2f} ms in this run.\n")
    print("| function | init (ms) | init / floor | first invocation (ms) | warm p50 (ms) | warm p99 (ms) | peak RSS (MiB) |")
    print("|---|---|---|---|---|---|---|")
    for f in figures["functions"]:
        print(f"| {f['function']} | {f['init_ms']:.2f} | {f['init_ratio']:.2f} | {f['first_invocation_ms']:.2f} | "
              f"{f['warm_p50_ms']:.3f} | {f['warm_p99_ms']:.3f} | {f['peak_rss_mib']:.1f} |")

print("\n## Sizes\n")
print("Stripped release binaries (x86_64 here; `scripts/sam-build-check` builds the deployable ones with cargo-lambda)")
print("and the deflated zip Lambda would receive.\n")
print("| binary | size (KiB) | zip (KiB) |")
print("|---|---|---|")
for name in ["list-meters", "create-meter", "get-meter", "update-meter", "delete-meter", "lambda-floor"]:
    path = release / name
    print(f"| {name} | {path.stat().st_size / 1024:.0f} | {zipped(path) / 1024:.0f} |")

print("\n## In-process costs (criterion, median)\n")
print("| what | time |")
print("|---|---|")
for name in ["token verification", "token verification, JWKS key cached (RS256)",
             "first JWKS fetch and verification (RS256, loopback)", "request parsing and validation (create event)", "response serialisation (one meter)",
             "list filter + sort + page (10,000 meters)", "store list of 1,000 meters, in-memory store",
             "get handler, in-memory store", "create handler, in-memory store"]:
    ns = criterion(name)
    shown = f"{ns / 1000:.1f} µs" if ns < 1_000_000 else f"{ns / 1_000_000:.2f} ms"
    print(f"| {name} | {shown} |")

print("\n## meters-local under load\n")
print("wrk, 2 threads, 16 connections, loopback, embedded store in memory, 1,000 meters in the account.\n")
print("| request | requests/s | p99 (ms) | non-2xx |")
print("|---|---|---|---|")
for name, label in [("get", "GET /api/v1/meters/500"), ("list", "GET /api/v1/meters (1,000 meters: sort by name, page 3 of 20)")]:
    rps, p99, errors = wrk(name)
    print(f"| {label} | {rps:.0f} | {p99:.2f} | {errors} |")

scale = out / "scale"
if (scale / "functions-after.json").exists():
    print("\n## Big accounts\n")
    print("`scripts/bench-scale` (it is not part of `scripts/bench`: ~20 minutes). One account of 1,000, 10,000 or 50,000")
    print("realistic meters (name, serial, location, ~100-character description) on DynamoDB Local, through the")
    print("function binaries and a local Runtime API. Per list variant a fresh process: its first list (a cold")
    print("process: the worst case when the list needs the whole account), then 30 repeats of it in that process")
    print("(3 before, at 10,000 and more: they take seconds each). RCU/WCU: DynamoDB Local's reported consumed")
    print("capacity, logged by the functions per request (before: the old binaries log none, so the bench replays")
    print("their DynamoDB calls with `ReturnConsumedCapacity`). CPU: user + system from /proc, 10 ms ticks. Before:")
    print("the binaries of d4c0a7f (one strongly consistent read of the whole account per list, one counter item).\n")
    print("| | meters | request | first call (ms) | first call RCU | first call CPU (ms) | warm p50 (ms) | warm p99 (ms) | RCU/call | WCU/call | CPU/call (ms) | peak RSS (MiB) | answers |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    def figure(value, digits):
        return "–" if value is None else f"{value:,.{digits}f}"
    rows = json.loads((scale / "functions-after.json").read_text())
    if (scale / "functions-before.json").exists():
        rows = json.loads((scale / "functions-before.json").read_text()) + rows
    rows.sort(key=lambda r: (r["meters"], r["operation"], r["label"] != "before"))
    for r in rows:
        print(f"| {r['label']} | {r['meters']:,} | {r['operation']} | {figure(r['first_ms'], 1)} | {figure(r['first_rcu'], 0)} | "
              f"{figure(r['first_cpu_ms'], 0)} | {r['p50_ms']:,.1f} | {r['p99_ms']:,.1f} | {figure(r['rcu'], 1)} | "
              f"{figure(r['wcu'], 1)} | {r['cpu_ms']:.2f} | {r['peak_rss_mib']:.1f} | {r['statuses']} |")
    for label in ("after", "before"):
        local = scale / f"local-{label}.txt"
        if local.exists():
            print(f"\n`meters-local` on disk, 50,000 meters in one account, wrk on loopback ({label}):\n")
            print("```")
            print(local.read_text().strip())
            print("```")
    notes = pathlib.Path("benches/SCALE.md")
    if notes.exists():
        print()
        print(notes.read_text().strip())

print()
print(kept_by_hand(), end="")

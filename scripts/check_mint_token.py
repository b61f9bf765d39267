"""scripts/mint-token against a token endpoint on a loopback port that answers as RFC 6749's client-credentials
grant does (Cognito's /oauth2/token among them): the grant it sends, the token it prints, what it says when
refused. No AWS account holds a machine client for the test command, so the provider's side is played here."""
import base64
import http.server
import json
import os
import subprocess
import sys
import threading
import urllib.parse
from pathlib import Path

from checks import run

ROOT = Path(__file__).resolve().parent.parent
CLIENT, SECRET, TOKEN = "smoke-client", "smoke-secret-for-this-check-only", "minted-access-token"
received = []


class TokenEndpoint(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        form = urllib.parse.parse_qs(self.rfile.read(int(self.headers["Content-Length"])).decode())
        scheme, _, encoded = self.headers.get("Authorization", "").partition(" ")
        client, _, secret = base64.b64decode(encoded).decode().partition(":") if scheme == "Basic" else ("", "", "")
        received.append({"path": self.path, "form": form, "client": client,
                         "content_type": self.headers.get("Content-Type")})
        granted = (client, secret) == (CLIENT, SECRET) and form.get("grant_type") == ["client_credentials"]
        body = {"access_token": TOKEN, "token_type": "Bearer", "expires_in": 3600} if granted else {"error": "invalid_client"}
        self.send_response(200 if granted else 400)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(json.dumps(body).encode())

    def log_message(self, *args):
        pass


server = http.server.HTTPServer(("127.0.0.1", 0), TokenEndpoint)
threading.Thread(target=server.serve_forever, daemon=True).start()
url = f"http://127.0.0.1:{server.server_port}/oauth2/token"


def mint(**environment):
    base = {k: v for k, v in os.environ.items() if not k.startswith("SMOKE_")}
    return subprocess.run([sys.executable, str(ROOT / "scripts/mint-token")], env=base | environment,
                          capture_output=True, text=True, timeout=60)


def granted():
    received.clear()
    result = mint(SMOKE_TOKEN_URL=url, SMOKE_CLIENT_ID=CLIENT, SMOKE_CLIENT_SECRET=SECRET, SMOKE_SCOPE="meters/smoke")
    (request,) = received
    assert request["form"] == {"grant_type": ["client_credentials"], "scope": ["meters/smoke"]}, request
    assert request["content_type"] == "application/x-www-form-urlencoded" and request["path"] == "/oauth2/token"
    return result.returncode == 0 and result.stdout == TOKEN + "\n"


def refused():
    result = mint(SMOKE_TOKEN_URL=url, SMOKE_CLIENT_ID=CLIENT, SMOKE_CLIENT_SECRET="a-wrong-secret")
    return (result.returncode != 0 and result.stdout == "" and "invalid_client" in result.stderr
            and "a-wrong-secret" not in result.stderr)


def unconfigured():
    sent_before = len(received)
    result = mint(SMOKE_TOKEN_URL=url, SMOKE_CLIENT_ID=CLIENT)
    return result.returncode != 0 and "SMOKE_CLIENT_SECRET is not set" in result.stderr and len(received) == sent_before


checks = [
    ("a client-credentials grant with the client's Basic credentials and scope prints the access token only", granted),
    ("a refused grant exits non-zero with the provider's error, printing no token and not the secret", refused),
    ("a missing setting is named, and nothing is sent", unconfigured),
]
sys.exit(run("mint-token", checks))

#!/usr/bin/env python3
"""A fake Web Push service (RFC 8030) that also plays the browser, for Makker's tests.

It decrypts every push it receives with an implementation independent of the Rust side
(`http_ece` for RFC 8291 aes128gcm, `py_vapid` and `cryptography` for the RFC 8292 VAPID
JWT), records what it saw, and answers 201 with a Location, or whatever the test scripted.

    pip install http_ece py_vapid cryptography
    python3 tests/fakes/push_service.py --port 0 --subject mailto:ops@makker.dk

The first line on stdout is the port it listens on (127.0.0.1). It exits when its standard
input closes, so a test that dies takes its fake with it.

Control API (JSON), beside the push resources under /push/<id>:
- POST /_fake/subscriptions  {} or {"private_key": b64url, "auth": b64url}
      -> {"endpoint", "p256dh", "auth"}: a new subscription; the key pair and auth secret
         are generated here unless given (the browser's side of RFC 8291).
- POST /_fake/answers  {"status": 429, "retry_after": "7"}
      -> queues the answer to the next push, whatever it contains (first in, first out).
- GET  /_fake/requests
      -> every push received, in order: headers, plaintext (or decrypt_error), the VAPID
         verdict (vapid_ok, vapid_error, claims, k) and the status answered.

Without a scripted answer, a push that cannot be decrypted is answered 400 and one whose
VAPID is missing or wrong 401, as real push services do; a push to an unknown id gets 404.
"""

import argparse
import base64
import json
import os
import secrets
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import http_ece
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from py_vapid import jwt as vapid_jwt

MAX_VAPID_LIFETIME = 24 * 60 * 60  # RFC 8292 §2: exp no more than 24 hours ahead.


def b64url_decode(text):
    text = text.strip()
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def b64url_encode(raw):
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


class State:
    def __init__(self, subject):
        self.subject = subject
        self.lock = threading.Lock()
        self.subscriptions = {}  # id -> (private key, auth secret)
        self.answers = []
        self.requests = []
        self.origin = None  # set once the port is known


def verify_vapid(state, authorization):
    """RFC 8292: `vapid t=<JWT>, k=<public key>`; returns (claims, k), raises ValueError."""
    if not authorization:
        raise ValueError("no Authorization header")
    scheme, _, params = authorization.partition(" ")
    if scheme.lower() != "vapid":
        raise ValueError(f"Authorization scheme {scheme!r} is not vapid")
    parts = {}
    for item in params.split(","):
        key, _, value = item.strip().partition("=")
        parts[key] = value
    token, k = parts.get("t"), parts.get("k")
    if not token or not k:
        raise ValueError("vapid Authorization needs both t= and k=")
    header = json.loads(b64url_decode(token.split(".")[0]))
    if header.get("alg") != "ES256":
        raise ValueError(f"JWT alg is {header.get('alg')!r}, not ES256")
    try:
        claims = vapid_jwt.decode(token, k)  # verifies the ES256 signature against k
    except Exception as error:  # InvalidSignature carries no message
        raise ValueError(f"JWT signature does not verify against k: {error!r}")
    if claims.get("aud") != state.origin:
        raise ValueError(f"aud is {claims.get('aud')!r}, not this origin {state.origin!r}")
    exp, now = claims.get("exp"), time.time()
    if not isinstance(exp, int) or not now < exp <= now + MAX_VAPID_LIFETIME:
        raise ValueError(f"exp {exp!r} is not within 24 hours from now ({int(now)})")
    if claims.get("sub") != state.subject:
        raise ValueError(f"sub is {claims.get('sub')!r}, not {state.subject!r}")
    return claims, k


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "FakePush/1"

    def log_message(self, *args):  # keep the test output quiet
        pass

    def reply(self, status, body=None, headers=()):
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        if body is not None:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def read_body(self):
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def do_GET(self):
        state = self.server.state
        if self.path == "/_fake/requests":
            with state.lock:
                self.reply(200, state.requests)
        else:
            self.reply(404, {"error": "not found"})

    def do_POST(self):
        state = self.server.state
        body = self.read_body()
        if self.path == "/_fake/subscriptions":
            self.create_subscription(state, json.loads(body or b"{}"))
        elif self.path == "/_fake/answers":
            with state.lock:
                state.answers.append(json.loads(body))
            self.reply(204)
        elif self.path.startswith("/push/"):
            self.push(state, self.path[len("/push/") :], body)
        else:
            self.reply(404, {"error": "not found"})

    def create_subscription(self, state, request):
        if "private_key" in request:
            scalar = int.from_bytes(b64url_decode(request["private_key"]), "big")
            private_key = ec.derive_private_key(scalar, ec.SECP256R1())
        else:
            private_key = ec.generate_private_key(ec.SECP256R1())
        auth = b64url_decode(request["auth"]) if "auth" in request else os.urandom(16)
        sub_id = secrets.token_urlsafe(24)
        with state.lock:
            state.subscriptions[sub_id] = (private_key, auth)
        public = private_key.public_key().public_bytes(
            Encoding.X962, PublicFormat.UncompressedPoint
        )
        self.reply(
            201,
            {
                "endpoint": f"{state.origin}/push/{sub_id}",
                "p256dh": b64url_encode(public),
                "auth": b64url_encode(auth),
            },
        )

    def push(self, state, sub_id, body):
        record = {
            "path": self.path,
            "headers": {name.lower(): value for name, value in self.headers.items()},
            "body_len": len(body),
            "plaintext": None,
            "decrypt_error": None,
            "vapid_ok": False,
            "vapid_error": None,
            "claims": None,
            "k": None,
        }
        with state.lock:
            keys = state.subscriptions.get(sub_id)
            answer = state.answers.pop(0) if state.answers else None

        if keys is None:
            record["decrypt_error"] = "unknown subscription"
            status = 404
        else:
            private_key, auth = keys
            try:
                if self.headers.get("Content-Encoding") != "aes128gcm":
                    raise ValueError("Content-Encoding is not aes128gcm")
                plain = http_ece.decrypt(
                    body, private_key=private_key, auth_secret=auth, version="aes128gcm"
                )
                record["plaintext"] = plain.decode("utf-8")
            except Exception as error:
                record["decrypt_error"] = repr(error)
            try:
                record["claims"], record["k"] = verify_vapid(
                    state, self.headers.get("Authorization")
                )
                record["vapid_ok"] = True
            except Exception as error:
                record["vapid_error"] = str(error)
            if record["decrypt_error"] is not None:
                status = 400
            elif not record["vapid_ok"]:
                status = 401
            else:
                status = 201

        headers = []
        if answer is not None:
            status = answer["status"]
            if "retry_after" in answer:
                headers.append(("Retry-After", str(answer["retry_after"])))
        with state.lock:
            record["answered"] = status
            state.requests.append(record)
            number = len(state.requests)
        if status == 201:
            headers.append(("Location", f"{state.origin}/message/{number}"))
        self.reply(status, None if status < 300 else {"code": status}, headers)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--subject", required=True, help="the VAPID sub every push must carry")
    args = parser.parse_args()

    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    server.state = State(args.subject)
    port = server.server_address[1]
    server.state.origin = f"http://127.0.0.1:{port}"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print(port, flush=True)
    sys.stdin.read()  # until the test closes our stdin or dies
    server.shutdown()


if __name__ == "__main__":
    main()

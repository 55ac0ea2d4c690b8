#!/usr/bin/env python3
"""A lying realm for check-realms: a TLS-terminating proxy in front of one real realm.

usage: realm-proxy.py UPSTREAM_PORT CERT KEY PORT_FILE COUNT_FILE

Listens on a free loopback port (written to PORT_FILE once it accepts), serves TLS with CERT/KEY
(the realm's own certificate, so the realm list keeps its CA), and passes every request (method,
path, Authorization, Content-Type, body) to https://127.0.0.1:UPSTREAM_PORT, checking the realm's
certificate against CERT. Replies go back unchanged except one kind: a 200 reply to
POST /v2/realm/recover2 of the documented length (113 bytes: session_id[16] | evaluated[32] |
proof[64] | attempts_left) gets bit 0 of the proof's first byte flipped. That byte is the lowest
byte of the proof's little-endian scalar c, so c stays a reduced scalar, the body still decodes,
and only the DLEQ proof check fails: the realm charged its guess and answered, but its answer
cannot be trusted. Each altered reply increments the number in COUNT_FILE, so the test can tell
that the proxy really lied (and how often). Runs until killed.
"""
import http.client
import http.server
import os
import ssl
import sys
import threading

upstream_port = int(sys.argv[1])
cert, key, port_file, count_file = sys.argv[2:6]
PROOF_OFF = 16 + 32
RECOVER2_LEN = 16 + 32 + 64 + 1
lock = threading.Lock()
altered = 0

up_ctx = ssl.create_default_context(cafile=cert)
up_ctx.check_hostname = False  # the certificate names IP 127.0.0.1; the CA pin is what matters


class Proxy(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):  # quiet: the test prints what matters
        pass

    def relay(self):
        global altered
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else None
        hdrs = {k: v for k, v in self.headers.items() if k.lower() in ("authorization", "content-type")}
        try:
            conn = http.client.HTTPSConnection("127.0.0.1", upstream_port, context=up_ctx, timeout=30)
            conn.request(self.command, self.path, body=body, headers=hdrs)
            r = conn.getresponse()
            data = r.read()
            status, rh = r.status, [(k, v) for k, v in r.getheaders()
                                    if k.lower() in ("content-type", "www-authenticate", "retry-after")]
            conn.close()
        except OSError as e:  # the realm is down: answer as a dead upstream would
            status, rh, data = 502, [("Content-Type", "text/plain")], ("proxy: %s\n" % e).encode()
        if (self.command == "POST" and self.path == "/v2/realm/recover2" and status == 200 and
                len(data) == RECOVER2_LEN):
            data = bytearray(data)
            data[PROOF_OFF] ^= 0x01
            data = bytes(data)
            with lock:
                altered += 1
                with open(count_file + ".tmp", "w") as f:
                    f.write("%d\n" % altered)
                os.replace(count_file + ".tmp", count_file)
        self.send_response(status)
        for k, v in rh:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = relay
    do_POST = relay


srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Proxy)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
with open(count_file, "w") as f:
    f.write("0\n")
with open(port_file + ".tmp", "w") as f:
    f.write("%d\n" % srv.server_address[1])
os.replace(port_file + ".tmp", port_file)
srv.serve_forever()

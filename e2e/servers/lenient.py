"""The most lenient upstream imaginable: records every request it receives, whatever its
method, path, headers or body, and answers 200 with a JSON-RPC result. Tests assert that
nothing Toolgate refuses ever arrives here.

Usage: python lenient.py --port PORT --record FILE
"""
import argparse
import base64
import json
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    record = "lenient.jsonl"

    def _handle(self):
        length = self.headers.get("content-length")
        if length is not None:
            body = self.rfile.read(int(length))
        elif "chunked" in (self.headers.get("transfer-encoding") or "").lower():
            body = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline().strip():
                        pass
                    break
                body += self.rfile.read(size)
                self.rfile.readline()
        else:
            body = b""
        with open(self.record, "a") as f:
            f.write(json.dumps({
                "method": self.command,
                "path": self.path,
                "headers": [[k, v] for k, v in self.headers.items()],
                "body": base64.b64encode(body).decode(),
            }) + "\n")
        reply = b'{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"executed"}]}}'
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = _handle

    def log_message(self, *args):
        pass


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--record", required=True)
    a = p.parse_args()
    Handler.record = a.record
    ThreadingHTTPServer(("127.0.0.1", a.port), Handler).serve_forever()


if __name__ == "__main__":
    main()

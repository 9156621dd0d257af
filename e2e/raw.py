"""Raw HTTP/1.1 over a socket: exact control of headers (repeated, odd), bodies (any bytes)
and framing (chunks sent one by one, trailers)."""
import json
import socket
import time


class Reply:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    def header(self, name):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return f"Reply({self.status}, {self.headers}, {self.body[:300]!r})"


def read_reply(f):
    status_line = f.readline()
    if not status_line:
        raise ConnectionError("connection closed without a response")
    status = int(status_line.split()[1])
    headers = []
    while True:
        line = f.readline().rstrip(b"\r\n")
        if not line:
            break
        k, _, v = line.decode("latin-1").partition(":")
        headers.append((k.strip(), v.strip()))
    lower = {k.lower(): v for k, v in headers}
    if "content-length" in lower:
        body = f.read(int(lower["content-length"]))
    elif "chunked" in lower.get("transfer-encoding", "").lower():
        body = b""
        while True:
            size = int(f.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while f.readline().strip():
                    pass
                break
            body += f.read(size)
            f.readline()
    else:
        body = b""
    return Reply(status, headers, body)


def request(port, body=b"", method="POST", path="/mcp", headers=None, chunks=None, trailers=None,
            content_type="application/json", pause=0.0, timeout=10,
            accept="application/json, text/event-stream"):
    """Sends one request. `headers` is a list of (name, value) pairs (repeats allowed).
    With `chunks`, the body goes chunked, one chunk per element, `pause` seconds apart.
    `accept` is a Streamable HTTP client's unless told (None: no Accept header)."""
    if isinstance(body, str):
        body = body.encode()
    hs = [("host", f"127.0.0.1:{port}")] + ([("accept", accept)] if accept is not None else [])
    if content_type is not None:
        hs.append(("content-type", content_type))
    hs += list(headers or [])
    if chunks is None:
        hs.append(("content-length", str(len(body))))
    else:
        hs.append(("transfer-encoding", "chunked"))
    head = f"{method} {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in hs) + "\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(head.encode("latin-1"))
        if chunks is None:
            s.sendall(body)
        else:
            for c in chunks:
                if isinstance(c, str):
                    c = c.encode()
                s.sendall(f"{len(c):x}\r\n".encode() + c + b"\r\n")
                if pause:
                    time.sleep(pause)
            tail = b"0\r\n" + b"".join(f"{k}: {v}\r\n".encode() for k, v in (trailers or [])) + b"\r\n"
            s.sendall(tail)
        return read_reply(s.makefile("rb"))


def call(name, arguments=None, id=1):
    return json.dumps({"jsonrpc": "2.0", "id": id, "method": "tools/call",
                       "params": {"name": name, "arguments": arguments or {}}})

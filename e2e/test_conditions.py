"""Argument conditions and resource rules against the readings a real server makes: the
official Python SDK server runs each hostile spelling below as the forbidden value (shown
by sending it straight to the server), and through Toolgate every one is denied and none
runs."""
import datetime
import json

from harness import Envoy, Recording
from raw import request

POLICY = {
    "version": "1", "default": "allow",
    "tools": {
        "share": {"deny_if": [{"path": "args.expires_at", "op": "eq", "value": None}]},
        "deploy": {"deny_if": [{"path": "args.options", "op": "eq", "value": {"force": True}}]},
        "read_file": {"deny_if": [{"path": "args.path", "op": "in", "value": ["/etc/passwd", "/etc/shadow"]}]},
        "cache_cas": {"deny_if": [{"path": "args.cas", "op": "regex", "value": "^22$"},
                                  {"path": "args.value", "op": "regex", "value": "\\bDROP\\s+TABLE\\b"}]},
        # Go's RE2 (PolicyLayer's) folds every cased letter under (?i), σ and ς alike.
        "echo": {"deny_if": [{"path": "args.text", "op": "regex", "value": "(?i)(пароль|κωδικός)"}]},
        "fetch": {"deny_if": [{"path": "args.url", "op": "regex", "value": "^https?://(127\\.|localhost/|\\[::1\\])"}]},
    },
    "resources": {"rules": {
        "file://docs/secret.txt": {"action": "deny"},
        "file://docs/report.pdf": {"limits": [{"counter": "report_reads", "window": "minute", "max": 1}]},
    }},
}

# (tool, arguments as JSON text, what the server runs it with)
HOSTILE = [
    ("share", '{"path":"/srv/a.pdf","expires_at":"null"}', {"expires_at": None}),
    ("share", '{"path":"/srv/a.pdf","expires_at":" null\\n"}', {"expires_at": None}),
    ("deploy", '{"service":"api","options":{"force":"true"}}', {"options": {"force": True}}),
    ("deploy", '{"service":"api","options":{"force":1,"dry":0}}', {"options": {"force": True}}),
    ("read_file", '{"path":"/etc//passwd"}', {"opens": "/etc/passwd"}),
    ("read_file", '{"path":"/tmp/../etc/shadow"}', {"opens": "/etc/shadow"}),
    ("read_file", '{"path":"/etc/./passwd"}', {"opens": "/etc/passwd"}),
    ("cache_cas", '{"key":"k","value":"v","cas":21.9999999999999999}', {"cas": 22}),
    ("cache_cas", '{"key":"k","value":"v","cas":22.0000000000000001}', {"cas": 22}),
    # NFKC, as a server normalising its input reads it, keeps the case: DROP TABLE users.
    ("cache_cas", '{"key":"k","value":"ＤＲＯＰ TABLE users","cas":1}', {"value": "ＤＲＯＰ TABLE users"}),
    ("echo", '{"text":"ПАРОЛЬ: hunter2"}', {"text": "ПАРОЛЬ: hunter2"}),
    ("echo", '{"text":"ΚΩΔΙΚΌΣ 1234"}', {"text": "ΚΩΔΙΚΌΣ 1234"}),
    ("fetch", '{"url":"http://2130706433/admin"}', {"fetches": "http://127.0.0.1/admin"}),
    ("fetch", '{"url":"http://0x7f.1/admin"}', {"fetches": "http://127.0.0.1/admin"}),
    ("fetch", '{"url":"http://ops@127.0.0.1/admin"}', {"fetches": "http://127.0.0.1/admin"}),
    ("fetch", '{"url":"HTTP://LOCALHOST:80/x/../admin"}', {"fetches": "http://127.0.0.1/admin"}),
    ("fetch", '{"url":"http://evil.example%2F@127.0.0.1/admin"}', {"fetches": "http://127.0.0.1/admin"}),
    ("fetch", '{"url":"http://127。0。0。1/admin"}', {"fetches": "http://127.0.0.1/admin"}),
    ("fetch", '{"url":"http://[::ffff:127.0.0.1]/admin"}', {"fetches": "http://127.0.0.1/admin"}),
    ("fetch", '{"url":"http://[::FFFF:7f00:1]/admin"}', {"fetches": "http://127.0.0.1/admin"}),
    ("fetch", '{"url":"http://[0:0:0:0:0:0:0:1]/admin"}', {"fetches": "http://[::1]/admin"}),
    ("fetch", '{"url":"http://[::ffff:127.0.0.1%251]/admin"}', {"fetches": "http://127.0.0.1/admin"}),
    # A port only Python's int() reads, which httpx takes.
    ("fetch", '{"url":"http://2130706433:+80/admin"}', {"fetches": "http://127.0.0.1/admin"}),
    ("fetch", '{"url":"http://[0::1]:8_0/admin"}', {"fetches": "http://[::1]/admin"}),
]
ALLOWED = [
    ("share", '{"path":"/srv/a.pdf","expires_at":60}'),
    ("deploy", '{"service":"api","options":{"force":false}}'),
    ("read_file", '{"path":"/etc/hosts"}'),
    ("cache_cas", '{"key":"k","value":"v","cas":23}'),
    ("echo", '{"text":"Пароли нет"}'),
    ("fetch", '{"url":"http://docs.example/127.0.0.1/"}'),
    ("fetch", '{"url":"http://[2001:db8::1]/"}'),
]


def tool_call(port, name, arguments, headers=()):
    body = '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"%s","arguments":%s}}' % (name, arguments)
    return request(port, body, headers=[("authorization", "Bearer conditions"), *headers])


def read(port, uri):
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "resources/read", "params": {"uri": uri}})
    return request(port, body, headers=[("authorization", "Bearer conditions")]).json()


def test_argument_readings_a_real_server_makes_are_judged(procs):
    rec = procs.add(Recording(procs.dir, json_response=True, stateless=True).start())
    envoy = procs.add(Envoy(procs.dir, POLICY, rec.port).start())

    # Straight to the server: each hostile spelling runs as the forbidden value.
    for name, arguments, runs_as in HOSTILE:
        assert "result" in tool_call(rec.port, name, arguments).json()
        ran = rec.calls(name)[-1]["arguments"]
        assert {k: ran[k] for k in runs_as} == runs_as, (name, arguments, ran)
    before = len(rec.calls())

    for name, arguments, _ in HOSTILE:
        r = tool_call(envoy.port, name, arguments).json()
        assert r["result"]["isError"], (name, arguments, r)
        assert r["result"]["_meta"]["toolgate/decision"]["reason"] == "deny_if_matched", r
    assert len(rec.calls()) == before, "no hostile spelling ran"

    for name, arguments in ALLOWED:
        r = tool_call(envoy.port, name, arguments).json()
        assert not r["result"].get("isError"), (name, arguments, r)
    assert [c["name"] for c in rec.calls()[before:]] == [n for n, _ in ALLOWED]


def test_resource_paths_a_server_opens_as_a_denied_or_limited_file(procs):
    """The SDK's own pattern for serving files (`file://docs/{+path}` and `safe_join`) opens
    `secret.txt` for `secret.txt/`, `secret.txt/.` and `secret.txt%2F`."""
    rec = procs.add(Recording(procs.dir, json_response=True, stateless=True).start())
    envoy = procs.add(Envoy(procs.dir, POLICY, rec.port).start())
    spellings = ["file://docs/secret.txt/", "file://docs/secret.txt/.", "file://docs/secret.txt%2F",
                 "file://docs/x/../secret.txt//"]

    def opened():
        return [c["name"] for c in rec.calls() if c["kind"] == "resource"]

    for uri in spellings:
        assert "result" in read(rec.port, uri), uri
    assert opened() == ["file://docs/secret.txt"] * len(spellings)

    for uri in ["file://docs/secret.txt"] + spellings:
        r = read(envoy.port, uri)
        assert r["error"]["data"]["reason"] == "tool_denied", (uri, r)
    # One read of the report a minute, however it is spelled.
    reads = [read(envoy.port, uri) for uri in
             ["file://docs/report.pdf", "file://docs/report.pdf/", "file://docs/report.pdf/.", "file://docs/report.pdf%2F"]]
    if any(r.get("error", {}).get("data", {}).get("reason") != "rate_limited" for r in reads[1:]):
        # The first read may have met a minute's end; the next minute allows one more.
        assert sum("result" in r for r in reads) <= 2, reads
    assert "result" in reads[0], reads
    assert opened()[len(spellings):] in (["file://docs/report.pdf"], ["file://docs/report.pdf"] * 2)


def test_a_denial_names_the_limit_that_stays_spent_longest(procs):
    """With a minute limit and a day limit both spent, Retry-After says when the day's ends:
    an agent retrying after the minute's would only be refused again."""
    rec = procs.add(Recording(procs.dir, json_response=True, stateless=True).start())
    policy = {"version": "1", "default": "allow", "tools": {"echo": {"limits": [
        {"counter": "per_minute", "window": "minute", "max": 1},
        {"counter": "per_day", "window": "day", "max": 1}]}}}
    envoy = procs.add(Envoy(procs.dir, policy, rec.port).start())
    assert "result" in tool_call(envoy.port, "echo", '{"text":"a"}').json()
    r = tool_call(envoy.port, "echo", '{"text":"b"}')
    now = datetime.datetime.now(datetime.timezone.utc)
    to_midnight = 86400 - (now.hour * 3600 + now.minute * 60 + now.second)
    retry = int(r.header("retry-after"))
    assert abs(retry - to_midnight) <= 2, (retry, to_midnight)
    assert r.header("ratelimit").startswith('"per_day";r=0;'), r.header("ratelimit")
    assert f"retry in {retry} seconds" in r.json()["result"]["content"][0]["text"]
    assert [c["arguments"]["text"] for c in rec.calls("echo")] == ["a"]


def test_require_holds_only_where_every_reading_a_server_makes_matches(procs):
    """A `require` met by the text as sent but not by what the server makes of it fails: a
    path whose `..` climbs out (whatever `://` it holds), and text whose NFKC form a
    normalising server reads."""
    import unicodedata
    rec = procs.add(Recording(procs.dir, json_response=True, stateless=True).start())
    policy = {"version": "1", "default": "allow", "tools": {
        "read_file": {"require": [{"path": "args.path", "op": "regex", "value": "^/srv/data/"}]},
        "echo": {"require": [{"path": "args.text", "op": "regex", "value": "^[^<>]*$"}]}}}
    envoy = procs.add(Envoy(procs.dir, policy, rec.port).start())

    assert "result" in tool_call(rec.port, "read_file", '{"path":"/srv/data/x://../../../etc/passwd"}').json()
    assert rec.calls("read_file")[-1]["arguments"]["opens"] == "/etc/passwd"
    assert "result" in tool_call(rec.port, "echo", '{"text":"＜script＞"}').json()
    assert unicodedata.normalize("NFKC", rec.calls("echo")[-1]["arguments"]["text"]) == "<script>"
    before = len(rec.calls())

    for name, arguments in [("read_file", '{"path":"/srv/data/x://../../../etc/passwd"}'),
                            ("echo", '{"text":"＜script＞"}')]:
        r = tool_call(envoy.port, name, arguments).json()
        assert r["result"]["_meta"]["toolgate/decision"]["reason"] == "require_failed", (name, r)
    assert len(rec.calls()) == before
    for name, arguments in [("read_file", '{"path":"/srv/data/a.txt"}'), ("echo", '{"text":"Zürich"}')]:
        assert not tool_call(envoy.port, name, arguments).json()["result"].get("isError"), name
    assert len(rec.calls()) == before + 2

"""Validates custom resources offline against their CRD's openAPIV3Schema, as the API server
would: the structural schema with JSON Schema (``jsonschema``), plus the Kubernetes extensions.

* Unknown fields are errors (``kubectl apply`` uses strict field validation by default), except
  under ``x-kubernetes-preserve-unknown-fields: true``.
* ``nullable: true`` admits ``null``; ``x-kubernetes-int-or-string`` admits both; ``default``
  and ``format`` are ignored (the server defaults; formats are advisory here).
* ``x-kubernetes-list-type: map`` / ``set``: items must be unique by their keys / by value.
* ``x-kubernetes-validations`` (CEL): evaluated by a small interpreter for the subset of CEL
  the CRDs use (``has``, ``size``, ``all``/``exists``, ``in``, ternaries, string methods,
  ``isURL``/``url``); a rule it cannot evaluate is counted as skipped, never as passed.
  Transition rules (``oldSelf``) are skipped: there is no old object offline.
* ``metadata``: ``name`` is required and must be a DNS-1123 subdomain; ``namespace`` a label.
"""
import copy
import re

import jsonschema
import yaml

DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


class CRDs:
    """Every CRD in the given files, by (apiVersion, kind)."""

    def __init__(self, files):
        self.schemas = {}
        for path in files:
            with open(path) as f:
                for doc in yaml.safe_load_all(f):
                    if not doc or doc.get("kind") != "CustomResourceDefinition":
                        continue
                    spec = doc["spec"]
                    for v in spec["versions"]:
                        if not v.get("served", True):
                            continue
                        key = (f"{spec['group']}/{v['name']}", spec["names"]["kind"])
                        self.schemas[key] = (v["schema"]["openAPIV3Schema"], spec.get("scope", "Namespaced"))

    def has(self, api_version, kind):
        return (api_version, kind) in self.schemas

    def validate(self, obj):
        """Returns (errors, cel_evaluated, cel_skipped)."""
        key = (obj.get("apiVersion"), obj.get("kind"))
        if key not in self.schemas:
            return [f"no CRD serves {key[0]} {key[1]}"], 0, 0
        raw, scope = self.schemas[key]
        errors = []
        meta = obj.get("metadata") or {}
        name = meta.get("name")
        if not isinstance(name, str) or not name:
            errors.append("metadata.name: required")
        elif len(name) > 253 or not DNS1123_SUBDOMAIN.match(name):
            errors.append(f"metadata.name: {name!r} is not a DNS-1123 subdomain")
        ns = meta.get("namespace")
        if ns is not None and (not isinstance(ns, str) or not DNS1123_LABEL.match(ns) or len(ns) > 63):
            errors.append(f"metadata.namespace: {ns!r} is not a DNS-1123 label")
        if scope == "Cluster" and ns:
            errors.append("metadata.namespace: set on a cluster-scoped resource")
        schema = structural(raw, top=True)
        v = jsonschema.Draft7Validator(schema)
        for e in sorted(v.iter_errors(obj), key=lambda e: list(e.absolute_path)):
            errors.append(f"{path_str(e.absolute_path)}: {e.message}")
        stats = [0, 0]
        # The API server defaults before it runs CEL rules (a backendRef's kind: Service).
        walk_extensions(raw, apply_defaults(raw, copy.deepcopy(obj)), "", errors, stats)
        return errors, stats[0], stats[1]


def path_str(parts):
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (("." if out else "") + str(p))
    return out or "(root)"


def structural(s, top=False):
    """The openAPIV3Schema as a draft-7 JSON schema with the Kubernetes semantics."""
    if not isinstance(s, dict):
        return s
    out = {}
    for k, v in s.items():
        if k in ("description", "default", "format", "example", "x-kubernetes-validations",
                 "x-kubernetes-list-type", "x-kubernetes-list-map-keys", "x-kubernetes-map-type",
                 "x-kubernetes-embedded-resource", "x-kubernetes-preserve-unknown-fields",
                 "x-kubernetes-int-or-string", "nullable"):
            continue
        if k == "properties":
            out[k] = {name: structural(sub) for name, sub in v.items()}
        elif k in ("items", "additionalProperties", "not"):
            out[k] = structural(v) if isinstance(v, dict) else v
        elif k in ("allOf", "anyOf", "oneOf"):
            out[k] = [structural(x) for x in v]
        else:
            out[k] = copy.deepcopy(v)
    if s.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out.setdefault("anyOf", [{"type": "integer"}, {"type": "string"}])
    if s.get("nullable") and "type" in out:
        out["type"] = [out["type"], "null"]
    if top:
        props = out.setdefault("properties", {})
        props.setdefault("apiVersion", {"type": "string"})
        props.setdefault("kind", {"type": "string"})
        props["metadata"] = {"type": "object"}
    if "properties" in s and "additionalProperties" not in s and not s.get("x-kubernetes-preserve-unknown-fields"):
        out["additionalProperties"] = False
    return out


def apply_defaults(s, value):
    if not isinstance(s, dict):
        return value
    if isinstance(value, dict):
        for k, sub in (s.get("properties") or {}).items():
            if k not in value and isinstance(sub, dict) and "default" in sub:
                value[k] = copy.deepcopy(sub["default"])
            if k in value:
                value[k] = apply_defaults(sub, value[k])
        if isinstance(s.get("additionalProperties"), dict):
            for k in value:
                if k not in (s.get("properties") or {}):
                    value[k] = apply_defaults(s["additionalProperties"], value[k])
    elif isinstance(value, list) and isinstance(s.get("items"), dict):
        return [apply_defaults(s["items"], x) for x in value]
    return value


def cel_field(name):
    """CEL's escaping of property names (__namespace__, __dash__, ...)."""
    if name.startswith("__") and name.endswith("__") and len(name) > 4:
        inner = name[2:-2]
        if inner in ("namespace", "in", "as", "break", "const", "continue", "else", "for", "function",
                     "if", "import", "let", "loop", "package", "return", "var", "void", "while",
                     "true", "false", "null"):
            return inner
    return (name.replace("__underscores__", "\0").replace("__dot__", ".").replace("__dash__", "-")
            .replace("__slash__", "/").replace("\0", "__"))


def walk_extensions(s, value, path, errors, stats):
    """List types and CEL rules, walking the schema and the value together."""
    if not isinstance(s, dict) or value is None:
        return
    for rule in s.get("x-kubernetes-validations") or []:
        if "oldSelf" in rule["rule"]:
            stats[1] += 1
            continue
        try:
            ok = Cel(rule["rule"]).eval({"self": value})
        except CelUnsupported:
            stats[1] += 1
            continue
        except CelError:
            ok = False  # a runtime error (no such key, ...) fails the rule, as on the server
        stats[0] += 1
        if ok is not True:
            errors.append(f"{path or '(root)'}: {rule.get('message') or rule['rule']} (rule: {rule['rule'].strip()})")
    if isinstance(value, list):
        lt = s.get("x-kubernetes-list-type")
        if lt == "set":
            seen = []
            for i, x in enumerate(value):
                if x in seen:
                    errors.append(f"{path}[{i}]: duplicate entry in a set list")
                seen.append(x)
        elif lt == "map":
            keys = s.get("x-kubernetes-list-map-keys") or []
            seen = set()
            for i, x in enumerate(value):
                if isinstance(x, dict):
                    k = tuple(repr(x.get(key)) for key in keys)
                    if k in seen:
                        errors.append(f"{path}[{i}]: duplicate entry for keys {keys} in a map list")
                    seen.add(k)
        if isinstance(s.get("items"), dict):
            for i, x in enumerate(value):
                walk_extensions(s["items"], x, f"{path}[{i}]", errors, stats)
    elif isinstance(value, dict):
        props = s.get("properties") or {}
        for k, x in value.items():
            sub = props.get(k)
            if sub is None and isinstance(s.get("additionalProperties"), dict):
                sub = s["additionalProperties"]
            if sub is not None:
                walk_extensions(sub, x, f"{path}.{k}" if path else k, errors, stats)
    for key in ("allOf", "anyOf", "oneOf"):
        for sub in s.get(key) or []:
            if isinstance(sub, dict) and "x-kubernetes-validations" in sub:
                walk_extensions(sub, value, path, errors, stats)


# ---- A small CEL interpreter ------------------------------------------------------------

class CelError(Exception):
    """A runtime error: the rule fails."""


class CelUnsupported(Exception):
    """Outside the subset: the rule is skipped (and counted)."""


TOKEN = re.compile(r"""\s*(?:
    (?P<num>\d+(?:\.\d+)?)
  | (?P<str>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
  | (?P<op>&&|\|\||==|!=|<=|>=|[-+*/%<>!?:.,()\[\]{}])
  | (?P<id>[A-Za-z_][A-Za-z0-9_]*)
)""", re.X)


def tokenize(src):
    toks, i = [], 0
    src = src.strip()
    while i < len(src):
        m = TOKEN.match(src, i)
        if not m or m.end() == i:
            raise CelUnsupported(f"cannot read {src[i:i + 10]!r}")
        i = m.end()
        kind = m.lastgroup
        text = m.group(kind)
        if kind == "str":
            text = bytes(text[1:-1], "utf-8").decode("unicode_escape")
        toks.append((kind, text))
    toks.append(("end", None))
    return toks


class Cel:
    def __init__(self, src):
        self.toks = tokenize(src)
        self.i = 0
        self.ast = self.ternary()
        if self.peek()[0] != "end":
            raise CelUnsupported(f"trailing {self.peek()[1]!r}")

    # parsing (to a tuple tree)
    def peek(self):
        return self.toks[self.i]

    def take(self, text=None):
        t = self.toks[self.i]
        if text is not None and t[1] != text:
            raise CelUnsupported(f"expected {text!r}, found {t[1]!r}")
        self.i += 1
        return t

    def ternary(self):
        c = self.binary(0)
        if self.peek()[1] == "?":
            self.take("?")
            a = self.ternary()
            self.take(":")
            b = self.ternary()
            return ("?", c, a, b)
        return c

    LEVELS = [["||"], ["&&"], ["==", "!=", "<", "<=", ">", ">=", "in"], ["+", "-"], ["*", "/", "%"]]

    def binary(self, level):
        if level == len(self.LEVELS):
            return self.unary()
        left = self.binary(level + 1)
        while self.peek()[0] in ("op", "id") and self.peek()[1] in self.LEVELS[level]:
            op = self.take()[1]
            left = (op, left, self.binary(level + 1))
        return left

    def unary(self):
        if self.peek()[1] == "!":
            self.take()
            return ("!", self.unary())
        if self.peek()[1] == "-":
            self.take()
            return ("neg", self.unary())
        return self.postfix(self.primary())

    def args(self):
        self.take("(")
        out = []
        while self.peek()[1] != ")":
            out.append(self.ternary())
            if self.peek()[1] == ",":
                self.take()
        self.take(")")
        return out

    def postfix(self, e):
        while True:
            t = self.peek()[1]
            if t == ".":
                self.take()
                name = self.take()[1]
                if self.peek()[1] != "(":
                    name = cel_field(name)
                if self.peek()[1] == "(":
                    e = ("method", e, name, self.args())
                else:
                    e = ("field", e, name)
            elif t == "[":
                self.take()
                idx = self.ternary()
                self.take("]")
                e = ("index", e, idx)
            else:
                return e

    def primary(self):
        kind, text = self.take()
        if kind == "num":
            return ("lit", float(text) if "." in text else int(text))
        if kind == "str":
            return ("lit", text)
        if text == "(":
            e = self.ternary()
            self.take(")")
            return e
        if text == "[":
            items = []
            while self.peek()[1] != "]":
                items.append(self.ternary())
                if self.peek()[1] == ",":
                    self.take()
            self.take("]")
            return ("list", items)
        if kind == "id":
            if text in ("true", "false"):
                return ("lit", text == "true")
            if text == "null":
                return ("lit", None)
            if self.peek()[1] == "(":
                if text == "has":
                    self.take("(")
                    inner = self.ternary()
                    self.take(")")
                    if inner[0] != "field":
                        raise CelUnsupported("has() needs a field")
                    return ("has", inner)
                return ("call", text, self.args())
            return ("var", text)
        raise CelUnsupported(f"unexpected {text!r}")

    # evaluation
    def eval(self, env):
        return self.ev(self.ast, env)

    def ev(self, e, env):
        op = e[0]
        if op == "lit":
            return e[1]
        if op == "list":
            return [self.ev(x, env) for x in e[1]]
        if op == "var":
            if e[1] not in env:
                raise CelUnsupported(f"unknown variable {e[1]}")
            return env[e[1]]
        if op == "field":
            obj = self.ev(e[1], env)
            if not isinstance(obj, dict) or e[2] not in obj:
                raise CelError(f"no such key: {e[2]}")
            return obj[e[2]]
        if op == "index":
            obj, idx = self.ev(e[1], env), self.ev(e[2], env)
            try:
                return obj[idx]
            except (KeyError, IndexError, TypeError):
                raise CelError("bad index")
        if op == "has":
            obj = self.ev(e[1][1], env)
            return isinstance(obj, dict) and e[1][2] in obj
        if op == "!":
            return not self.truth(self.ev(e[1], env))
        if op == "neg":
            return -self.ev(e[1], env)
        if op == "?":
            return self.ev(e[2], env) if self.truth(self.ev(e[1], env)) else self.ev(e[3], env)
        if op == "&&":
            return self.truth(self.ev(e[1], env)) and self.truth(self.ev(e[2], env))
        if op == "||":
            return self.truth(self.ev(e[1], env)) or self.truth(self.ev(e[2], env))
        if op in ("==", "!=", "<", "<=", ">", ">=", "in", "+", "-", "*", "/", "%"):
            a, b = self.ev(e[1], env), self.ev(e[2], env)
            try:
                return {
                    "==": lambda: a == b, "!=": lambda: a != b, "<": lambda: a < b, "<=": lambda: a <= b,
                    ">": lambda: a > b, ">=": lambda: a >= b, "in": lambda: a in b, "+": lambda: a + b,
                    "-": lambda: a - b, "*": lambda: a * b, "/": lambda: a // b if isinstance(a, int) else a / b,
                    "%": lambda: a % b,
                }[op]()
            except TypeError:
                raise CelError("type mismatch")
        if op == "call":
            return self.call(e[1], [self.ev(x, env) for x in e[2]])
        if op == "method":
            return self.method(e, env)
        raise CelUnsupported(op)

    @staticmethod
    def truth(v):
        if not isinstance(v, bool):
            raise CelError("not a bool")
        return v

    def call(self, name, args):
        if name == "size" and len(args) == 1:
            return len(args[0])
        if name == "isURL":
            return bool(re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://[^\s/]+(/\S*)?$", args[0]) or args[0].startswith("/"))
        if name == "url":
            m = re.match(r"^([a-zA-Z][a-zA-Z0-9+.-]*)://", args[0])
            return {"__url__": args[0], "scheme": m.group(1) if m else ""}
        if name in ("int", "string", "double"):
            return {"int": int, "string": str, "double": float}[name](args[0])
        raise CelUnsupported(f"function {name}")

    def method(self, e, env):
        _, target, name, argx = e
        obj = self.ev(target, env)
        if name in ("all", "exists", "exists_one", "filter", "map"):
            var = argx[0]
            if var[0] != "var":
                raise CelUnsupported("macro variable")
            items = list(obj.keys()) if isinstance(obj, dict) else list(obj)
            results = []
            for x in items:
                results.append(self.ev(argx[-1], {**env, var[1]: x}))
            if name == "all":
                return all(self.truth(r) for r in results)
            if name == "exists":
                return any(self.truth(r) for r in results)
            if name == "exists_one":
                return sum(1 for r in results if self.truth(r)) == 1
            if name == "filter":
                return [x for x, r in zip(items, results) if self.truth(r)]
            if len(argx) == 3:
                raise CelUnsupported("map with filter")
            return results
        args = [self.ev(x, env) for x in argx]
        if isinstance(obj, dict) and "__url__" in obj:
            if name == "getScheme":
                return obj["scheme"]
            raise CelUnsupported(f"url.{name}")
        if isinstance(obj, str):
            if name == "startsWith":
                return obj.startswith(args[0])
            if name == "endsWith":
                return obj.endswith(args[0])
            if name == "contains":
                return args[0] in obj
            if name == "matches":
                return re.search(args[0], obj) is not None
            if name == "size":
                return len(obj)
            if name == "lowerAscii":
                return obj.lower()
            if name == "split":
                return obj.split(args[0])
        if name == "size" and isinstance(obj, (list, dict)):
            return len(obj)
        raise CelUnsupported(f"method {name}")

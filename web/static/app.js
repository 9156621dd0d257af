// The Toolgate playground page. Every decision comes from the engine (toolgate_web.wasm):
// this file only moves text between the editors and it, and shows what it answers.
import init, { validate, Session } from "./toolgate_web.js";
import { EXAMPLES } from "./examples.js";

const $ = (id) => document.getElementById(id);

const TEMPLATES = {
  "tools/call": {
    jsonrpc: "2.0", id: 1, method: "tools/call",
    params: { name: "cache_cas", arguments: { key: "greeting", value: "hello", cas: 1 } },
  },
  "tools/list": { jsonrpc: "2.0", id: 2, method: "tools/list" },
  "batch": [
    { jsonrpc: "2.0", id: 3, method: "tools/call", params: { name: "cache_cas", arguments: { key: "a", value: "1", cas: 1 } } },
    { jsonrpc: "2.0", id: 4, method: "tools/call", params: { name: "cache_flush_all", arguments: {} } },
    { jsonrpc: "2.0", method: "notifications/progress", params: { progressToken: 1, progress: 1 } },
  ],
  "resources/read": { jsonrpc: "2.0", id: 5, method: "resources/read", params: { uri: "memcached://keys/greeting" } },
  "prompts/get": { jsonrpc: "2.0", id: 6, method: "prompts/get", params: { name: "summarize", arguments: { topic: "cache" } } },
  "envelope": {
    headers: { "content-type": "application/json", "authorization": "Bearer agent-2" },
    method: "POST",
    body: "{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"tools/call\",\"params\":",
  },
};

let session = null;       // the engine session for the current (valid) policy
let policyText = null;    // the policy text the session was made from
let transcript = "";      // what `toolgate eval` would print for the requests sent

// ---- policy -------------------------------------------------------------------------

// The segments of a problem path: tools.cache_cas.limits[0].window, tools["a.b"].x.
function parsePath(path) {
  if (path === "configuration") return [];
  const segs = [];
  let rest = path;
  const plain = /^\.?([A-Za-z0-9_-]+)/, index = /^\[(\d+)\]/, quoted = /^\[("(?:[^"\\]|\\.)*")\]/;
  while (rest.length) {
    let m;
    if ((m = rest.match(index))) segs.push(Number(m[1]));
    else if ((m = rest.match(quoted))) segs.push(JSON.parse(m[1]));
    else if ((m = rest.match(plain))) segs.push(m[1]);
    else break;
    rest = rest.slice(m[0].length);
  }
  return segs;
}

// Where a path's value sits in the text: {start, end} of the deepest part found.
function locate(text, segs) {
  let i = 0;
  const ws = () => { while (i < text.length && " \t\r\n".includes(text[i])) i++; };
  const str = () => { const s = i; i++; while (i < text.length && text[i] !== '"') i += text[i] === "\\" ? 2 : 1; i++; return text.slice(s, i); };
  const skip = () => {
    ws();
    const c = text[i];
    if (c === '"') { str(); return; }
    if (c === "{" || c === "[") {
      let depth = 0;
      while (i < text.length) {
        const d = text[i];
        if (d === '"') { str(); continue; }
        if (d === "{" || d === "[") depth++;
        if (d === "}" || d === "]") { depth--; if (depth === 0) { i++; return; } }
        i++;
      }
      return;
    }
    while (i < text.length && !",}] \t\r\n".includes(text[i])) i++;
  };
  let best = null;
  const walk = (k, keyStart) => {
    ws();
    const start = keyStart ?? i;
    if (k === segs.length) { skip(); best = { start, end: i }; return; }
    const want = segs[k];
    if (text[i] === "{" && typeof want === "string") {
      const open = i; i++;
      best = best ?? { start: open, end: open + 1 };
      for (;;) {
        ws();
        if (text[i] !== '"') return;
        const ks = i;
        let key;
        try { key = JSON.parse(str()); } catch { return; }
        ws(); if (text[i] !== ":") return; i++;
        if (key === want) { best = { start: ks, end: i }; walk(k + 1, ks); return; }
        skip(); ws();
        if (text[i] !== ",") return;
        i++;
      }
    } else if (text[i] === "[" && typeof want === "number") {
      i++;
      for (let n = 0; ; n++) {
        ws();
        if (text[i] === "]") return;
        if (n === want) { walk(k + 1); return; }
        skip(); ws();
        if (text[i] !== ",") return;
        i++;
      }
    }
  };
  try { walk(0); } catch { /* a best effort */ }
  return best;
}

function lineCol(text, offset) {
  const before = text.slice(0, offset).split("\n");
  return { line: before.length, col: before[before.length - 1].length + 1 };
}

// A parse error names a byte offset: `at byte 16`.
function byteToIndex(text, bytes) {
  const enc = new TextEncoder().encode(text);
  return new TextDecoder().decode(enc.slice(0, bytes)).length;
}

function select(textarea, start, end) {
  textarea.focus();
  textarea.setSelectionRange(start, end);
  const line = lineCol(textarea.value, start).line;
  const lh = parseFloat(getComputedStyle(textarea).lineHeight) || 18;
  textarea.scrollTop = Math.max(0, (line - 3) * lh);
}

function showValidation(text) {
  const v = JSON.parse(validate(text));
  const summary = $("policy-summary");
  const list = $("problems");
  list.replaceChildren();
  summary.textContent = v.valid ? `✓ ${v.summary}` : `✗ invalid policy: ${v.summary}`;
  summary.className = "summary " + (v.valid ? "ok" : "bad");
  $("policy").classList.toggle("invalid", !v.valid);
  for (const p of v.problems) {
    const li = document.createElement("li");
    li.className = "problem";
    li.dataset.path = p.path;
    let where = null;
    const byte = p.found.match(/at byte (\d+)/);
    if (p.path === "configuration" && byte) {
      const at = byteToIndex(text, Number(byte[1]));
      where = { start: at, end: Math.min(text.length, at + 1) };
    } else if (p.path !== "configuration") {
      where = locate(text, parsePath(p.path));
    }
    const path = document.createElement("span");
    path.className = "path";
    path.textContent = p.path;
    li.append(path);
    if (where) {
      const lc = lineCol(text, where.start);
      const w = document.createElement("span");
      w.className = "where";
      w.textContent = `line ${lc.line}, column ${lc.col}`;
      li.append(w);
      li.title = "select it in the editor";
      li.addEventListener("click", () => select($("policy"), where.start, where.end));
    }
    const detail = document.createElement("span");
    detail.className = "detail";
    detail.textContent = `${p.found}; expected ${p.expected}`;
    li.append(detail);
    list.append(li);
  }
  return v.valid;
}

function onPolicy() {
  const text = $("policy").value;
  const valid = showValidation(text);
  if (!valid) {
    session = null;
    policyText = null;
    $("send").disabled = true;
    $("reset").disabled = true;
    renderMessage($("preview"), "The policy is invalid: fix it to see decisions.");
    updateCount();
    return;
  }
  if (text !== policyText) {
    session?.free();
    session = new Session(text);
    policyText = text;
    transcript = "";
    $("transcript").textContent = "";
    renderMessage($("last"), "Nothing sent yet (a new policy starts with fresh counters).");
    $("last-index").textContent = "";
  }
  $("send").disabled = false;
  $("reset").disabled = false;
  onRequest();
}

// ---- requests -----------------------------------------------------------------------

function at() {
  const n = Number($("at").value);
  return Number.isFinite(n) && n >= 0 ? Math.floor(n) : 0;
}

function setAt(secs) {
  $("at").value = String(Math.max(0, Math.floor(secs)));
  onClock();
}

function onClock() {
  const secs = at();
  const d = new Date(secs * 1000);
  $("at-iso").textContent = isNaN(d) ? "" : d.toISOString().replace(".000Z", "Z");
  onRequest();
}

function inputs() {
  return [$("request").value, $("grant").value, $("session").value, $("headers").value, at()];
}

function renderMessage(card, message, isError = false) {
  const p = document.createElement("p");
  p.className = isError ? "error-text" : "muted";
  p.textContent = message;
  card.replaceChildren(p);
  card.dataset.decision = "";
  card.dataset.reason = "";
  card.dataset.rule = "";
}

// Shows an engine answer: decision, reason, rule, the reply and `toolgate eval`'s text.
function renderResult(card, answer) {
  if (answer.error) {
    renderMessage(card, answer.error, true);
    card.dataset.decision = "error";
    return;
  }
  const r = answer.result;
  card.dataset.decision = r.decision;
  card.dataset.reason = r.reason ?? "";
  card.dataset.rule = r.rule ?? "";
  const line = document.createElement("div");
  line.className = "decision-line";
  const badge = document.createElement("span");
  badge.className = "badge " + r.decision.replace(/^shadow_/, "");
  badge.textContent = r.decision;
  line.append(badge);
  const kv = (label, value, cls) => {
    const s = document.createElement("span");
    s.className = "kv " + cls;
    s.append(label + " ");
    const c = document.createElement("code");
    c.textContent = value ?? "none";
    s.append(c);
    line.append(s);
  };
  kv("reason", r.reason, "reason");
  kv("rule", r.rule, "rule");
  const summary = document.createElement("div");
  summary.className = "kv muted";
  summary.textContent = r.summary;
  const title = document.createElement("div");
  title.className = "reply-title";
  const reply = document.createElement("pre");
  reply.className = "reply";
  if (r.reply) {
    title.textContent = "The filter answers (the request goes no further):";
    reply.textContent = [`HTTP ${r.reply.status}`, ...r.reply.headers.map(([k, v]) => `${k}: ${v}`), "", r.reply.body].join("\n");
  } else {
    title.textContent = r.decision === "passed"
      ? "Not inspected: forwarded upstream as is."
      : "Forwarded upstream; the response gets these headers:";
    reply.textContent = r.forwarded.response_headers.map(([k, v]) => `${k}: ${v}`).join("\n") || "(none)";
  }
  const evalTitle = document.createElement("div");
  evalTitle.className = "reply-title";
  evalTitle.textContent = "toolgate eval prints:";
  const evalText = document.createElement("pre");
  evalText.className = "eval-text";
  evalText.textContent = answer.text;
  card.replaceChildren(line, summary, title, reply, evalTitle, evalText);
}

function updateCount() {
  const n = session ? session.sent() : 0;
  $("sent-count").textContent = session ? `${n} sent on these counters` : "";
  $("preview-index").textContent = session ? `(#${n + 1})` : "";
}

function onRequest() {
  updateCount();
  if (!session) return;
  renderResult($("preview"), JSON.parse(session.preview(...inputs())));
}

function send() {
  if (!session) return;
  const times = Math.max(1, Math.min(1000, Math.floor(Number($("repeat").value)) || 1));
  const step = Math.max(0, Math.floor(Number($("step").value)) || 0);
  for (let k = 0; k < times; k++) {
    const answer = JSON.parse(session.evaluate(...inputs()));
    renderResult($("last"), answer);
    if (answer.error) break;
    $("last-index").textContent = `(#${answer.index} at ${answer.at})`;
    transcript += answer.text;
    if (step) $("at").value = String(at() + step);
  }
  $("transcript").textContent = transcript;
  $("transcript").scrollTop = $("transcript").scrollHeight;
  onClock();
}

function reset() {
  if (!session) return;
  session.reset();
  transcript = "";
  $("transcript").textContent = "";
  renderMessage($("last"), "Counters reset.");
  $("last-index").textContent = "";
  onRequest();
}

// ---- wiring ---------------------------------------------------------------------------

function debounce(fn, ms) {
  let t = null;
  return () => { clearTimeout(t); t = setTimeout(fn, ms); };
}

function setTemplate(name) {
  $("request").value = JSON.stringify(TEMPLATES[name], null, 2);
  onRequest();
}

async function main() {
  try {
    await init();
  } catch (e) {
    $("status").textContent = `the engine failed to load: ${e}`;
    $("status").classList.add("error");
    return;
  }
  const select = $("example");
  for (const ex of EXAMPLES) {
    const o = document.createElement("option");
    o.value = ex.name;
    o.textContent = ex.name;
    select.append(o);
  }
  select.addEventListener("change", () => {
    const ex = EXAMPLES.find((e) => e.name === select.value);
    if (ex) { $("policy").value = ex.text; onPolicy(); }
  });
  for (const name of Object.keys(TEMPLATES)) {
    const b = document.createElement("button");
    b.textContent = name;
    b.dataset.template = name;
    b.addEventListener("click", () => setTemplate(name));
    $("templates").append(b);
  }
  $("policy").addEventListener("input", debounce(onPolicy, 120));
  for (const id of ["request", "grant", "session", "headers"]) {
    $(id).addEventListener("input", debounce(onRequest, 60));
  }
  $("at").addEventListener("input", onClock);
  for (const b of document.querySelectorAll("[data-advance]")) {
    b.addEventListener("click", () => setAt(at() + Number(b.dataset.advance)));
  }
  $("now").addEventListener("click", () => setAt(Date.now() / 1000));
  $("send").addEventListener("click", send);
  $("request").addEventListener("keydown", (e) => {
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) { e.preventDefault(); send(); }
  });
  $("reset").addEventListener("click", reset);
  $("format").addEventListener("click", () => {
    try {
      $("policy").value = JSON.stringify(JSON.parse($("policy").value), null, 2) + "\n";
      onPolicy();
    } catch { /* not JSON: the problems say why */ }
  });
  $("copy").addEventListener("click", () => navigator.clipboard?.writeText(transcript));

  $("policy").value = EXAMPLES[0]?.text ?? "";
  $("request").value = JSON.stringify(TEMPLATES["tools/call"], null, 2);
  onClock();
  onPolicy();
  $("status").textContent = "engine ready";
  document.body.dataset.ready = "true";
}

main();

// The playground in headless Chromium (Debian's), driven by playwright-core. Run by web/test,
// which serves web/dist and sets PLAYGROUND_URL, TOOLGATE (the command, for byte-for-byte
// comparison), CHROMIUM, PLAYWRIGHT_DIR, ROOT and SCREENSHOT.
import { createRequire } from "node:module";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import assert from "node:assert/strict";

const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set (run web/test)`);
  return v;
};
const URL_ = env("PLAYGROUND_URL");
const TOOLGATE = env("TOOLGATE");
const ROOT = env("ROOT");
const require = createRequire(import.meta.url);
const { chromium } = require(env("PLAYWRIGHT_DIR"));

const SEED = join(ROOT, "envoy/policies/seed.json");
const FLEET = join(ROOT, "envoy/policies/fleet.json");
const START = 1767225600; // 2026-01-01T00:00:00Z
const GRANT = "Bearer agent-1";
const call = (name, id = 1) =>
  JSON.stringify({ jsonrpc: "2.0", id, method: "tools/call", params: { name } });
const work = mkdtempSync(join(tmpdir(), "toolgate-web-test-"));

// `toolgate eval POLICY` on requests, one a line (or one file when `file`).
function cliEval(policy, requests, { at = START, step = 0, grant = GRANT, file = false } = {}) {
  const args = ["eval", policy];
  let input;
  if (file) {
    const p = join(work, "request.json");
    writeFileSync(p, requests);
    args.push(p);
  } else {
    args.push("-");
    input = requests.join("\n") + "\n";
  }
  if (grant) args.push("--grant", grant);
  args.push("--at", String(at), "--step", String(step));
  return execFileSync(TOOLGATE, args, { input, encoding: "utf8" });
}

function cliCheck(policyText) {
  const p = join(work, "policy.json");
  writeFileSync(p, policyText);
  try {
    return JSON.parse(execFileSync(TOOLGATE, ["check", p, "--format", "json"], { encoding: "utf8" }));
  } catch (e) {
    return JSON.parse(e.stdout);
  }
}

// ---- the page ---------------------------------------------------------------------------

const userData = mkdtempSync(join(tmpdir(), "toolgate-web-chromium-"));
const context = await chromium.launchPersistentContext(userData, {
  executablePath: env("CHROMIUM"),
  headless: true,
  chromiumSandbox: false,
  args: [
    "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
  ],
  viewport: { width: 1400, height: 1100 },
});
const page = context.pages()[0] ?? (await context.newPage());
const outside = [];
const pageErrors = [];
await context.route("**/*", (route) => {
  const u = route.request().url();
  if (u.startsWith(URL_)) return route.continue();
  outside.push(u);
  return route.abort();
});
page.on("pageerror", (e) => pageErrors.push(String(e)));
page.on("console", (m) => { if (m.type() === "error") pageErrors.push(m.text()); });

const $ = (sel) => page.locator(sel);
const card = (id) => ({
  decision: () => $(`#${id}`).getAttribute("data-decision"),
  reason: () => $(`#${id}`).getAttribute("data-reason"),
  rule: () => $(`#${id}`).getAttribute("data-rule"),
  evalText: () => $(`#${id} .eval-text`).textContent(),
  reply: () => $(`#${id} .reply`).textContent(),
});
const preview = card("preview");
const last = card("last");

async function until(what, fn, timeout = 5000) {
  const end = Date.now() + timeout;
  let v;
  for (;;) {
    v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what} (last: ${JSON.stringify(v)})`);
    await page.waitForTimeout(25);
  }
}

async function setPolicy(text) {
  await $("#policy").fill(text);
  await page.waitForTimeout(300); // past the editor's debounce
}

async function setRequest(text) {
  await $("#request").fill(text);
  await page.waitForTimeout(150);
}

async function setClock(secs) {
  await $("#at").fill(String(secs));
}

async function send(times = 1) {
  for (let i = 0; i < times; i++) await $("#send").click();
}

async function resetCounters() {
  await $("#reset").click();
}

// ---- the tests --------------------------------------------------------------------------

const tests = [];
const test = (name, fn) => tests.push({ name, fn });

test("the page loads the engine and the seed policy, offline", async () => {
  await page.goto(URL_);
  await until("the engine", () => page.evaluate(() => document.body.dataset.ready === "true"));
  assert.equal(await $("#example").inputValue(), "seed.json");
  assert.equal(await $("#policy").inputValue(), readFileSync(SEED, "utf8"));
  assert.match(await $("#policy-summary").textContent(), /valid \(1 tool entry, 1 counter\)/);
  const examples = await $("#example option").allTextContents();
  const files = readdirSync(join(ROOT, "envoy/policies"))
    .filter((f) => f.endsWith(".json") && !f.endsWith(".cases.json"))
    .sort((a, b) => (a === "seed.json" ? -1 : b === "seed.json" ? 1 : a < b ? -1 : 1));
  assert.deepEqual(examples, files);
  await until("a preview", async () => (await preview.decision()) === "allowed");
});

test("cache_cas: 30 allowed, the 31st in the minute rate limited, a minute later allowed", async () => {
  await $("#grant").fill(GRANT);
  await setClock(START);
  await setRequest(call("cache_cas"));
  await send(30);
  assert.equal(await last.decision(), "allowed");
  assert.match(await $("#last-index").textContent(), /#30 at 1767225600/);
  assert.match(await last.reply(), /ratelimit: "cache_cas_rate";r=0;t=60/);
  await until("the preview of the 31st", async () => (await preview.decision()) === "denied");
  await send(1);
  assert.equal(await last.decision(), "denied");
  assert.equal(await last.reason(), "rate_limited");
  assert.equal(await last.rule(), "tools.cache_cas.limits[0]");
  assert.match(await last.reply(), /^HTTP 200\n(.*\n)*retry-after: 60\n/);
  assert.match(await last.reply(), /rate limit of 30 calls per minute reached/);
  // The transcript so far is what the command prints for the same 31 requests.
  const expected = cliEval(SEED, Array(31).fill(call("cache_cas")));
  assert.equal(await $("#transcript").textContent(), expected);
  await $("#advance-minute").click();
  assert.equal(await $("#at").inputValue(), String(START + 60));
  await until("the preview a minute later", async () => (await preview.decision()) === "allowed");
  await send(1);
  assert.equal(await last.decision(), "allowed");
  assert.match(await last.evalText(), /^\[32\] allowed\n/);
});

test("a tool the policy does not allow gets the deny reply, as the command prints it", async () => {
  await resetCounters();
  await setRequest(call("cache_flush_all", 9));
  await until("the denial preview", async () => (await preview.decision()) === "denied");
  await send(1);
  assert.equal(await last.decision(), "denied");
  assert.equal(await last.reason(), "not_allowed");
  assert.equal(await last.rule(), "default");
  const reply = await last.reply();
  assert.match(reply, /^HTTP 200\ncontent-type: application\/json\n\n/);
  assert.match(reply, /Toolgate denied tool \\"cache_flush_all\\"/);
  assert.equal(await last.evalText(), cliEval(SEED, [call("cache_flush_all", 9)]));
});

test("an invalid policy shows its problems with their JSON paths, as toolgate check does", async () => {
  const bad = JSON.stringify({
    version: "1", default: "deny",
    tools: { cache_cas: { limits: [{ counter: "c", window: "minutes", max: 30 }] }, "a.b": { x: 1 } },
  }, null, 2);
  await setPolicy(bad);
  await until("the problems", async () => (await $("#problems li").count()) > 0);
  const paths = await $("#problems li .path").allTextContents();
  assert.ok(paths.includes("tools.cache_cas.limits[0].window"), paths.join(", "));
  assert.ok(paths.includes('tools["a.b"].x'), paths.join(", "));
  assert.deepEqual(paths, cliCheck(bad).problems.map((p) => p.path));
  const first = $("#problems li").first();
  assert.match(await first.textContent(), /"minutes" is not a window; expected second, minute, hour or day/);
  assert.match(await first.locator(".where").textContent(), /^line 9, column \d+$/);
  assert.match(await $("#policy-summary").textContent(), /invalid policy: 2 problems/);
  assert.ok(await $("#send").isDisabled());
  // Clicking the problem selects the offending value in the editor.
  await first.click();
  const selected = await page.evaluate(() => {
    const t = document.getElementById("policy");
    return t.value.slice(t.selectionStart, t.selectionEnd);
  });
  assert.equal(selected, '"window": "minutes"');
  // A syntax error points at its byte.
  await setPolicy('{"version": "1",');
  await until("the syntax problem", async () => (await $("#problems li .path").allTextContents()).includes("configuration"));
  assert.match(await $("#problems li").first().textContent(), /unexpected end of JSON at byte 16/);
  // The seed again: valid, fresh counters.
  await $("#example").selectOption("fleet.json");
  await $("#example").selectOption("seed.json");
  await until("the seed again", async () => /✓ valid/.test(await $("#policy-summary").textContent()));
  assert.equal(await $("#problems li").count(), 0);
  assert.ok(!(await $("#send").isDisabled()));
});

test("every template (tools/call, tools/list, batch, resources/read, prompts/get, envelope) answers as the command", async () => {
  const names = await $("#templates button").allTextContents();
  for (const want of ["tools/call", "tools/list", "batch", "resources/read", "prompts/get"]) {
    assert.ok(names.includes(want), `template ${want} missing from ${names}`);
  }
  const seen = {};
  for (const name of names) {
    await resetCounters();
    await $(`#templates button[data-template="${name}"]`).click();
    const text = await $("#request").inputValue();
    await send(1);
    const d = await last.decision();
    assert.notEqual(d, "error", `${name}: ${await $("#last").textContent()}`);
    seen[name] = d;
    assert.equal(await last.evalText(), cliEval(SEED, text, { file: true }), `template ${name}`);
  }
  // The batch holds an allowed call and a denied one: the batch answers the denial.
  assert.equal(seen["batch"], "denied");
  assert.equal(seen["tools/call"], "allowed");
});

test("a run with the clock stepping into the next minute equals toolgate eval --step byte for byte", async () => {
  await resetCounters();
  // From 25 s into a minute, a second a request: 35 in the first minute (3 of them denied
  // tools), so the last 2 of its cache_cas calls are over the limit; then a new window.
  await setClock(START + 25);
  await $("#step").fill("1");
  const requests = [];
  for (let i = 1; i <= 45; i++) {
    const r = i % 11 === 0 ? call("cache_flush_all", i) : call("cache_cas", i);
    await setRequest(r);
    await send(1);
    requests.push(r);
  }
  await $("#step").fill("0");
  assert.equal(await $("#at").inputValue(), String(START + 70));
  const expected = cliEval(SEED, requests, { at: START + 25, step: 1 });
  assert.equal(expected.match(/rate_limited \(/g)?.length, 2);
  assert.match(expected, /\[45\] allowed/);
  assert.equal(await $("#transcript").textContent(), expected);
});

test("fleet.json: a full configuration with fleet-wide limits, answered in the page", async () => {
  await $("#example").selectOption("fleet.json");
  await until("fleet.json", async () => /✓ valid/.test(await $("#policy-summary").textContent()));
  await setClock(START);
  await setRequest(call("cache_cas"));
  await send(31);
  assert.equal(await last.decision(), "denied");
  assert.equal(await last.reason(), "rate_limited");
  assert.equal(await $("#transcript").textContent(), cliEval(FLEET, Array(31).fill(call("cache_cas"))));
});

test("grant, session and header fields reach the engine", async () => {
  await $("#example").selectOption("seed.json");
  await until("the seed", async () => (await $("#policy").inputValue()) === readFileSync(SEED, "utf8"));
  await setClock(START);
  await setRequest(call("cache_cas"));
  await $("#grant").fill("Bearer agent-2");
  await $("#session").fill("s-1");
  await $("#headers").fill("x-tenant: blue");
  await page.waitForTimeout(150);
  await send(1);
  const p = join(work, "one.json");
  writeFileSync(p, call("cache_cas"));
  const expected = execFileSync(TOOLGATE, [
    "eval", SEED, p, "--grant", "Bearer agent-2", "--session", "s-1",
    "--header", "x-tenant: blue", "--at", String(START),
  ], { encoding: "utf8" });
  assert.equal(await last.evalText(), expected);
  await $("#headers").fill("not a header");
  await until("the header error", async () => (await preview.decision()) === "error");
  assert.match(await $("#preview").textContent(), /headers line 1/);
  await $("#headers").fill("");
  await $("#grant").fill(GRANT);
  await $("#session").fill("");
  await until("the preview again", async () => (await preview.decision()) !== "error");
});

test("nothing was fetched from anywhere but the page's server, and no script error", async () => {
  assert.deepEqual(outside, []);
  assert.deepEqual(pageErrors, []);
});

test("screenshot: docs/playground.png", async () => {
  await resetCounters();
  await setClock(START);
  await $("#templates button[data-template='tools/call']").click();
  await $("#repeat").fill("31");
  await send(1);
  await $("#repeat").fill("1");
  assert.equal(await last.reason(), "rate_limited");
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.screenshot({ path: env("SCREENSHOT"), fullPage: true });
});

// ---- run --------------------------------------------------------------------------------

let passed = 0, failed = 0;
try {
  for (const t of tests) {
    try {
      await t.fn();
      passed++;
      console.log(`ok    ${t.name}`);
    } catch (e) {
      failed++;
      console.log(`FAIL  ${t.name}\n      ${String(e?.stack ?? e).split("\n").join("\n      ")}`);
    }
  }
} finally {
  await context.close();
  rmSync(userData, { recursive: true, force: true });
  rmSync(work, { recursive: true, force: true });
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);

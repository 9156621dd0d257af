// The official TypeScript client (@modelcontextprotocol/client, v2) through Envoy: lists,
// calls, and reads denials, then prints one JSON object of what it saw.
//
//   node ts_client.mjs URL MODE     MODE: legacy (2025 handshake) or auto (2026-07-28 when
//                                   the server offers it); TS_CLIENT_DIR: where npm put it
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const [url, mode] = process.argv.slice(2);
const dir = process.env.TS_CLIENT_DIR;
const sdk = await import(pathToFileURL(join(dir, "node_modules/@modelcontextprotocol/client/dist/index.mjs")).href);
const transport = new sdk.StreamableHTTPClientTransport(new URL(url), {
  requestInit: { headers: { authorization: "Bearer ts" } },
});
const client = new sdk.Client({ name: "toolgate-e2e", version: "1.0.0" }, { versionNegotiation: { mode } });
await client.connect(transport);

const call = async (name, args) => {
  const r = await client.callTool({ name, arguments: args });
  return { isError: r.isError === true, text: r.content.map((c) => c.text ?? "").join(""), meta: r._meta ?? null };
};
const seen = {
  protocol: transport.protocolVersion ?? null,
  tools: (await client.listTools()).tools.map((t) => t.name),
  echo: await call("echo", { text: "hello" }),
  notAllowed: await call("cache_set", { key: "k", value: "v" }),
  hidden: await call("cache_delete", { key: "k" }),
  route: await call("route", { region: "eu-west", payload: "p" }),
  routeDenied: await call("route", { region: "us-east", payload: "p" }),
  cas: [],
};
for (let i = 0; i < 6; i++) seen.cas.push(await call("cache_cas", { key: "k", value: "v", cas: i }));
await client.close();
console.log(JSON.stringify(seen));

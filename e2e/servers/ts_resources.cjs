// The official TypeScript SDK's McpServer (1.x, from the MCP Inspector's node_modules) over
// Streamable HTTP, stateless with JSON responses, serving resources. It looks resources up
// by `new URL(uri).toString()`, so spellings the WHATWG URL parser rewrites reach the one
// they rewrite to. Every read is appended to the record file (argv[3]) as a JSON line.
//
//   node e2e/servers/ts_resources.cjs PORT RECORD
const path = require("path");
const NM = path.join(__dirname, "..", "..", ".cache", "inspector", "node_modules");
const sdk = (p) => require(path.join(NM, "@modelcontextprotocol", "sdk", "dist", "cjs", p));
const { McpServer, ResourceTemplate } = sdk("server/mcp.js");
const { StreamableHTTPServerTransport } = sdk("server/streamableHttp.js");
const http = require("http");
const fs = require("fs");

const [port, record] = [Number(process.argv[2]), process.argv[3]];
const read = (uri) => {
  fs.appendFileSync(record, JSON.stringify({ uri: uri.href }) + "\n");
  return { contents: [{ uri: uri.href, text: "contents of " + uri.href }] };
};

function server() {
  const s = new McpServer({ name: "ts-resources", version: "1" });
  for (const uri of ["file:///srv/secret.txt", "file:///srv/readme.txt", "https://internal.example/secret"]) {
    s.resource(uri, uri, async (u) => read(u));
  }
  s.resource("note", new ResourceTemplate("notes://{name}", { list: undefined }), async (u) => read(u));
  return s;
}

http
  .createServer(async (req, res) => {
    const chunks = [];
    for await (const c of req) chunks.push(c);
    let body;
    try {
      body = JSON.parse(Buffer.concat(chunks).toString("utf8"));
    } catch (e) {
      res.writeHead(400).end("invalid JSON");
      return;
    }
    const t = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
    await server().connect(t);
    await t.handleRequest(req, res, body);
  })
  .listen(port, "127.0.0.1");

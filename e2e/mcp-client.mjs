// The official MCP TypeScript SDK against filehub, over Streamable HTTP
// (/v1/mcp) or over stdio (`filehub mcp`). Run by the Go test
// cmd/filehub/mcp_test.go through internal/nodetest:
//
//   MCP_MODE=http|stdio FILEHUB_SERVER=http://127.0.0.1:PORT \
//   FILEHUB_RW_KEY=… FILEHUB_READ_KEY=… [FILEHUB_BIN=/path/to/filehub] node mcp-client.mjs
//
// It lists the tools, uploads a text and a binary file, lists them, reads
// them back byte for byte (tool and resource), subscribes to a resource and
// waits for its update after a delete, checks clear tool errors for bad
// input, and sees a read-only key refused by upload_file. It prints one JSON
// line describing what it saw and exits non-zero on the first failure.
import { randomBytes } from "node:crypto";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { ResourceUpdatedNotificationSchema } from "@modelcontextprotocol/sdk/types.js";

const mode = process.env.MCP_MODE;
const server = process.env.FILEHUB_SERVER;
const rwKey = process.env.FILEHUB_RW_KEY;
const readKey = process.env.FILEHUB_READ_KEY;

function check(cond, msg) {
  if (!cond) throw new Error("check failed: " + msg);
}

async function connect(key, onUpdated) {
  const client = new Client({ name: "filehub-e2e", version: "1.0.0" });
  if (onUpdated) client.setNotificationHandler(ResourceUpdatedNotificationSchema, (n) => onUpdated(n.params.uri));
  let transport;
  if (mode === "http") {
    transport = new StreamableHTTPClientTransport(new URL(server + "/v1/mcp"), {
      requestInit: { headers: { Authorization: `Bearer ${key}` } },
    });
  } else if (mode === "stdio") {
    transport = new StdioClientTransport({
      command: process.env.FILEHUB_BIN,
      args: ["mcp", "--server", server],
      env: { ...process.env, FILEHUB_KEY: key, FILEHUB_SERVER: server },
      stderr: "inherit",
    });
  } else {
    throw new Error(`MCP_MODE must be http or stdio, not ${mode}`);
  }
  await client.connect(transport);
  return client;
}

function textOf(res) {
  return res.content.filter((c) => c.type === "text").map((c) => c.text).join("");
}

async function mustCall(client, name, args) {
  const res = await client.callTool({ name, arguments: args });
  check(!res.isError, `${name}: unexpected tool error: ${textOf(res)}`);
  check(res.structuredContent, `${name}: no structuredContent`);
  return res;
}

async function mustFail(client, name, args, want) {
  const res = await client.callTool({ name, arguments: args });
  check(res.isError === true, `${name}(${JSON.stringify(args).slice(0, 80)}): succeeded, want a tool error`);
  check(textOf(res).includes(want), `${name}: error ${JSON.stringify(textOf(res))} does not contain ${JSON.stringify(want)}`);
  return textOf(res);
}

const out = { mode };
const updates = [];
let wake = () => {};
const rw = await connect(rwKey, (uri) => {
  updates.push(uri);
  wake();
});
try {
  const tools = (await rw.listTools()).tools.map((t) => t.name).sort();
  out.tools = tools;
  for (const t of ["list_files", "get_file", "read_file", "upload_file", "delete_file", "restore_file", "push_to_provider", "storage_stats"]) {
    check(tools.includes(t), `tools/list lacks ${t}: ${tools}`);
  }
  const del = (await rw.listTools()).tools.find((t) => t.name === "delete_file");
  check(del.annotations?.destructiveHint === true, "delete_file is not marked destructive");

  // Upload text and binary content.
  const text = `Grüße aus filehub ${mode} ✓\nline two\n`;
  const bin = randomBytes(1500);
  bin[0] = 0; // never sniffed as text
  const t = (await mustCall(rw, "upload_file", { name: `e2e-${mode}.txt`, text })).structuredContent;
  const b = (await mustCall(rw, "upload_file", { name: `e2e-${mode}.bin`, base64: bin.toString("base64") })).structuredContent;
  check(t.file.size === Buffer.byteLength(text) && !t.deduplicated, `text upload: ${JSON.stringify(t)}`);
  check(b.file.size === bin.length, `binary upload: ${JSON.stringify(b)}`);
  out.uploaded = [t.file.id, b.file.id];

  // List them.
  const listed = (await mustCall(rw, "list_files", { name_prefix: `e2e-${mode}` })).structuredContent.files.map((f) => f.id);
  check(listed.includes(t.file.id) && listed.includes(b.file.id), `list_files: ${listed}`);

  // Read back byte for byte: the tool and the resource.
  const rt = (await mustCall(rw, "read_file", { id: t.file.id })).structuredContent;
  check(rt.kind === "text" && rt.text === text && rt.truncated === false, `read_file text: ${JSON.stringify(rt)}`);
  const rbres = await mustCall(rw, "read_file", { id: b.file.id });
  const emb = rbres.content.find((c) => c.type === "resource");
  check(emb && Buffer.from(emb.resource.blob, "base64").equals(bin), "read_file binary: embedded blob differs");
  const rr = await rw.readResource({ uri: t.file.uri });
  check(rr.contents[0].text === text, "resources/read text differs");
  const rrb = await rw.readResource({ uri: b.file.uri });
  check(Buffer.from(rrb.contents[0].blob, "base64").equals(bin), "resources/read blob differs");
  out.readBack = true;

  // Subscribe, delete, and wait for the update.
  await rw.subscribeResource({ uri: b.file.uri });
  const got = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no resources/updated for ${b.file.uri} within 15s (got ${updates})`)), 15000);
    wake = () => {
      if (updates.includes(b.file.uri)) {
        clearTimeout(timer);
        resolve();
      }
    };
  });
  await mustCall(rw, "delete_file", { id: b.file.id });
  await got;
  out.updated = b.file.uri;

  // Bad input: clear tool errors.
  await mustFail(rw, "upload_file", { name: "bad.bin", base64: "not base64!!" }, "invalid: base64 is not valid");
  await mustFail(rw, "read_file", { id: b.file.id }, "not_found");
  await mustFail(rw, "get_file", { id: "f_nosuchfile" }, "not_found");
  await mustFail(rw, "push_to_provider", { id: t.file.id, provider: "nope" }, 'unknown provider "nope"');
  out.badInput = true;

  // A read-only key: upload_file is not listed, and refused when called.
  const ro = await connect(readKey);
  try {
    const roTools = (await ro.listTools()).tools.map((x) => x.name);
    check(!roTools.includes("upload_file") && roTools.includes("read_file"), `read key tools: ${roTools}`);
    out.readOnlyRefusal = await mustFail(ro, "upload_file", { name: "nope.txt", text: "nope" }, 'lacks the "write" scope');
  } finally {
    await ro.close();
  }
} finally {
  await rw.close();
}
console.log(JSON.stringify(out));

// A client written only from filehub's OpenAPI document: the types come from
// openapi-typescript (generated into ./filehub-api.d.ts by the Go test
// cmd/filehub TestOpenAPITypeScriptClient, or by hand:
//   npx openapi-typescript ../api/openapi.yaml -o filehub-api.d.ts),
// the requests are plain fetch. It uploads a raw body and a multipart pair,
// lists every page, stats, downloads whole and by range, deletes and
// restores, and checks each answer; it prints a JSON summary for the test.
//
// Environment: FILEHUB_URL (base URL), FILEHUB_KEY (a key with read and
// write scopes).
import type { components, paths } from "./filehub-api";

// The script needs nothing from Node's typings but the environment and the
// exit code; declaring them keeps the type-check free of @types/node.
declare const process: { env: Record<string, string | undefined>; exit(code: number): never };

type Upload = components["schemas"]["Upload"];
type UploadList = components["schemas"]["UploadList"];
type FileRecord = components["schemas"]["File"];
type Problem = components["schemas"]["Problem"];
type FileList = paths["/v1/files"]["get"]["responses"][200]["content"]["application/json"];
type ListQuery = NonNullable<paths["/v1/files"]["get"]["parameters"]["query"]>;
type Created = paths["/v1/files"]["post"]["responses"][201]["content"]["application/json"];

const base = (process.env.FILEHUB_URL ?? "http://127.0.0.1:8080").replace(/\/+$/, "");
const key = process.env.FILEHUB_KEY ?? "";
const auth = { Authorization: `Bearer ${key}` };

function fail(msg: string): never {
  console.error(`openapi-client: ${msg}`);
  process.exit(1);
}

async function expectJSON<T>(res: Response, status: number): Promise<T> {
  const body = await res.text();
  if (res.status !== status) {
    fail(`${res.url}: ${res.status}, want ${status}: ${body}`);
  }
  return JSON.parse(body) as T;
}

async function sha256(data: Uint8Array<ArrayBuffer>): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", data);
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

const encoder = new TextEncoder();
const stamp = `${Date.now()}-${Math.random().toString(36).slice(2)}`;
const content = encoder.encode(`hello from the generated client ${stamp}\n`);

// Upload a raw body: ?name= names it.
const raw: Upload = await expectJSON<Upload>(
  await fetch(`${base}/v1/files?name=${encodeURIComponent("generated.txt")}`, {
    method: "POST",
    headers: { ...auth, "Content-Type": "application/octet-stream" },
    body: content,
  }),
  201,
);
if (raw.size !== content.length || raw.sha256 !== (await sha256(content)) || raw.deduplicated) {
  fail(`raw upload answered ${JSON.stringify(raw)}`);
}

// Upload two parts at once: several parts answer an UploadList.
const form = new FormData();
form.append("file", new Blob([encoder.encode(`part a ${stamp}`)]), "a.txt");
form.append("file", new Blob([content]), "same-as-raw.txt");
const created: Created = await expectJSON<Created>(
  await fetch(`${base}/v1/files`, { method: "POST", headers: auth, body: form }),
  201,
);
if (!("files" in created)) {
  fail(`two parts answered one upload: ${JSON.stringify(created)}`);
}
const parts: UploadList = created;
if (parts.files.length !== 2 || !parts.files[1].deduplicated) {
  fail(`multipart upload answered ${JSON.stringify(parts)}`);
}

// List every page, two files at a time, until next_cursor is absent.
const seen: FileRecord[] = [];
let query: ListQuery = { limit: 2 };
for (let pages = 0; ; pages++) {
  if (pages > 1000) fail("listing does not end");
  const params = new URLSearchParams({ limit: String(query.limit) });
  if (query.cursor) params.set("cursor", query.cursor);
  const page: FileList = await expectJSON<FileList>(await fetch(`${base}/v1/files?${params}`, { headers: auth }), 200);
  seen.push(...page.files);
  if (!page.next_cursor) break;
  query = { limit: 2, cursor: page.next_cursor };
}
for (const id of [raw.id, ...parts.files.map((f) => f.id)]) {
  if (!seen.some((f) => f.id === id)) fail(`file ${id} is missing from the listing`);
}

// Stat, then download whole and by range, then revalidate with the ETag.
const stat: FileRecord = await expectJSON<FileRecord>(await fetch(`${base}/v1/files/${raw.id}`, { headers: auth }), 200);
if (stat.sha256 !== raw.sha256) fail(`stat answered ${JSON.stringify(stat)}`);

const whole = await fetch(`${base}/v1/files/${raw.id}/content`, { headers: auth });
const got = new Uint8Array(await whole.arrayBuffer());
if (whole.status !== 200 || (await sha256(got)) !== raw.sha256) fail(`download: ${whole.status}, ${got.length} bytes`);
const etag = whole.headers.get("ETag");
if (etag !== `"${raw.sha256}"`) fail(`ETag ${etag}`);

const part = await fetch(`${base}/v1/files/${raw.id}/content`, { headers: { ...auth, Range: "bytes=0-4" } });
const partText = await part.text();
if (part.status !== 206 || partText !== "hello") fail(`range: ${part.status} ${JSON.stringify(partText)}`);

const cached = await fetch(`${base}/v1/files/${raw.id}/content`, { headers: { ...auth, "If-None-Match": etag } });
if (cached.status !== 304) fail(`If-None-Match: ${cached.status}`);

// Delete, see the problem document for a second delete, restore.
const deleted: FileRecord = await expectJSON<FileRecord>(await fetch(`${base}/v1/files/${raw.id}`, { method: "DELETE", headers: auth }), 200);
if (!deleted.deleted_at || !deleted.purge_after) fail(`delete answered ${JSON.stringify(deleted)}`);
const again = await fetch(`${base}/v1/files/${raw.id}`, { method: "DELETE", headers: auth });
if (again.headers.get("Content-Type") !== "application/problem+json") fail(`second delete: ${again.status}`);
const problem: Problem = await expectJSON<Problem>(again, again.status);
if (problem.status !== again.status || problem.type !== `urn:filehub:error:${problem.code}`) {
  fail(`problem ${JSON.stringify(problem)}`);
}
const restored: FileRecord = await expectJSON<FileRecord>(
  await fetch(`${base}/v1/files/${raw.id}/restore`, { method: "POST", headers: auth }),
  200,
);
if (restored.deleted_at) fail(`restore answered ${JSON.stringify(restored)}`);

console.log(
  JSON.stringify({
    uploaded: raw.id,
    multipart: parts.files.map((f) => f.id),
    listed: seen.length,
    downloaded_sha256: await sha256(got),
    second_delete: problem.code,
  }),
);

// Tests the dashboard's Prometheus text parser (ui/assets/js/metrics.js)
// in Node: tricky exposition lines with known answers, garbage that must
// not throw, and, when given a file, a real filehub /metrics answer
// written by the Go test (cmd/filehub TestUIMetricsParser), whose parse it
// prints as JSON: {"names": [...], "uploadsStored": N}.

import { readFileSync } from "node:fs";
import assert from "node:assert/strict";
import { parse, Snapshot, rate, meanOver } from "../ui/assets/js/metrics.js";

const text = [
  "# HELP a_total A counter.",
  "# TYPE a_total counter",
  'a_total{result="ok"} 3',
  'a_total{result="err",path="C:\\\\dir \\"x\\"\\nnext"} 4 1700000000000',
  "b_gauge 1.5e3",
  "c_inf +Inf",
  "d_nan NaN",
  'h_bucket{le="0.5"} 1',
  'h_bucket{le="+Inf"} 2',
  "h_sum 0.75",
  "h_count 2",
  "",
].join("\n");
const s = parse(text);
assert.equal(s.length, 9);
assert.deepEqual(s[1].labels, { result: "err", path: 'C:\\dir "x"\nnext' });
assert.equal(s[1].value, 4);
assert.equal(s[2].value, 1500);
assert.equal(s[3].value, Infinity);
assert.ok(Number.isNaN(s[4].value));
const snap = new Snapshot(s, 10000);
assert.equal(snap.sum("a_total"), 7);
assert.equal(snap.sum("a_total", { result: "ok" }), 3);
assert.equal(snap.sum("missing"), null);
assert.deepEqual(snap.by("a_total", "result"), { ok: 3, err: 4 });
const later = new Snapshot(parse(text.replace('a_total{result="ok"} 3', 'a_total{result="ok"} 13').replace("h_sum 0.75", "h_sum 1.75").replace("h_count 2", "h_count 4")), 20000);
assert.equal(rate(snap, later, "a_total", { result: "ok" }), 1);
assert.equal(rate(snap, later, "never_seen"), 0); // an absent labelled counter is 0
assert.equal(rate(later, snap, "a_total"), null); // a reset
assert.equal(rate(null, snap, "a_total"), null);
assert.equal(meanOver(snap, later, "h"), 0.5);
assert.equal(meanOver(snap, snap, "h"), null);

// Garbage must not throw, whatever it yields.
const junk = ['{', 'x{a="', 'x{a="b"', 'x{="b"} 1', "x y z", "\u0000", '{a="b"} 1', "x{a=b} 1", " ".repeat(1000)];
for (let i = 0; i < 2000; i++) {
  const line = junk[i % junk.length] + String.fromCharCode(i % 128).repeat(i % 7);
  parse(line);
}

const file = process.argv[2];
if (file) {
  const real = parse(readFileSync(file, "utf8"));
  const names = [...new Set(real.map((x) => x.name))].sort();
  const stored = new Snapshot(real, 0).sum("filehub_uploads_total", { result: "stored" });
  console.log(JSON.stringify({ names, uploadsStored: stored }));
} else {
  console.log("ok");
}

// Reading the server's Prometheus metrics. There is no JSON endpoint for
// the connection metrics, so the page reads GET /metrics (text exposition
// format; it needs a key with the metrics or admin scope) at most every
// POLL_MS and derives rates from two successive reads.

export const POLL_MS = 15000;

// parse returns the samples of a text exposition: [{name, labels, value}].
export function parse(text) {
  const out = [];
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (!line || line.startsWith("#")) continue;
    let name;
    let labels = {};
    let rest;
    const brace = line.indexOf("{");
    const space = line.indexOf(" ");
    if (brace >= 0 && (space < 0 || brace < space)) {
      name = line.slice(0, brace);
      const end = parseLabels(line, brace + 1, labels);
      if (end < 0) continue;
      rest = line.slice(end + 1).trim();
    } else {
      name = line.slice(0, space);
      rest = line.slice(space + 1).trim();
    }
    const value = parseValue(rest.split(/\s+/)[0]);
    out.push({ name, labels, value });
  }
  return out;
}

// parseValue reads a sample value: a Go float, including +Inf, -Inf and
// NaN, which Number() does not know.
function parseValue(v) {
  if (v === "+Inf" || v === "Inf") return Infinity;
  if (v === "-Inf") return -Infinity;
  return Number(v);
}

// parseLabels reads name="value" pairs from line at i (after "{") into
// labels and returns the index of the closing "}", or -1.
function parseLabels(line, i, labels) {
  while (i < line.length) {
    if (line[i] === "}") return i;
    if (line[i] === "," || line[i] === " ") {
      i++;
      continue;
    }
    const eq = line.indexOf("=", i);
    if (eq < 0 || line[eq + 1] !== '"') return -1;
    const key = line.slice(i, eq);
    let j = eq + 2;
    let v = "";
    while (j < line.length && line[j] !== '"') {
      if (line[j] === "\\" && j + 1 < line.length) {
        const c = line[j + 1];
        v += c === "n" ? "\n" : c;
        j += 2;
      } else {
        v += line[j++];
      }
    }
    labels[key] = v;
    i = j + 1;
  }
  return -1;
}

// Snapshot is one read of /metrics with helpers to sum and group.
export class Snapshot {
  constructor(samples, time) {
    this.samples = samples;
    this.time = time;
  }

  // sum adds the values of name's samples whose labels match want.
  sum(name, want = {}) {
    let s = 0;
    let found = false;
    for (const x of this.samples) {
      if (x.name !== name) continue;
      if (Object.entries(want).some(([k, v]) => x.labels[k] !== v)) continue;
      s += x.value;
      found = true;
    }
    return found ? s : null;
  }

  // by groups name's samples by one label: {labelValue: sum}.
  by(name, label, want = {}) {
    const out = {};
    for (const x of this.samples) {
      if (x.name !== name) continue;
      if (Object.entries(want).some(([k, v]) => x.labels[k] !== v)) continue;
      const k = x.labels[label] ?? "";
      out[k] = (out[k] || 0) + x.value;
    }
    return out;
  }
}

// rate is the per-second increase of a counter between two snapshots, or
// null when unknown (first read, or a restart reset the counter). A
// labelled counter has no series until its first increment: absent is 0.
export function rate(prev, cur, name, want = {}) {
  if (!prev) return null;
  const a = prev.sum(name, want) ?? 0;
  const b = cur.sum(name, want) ?? 0;
  const dt = (cur.time - prev.time) / 1000;
  if (b < a || dt <= 0) return null;
  return (b - a) / dt;
}

// meanOver is the mean observation of a histogram between two snapshots
// (increase of _sum over increase of _count), or null without new ones.
export function meanOver(prev, cur, name) {
  if (!prev) return null;
  const ds = cur.sum(name + "_sum") - prev.sum(name + "_sum");
  const dc = cur.sum(name + "_count") - prev.sum(name + "_count");
  if (!(dc > 0) || ds < 0) return null;
  return ds / dc;
}

// DOM helpers. Everything a user or the server supplies reaches the page as
// text: el() turns string children into text nodes and never parses HTML,
// so a file named <img src=x onerror=alert(1)>.txt is shown, not run.

// el creates an element. attrs: "class", "text", "hidden", "disabled",
// "onclick"-style handlers ("on" + event name, a function), anything else
// becomes an attribute. Children are nodes or strings (as text).
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = String(v);
    else if (k.startsWith("on") && typeof v === "function") node.addEventListener(k.slice(2), v);
    else if (k === "hidden" || k === "disabled" || k === "checked") node[k] = Boolean(v);
    else if (k === "value") node.value = v;
    else node.setAttribute(k, v === true ? "" : String(v));
  }
  append(node, ...children);
  return node;
}

export function append(node, ...children) {
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

// replace empties node and appends children.
export function replace(node, ...children) {
  node.replaceChildren();
  return append(node, ...children);
}

export function $(id) {
  return document.getElementById(id);
}

const units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];

export function fmtBytes(n) {
  if (n === null || n === undefined || Number.isNaN(n)) return "–";
  let i = 0;
  let v = Math.abs(n);
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  const s = i === 0 ? String(v) : v.toFixed(v < 10 ? 2 : 1);
  return (n < 0 ? "-" : "") + s + " " + units[i];
}

export function fmtNum(n, digits = 0) {
  if (n === null || n === undefined || Number.isNaN(n)) return "–";
  return n.toLocaleString("en", { maximumFractionDigits: digits, minimumFractionDigits: digits });
}

export function fmtSeconds(s) {
  if (s === null || s === undefined || Number.isNaN(s)) return "–";
  if (s < 1) return fmtNum(s * 1000, 1) + " ms";
  return fmtNum(s, 2) + " s";
}

export function fmtTime(t) {
  if (!t) return "–";
  const d = new Date(t);
  if (Number.isNaN(d.getTime())) return String(t);
  return d.toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z");
}

// table builds a table from column headers and rows of cells (nodes or text).
export function table(headers, rows, attrs = {}) {
  return el("table", attrs,
    el("thead", {}, el("tr", {}, headers.map((h) => el("th", { text: h })))),
    el("tbody", {}, rows.map((r) => el("tr", r.attrs || {}, (r.cells || r).map((c) => el("td", {}, c))))));
}

// notice shows a message in a status element, kind "error", "ok" or "info".
export function notice(node, kind, msg) {
  node.className = "notice " + kind;
  node.textContent = msg;
  node.hidden = !msg;
}

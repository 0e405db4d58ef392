// Small DOM helpers: elements built from data (text is always set as text, never parsed as HTML).

export const $ = (selector, root = document) => root.querySelector(selector);

/** h("button", {class: "primary", onclick}, "Save") — attributes, event handlers, children. */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) el.addEventListener(name.slice(2), value);
    else if (name === "class") el.className = value;
    else if (name === "text") el.textContent = value;
    else if (name in el && typeof value !== "string") el[name] = value;
    else el.setAttribute(name, value === true ? "" : value);
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === undefined || child === null || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else el.append(child instanceof Node ? child : String(child));
  }
}

export function pill(text, cls) {
  return h("span", {class: `pill ${cls ?? text ?? ""}`}, text ?? "");
}

/** A time shown in the browser's zone, ISO in its title. */
export function when(iso) {
  if (!iso) return h("span", {class: "muted"}, "—");
  const d = new Date(iso);
  const ago = (Date.now() - d.getTime()) / 1000;
  const rel = ago < 0 ? "" : ago < 90 ? `${Math.round(ago)} s ago` : ago < 5400 ? `${Math.round(ago / 60)} min ago`
    : ago < 172800 ? `${Math.round(ago / 3600)} h ago` : "";
  const text = d.toLocaleString(undefined, {dateStyle: "short", timeStyle: "medium"});
  return h("time", {datetime: iso, title: iso}, rel ? `${text} (${rel})` : text);
}

export function json(value) {
  return h("pre", {}, typeof value === "string" ? value : JSON.stringify(value, null, 2));
}

/**
 * A table: columns are [label, (row) => node|string, {class}?]; onRow makes rows clickable (and
 * reachable with Tab + Enter).
 */
export function table(columns, rows, {empty = "Nothing here.", onRow, rowClass} = {}) {
  const head = h("tr", {}, columns.map(([label, , opts]) => h("th", {class: opts?.class}, label)));
  const body = rows.map((row) => {
    const tr = h("tr", {class: rowClass ? rowClass(row) : undefined},
      columns.map(([, render, opts]) => h("td", {class: opts?.class}, render(row))));
    if (onRow) {
      tr.classList.add("clickable");
      tr.tabIndex = 0;
      tr.addEventListener("click", (e) => { if (!e.target.closest("button, a, input")) onRow(row); });
      tr.addEventListener("keydown", (e) => { if (e.key === "Enter" && e.target === tr) onRow(row); });
    }
    return tr;
  });
  if (!rows.length) body.push(h("tr", {}, h("td", {colspan: columns.length, class: "muted"}, empty)));
  return h("div", {class: "scroll"}, h("table", {}, h("thead", {}, head), h("tbody", {}, body)));
}

export function section(title, ...children) {
  return h("section", {}, h("h2", {}, ...(Array.isArray(title) ? title : [title])), ...children);
}

/** Feedback beside a button: text with a good/bad colour. */
export function feedback(el, text, good = true) {
  el.textContent = text;
  el.className = `feedback ${good ? "good" : "bad"}`;
}

/** The values of a form's named fields; empty strings left out. */
export function formValues(form) {
  const out = {};
  for (const el of form.elements) {
    if (!el.name) continue;
    if (el.type === "checkbox") out[el.name] = el.checked;
    else if (el.value !== "") out[el.name] = el.value;
  }
  return out;
}

/** "2026-12-01T10:00" from a datetime-local input (the browser's zone) → ISO in UTC. */
export function localToIso(value) {
  return value ? new Date(value).toISOString() : undefined;
}

/** Ask before a change; resolves true when confirmed. Enter confirms, Escape cancels. */
export function confirmDialog(text, okLabel = "Confirm") {
  const dialog = $("#confirm");
  $("#confirm-text").textContent = text;
  $("#confirm-ok").textContent = okLabel;
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), {once: true});
    dialog.returnValue = "";
    dialog.showModal();
    $("#confirm-ok").focus();
  });
}

/** Parse a JSON textarea; an error names the field. */
export function parseJson(text, what) {
  if (!text.trim()) return {};
  try { return JSON.parse(text); } catch (e) { throw new Error(`${what} is not valid JSON: ${e.message}`); }
}

/** Replace an element's children, skipping null/false (replaceChildren would print them). */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

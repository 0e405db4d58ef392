// Events: a filtered, paged list, and one event with its payload, deliveries, attempts and the post made.
import {api, names} from "./api.js";
import {feedback, fill, formValues, h, json, localToIso, parseJson, pill, section, table, when} from "./dom.js";

export const PAGE = 25;
const STATUSES = ["pending", "delivered", "failed", "unrouted", "ignored"];

function isoToLocal(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  return new Date(d.getTime() - d.getTimezoneOffset() * 60000).toISOString().slice(0, 16);
}

export async function eventList({params}) {
  const known = await names();
  const filters = Object.fromEntries(["source_id", "type", "status", "since", "until", "q", "before"]
    .map((k) => [k, params.get(k) || undefined]));
  const rows = await api("/api/v1/events", {params: {...filters, limit: PAGE}});

  const form = h("form", {class: "bar", id: "event-filters", onsubmit: (e) => {
    e.preventDefault();
    const v = formValues(form);
    const next = new URLSearchParams();
    for (const k of ["source_id", "type", "status", "q"]) if (v[k]) next.set(k, v[k]);
    for (const k of ["since", "until"]) if (v[k]) next.set(k, localToIso(v[k]));
    location.hash = `#/events?${next}`;
  }},
    h("label", {}, "Source", h("select", {name: "source_id"}, h("option", {value: ""}, "any"),
      known.sources.map((s) => h("option", {value: s.id, selected: s.id === filters.source_id}, s.name)))),
    h("label", {}, "Type", h("input", {name: "type", value: filters.type || "", placeholder: "issues.opened", size: 16})),
    h("label", {}, "Status", h("select", {name: "status"}, h("option", {value: ""}, "any"),
      STATUSES.map((s) => h("option", {value: s, selected: s === filters.status}, s)))),
    h("label", {}, "From", h("input", {name: "since", type: "datetime-local", value: isoToLocal(filters.since)})),
    h("label", {}, "To", h("input", {name: "until", type: "datetime-local", value: isoToLocal(filters.until)})),
    h("label", {}, "Text", h("input", {name: "q", type: "search", value: filters.q || "", placeholder: "subject, type or id", size: 18})),
    h("button", {type: "submit", class: "primary"}, "Filter"),
    h("a", {href: "#/events"}, "Clear"));

  const list = table([
    ["received", (e) => when(e.received_at)],
    ["source", (e) => known.source.get(e.source_id)?.name ?? e.source_id],
    ["type", (e) => e.type],
    ["subject", (e) => e.subject ?? "", {class: "wrap"}],
    ["status", (e) => pill(e.status)],
  ], rows, {empty: "No event matches.", onRow: (e) => { location.hash = `#/events/${e.id}`; }});

  const pager = h("div", {class: "row", id: "pager"},
    filters.before ? h("button", {onclick: () => history.back()}, "← Newer") : null,
    rows.length === PAGE ? h("button", {id: "older", onclick: () => {
      const next = new URLSearchParams(params);
      next.set("before", rows[rows.length - 1].id);
      location.hash = `#/events?${next}`;
    }}, "Older →") : null,
    h("span", {class: "muted"}, `${rows.length} shown${filters.before ? " (older page)" : ""}`));
  return section("Events", form, list, pager);
}

export async function eventDetail({id}) {
  const [ev, known] = await Promise.all([api(`/api/v1/events/${encodeURIComponent(id)}`), names()]);
  const source = known.source.get(ev.source_id);
  const head = h("div", {class: "row"},
    pill(ev.status), h("strong", {}, ev.type), ev.subject ? h("span", {}, ev.subject) : null,
    h("span", {class: "muted"}, `from ${source ? source.name : ev.source_id} (${ev.connector})`), when(ev.received_at),
    h("code", {}, ev.id));
  const deliveries = ev.deliveries.length
    ? ev.deliveries.map((d) => deliveryBlock(d, known))
    : [h("p", {class: "muted"}, "No delivery: no route took this event.")];
  return [
    h("p", {}, h("a", {href: "#/events"}, "← Events")),
    section(["Event", replayButton(ev)], head,
      h("h3", {}, "Payload"), json(ev.payload),
      h("details", {}, h("summary", {}, "Headers"), json(ev.headers))),
    section("Deliveries", ...deliveries),
    previewSection(ev, known),
  ];
}

function replayButton(ev) {
  const note = h("span");
  const button = h("button", {onclick: async () => {
    button.disabled = true;
    try {
      const made = await api(`/api/v1/events/${ev.id}/replay`, {method: "POST"});
      feedback(note, ` replayed: ${made.length} new deliver${made.length === 1 ? "y" : "ies"}`);
    } catch (e) { feedback(note, ` ${e.message}`, false); }
    button.disabled = false;
  }}, "Replay");
  return h("span", {}, button, note);
}

function deliveryBlock(d, known) {
  const target = known.target.get(d.target_id);
  const post = d.remote_url
    ? h("a", {href: d.remote_url, target: "_blank", rel: "noopener noreferrer", class: "post-link"}, d.remote_id || "the post")
    : d.remote_id ? h("code", {}, d.remote_id) : h("span", {class: "muted"}, "—");
  const requestBox = h("div", {class: "request"});
  const note = h("span");
  const retry = ["dead", "failed", "skipped"].includes(d.status) ? h("button", {class: "retry", onclick: async () => {
    retry.disabled = true;
    try {
      await api(`/api/v1/deliveries/${d.id}/retry`, {method: "POST"});
      feedback(note, " queued: it is sent again now");
    } catch (e) { feedback(note, ` ${e.message}`, false); retry.disabled = false; }
  }}, "Retry") : null;
  const show = h("button", {onclick: async () => {
    const r = await api(`/api/v1/deliveries/${d.id}/request`);
    fill(requestBox,
      h("p", {class: "muted"}, `Rendered now with ${r.mapping_version ?? "no mapping"}, secrets masked; sent with ${d.mapping_version ?? "—"}.`),
      r.rendering.request ? json(r.rendering.request) : json(r.rendering));
  }}, "Show request");
  return h("div", {class: "delivery", "data-delivery": d.id},
    h("h3", {}, "To ", target ? target.name : d.target_id, " ", pill(d.status)),
    h("div", {class: "row"},
      h("span", {}, "mapping ", h("code", {class: "mapping-version"}, d.mapping_version ?? "—")),
      h("span", {}, "post ", post),
      h("span", {class: "muted"}, `${d.attempts} attempt${d.attempts === 1 ? "" : "s"}`),
      d.next_attempt_at ? h("span", {}, "next ", when(d.next_attempt_at)) : null,
      show, retry, note),
    d.last_error ? h("p", {class: "feedback bad"}, d.last_error) : null,
    requestBox,
    table([
      ["#", (a) => String(a.number), {class: "num"}],
      ["started", (a) => when(a.started_at)],
      ["outcome", (a) => pill(a.outcome)],
      ["HTTP", (a) => a.status_code ?? "—", {class: "num"}],
      ["latency", (a) => `${Math.round(a.latency_ms)} ms`, {class: "num"}],
      ["error", (a) => a.error ?? "", {class: "wrap"}],
      ["answer", (a) => a.response_excerpt ? h("details", {}, h("summary", {}, "response"), json(a.response_excerpt)) : "", {class: "wrap"}],
    ], d.attempt_log, {empty: "No attempt yet."}));
}

function previewSection(ev, known) {
  const kinds = [...new Set(known.targets.map((t) => t.kind).concat(["webhook", "inbox"]))];
  const firstKind = ev.deliveries.length ? known.target.get(ev.deliveries[0].target_id)?.kind : undefined;
  const out = h("div", {id: "preview-out"});
  const form = h("form", {class: "grid", id: "preview-form", onsubmit: async (e) => {
    e.preventDefault();
    const v = formValues(form);
    let mapping = v.mapping ? v.mapping.trim() : null;
    try {
      if (mapping && mapping.startsWith("{")) mapping = parseJson(mapping, "the mapping");
      const r = await api("/api/v1/preview", {method: "POST", body: {
        connector: ev.connector, event_type: ev.type, payload: ev.payload, mapping, target_kind: v.target_kind}});
      fill(out,
        r.applies ? null : h("p", {}, "The mapping's when is false: this event would be skipped."),
        r.warnings.length ? h("p", {class: "feedback bad"}, `Empty fields: ${r.warnings.join(", ")}`) : null,
        r.post ? h("div", {class: "cols"}, h("div", {}, h("h3", {}, "Post"), json(r.post)),
          h("div", {}, h("h3", {}, "Request"), json(r.request))) : null);
    } catch (err) { out.replaceChildren(h("p", {class: "feedback bad"}, err.message)); }
  }},
    h("label", {class: "full"}, "Mapping: a name, an inline mapping (JSON), or empty for the default",
      h("textarea", {name: "mapping", rows: 3, placeholder: "issues.opened  or  {\"post\": {\"title\": \"{{ payload.issue.title }}\"}}"})),
    h("label", {}, "Target kind", h("select", {name: "target_kind"},
      kinds.map((k) => h("option", {value: k, selected: k === (firstKind || "webhook")}, k)))),
    h("div", {class: "actions"}, h("button", {type: "submit", class: "primary"}, "Preview")));
  // Enter in the textarea adds a line; Ctrl+Enter previews
  form.mapping.addEventListener("keydown", (e) => { if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) form.requestSubmit(); });
  return section("Mapping preview on this event", form, out);
}

export {isoToLocal};

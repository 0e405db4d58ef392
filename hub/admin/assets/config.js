// Sources, targets and routes: list, create, edit, enable/disable; a route's dry run.
import {api, forgetNames, names} from "./api.js";
import {feedback, fill, formValues, h, json, parseJson, pill, section, table, when} from "./dom.js";

const pretty = (v) => JSON.stringify(v, null, 2);

/** A list with a create/edit form above it: fields(row) builds the inputs, save(values, row) writes. */
function editor({title, what, rows, columns, fields, save}) {
  const holder = h("div");
  const open = (row) => {
    const note = h("span", {class: "feedback"});
    const form = h("form", {class: "grid", id: `${what}-form`, onsubmit: async (e) => {
      e.preventDefault();
      try {
        await save(formValues(form), row, form);
        forgetNames();
        feedback(note, row ? "Saved." : "Created.");
        window.dispatchEvent(new HashChangeEvent("hashchange"));  // the list again, with the change
      } catch (err) { feedback(note, err.message, false); }
    }},
      h("div", {class: "full"}, h("strong", {}, row ? `Edit ${what} ${row.name ?? row.id}` : `New ${what}`)),
      fields(row),
      h("div", {class: "actions"}, h("button", {type: "submit", class: "primary"}, row ? "Save" : "Create"),
        h("button", {type: "button", onclick: () => holder.replaceChildren()}, "Cancel"), note));
    holder.replaceChildren(form);
    form.querySelector("input, select, textarea")?.focus();
  };
  const list = table([...columns, ["", (row) => h("span", {class: "row"},
    h("button", {class: "edit", onclick: () => open(row)}, "Edit"),
    toggle(what, row))]], rows, {empty: `No ${what} yet.`});
  return section([title, h("button", {id: `new-${what}`, class: "primary", onclick: () => open(null)}, `New ${what}`)], holder, list);
}

function toggle(what, row) {
  const path = {source: "sources", target: "targets", route: "routes"}[what];
  const button = h("button", {class: "toggle", onclick: async () => {
    button.disabled = true;
    try {
      await api(`/api/v1/${path}/${row.id}`, {method: "PATCH", body: {enabled: !row.enabled}});
      forgetNames();
      window.dispatchEvent(new HashChangeEvent("hashchange"));
    } catch (e) { button.disabled = false; button.title = e.message; button.textContent = `${button.textContent} (failed: ${e.message})`; }
  }}, row.enabled ? "Disable" : "Enable");
  return button;
}

const state = (row) => pill(row.enabled ? "enabled" : "disabled");

// --- sources

export async function sources() {
  const [known, connectors] = await Promise.all([names(true), api("/api/v1/connectors")]);
  const byId = new Map(connectors.map((c) => [c.id, c]));
  return editor({
    title: "Sources", what: "source", rows: known.sources,
    columns: [
      ["name", (s) => s.name], ["connector", (s) => byId.get(s.connector)?.title ?? s.connector], ["state", state],
      ["secret", (s) => s.has_secret ? "set" : h("span", {class: "muted"}, "none")],
      ["webhook URL", (s) => h("code", {}, s.ingest_url), {class: "wrap"}],
      ["created", (s) => when(s.created_at)],
    ],
    fields: (row) => [
      row ? null : h("label", {}, "Connector", h("select", {name: "connector", required: true},
        connectors.map((c) => h("option", {value: c.id}, `${c.title} (${c.id})`)))),
      h("label", {}, "Name", h("input", {name: "name", required: !row, value: row ? row.name : ""})),
      h("label", {}, row && row.has_secret ? "New secret (empty: keep)" : "Secret",
        h("input", {name: "secret", type: "password", autocomplete: "new-password"})),
      h("label", {class: "check"}, h("input", {name: "enabled", type: "checkbox", checked: row ? row.enabled : true}), "enabled"),
      h("label", {class: "full"}, "Settings (JSON; secret settings are write-only)",
        h("textarea", {name: "settings", rows: 3}, row ? pretty(row.settings) : "{}")),
    ],
    save: async (v, row) => {
      const settings = parseJson(v.settings || "", "Settings");
      if (row) {
        const body = {};
        if (v.name && v.name !== row.name) body.name = v.name;
        if (v.secret) body.secret = v.secret;
        if (v.enabled !== row.enabled) body.enabled = v.enabled;
        if (pretty(settings) !== pretty(row.settings)) body.settings = settings;
        await api(`/api/v1/sources/${row.id}`, {method: "PATCH", body});
      } else {
        await api("/api/v1/sources", {method: "POST", body: {connector: v.connector, name: v.name, secret: v.secret, settings, enabled: v.enabled}});
      }
    },
  });
}

// --- targets

let kinds = null;
/** Each target kind with its example settings, read from the API description (the kinds' manifests). */
async function targetKinds() {
  if (!kinds) {
    const doc = await (await fetch("/openapi.json")).json();
    const mapping = doc.paths["/api/v1/targets"].post.requestBody.content["application/json"].schema.discriminator.mapping;
    kinds = Object.entries(mapping).map(([kind, ref]) => {
      const schema = doc.components.schemas[ref.split("/").pop()];
      const example = {...(schema.examples || [{}])[0]};
      for (const common of ["kind", "name", "enabled", "retry_schedule", "rate_limit_per_second"]) delete example[common];
      return {kind, example, description: schema.description || ""};
    }).sort((a, b) => a.kind.localeCompare(b.kind));
  }
  return kinds;
}

export async function targets() {
  const [known, allKinds] = await Promise.all([names(true), targetKinds()]);
  return editor({
    title: "Targets", what: "target", rows: known.targets,
    columns: [
      ["name", (t) => t.name], ["kind", (t) => t.kind], ["state", state],
      ["breaker", (t) => h("span", {}, pill(t.breaker_state.replace("_", " "), t.breaker_state), t.disabled_reason ? ` ${t.disabled_reason}` : "")],
      ["url", (t) => t.url ? h("code", {}, t.url) : "", {class: "wrap"}],
      ["secrets set", (t) => t.secrets_set.join(", ")],
    ],
    fields: (row) => {
      const settings = h("textarea", {name: "settings", rows: 4}, row ? pretty(row.settings) : pretty(allKinds[0]?.example ?? {}));
      const help = h("p", {class: "muted full"}, row ? `Secret settings (${row.secrets_set.join(", ") || "none set"}; a secret URL) are write-only: add one here to replace it.` : allKinds[0]?.description);
      return [
        row ? null : h("label", {}, "Kind", h("select", {name: "kind", onchange: (e) => {
          const k = allKinds.find((x) => x.kind === e.target.value);
          settings.value = pretty(k.example);
          help.textContent = k.description;
        }}, allKinds.map((k) => h("option", {value: k.kind}, k.kind)))),
        h("label", {}, "Name", h("input", {name: "name", required: !row, value: row ? row.name : ""})),
        h("label", {class: "check"}, h("input", {name: "enabled", type: "checkbox", checked: row ? row.enabled : true}), "enabled"),
        h("label", {class: "full"}, "Settings (JSON)", settings),
        help,
      ];
    },
    save: async (v, row) => {
      const settings = parseJson(v.settings || "", "Settings");
      if (row) {
        const body = {};
        if (v.name && v.name !== row.name) body.name = v.name;
        if (v.enabled !== row.enabled) body.enabled = v.enabled;
        if (pretty(settings) !== pretty(row.settings)) Object.assign(body, settings);
        await api(`/api/v1/targets/${row.id}`, {method: "PATCH", body});
      } else {
        await api("/api/v1/targets", {method: "POST", body: {...settings, kind: v.kind, name: v.name, enabled: v.enabled}});
      }
    },
  });
}

// --- routes

function mappingValue(text) {
  const s = (text || "").trim();
  if (!s) return null;
  return s.startsWith("{") ? parseJson(s, "The mapping") : s;
}
const mappingText = (m) => m === null || m === undefined ? "" : typeof m === "string" ? m : pretty(m);

export async function routes() {
  const [known, connectors] = await Promise.all([names(true), api("/api/v1/connectors")]);
  const eventsOf = (sourceId) => Object.keys(connectors.find((c) => c.id === known.source.get(sourceId)?.connector)?.events ?? {});
  const dryRun = h("div", {id: "dry-run"});
  const view = editor({
    title: "Routes", what: "route", rows: known.routes,
    columns: [
      ["source", (r) => known.source.get(r.source_id)?.name ?? r.source_id],
      ["target", (r) => known.target.get(r.target_id)?.name ?? r.target_id],
      ["events", (r) => r.events.join(", "), {class: "wrap"}],
      ["mapping", (r) => r.mapping === null ? h("span", {class: "muted"}, "default") : typeof r.mapping === "string" ? r.mapping : "inline"],
      ["state", state],
      ["", (r) => h("button", {class: "dry", onclick: () => showDryRun(dryRun, r, known)}, "Dry run")],
    ],
    fields: (row) => {
      const hint = h("datalist", {id: "event-types"});
      const hints = (sourceId) => hint.replaceChildren(...eventsOf(sourceId).map((e) => h("option", {value: e})));
      hints(row ? row.source_id : known.sources[0]?.id);
      return [
        row ? null : h("label", {}, "Source", h("select", {name: "source_id", required: true, onchange: (e) => hints(e.target.value)},
          known.sources.map((s) => h("option", {value: s.id}, s.name)))),
        row ? null : h("label", {}, "Target", h("select", {name: "target_id", required: true},
          known.targets.map((t) => h("option", {value: t.id}, `${t.name} (${t.kind})`)))),
        h("label", {}, "Events (comma-separated, * allowed)", h("input", {name: "events", required: true, list: "event-types",
          value: row ? row.events.join(", ") : "*"})),
        hint,
        h("label", {class: "check"}, h("input", {name: "enabled", type: "checkbox", checked: row ? row.enabled : true}), "enabled"),
        h("label", {class: "full"}, "Mapping: a name, an inline mapping (JSON), or empty for the connector's default",
          h("textarea", {name: "mapping", rows: 2}, row ? mappingText(row.mapping) : "")),
      ];
    },
    save: async (v, row) => {
      const events = (v.events || "").split(",").map((e) => e.trim()).filter(Boolean);
      const mapping = mappingValue(v.mapping);
      if (row) {
        const body = {};
        if (events.join() !== row.events.join()) body.events = events;
        if (pretty(mapping) !== pretty(row.mapping)) body.mapping = mapping;
        if (v.enabled !== row.enabled) body.enabled = v.enabled;
        await api(`/api/v1/routes/${row.id}`, {method: "PATCH", body});
      } else {
        await api("/api/v1/routes", {method: "POST", body: {source_id: v.source_id, target_id: v.target_id, events, mapping, enabled: v.enabled}});
      }
    },
  });
  return [view, dryRun];
}

function showDryRun(holder, route, known) {
  const out = h("div");
  const form = h("form", {class: "grid", onsubmit: async (e) => {
    e.preventDefault();
    try {
      const r = await api(`/api/v1/routes/${route.id}/dry-run`, {method: "POST", body: {mapping: mappingValue(form.mapping.value), limit: 20}});
      fill(out,
        h("p", {}, Object.entries(r.summary).map(([k, n]) => `${n} ${k.replace("_", " ")}`).join(", ") || "No stored event for this route yet."),
        table([
          ["event", (x) => h("a", {href: `#/events/${x.event_id}`}, x.type)], ["received", (x) => when(x.received_at)],
          ["change", (x) => pill(x.change.replace("_", " "), x.change === "same" ? "ok" : "pending")],
          ["differs", (x) => x.differs.join(", ")],
          ["candidate", (x) => x.candidate.post ? h("details", {}, h("summary", {}, x.candidate.post.title || "post"), json(x.candidate.request ?? x.candidate.post)) : x.candidate.error ?? x.candidate.outcome, {class: "wrap"}],
        ], r.events));
    } catch (err) { out.replaceChildren(h("p", {class: "feedback bad"}, err.message)); }
  }},
    h("div", {class: "full"}, h("strong", {}, `Dry run: ${known.source.get(route.source_id)?.name ?? ""} → ${known.target.get(route.target_id)?.name ?? ""}`),
      h("span", {class: "muted"}, " — the route's last stored events through its mapping and a candidate; nothing is sent.")),
    h("label", {class: "full"}, "Candidate mapping (empty: the connector's default)", h("textarea", {name: "mapping", rows: 3}, mappingText(route.mapping))),
    h("div", {class: "actions"}, h("button", {type: "submit", class: "primary"}, "Run")));
  holder.replaceChildren(section("Dry run", form, out));
  form.mapping.focus();
}

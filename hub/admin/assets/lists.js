// Read-mostly lists: the audit trail, mappings, people.
import {api, names} from "./api.js";
import {formValues, h, json, section, table, when} from "./dom.js";

export async function audit({params}) {
  const filter = Object.fromEntries(["resource", "action", "actor", "before"].map((k) => [k, params.get(k) || undefined]));
  const [rows, known] = await Promise.all([api("/api/v1/audit", {params: {...filter, limit: 50}}), names()]);
  const label = (e) => {
    const named = {source: known.source, target: known.target}[e.resource]?.get(e.resource_id);
    return named ? `${named.name}` : e.resource_id;
  };
  const form = h("form", {class: "bar", id: "audit-filters", onsubmit: (e) => {
    e.preventDefault();
    location.hash = `#/audit?${new URLSearchParams(formValues(form))}`;
  }},
    h("label", {}, "Resource", h("select", {name: "resource"}, h("option", {value: ""}, "any"),
      ["source", "target", "route", "mapping", "key", "person", "connector", "delivery", "event", "job"]
        .map((r) => h("option", {value: r, selected: r === filter.resource}, r)))),
    h("label", {}, "Action", h("input", {name: "action", value: filter.action || "", placeholder: "update", size: 12})),
    h("label", {}, "Who", h("input", {name: "actor", value: filter.actor || "", placeholder: "key name or e-mail", size: 18})),
    h("button", {type: "submit", class: "primary"}, "Filter"), h("a", {href: "#/audit"}, "Clear"));
  const list = table([
    ["when", (e) => when(e.at)],
    ["who", (e) => h("span", {title: `${e.actor.kind} ${e.actor.id}`}, e.actor.name)],
    ["action", (e) => e.action],
    ["resource", (e) => `${e.resource} ${label(e)}`, {class: "wrap"}],
    ["fields", (e) => e.fields.join(", "), {class: "wrap"}],
    ["details", (e) => e.details ? h("details", {}, h("summary", {}, "details"), json(e.details)) : ""],
  ], rows, {empty: "Nothing recorded matches."});
  const more = rows.length === 50 ? h("button", {onclick: () => {
    const next = new URLSearchParams(params);
    next.set("before", rows[rows.length - 1].id);
    location.hash = `#/audit?${next}`;
  }}, "Older →") : null;
  return section("Audit trail", form, list, more);
}

export async function mappings() {
  const rows = await api("/api/v1/mappings");
  return section("Mappings", h("p", {class: "muted"}, "Built-in mappings are read-only; copy one over the API to change it (the docs at /docs say how)."),
    table([
      ["name", (m) => h("code", {}, m.name)],
      ["kind", (m) => m.builtin ? "built-in" : `managed v${m.version}`],
      ["connector", (m) => m.connector ?? ""],
      ["events", (m) => m.events.join(", "), {class: "wrap"}],
      ["description", (m) => m.description, {class: "wrap"}],
    ], rows));
}

export async function people() {
  const rows = await api("/api/v1/people", {params: {limit: 200}});
  return section("People", table([
    ["name", (p) => p.display_name],
    ["identities", (p) => Object.entries(p.identities).map(([k, v]) => `${k}: ${v}`).join(", "), {class: "wrap"}],
    ["updated", (p) => when(p.updated_at)],
  ], rows, {empty: "The directory is empty (import a CSV with `hub people import`)."}));
}

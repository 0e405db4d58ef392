// Dead letters: filter, retry one (with feedback), retry the filtered set as a tracked job with progress.
import {api, names} from "./api.js";
import {confirmDialog, feedback, formValues, h, localToIso, section, table, when} from "./dom.js";
import {isoToLocal} from "./events.js";

const FILTERS = ["source_id", "target_id", "since", "until", "error_contains"];

export async function deadLetters({params}) {
  const known = await names(true);
  const filter = Object.fromEntries(FILTERS.map((k) => [k, params.get(k) || undefined]));
  const rows = await api("/api/v1/dead-letters", {params: {...filter, limit: 200}});
  const sourceOf = (d) => {
    const route = known.route.get(d.route_id);
    return route ? known.source.get(route.source_id)?.name ?? route.source_id : h("span", {class: "muted"}, "(route deleted)");
  };

  const form = h("form", {class: "bar", id: "dead-filters", onsubmit: (e) => {
    e.preventDefault();
    const v = formValues(form);
    const next = new URLSearchParams();
    for (const k of ["source_id", "target_id", "error_contains"]) if (v[k]) next.set(k, v[k]);
    for (const k of ["since", "until"]) if (v[k]) next.set(k, localToIso(v[k]));
    location.hash = `#/dead-letters?${next}`;
  }},
    h("label", {}, "Source", h("select", {name: "source_id"}, h("option", {value: ""}, "any"),
      known.sources.map((s) => h("option", {value: s.id, selected: s.id === filter.source_id}, s.name)))),
    h("label", {}, "Target", h("select", {name: "target_id"}, h("option", {value: ""}, "any"),
      known.targets.map((t) => h("option", {value: t.id, selected: t.id === filter.target_id}, t.name)))),
    h("label", {}, "Created from", h("input", {name: "since", type: "datetime-local", value: isoToLocal(filter.since)})),
    h("label", {}, "Created before", h("input", {name: "until", type: "datetime-local", value: isoToLocal(filter.until)})),
    h("label", {}, "Error contains", h("input", {name: "error_contains", value: filter.error_contains || "", placeholder: "HTTP 503", size: 14})),
    h("button", {type: "submit", class: "primary"}, "Filter"),
    h("a", {href: "#/dead-letters"}, "Clear"));

  const list = table([
    ["created", (d) => when(d.created_at)],
    ["source", sourceOf],
    ["target", (d) => known.target.get(d.target_id)?.name ?? d.target_id],
    ["event", (d) => h("a", {href: `#/events/${d.event_id}`}, "open")],
    ["status", (d) => h("span", {class: `pill ${d.status}`}, d.status)],
    ["attempts", (d) => String(d.attempts), {class: "num"}],
    ["last error", (d) => d.last_error ?? "", {class: "wrap"}],
    ["", retryOne],
  ], rows, {empty: "No dead letter matches."});

  return section(["Dead letters", bulkRetry(filter)], form, list,
    rows.length === 200 ? h("p", {class: "muted"}, "The first 200 are shown; a bulk retry takes all that match.") : null);
}

function retryOne(d) {
  const note = h("span", {class: "feedback"});
  const button = h("button", {class: "retry", onclick: async () => {
    button.disabled = true;
    try {
      await api(`/api/v1/deliveries/${d.id}/retry`, {method: "POST"});
      feedback(note, " queued again");
    } catch (e) { feedback(note, ` ${e.message}`, false); button.disabled = false; }
  }}, "Retry");
  return h("span", {}, button, note);
}

function bulkRetry(filter) {
  const status = h("span", {class: "feedback", id: "bulk-status"});
  const bar = h("progress", {id: "bulk-progress", max: 1, value: 0, hidden: true});
  const button = h("button", {id: "bulk", onclick: async () => {
    button.disabled = true;
    try {
      const {count} = await api("/api/v1/dead-letters/count", {params: filter});
      if (!count) { feedback(status, "Nothing to retry: no dead letter matches."); return; }
      const described = Object.keys(filter).some((k) => filter[k]) ? "matching this filter" : "(every dead letter)";
      if (!await confirmDialog(`Retry ${count} dead letter${count === 1 ? "" : "s"} ${described}?`, `Retry ${count}`)) {
        feedback(status, "Cancelled.", false);
        return;
      }
      const body = Object.fromEntries(Object.entries(filter).filter(([, v]) => v));
      let job = await api("/api/v1/deliveries/bulk-retry", {method: "POST", body});
      bar.hidden = false;
      while (job.status === "queued" || job.status === "running") {
        bar.max = Math.max(job.total, 1); bar.value = job.done;
        feedback(status, `${job.done} of ${job.total}…`);
        await new Promise((r) => setTimeout(r, 250));
        job = await api(`/api/v1/jobs/${job.id}`);
      }
      bar.max = Math.max(job.total, 1); bar.value = job.done;
      feedback(status, job.status === "done" ? `Done: ${job.done} of ${job.total} sent again.` : `Job ${job.status}: ${job.error ?? ""}`, job.status === "done");
    } catch (e) { feedback(status, e.message, false); } finally { button.disabled = false; }
  }}, "Retry all matching…");
  return h("span", {class: "row"}, button, bar, status);
}

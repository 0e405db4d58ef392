// Overview: rates and counts over the last hour or day (GET /api/v1/stats), breakers, sources' last events.
import {api, names} from "./api.js";
import {barChart} from "./chart.js";
import {feedback, h, pill, section, table, when} from "./dom.js";

const SERIES = [
  ["events", "events received"],
  ["delivered", "posts delivered"],
  ["failures", "failed attempts"],
  ["dead", "new dead letters"],
];

const clock = (iso) => new Date(iso).toLocaleTimeString(undefined, {hour: "2-digit", minute: "2-digit"});

function rate(total, seconds) {
  const perSecond = total / seconds;
  return perSecond >= 0.1 ? `${perSecond.toFixed(2)}/s` : `${(perSecond * 60).toFixed(2)}/min`;
}

export async function overview({params}) {
  const window = params.get("window") === "1d" ? "1d" : "1h";
  const [stats, known] = await Promise.all([api("/api/v1/stats", {params: {window}}), names(true)]);
  const breakers = await Promise.all(known.targets.map((t) => api(`/api/v1/targets/${t.id}/breaker`)));
  const seconds = stats.bucket_seconds * stats.buckets.length;
  const pick = (w, label) => w === window ? h("strong", {}, label) : h("a", {href: `#/overview?window=${w}`}, label);

  const cards = SERIES.map(([key, label]) => h("div", {class: `card series-${key}`, "data-series": key},
    h("div", {class: "row"}, h("span", {class: "figure"}, stats.totals[key]), h("span", {class: "muted"}, label)),
    h("div", {class: "muted"}, key === "events" || key === "delivered" ? rate(stats.totals[key], seconds) : "\u00a0"),
    barChart(stats.buckets, key, label),
    h("div", {class: "axis"}, h("span", {}, clock(stats.start)), h("span", {}, "now"))));

  const tiles = h("div", {class: "tiles"},
    h("div", {class: "tile", id: "rate-events"}, h("b", {}, rate(stats.totals.events, seconds)), "events"),
    h("div", {class: "tile", id: "rate-delivered"}, h("b", {}, rate(stats.totals.delivered, seconds)), "delivered"),
    h("div", {class: "tile"}, h("b", {}, h("a", {href: "#/dead-letters"}, stats.dead_letters)), "dead letters now"),
    h("div", {class: "tile"}, h("b", {}, stats.pending), "waiting to be sent"));

  const targetRows = known.targets.map((t, i) => ({...t, breaker: breakers[i]}));
  const targetsTable = table([
    ["target", (t) => t.name],
    ["kind", (t) => t.kind],
    ["breaker", (t) => pill(t.breaker.state.replace("_", " "), t.breaker.state)],
    ["failures in a row", (t) => String(t.breaker.consecutive_failures), {class: "num"}],
    ["why / until", (t) => t.breaker.reason || (t.breaker.retry_at ? h("span", {}, "retry at ", when(t.breaker.retry_at)) : ""), {class: "wrap"}],
    ["", (t) => t.breaker.state === "closed" ? "" : resetButton(t)],
  ], targetRows, {empty: "No target yet: add one under Targets."});

  const activity = new Map(stats.sources.map((s) => [s.source_id, s]));
  const sourcesTable = table([
    ["source", (s) => s.name],
    ["connector", (s) => s.connector],
    ["state", (s) => pill(s.enabled ? "enabled" : "disabled")],
    ["last event", (s) => {
      const a = activity.get(s.id);
      return a && a.last_event_id
        ? h("span", {}, h("a", {href: `#/events/${a.last_event_id}`}, a.last_event_type), " ", when(a.last_event_at))
        : h("span", {class: "muted"}, "none yet");
    }],
  ], known.sources, {empty: "No source yet: add one under Sources."});

  return [
    section([`Last ${window === "1h" ? "hour" : "day"}`, h("span", {class: "row"}, pick("1h", "hour"), pick("1d", "day"))],
      tiles, h("div", {class: "cards", id: "charts"}, cards),
      h("p", {class: "muted"}, `Bars of ${stats.bucket_seconds / 60} min, ${new Date(stats.start).toLocaleString()} to now.`)),
    h("div", {class: "cols"},
      section("Targets and circuit breakers", targetsTable),
      section("Sources", sourcesTable)),
  ];
}

function resetButton(target) {
  const note = h("span");
  const button = h("button", {onclick: async () => {
    button.disabled = true;
    try {
      const b = await api(`/api/v1/targets/${target.id}/breaker/reset`, {method: "POST"});
      feedback(note, ` ${b.state}`);
    } catch (e) { feedback(note, ` ${e.message}`, false); button.disabled = false; }
  }}, "Reset breaker");
  return h("span", {}, button, note);
}

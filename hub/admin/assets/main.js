// The console: hash routes (#/events?…), one view at a time, every view a module of its own.
import {api, forgetNames, getKey, setKey} from "./api.js";
import {$, fill, h, pill} from "./dom.js";
import {overview} from "./overview.js";
import {eventDetail, eventList} from "./events.js";
import {deadLetters} from "./dead.js";
import {sources, targets, routes} from "./config.js";
import {audit, mappings, people} from "./lists.js";

const VIEWS = {
  overview, events: eventList, event: eventDetail, "dead-letters": deadLetters,
  sources, targets, routes, mappings, people, audit,
};

function parseHash() {
  const [path, search] = (location.hash.replace(/^#\/?/, "") || "overview").split("?");
  const [name, id] = path.split("/");
  return {name: id && name === "events" ? "event" : name, id: id && decodeURIComponent(id), params: new URLSearchParams(search || "")};
}

let signedIn = false;

export function showError(error) {
  $("#msg").textContent = error ? (error.message || String(error)) : "";
}

async function render() {
  const {name, id, params} = parseHash();
  const view = VIEWS[name] || overview;
  for (const a of document.querySelectorAll("#nav a")) {
    const target = a.getAttribute("href").slice(2);
    a.toggleAttribute("aria-current", target === name || (name === "event" && target === "events"));
    if (a.hasAttribute("aria-current")) a.setAttribute("aria-current", "page");
  }
  if (!signedIn) return;
  showError(null);
  const main = $("#view");
  try {
    const content = await view({id, params});
    fill(main, content);
  } catch (e) {
    showError(e);
  }
}

async function readiness() {
  try {
    const ready = await (await fetch("/readyz")).json();
    $("#ready").replaceChildren(pill(ready.status, ready.status));
  } catch { $("#ready").replaceChildren(pill("unreachable", "failed")); }
}

async function signIn() {
  showError(null);
  try {
    const me = await api("/auth/me");
    $("#who").textContent = `${me.name} (${me.scope})`;
    signedIn = true;
    forgetNames();
    await render();
  } catch (e) {
    signedIn = false;
    $("#who").textContent = "";
    $("#view").replaceChildren(h("section", {}, h("h2", {}, "Sign in"),
      h("p", {}, getKey() ? `This key was refused: ${e.message}.` :
        "Paste an API key above (hub keys create --name … --scope admin), or sign in with single sign-on where it is set up.")));
  }
}

$("#signin").addEventListener("submit", (e) => {
  e.preventDefault();
  setKey($("#key").value.trim());
  signIn();
});
window.addEventListener("hashchange", render);
$("#key").value = getKey();
readiness();
signIn();

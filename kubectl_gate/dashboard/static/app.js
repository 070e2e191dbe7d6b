// Canary Gate dashboard: renders the server's snapshots (server-sent events) and runs the buttons'
// commands through POST /api/run. Every text from the cluster goes in with textContent, never as HTML.
"use strict";

const TOKEN = document.querySelector('meta[name="gate-token"]').content;
const state = { snapshot: null, action: null, open: new Set(), shows: new Map() };

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (v !== undefined && v !== null && v !== false) node.setAttribute(k, v === true ? "" : v);
  }
  for (const child of children) if (child !== null && child !== undefined) node.append(child);
  return node;
}

async function api(path, body) {
  const init = body === undefined ? {} : {
    method: "POST",
    headers: { "Content-Type": "application/json", "X-Gate-Token": TOKEN },
    body: JSON.stringify(body),
  };
  const response = await fetch(path, { credentials: "same-origin", ...init });
  let data = {};
  try { data = await response.json(); } catch (e) { data = { error: response.statusText }; }
  return { ok: response.ok, status: response.status, data };
}

// -- the page ---------------------------------------------------------------------------------

function render(snapshot) {
  state.snapshot = snapshot;
  document.getElementById("where").textContent =
    `context ${snapshot.context} · ${snapshot.server} · as ${snapshot.user} · ${snapshot.scope}`;
  const live = document.getElementById("live");
  const problem = document.getElementById("problem");
  if (snapshot.error) {
    live.dataset.state = "down";
    live.textContent = "not updating";
    problem.hidden = false;
    problem.textContent = snapshot.error;
  } else {
    live.dataset.state = "live";
    live.textContent = `live · updated ${new Date(snapshot.updated).toLocaleTimeString()}`;
    problem.hidden = true;
  }
  const main = document.getElementById("gates");
  const shown = new Map([...main.children].map((node) => [node.dataset.key, node]));
  main.replaceChildren(...snapshot.items.map((item) => {
    const fresh = card(item);
    const old = shown.get(item.key);
    return old && morph(old, fresh) ? old : fresh;
  }));
  document.getElementById("empty").hidden = snapshot.items.length > 0;
  for (const key of state.open) refreshShow(key);
}

// Brings `old` to what `fresh` shows, in place, when both have the same shape (so a button being
// clicked is not swapped under the pointer); false when the shapes differ (then `fresh` replaces it).
function morph(old, fresh) {
  if (old.nodeType !== fresh.nodeType || old.nodeName !== fresh.nodeName) return false;
  if (old.nodeType === Node.TEXT_NODE) {
    if (old.nodeValue !== fresh.nodeValue) old.nodeValue = fresh.nodeValue;
    return true;
  }
  if (old.childNodes.length !== fresh.childNodes.length) return false;
  const names = new Set([...old.getAttributeNames(), ...fresh.getAttributeNames()]);
  if ([...names].some((n) => old.getAttribute(n) !== fresh.getAttribute(n) && (n === "data-verb" || n === "data-gate" || n === "data-key"))) return false;
  for (const [i, child] of [...old.childNodes].entries()) {
    if (!morph(child, fresh.childNodes[i])) return false;
  }
  for (const n of names) {
    const value = fresh.getAttribute(n);
    if (value === null) old.removeAttribute(n);
    else if (old.getAttribute(n) !== value) old.setAttribute(n, value);
  }
  return true;
}

function fact(label, value, attrs) {
  return el("div", { class: "fact" }, el("span", { class: "k", text: label }), el("span", { class: "v", text: value, ...attrs }));
}

function card(item) {
  const held = item.held !== "-";
  const target = { namespace: item.namespace, name: item.name };
  const button = (verb, label, cls, extra) =>
    el("button", { type: "button", class: cls || "", "data-verb": verb, text: label,
                   onclick: () => openAction({ verb, ...target, ...(extra || {}) }) });
  const rows = item.gates.map((g) => el("tr", { "data-gate": g.gate },
    el("td", { class: "gate", text: g.gate }),
    el("td", { class: "state", "data-state": g.state, "data-gate": g.gate, text: g.state }),
    el("td", { text: g.source }),
    el("td", { text: g.setBy || "" }),
    el("td", { text: g.age }),
    el("td", { text: g.scope || "" }),
    el("td", { class: "reason", text: g.reason || "" }),
    el("td", { class: "buttons" },
      el("button", { type: "button", class: "small", "data-verb": "open", text: "Open",
                     onclick: () => openAction({ verb: "open", gate: g.gate, ...target }) }), " ",
      el("button", { type: "button", class: "small", "data-verb": "close", text: "Close",
                     onclick: () => openAction({ verb: "close", gate: g.gate, ...target }) })),
  ));
  const details = el("details", { "data-show": item.key },
    el("summary", { text: `kubectl gate show ${item.name} -n ${item.namespace}` }),
    el("pre", { class: "show", text: state.shows.get(item.key) || "loading…" }));
  details.open = state.open.has(item.key);
  details.addEventListener("toggle", () => {
    if (details.open) { state.open.add(item.key); refreshShow(item.key); } else state.open.delete(item.key);
  });
  return el("section", { class: "card", "data-key": item.key },
    el("div", { class: "card-head" },
      el("h2", {}, el("span", { class: "ns", text: `${item.namespace}/` }), item.name),
      el("span", { class: "target", text: `→ Canary ${item.target}` })),
    el("div", { class: "facts" },
      fact("Phase", item.phase, { class: "v phase", "data-kind": item.phaseKind }),
      fact("Weight", item.weight, { class: "v weight" }),
      fact("Held at", item.held, { class: "v held", "data-held": held ? "yes" : "no" }),
      fact("Closed", item.closed, { class: "v closed" })),
    item.next ? el("div", { class: "next" }, "To go on: ", el("code", { text: item.next })) : null,
    el("div", { class: "actions" },
      button("promote", "Promote", held ? "primary" : ""),
      button("pause", "Pause"),
      button("resume", "Resume"),
      button("abort", "Abort", "danger")),
    el("table", { class: "gates" },
      el("thead", {}, el("tr", {}, ...["Gate", "State", "Source", "Set by", "Age", "Scope", "Reason", ""].map((h) => el("th", { text: h })))),
      el("tbody", {}, ...rows)),
    details);
}

async function refreshShow(key) {
  const [namespace, name] = key.split("/");
  const { ok, data } = await api(`/api/show?namespace=${encodeURIComponent(namespace)}&name=${encodeURIComponent(name)}`);
  const text = ok ? data.text : `error: ${data.error}`;
  state.shows.set(key, text);
  const pre = document.querySelector(`details[data-show="${CSS.escape(key)}"] pre`);
  if (pre) pre.textContent = text;
}

// -- the action dialog ------------------------------------------------------------------------

function openAction(action) {
  const dialog = document.getElementById("action");
  const verbs = state.snapshot.verbs;
  state.action = { ...action };
  const what = action.gate ? `${action.verb} ${action.gate}` : action.verb;
  document.getElementById("action-title").textContent = `${what}: ${action.namespace}/${action.name}`;
  document.getElementById("action-help").textContent = verbs[action.verb].help;
  const flags = document.getElementById("flags");
  flags.replaceChildren();
  for (const [flag, help] of Object.entries(verbs[action.verb].flags)) {
    if (flag === "yes" && !state.snapshot.checkGates.includes(action.gate)) continue;
    const box = el("input", { type: "checkbox", name: flag, id: `flag-${flag}` });
    box.addEventListener("change", () => { state.action[flag] = box.checked; preview(); });
    flags.append(el("label", { for: `flag-${flag}` }, box, el("code", { text: `--${flag}` }), ` ${help}`));
  }
  const reason = document.getElementById("reason");
  reason.value = "";
  document.getElementById("outcome").hidden = true;
  document.getElementById("run").textContent = "Run";
  document.getElementById("cancel").textContent = "Cancel";
  updateRun();
  preview();
  dialog.showModal();
  reason.focus();
}

function request() {
  const reason = document.getElementById("reason").value;
  return { ...state.action, reason };
}

function updateRun() {
  document.getElementById("run").disabled = !document.getElementById("reason").value.trim();
}

let previewSerial = 0;
async function preview() {
  const serial = ++previewSerial;
  const { ok, data } = await api("/api/command", request());
  if (serial !== previewSerial) return;
  document.getElementById("command").textContent = ok ? data.command : `(${data.error})`;
}

async function run(event) {
  event.preventDefault();
  const button = document.getElementById("run");
  button.disabled = true;
  button.textContent = "Running…";
  const { ok, data } = await api("/api/run", request());
  const outcome = document.getElementById("outcome");
  outcome.hidden = false;
  const succeeded = ok && data.exitCode === 0;
  outcome.dataset.ok = String(succeeded);
  document.getElementById("outcome-status").textContent = !ok ? "Not run"
    : succeeded ? "Done" : `Refused or failed (exit ${data.exitCode})`;
  document.getElementById("outcome-text").textContent = ok ? [data.stdout, data.stderr].filter(Boolean).join("") : data.error;
  if (ok) document.getElementById("command").textContent = data.command;
  button.textContent = succeeded ? "Done" : "Run again";
  button.disabled = succeeded;
  document.getElementById("cancel").textContent = "Close";
}

function connect() {
  const events = new EventSource("/api/events");
  events.onmessage = (message) => render(JSON.parse(message.data));
  events.onerror = () => {
    const live = document.getElementById("live");
    live.dataset.state = "down";
    live.textContent = "reconnecting…";
  };
}

document.addEventListener("DOMContentLoaded", () => {
  document.getElementById("reason").addEventListener("input", () => { updateRun(); preview(); });
  document.getElementById("action-form").addEventListener("submit", run);
  document.getElementById("cancel").addEventListener("click", () => document.getElementById("action").close());
  api("/api/state").then(({ ok, data }) => { if (ok && data.items) render(data); });
  connect();
});

// ECC web console: the live picture (queue, map, unit board), the incident
// view, call taking, keyboard shortcuts. Plain ES modules, no build step.
//
// The picture is the gateway's snapshot, each view replaced by the one its
// delta carries (model.js applyDelta: the page folds no events);
// details the feed does not carry (timeline, signals, recommendations) come
// from the incident.detail query, asked only for the incident on screen.
// Playback (playback.js) shows a past period instead, from its own picture:
// the live one keeps taking its deltas underneath.

import { $, h } from "./dom.js";
import { Connection } from "./conn.js";
import { CityMap } from "./map.js";
import {
  AGENCIES, OPEN, PRIORITY, SLA, applyDelta, categoryLabel, clock, isEscalated, queueOrder, setTypes, slaOf,
} from "./model.js";
import { Detail } from "./detail.js";
import { CallDesk } from "./call.js";
import { setRules } from "./classify.js";
import { Playback } from "./playback.js";
import { DeskAlerts } from "./alerts.js";

const UNIT_STATUSES = ["available", "dispatched", "en_route", "on_scene", "transporting", "at_hospital",
  "returning", "out_of_service", "off_duty"];

// --- shared state ----------------------------------------------------------------------

export const app = {
  conn: null,
  me: null,                 // the welcome: name, role, agency, commands
  allowed: new Set(),       // the commands this console may send
  incidents: new Map(),     // open incidents: id -> view
  units: new Map(),         // unit id -> view
  order: [],                // the queue's ids, in order
  selected: null,           // the incident the keyboard acts on
  skew: 0,                  // server clock minus ours, ms (estimated from live deltas)
  seenSignals: new Map(),   // signal_id -> {id, raised}: recent, to find a call's incident
  can: (name) => app.allowed.has(name),
  now: () => Date.now() + app.skew,
  toast,
  render: scheduleRender,
};

let playback = null;  // the Playback (below, once the page is set up)
const deskAlerts = new DeskAlerts(app);
/** The picture on screen: the playback's while playing back, else the live one. */
const shown = () => (playback && playback.active ? playback.picture : app);

// --- toasts and sound ---------------------------------------------------------------

function toast(text, kind = "info", timeout) {
  const item = h("div", { class: `toast ${kind}`, role: kind === "error" ? "alert" : "status" },
    h("span", { class: "toast-text" }, text),
    h("button", { type: "button", class: "toast-close", "aria-label": "Dismiss", onclick: () => item.remove() }, "×"));
  $("toasts").append(item);
  setTimeout(() => item.remove(), timeout ?? (kind === "error" ? 15000 : 6000));
  while ($("toasts").children.length > 6) $("toasts").firstElementChild.remove();
}

let audio = null;
let soundOn = localStorage.getItem("ecc-sound") !== "off";
let lastBeep = 0;

function unlockAudio() {
  if (!audio) {
    try { audio = new AudioContext(); } catch { return; }
  }
  if (audio.state === "suspended") audio.resume().catch(() => {});
}
addEventListener("pointerdown", unlockAudio, { capture: true });
addEventListener("keydown", unlockAudio, { capture: true });

/** A short beep, made with Web Audio (no sound files): three high for P1, two rising for an escalation. */
function beep(kind) {
  if (!soundOn) return;
  const t = performance.now();
  if (t - lastBeep < 1500) return;
  lastBeep = t;
  unlockAudio();
  if (!audio) return;
  const t0 = audio.currentTime + 0.02;
  const tones = kind === "p1" ? [[880, 0], [880, 0.22], [880, 0.44]] : [[660, 0], [990, 0.2]];
  for (const [freq, at] of tones) {
    const osc = audio.createOscillator();
    const gain = audio.createGain();
    osc.frequency.value = freq;
    gain.gain.setValueAtTime(0.0001, t0 + at);
    gain.gain.exponentialRampToValueAtTime(0.3, t0 + at + 0.01);
    gain.gain.exponentialRampToValueAtTime(0.0001, t0 + at + 0.16);
    osc.connect(gain).connect(audio.destination);
    osc.start(t0 + at);
    osc.stop(t0 + at + 0.18);
  }
}

function alarm(kind, text) {
  beep(kind);
  toast(text, kind === "p1" ? "alarm" : "warn", 10000);
  document.body.classList.remove("alerting");
  void document.body.offsetWidth;  // restart the flash
  document.body.classList.add("alerting");
}

function setSound(on, byUser = true) {
  soundOn = on;
  localStorage.setItem("ecc-sound", on ? "on" : "off");
  $("sound").textContent = on ? "Sound on" : "Sound off";
  $("sound").setAttribute("aria-pressed", String(on));
  if (on && byUser) unlockAudio();
}

// --- the feed ------------------------------------------------------------------------

function onState(state, detail) {
  const el = $("conn");
  el.dataset.state = state;
  document.body.dataset.conn = state;
  connRetryAt = detail.retryAt ?? null;
  $("conn-text").textContent = connText(state);
  if (state === "refused") {
    sessionStorage.removeItem("ecc-token");
    $("login").hidden = false;
    $("login-message").textContent = detail.message
      ? `The token was refused: ${detail.message}.` : "The token was refused (unknown or revoked). Ask an administrator for a new one.";
  }
}

let connRetryAt = null;
function connText(state) {
  switch (state) {
    case "connected": return "connected";
    case "resyncing": return "resyncing…";
    case "offline": {
      const left = connRetryAt ? Math.max(0, Math.ceil((connRetryAt - Date.now()) / 1000)) : 0;
      return left ? `offline — retrying in ${left} s` : "offline — retrying…";
    }
    case "refused": return "token refused — ask an administrator";
    default: return "connecting…";
  }
}

let welcomedAt = 0;
function onWelcome(welcome) {
  welcomedAt = Date.now();
  app.me = welcome;
  app.allowed = new Set(welcome.commands || []);
  if (welcome.sla) Object.assign(SLA, welcome.sla);  // the catalogue's clocks, from the gateway
  setTypes(welcome.types);  // and its types and hotline rules
  setRules(welcome.rules);
  $("who").textContent = `${welcome.name} · ${welcome.role.replaceAll("_", " ")}${welcome.agency ? ` · ${welcome.agency}` : ""}`;
  $("new-call").hidden = !app.can("call.take");
  detail.rolesChanged();
  deskAlerts.render();
  if (!app.can("call.take")) calls.close();
}

function onSnapshot(snapshot) {
  deskAlerts.reset(snapshot.alerts);
  app.incidents = new Map(snapshot.incidents.filter((i) => OPEN.has(i.status)).map((i) => [i.incident_id, i]));
  app.units = new Map((snapshot.units || []).map((u) => [u.unit_id, u]));
  app.positions = new Map();
  onPositions(snapshot.positions || []);
  detail.refresh();
  scheduleRender();
}

/** Units' reported positions (a snapshot's, then each `positions` message's): the map
 * draws a unit there, with its heading, rather than at its station. */
function onPositions(units) {
  for (const p of units) {
    if (p && typeof p.unit_id === "string") app.positions.set(p.unit_id, p);
  }
  if (units.length) app.map?.positionsChanged?.();
}

const skewSamples = [];
function noteClock(recordedAt) {
  const sample = Date.parse(recordedAt) - Date.now();
  if (!Number.isFinite(sample)) return;
  skewSamples.push(sample);
  if (skewSamples.length > 20) skewSamples.shift();
  // the least delayed sample is the best guess of the offset between the clocks
  const best = Math.max(...skewSamples);
  app.skew = Math.abs(best) > 1500 ? best : 0;
}

function onDelta(event, view) {
  const cut = event.stream_id.indexOf(":");
  const kind = event.stream_id.slice(0, cut), id = event.stream_id.slice(cut + 1);
  // a resume's catch-up arrives in a burst after the welcome: only later deltas are live
  if (Date.now() - welcomedAt > 3000) noteClock(event.recorded_at);
  if (kind === "incident") {
    const before = app.incidents.get(id);
    const after = applyDelta(app, event, view);
    const d = event.data;
    if (event.type === "incident.reported" || event.type === "incident.signal_attached") {
      const raised = event.type === "incident.reported";
      app.seenSignals.set(d.signal_id, { id, raised });
      if (app.seenSignals.size > 500) app.seenSignals.delete(app.seenSignals.keys().next().value);
      calls.signalLanded(d.signal_id, id, raised);
    }
    const shownView = after || before;
    const where = shownView ? `${categoryLabel(shownView.category)}${shownView.location.address ? ` at ${shownView.location.address}` : ""}` : "";
    if (event.type === "incident.reported" && d.priority === 1) {
      alarm("p1", `New P1 Critical: ${where} — ${d.summary}`);
    } else if (event.type === "incident.priority_changed" && d.priority === 1) {
      alarm("p1", `Raised to P1 Critical: ${where}`);
    } else if (event.type === "incident.escalated") {
      alarm("escalation", `Escalated: ${where} — ${d.reason}`);
    }
    detail.eventFor(id, view);
  } else if (kind === "alert") {
    const raised = deskAlerts.event(event);
    if (raised && Date.now() - welcomedAt > 3000) alarm("escalation", `Alert: ${raised.title}`);
  } else if (kind === "unit") {
    const after = applyDelta(app, event, view);
    detail.unitChanged(after);
  }
  scheduleRender();
}

// --- rendering ---------------------------------------------------------------------------

let renderQueued = false;
function scheduleRender() {
  if (renderQueued) return;
  renderQueued = true;
  requestAnimationFrame(() => {
    renderQueued = false;
    renderQueue();
    renderUnits();
    renderCounts();
    const pic = shown();
    map.render(app.order.map((id) => pic.incidents.get(id)), [...pic.units.values()], app.selected);
    detail.render();
  });
}

function place(view) {
  const l = view.location;
  // a place the gazetteer could not resolve: its point is only the city's centre
  if (l.unknown) return `location unknown (${l.unknown})`;
  return l.address || `${l.lat.toFixed(4)}, ${l.lon.toFixed(4)}`;
}

export function priorityBadge(priority, tag = "span") {
  const p = PRIORITY[priority] || { short: `P${priority}`, word: "" };
  return h(tag, { class: `prio p${priority}` }, h("span", { class: "pshort" }, p.short), h("span", { class: "pword" }, p.word));
}

const rows = new Map();  // incident id -> {li, key}

function queueRow(view) {
  const selected = view.incident_id === app.selected;
  const escalated = isEscalated(view);
  const live = view.tasks.filter((t) => t.status !== "cancelled" && t.status !== "completed");
  const manned = live.filter((t) => t.unit_id).length;
  const last = escalated ? view.escalations[view.escalations.length - 1] : null;
  const li = h("li", {
    class: `incident-row p${view.priority}${escalated ? " escalated" : ""}${selected ? " selected" : ""}`,
    role: "option", "aria-selected": String(selected), id: `row-${view.incident_id}`,
    dataset: { incidentId: view.incident_id },
    onclick: () => { select(view.incident_id); if (!playback.active) detail.open(view.incident_id); },
  },
  priorityBadge(view.priority, "div"),
  h("div", { class: "row-body" },
    h("div", { class: "row-line" },
      h("span", { class: "cat" }, categoryLabel(view.category)),
      h("span", { class: `status st-${view.status}` }, view.status.replaceAll("_", " ")),
      h("span", { class: "age", dataset: { since: view.reported_at } })),
    h("div", { class: "summary" }, view.summary || "(no summary)"),
    h("div", { class: "row-line minor" },
      h("span", { class: "where" }, place(view)),
      h("span", {}, `${view.signals.length} signal${view.signals.length === 1 ? "" : "s"}`),
      live.length ? h("span", {}, `units ${manned}/${live.length}`) : null),
    h("div", { class: "flags" },
      last ? h("span", { class: "flag esc" }, `ESCALATED — ${last.reason}`) : null,
      view.warning_active ? h("span", { class: "flag warn" }, "PUBLIC WARNING") : null,
      h("span", { class: "sla" }))));
  return li;
}

function renderQueue() {
  const pic = shown();
  const list = [...pic.incidents.values()].sort(queueOrder);
  app.order = list.map((v) => v.incident_id);
  if (app.selected && !pic.incidents.has(app.selected)) app.selected = null;
  const queue = $("queue");
  const keep = new Set(app.order);
  for (const [id, row] of rows) {
    if (!keep.has(id)) { row.li.remove(); rows.delete(id); }
  }
  list.forEach((view, i) => {
    const key = `${view.version}|${view.incident_id === app.selected}|${view.priority}|${view.status}`;
    let row = rows.get(view.incident_id);
    if (!row || row.key !== key) {
      const li = queueRow(view);
      if (row) row.li.replaceWith(li);
      row = { li, key };
      rows.set(view.incident_id, row);
    }
    if (queue.children[i] !== row.li) queue.insertBefore(row.li, queue.children[i] || null);
  });
  $("queue-empty").hidden = list.length > 0;
  if (app.selected) queue.setAttribute("aria-activedescendant", `row-${app.selected}`);
  else queue.removeAttribute("aria-activedescendant");
  tickQueue();
}

/** Ages and SLA countdowns: text only, every second. */
function tickQueue() {
  const now = playback && playback.active ? playback.at : app.now();
  const pic = shown();
  for (const [id, row] of rows) {
    const view = pic.incidents.get(id);
    if (!view) continue;
    const age = row.li.querySelector(".age");
    age.textContent = `age ${clock((now - Date.parse(view.reported_at)) / 1000)}`;
    const slaEl = row.li.querySelector(".sla");
    const sla = slaOf(view);
    if (!sla) { slaEl.textContent = ""; slaEl.className = "sla"; continue; }
    const left = (sla.due - now) / 1000;
    slaEl.textContent = left >= 0 ? `${sla.label} in ${clock(left)}` : `${sla.label} OVERDUE ${clock(-left)}`;
    slaEl.className = `sla flag ${left < 0 ? "overdue" : left < 15 ? "soon" : ""}`;
  }
}

const chips = new Map();  // unit id -> {li, key}
const groups = new Map(); // agency -> {section, tally, lists: Map(status -> {row, ul, label})}

function agencyGroup(agency) {
  let group = groups.get(agency);
  if (!group) {
    const tally = h("span", { class: "tally" });
    const section = h("section", { class: `agency ag-${agency}`, dataset: { agency } },
      h("h3", {}, h("span", { class: "ag-name" }, agency), tally));
    group = { section, tally, lists: new Map() };
    groups.set(agency, group);
    const board = $("unit-board");
    const rank = (a) => (AGENCIES.includes(a) ? AGENCIES.indexOf(a) : 99);
    const after = [...board.children].find((el) => rank(el.dataset.agency) > rank(agency) ||
      (rank(el.dataset.agency) === rank(agency) && el.dataset.agency > agency));
    board.insertBefore(section, after || null);
  }
  return group;
}

function statusList(group, status) {
  let list = group.lists.get(status);
  if (!list) {
    const ul = h("ul", { class: "chips" });
    const label = h("span", { class: "st-label" });
    const row = h("div", { class: `st-row st-${status}`, dataset: { status } }, label, ul);
    list = { row, ul, label };
    group.lists.set(status, list);
    const rank = (st) => UNIT_STATUSES.indexOf(st);
    const after = [...group.section.querySelectorAll(".st-row")].find((el) => rank(el.dataset.status) > rank(status));
    group.section.insertBefore(row, after || null);
  }
  return list;
}

function renderUnits() {
  const pic = shown();
  const all = [...pic.units.values()].sort((a, b) => a.unit_id.localeCompare(b.unit_id, undefined, { numeric: true }));
  const tallies = new Map();
  const lastIn = new Map();
  for (const u of all) {
    const key = `${u.version}|${u.status}|${u.incident_id}`;
    let chip = chips.get(u.unit_id);
    if (!chip || chip.key !== key) {
      const incident = u.incident_id ? pic.incidents.get(u.incident_id) : null;
      const li = h("li", {
        class: `unit-chip ag-${u.agency} st-${u.status}`, dataset: { unitId: u.unit_id, status: u.status },
        title: `${u.call_sign || u.unit_id} · ${u.kind || u.capabilities.join(", ")} · ${u.station || ""} — ${u.status.replaceAll("_", " ")}`,
      },
      h("span", { class: "uid" }, u.unit_id),
      h("span", { class: "ust" }, u.status.replaceAll("_", " ")),
      incident ? h("span", { class: "uinc" }, `→ ${categoryLabel(incident.category)}`) : null);
      if (u.incident_id) {
        li.tabIndex = 0;
        li.setAttribute("role", "button");
        li.addEventListener("click", () => { if (!playback.active) detail.open(u.incident_id); });
        li.addEventListener("keydown", (e) => {
          if (e.key === "Enter" || e.key === " ") { e.preventDefault(); e.stopPropagation(); if (!playback.active) detail.open(u.incident_id); }
        });
      }
      if (chip) chip.li.remove();
      chip = { li, key };
      chips.set(u.unit_id, chip);
    }
    const list = statusList(agencyGroup(u.agency), u.status);
    // in unit id order within a status row, moving a chip only when it is out of place
    const prev = lastIn.get(list.ul) || null;
    const want = prev ? prev.nextElementSibling : list.ul.firstElementChild;
    if (want !== chip.li) list.ul.insertBefore(chip.li, want);
    lastIn.set(list.ul, chip.li);
    const t = tallies.get(u.agency) || { total: 0, available: 0, statuses: new Map() };
    t.total += 1;
    if (u.status === "available") t.available += 1;
    t.statuses.set(u.status, (t.statuses.get(u.status) || 0) + 1);
    tallies.set(u.agency, t);
  }
  for (const [id, chip] of chips) {
    if (!pic.units.has(id)) { chip.li.remove(); chips.delete(id); }
  }
  for (const [agency, group] of groups) {
    const t = tallies.get(agency) || { total: 0, available: 0, statuses: new Map() };
    group.tally.textContent = `${t.available} of ${t.total} available`;
    for (const [status, list] of group.lists) {
      const n = t.statuses.get(status) || 0;
      list.row.hidden = n === 0;
      list.label.textContent = `${status.replaceAll("_", " ")} (${n})`;
    }
  }
  const free = all.filter((u) => u.status === "available").length;
  $("unit-summary").textContent = `${free} of ${all.length} available`;
}

function renderCounts() {
  const list = [...shown().incidents.values()];
  const p1 = list.filter((v) => v.priority === 1).length;
  const esc = list.filter(isEscalated).length;
  $("queue-count").textContent = `${list.length} open`;
  $("counts").replaceChildren(...[
    h("span", {}, `${list.length} open`),
    p1 ? h("span", { class: "count-p1" }, `${p1} P1`) : null,
    esc ? h("span", { class: "count-esc" }, `${esc} escalated`) : null].filter(Boolean));
  document.title = `${p1 || esc ? `(${p1 + esc}) ` : ""}ECC — ${list.length} open`;
}

// --- selection and keys --------------------------------------------------------------------

export function select(id, scroll = true) {
  app.selected = id;
  scheduleRender();
  if (scroll) requestAnimationFrame(() => document.getElementById(`row-${id}`)?.scrollIntoView({ block: "nearest" }));
}

function move(step) {
  if (!app.order.length) return;
  const at = app.order.indexOf(app.selected);
  const next = at < 0 ? (step > 0 ? 0 : app.order.length - 1) : Math.max(0, Math.min(app.order.length - 1, at + step));
  select(app.order[next]);
  if (detail.id) detail.open(app.order[next]);
}

function current() {
  const id = detail.id || app.selected;
  if (!id) toast("Select an incident first (j / k to move in the queue).", "info");
  return id;
}

const SHORTCUTS = [
  { keys: ["n"], label: "New call: the call-taking form", run: () => calls.open() },
  { keys: ["j", "ArrowDown"], label: "Next incident in the queue (arrows when the queue has the focus)", run: () => move(1) },
  { keys: ["k", "ArrowUp"], label: "Previous incident in the queue", run: () => move(-1) },
  { keys: ["Enter", "o"], label: "Open the selected incident", run: () => { const id = current(); if (id) detail.open(id); } },
  { keys: ["v"], label: "Verify the incident", run: () => { const id = current(); if (id) detail.verify(id); } },
  { keys: ["a"], label: "Accept the top recommendation (dispatch its unit)", run: () => { const id = current(); if (id) detail.acceptTop(id); } },
  { keys: ["e"], label: "Escalate (asks why)", run: () => { const id = current(); if (id) detail.openAction(id, "incident.escalate"); } },
  { keys: ["t"], label: "Add a note", run: () => { const id = current(); if (id) detail.openAction(id, "incident.add_note"); } },
  { keys: ["p"], label: "Set the priority (asks why)", run: () => { const id = current(); if (id) detail.openAction(id, "incident.set_priority"); } },
  { keys: ["+", "="], label: "Zoom the map in", run: () => map.zoom(1 / 1.4) },
  { keys: ["-"], label: "Zoom the map out", run: () => map.zoom(1.4) },
  { keys: ["0"], label: "Whole city on the map", run: () => map.reset() },
  { keys: ["m"], label: "Sound on / off", run: () => setSound(!soundOn) },
  { keys: ["h"], label: "Playback: replay a past period on the map (again: back to live)", run: () => (playback.active ? playback.exit() : playback.openForm()) },
  { keys: ["?"], label: "This help", run: () => openHelp() },
  { keys: ["Escape"], label: "Close the form, the panel or this help", run: () => closeTop() },
];

// While playing back, only what looks (moves, zooms, help, playback itself) works: the
// actions act on the live incidents, which are not on screen.
const LOOKING = new Set(["j", "k", "ArrowDown", "ArrowUp", "+", "=", "-", "0", "m", "?", "Escape", "h"]);

function closeTop() {
  if ($("help").open) { $("help").close(); return; }
  if (playback.closeForm()) return;
  if (!$("call").hidden && $("call").contains(document.activeElement)) { calls.close(); return; }
  if (detail.closeForm()) return;
  if (detail.id) { detail.close(); return; }
  if (!$("call").hidden) calls.close();
}

function openHelp() {
  const label = (k) => ({ Escape: "Esc", ArrowDown: "↓", ArrowUp: "↑" }[k] || k);
  $("help-keys").replaceChildren(...SHORTCUTS.map((s) => h("tr", {},
    h("td", {}, ...s.keys.flatMap((k, i) => [i ? " or " : "", h("kbd", {}, label(k))])),
    h("td", {}, s.label))));
  $("help").showModal();
}

document.addEventListener("keydown", (e) => {
  if (e.ctrlKey || e.metaKey || e.altKey || e.isComposing) return;
  const t = e.target;
  const typing = t instanceof HTMLElement && (t.matches("input, textarea, select") || t.isContentEditable);
  if (typing && e.key !== "Escape") return;
  if (e.key === "Enter" && t instanceof HTMLElement && t.matches("button, a, summary, [role=button]")) return;
  if ($("help").open && e.key !== "Escape") return;
  // arrows move in the queue only when it has the focus; elsewhere they scroll
  if ((e.key === "ArrowDown" || e.key === "ArrowUp") && !(t instanceof Node && $("queue").contains(t))) return;
  const found = SHORTCUTS.find((s) => s.keys.includes(e.key));
  if (!found) return;
  if (playback.active && !LOOKING.has(e.key)) {
    e.preventDefault();
    toast("Playing back a past period: exit playback to act on the live picture.", "info");
    return;
  }
  e.preventDefault();
  found.run();
});

// --- boot ------------------------------------------------------------------------------------

const map = new CityMap($("map"), {
  onIncident: (id) => { select(id); if (!playback.active) detail.open(id); },
  onPick: (lat, lon) => calls.pick(lat, lon),
});
map.load("/map.json").catch((err) => toast(`The map's base layer did not load (${err.message}); markers are still shown.`, "error"));
$("zoom-in").onclick = () => map.zoom(1 / 1.4);
$("zoom-out").onclick = () => map.zoom(1.4);
$("zoom-reset").onclick = () => map.reset();

const detail = new Detail(app, { select, priorityBadge, map });
const calls = new CallDesk(app, { map, openIncident: (id) => { select(id); detail.open(id); } });
playback = new Playback(app, { onChange: () => { if (playback.active && detail.id) detail.close(); scheduleRender(); } });

$("new-call").onclick = () => calls.open();
$("help-open").onclick = () => openHelp();
$("help-close").onclick = () => $("help").close();
$("sound").onclick = () => setSound(!soundOn);
setSound(soundOn, false);

function tick() {
  tickQueue();
  detail.tick();
  $("clock").textContent = new Date(app.now()).toLocaleTimeString([], { hour12: false });
  if (app.conn && app.conn.state === "offline") $("conn-text").textContent = connText("offline");
}
setInterval(tick, 1000);
tick();
// for an operator's devtools: the picture and the connection (seq, state)
window.ecc = app;
// unit positions (unit_id -> {lat, lon, heading, speed_mps, at}), filled by the `positions`
// console message; whoever fills it calls app.map.positionsChanged()
app.positions ??= new Map();
app.map = map;

function start(token) {
  $("login").hidden = true;
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  app.conn = new Connection(`${scheme}://${location.host}/ws`, token, {
    onState, onWelcome, onSnapshot, onDelta, onPositions,
    onError: (msg) => toast(msg.message || msg.code, "error"),
  });
  app.conn.start();
}

// The token comes in the URL fragment (browsers never send it to the server), is
// kept for this tab only, and is taken out of the address bar.
const params = new URLSearchParams(location.hash.slice(1));
const fromUrl = params.get("token");
if (fromUrl) {
  sessionStorage.setItem("ecc-token", fromUrl);
  history.replaceState(null, "", location.pathname + location.search);
}
$("login").addEventListener("submit", (e) => {
  e.preventDefault();
  const value = $("token-input").value.trim();
  if (!value) return;
  sessionStorage.setItem("ecc-token", value);
  $("token-input").value = "";
  start(value);
});
const saved = fromUrl || sessionStorage.getItem("ecc-token");
if (saved) start(saved);
else {
  $("login").hidden = false;
  onState("offline", {});
  $("conn-text").textContent = "no token";
}

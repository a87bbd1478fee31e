// The console's picture: incident and unit views as the server sends them. The
// snapshot gives the views; each delta carries one event and its stream's view
// after it, which replaces the copy here (applyDelta). Nothing is folded here:
// the server's core (workflows/) is the one fold, so an event type this page has
// never heard of still shows its effect.

export const OPEN = new Set(["reported", "verified", "dispatching", "responding", "on_scene", "controlled"]);
export const ON_TASK = new Set(["dispatched", "en_route", "on_scene", "transporting", "at_hospital"]);
export const LIVE_TASK = new Set(["pending", "offered", "accepted", "en_route", "on_scene"]);

// SLA seconds, as workflows/data/catalogue.toml [sla] sets them for the demo. The
// server escalates on its own timers; these only drive the countdowns on screen.
export const SLA = { verify_s: 60, task_pending_s: 30, ack_s: 30 };

export const PRIORITY = {
  1: { short: "P1", word: "Critical" },
  2: { short: "P2", word: "Urgent" },
  3: { short: "P3", word: "Prompt" },
  4: { short: "P4", word: "Routine" },
};

// Labels and three-letter map codes: the catalogue's types, from the welcome
// (setTypes); until it comes, a category shows as its own words.
export const CATEGORIES = {};
/** Take the catalogue's types from the welcome: {id: [label, code, labels]}. */
export function setTypes(types) {
  for (const k of Object.keys(CATEGORIES)) delete CATEGORIES[k];
  for (const t of types || []) CATEGORIES[t.id] = [t.label, t.code, t.labels || {}];
}
export const categoryLabel = (c) => (CATEGORIES[c] ? CATEGORIES[c][0] : c.replaceAll("_", " "));
export const categoryCode = (c) => (CATEGORIES[c] ? CATEGORIES[c][1] : c.slice(0, 3).toUpperCase());

export const AGENCIES = ["police", "fire", "health", "utility"];

/**
 * The picture after one delta: the console holds no fold of events. Each delta
 * carries its stream's view after the event (built on the server by the core's
 * evolve), and the copy here is replaced by it. `view` null: nothing to hold
 * (removed). Incidents are kept while open; units always. Returns the view held
 * now (undefined when none).
 */
export function applyDelta(picture, event, view) {
  const cut = event.stream_id.indexOf(":");
  const kind = event.stream_id.slice(0, cut), id = event.stream_id.slice(cut + 1);
  if (kind === "incident") {
    if (view && OPEN.has(view.status)) picture.incidents.set(id, view);
    else picture.incidents.delete(id);
  } else if (kind === "unit") {
    if (view) picture.units.set(id, view);
    else picture.units.delete(id);
  }
  return view || undefined;
}

/** Whether an incident is escalated (escalations go on top of the queue). */
export const isEscalated = (view) => view.escalations && view.escalations.length > 0;

/** The queue's order: escalated first, then priority, then longest waiting. */
export function queueOrder(a, b) {
  return (isEscalated(b) - isEscalated(a)) || (a.priority - b.priority)
    || (Date.parse(a.reported_at) - Date.parse(b.reported_at));
}

/**
 * The countdown that matters now for an incident: verification while reported,
 * then a unit for a pending task, then the offered unit's acknowledgement.
 * Returns {label, due} (due in ms since the epoch) or null.
 */
export function slaOf(view) {
  if (view.status === "reported") {
    // the server's own verify timer decides; once it has escalated, the SLA is gone
    // whatever the setting mirrored here says
    let due = Date.parse(view.reported_at) + SLA.verify_s * 1000;
    for (const e of view.escalations || []) {
      if (e.rule === "verify_sla") due = Math.min(due, Date.parse(e.at));
    }
    return { label: "verify", due };
  }
  if (!OPEN.has(view.status)) return null;
  let best = null;
  for (const task of view.tasks || []) {
    let found = null;
    if (task.status === "pending") found = { label: "assign unit", due: Date.parse(task.updated_at) + SLA.task_pending_s * 1000 };
    else if (task.status === "offered") found = { label: "unit to ack", due: Date.parse(task.updated_at) + SLA.ack_s * 1000 };
    if (found && (!best || found.due < best.due)) best = found;
  }
  return best;
}

/** "1:05" for 65 seconds; "1:02:03" past an hour. */
export function clock(seconds) {
  const t = Math.max(0, Math.floor(seconds));
  const hh = Math.floor(t / 3600), mm = Math.floor((t % 3600) / 60), ss = t % 60;
  const two = (n) => String(n).padStart(2, "0");
  return hh ? `${hh}:${two(mm)}:${two(ss)}` : `${mm}:${two(ss)}`;
}

// The console's picture: incident and unit views folded from events, as
// workflows/incident.py and workflows/unit.py fold them on the server. The
// snapshot gives the views; each delta carries one event, folded here, so the
// live picture needs no query per event.

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

const maxTime = (a, b) => (a && b ? (Date.parse(a) >= Date.parse(b) ? a : b) : a || b);
const replaceTask = (view, taskId, change) => ({
  ...view,
  tasks: view.tasks.map((t) => (t.task_id === taskId ? { ...t, ...change } : t)),
});

/**
 * The incident view after one recorded event, or `undefined` when the event
 * cannot be folded (an incident this console does not hold, other than its
 * incident.reported). Views are treated as values: a changed view is a new object.
 */
export function evolveIncident(view, event) {
  const d = event.data;
  if (event.type === "incident.reported") {
    return {
      incident_id: d.incident_id, status: "reported", category: d.category, priority: d.priority,
      location: d.location, summary: d.summary,
      signals: [{ signal_id: d.signal_id, source: d.source, confidence: d.confidence, merged_from: null,
        at: d.at, observed_at: d.observed_at ?? null }],
      tasks: [], timers: [], escalations: [], links: [], merged_into: null, merged_from: [],
      status_before_merge: null, notes: 0, close_reason: null, warnings: [], warning_active: false,
      warning_text: null, reported_at: d.at, updated_at: d.at, version: event.version,
    };
  }
  if (!view) return undefined;
  const next = fields(view, event.type, d);
  if (next === view) return view;  // not a type this console folds (timer.*): unchanged
  next.version = event.version;
  if (!event.type.startsWith("timer.")) next.updated_at = maxTime(view.updated_at, d.at);
  return next;
}

function fields(v, type, d) {
  switch (type) {
    case "incident.signal_attached":
      return { ...v, signals: [...v.signals, { signal_id: d.signal_id, source: d.source, confidence: d.confidence,
        merged_from: null, at: d.at, observed_at: d.observed_at ?? null }] };
    case "incident.signal_detached":
      return { ...v, signals: v.signals.filter((x) => x.signal_id !== d.signal_id) };
    case "incident.public_warning":
      return { ...v, warnings: [...v.warnings, { sequence: d.sequence, at: d.at }],
        warning_active: d.msg_type !== "Cancel",
        warning_text: d.msg_type === "Cancel" ? null : { headline: d.headline, instruction: d.instruction,
          description: d.description, radius_m: d.radius_m, severity: d.severity, urgency: d.urgency } };
    case "incident.verified":
      return { ...v, status: "verified" };
    case "incident.reclassified":
      return { ...v, category: d.category };
    case "incident.priority_changed":
      return { ...v, priority: d.priority };
    case "incident.escalated":
      return { ...v, escalations: [...v.escalations, { rule: d.rule, reason: d.reason, at: d.at, by: d.by }] };
    case "incident.note_added":
      return { ...v, notes: v.notes + 1 };
    case "incident.linked":
      return { ...v, links: [...v.links, d.other_id] };
    case "incident.merged":
      return { ...v, status: "merged", merged_into: d.into, status_before_merge: v.status };
    case "incident.merge_absorbed":
      return { ...v, signals: [...v.signals, ...d.signals.map((x) => ({ ...x, merged_from: d.source_id }))],
        merged_from: [...v.merged_from, d.source_id] };
    case "incident.merge_undone":
      return { ...v, status: d.status, merged_into: null, status_before_merge: null };
    case "incident.merge_released":
      return { ...v, merged_from: v.merged_from.filter((i) => i !== d.source_id),
        signals: v.signals.filter((x) => !d.signal_ids.includes(x.signal_id)) };
    case "incident.split_off":
      return { ...v, signals: v.signals.filter((x) => !d.signal_ids.includes(x.signal_id)) };
    case "incident.status_changed":
      return { ...v, status: d.status,
        close_reason: d.status === "cancelled" || d.status === "closed" ? d.reason || null : null };
    case "task.created":
      return { ...v, tasks: [...v.tasks, { task_id: d.task_id, agency: d.agency, capability: d.capability,
        status: "pending", unit_id: null, passed_over: [], created_at: d.at, updated_at: d.at }] };
    case "task.offered":
      return replaceTask(v, d.task_id, { status: "offered", unit_id: d.unit_id, updated_at: d.at });
    case "task.accepted":
      return replaceTask(v, d.task_id, { status: "accepted", updated_at: d.at });
    case "task.returned": {
      const task = v.tasks.find((t) => t.task_id === d.task_id);
      return replaceTask(v, d.task_id, { status: "pending", unit_id: null, updated_at: d.at,
        passed_over: [...(task ? task.passed_over : []), d.unit_id] });
    }
    case "task.moved":
      return replaceTask(v, d.task_id, { status: d.status, updated_at: d.at });
    case "task.cancelled":
      return replaceTask(v, d.task_id, { status: "cancelled", updated_at: d.at });
    case "timer.scheduled":
      return { ...v, timers: [...v.timers, d.timer_id] };
    case "timer.cancelled":
    case "timer.fired":
      return { ...v, timers: v.timers.filter((t) => t !== d.timer_id) };
    default:
      return v;
  }
}

/** The unit view after one recorded event (undefined for an unknown unit). */
export function evolveUnit(view, event) {
  const d = event.data;
  if (event.type === "unit.registered") {
    return { unit_id: d.unit_id, call_sign: d.call_sign, agency: d.agency, capabilities: d.capabilities,
      kind: d.kind, station: d.station, district: d.district, home: d.home, status: d.status,
      incident_id: null, task_id: null, updated_at: d.at, version: event.version };
  }
  if (!view) return undefined;
  let next = { ...view, version: event.version, updated_at: d.at || view.updated_at };
  if (event.type === "unit.dispatched") {
    next = { ...next, status: "dispatched", incident_id: d.incident_id, task_id: d.task_id };
  } else if (event.type === "unit.released") {
    next = { ...next, status: "available", incident_id: null, task_id: null };
  } else if (event.type === "unit.moved") {
    next.status = d.status;
    if (!ON_TASK.has(d.status)) { next.incident_id = null; next.task_id = null; }
  }
  // A position, if an event ever carries one (AVL is not on the console feed today).
  const where = d.position || d.location;
  if (where && typeof where.lat === "number" && typeof where.lon === "number") next.position = where;
  return next;
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

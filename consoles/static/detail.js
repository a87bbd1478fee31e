// The incident view: what happened (timeline: every event, who and why), the
// evidence (signals with source and confidence), the work (tasks, recommended
// units, one-click accept), notes, and the actions this console's role may take.
//
// The header and tasks follow the live picture; the timeline, signals and
// recommendations come from the incident.detail query, asked again when an
// event for this incident arrives (debounced) and, while a task waits for a
// unit, every few seconds (the dispatcher's recommendations are not events).

import { $, h } from "./dom.js";
import { CATEGORIES, LIVE_TASK, PRIORITY, categoryLabel, clock, slaOf } from "./model.js";

/** Whether the core takes console command `name` on incident view `v` now (its `actions`). */
const offers = (v, name) => (v.actions || []).includes(name);
/** Whether the core takes task command `name` on task `t` of view `v` now (its `task_actions`). */
const offersTask = (v, t, name) => ((v.task_actions || {})[t.task_id] || []).includes(name);
const REASON = { name: "reason", label: "Why", type: "text", required: true, max: 500 };

// What the toolbar can offer, in this order: a button shows when the role may send it
// (welcome.commands) and the view's `actions` name it. The server computes `actions` from
// the incident's state with the core's table (workflows/actions.py); it decides either way.
const ACTIONS = [
  { name: "incident.verify", label: "Verify", key: "v" },
  { name: "incident.escalate", label: "Escalate…", key: "e", fields: [REASON] },
  { name: "incident.set_priority", label: "Set priority…", key: "p",
    fields: [{ name: "priority", label: "Priority", type: "priority" }, REASON] },
  { name: "incident.reclassify", label: "Reclassify…",
    fields: [{ name: "category", label: "Type", type: "category" }, { ...REASON, required: false, label: "Why (optional)" }] },
  { name: "incident.add_note", label: "Add note…", key: "t",
    fields: [{ name: "text", label: "Note", type: "textarea", required: true, max: 4000 }] },
  { name: "incident.link", label: "Link…",
    fields: [{ name: "other_id", label: "Related incident", type: "incident" }] },
  { name: "incident.merge", label: "Merge into…",
    fields: [{ name: "into", label: "Merge this incident into", type: "incident" }] },
  { name: "incident.undo_merge", label: "Undo merge", confirm: true },
  { name: "incident.split", label: "Split off…",
    fields: [{ name: "signal_ids", label: "Signals that belong to a separate incident", type: "signals" }] },
  { name: "incident.warn", label: "Public warning…", fields: [
    { name: "headline", label: "Headline", type: "text", required: true, max: 160 },
    { name: "instruction", label: "What people should do", type: "textarea", required: true, max: 2000 },
    { name: "description", label: "Description (optional)", type: "textarea", max: 4000 },
    { name: "radius_m", label: "Radius (metres)", type: "number", required: true, value: "1000", min: 1, max: 100000 },
    { name: "severity", label: "Severity", type: "select", options: ["Extreme", "Severe", "Moderate", "Minor"], value: "Severe" },
    { name: "urgency", label: "Urgency", type: "select", options: ["Immediate", "Expected", "Future"], value: "Immediate" }] },
  { name: "incident.end_warning", label: "End warning…", fields: [REASON] },
  { name: "incident.control", label: "Under control", confirm: true },
  { name: "incident.resolve", label: "Resolve", confirm: true },
  { name: "incident.cancel", label: "Cancel incident…", fields: [REASON] },
  { name: "incident.close", label: "Close", confirm: true },
  { name: "incident.reopen", label: "Reopen…", fields: [REASON] },
];
const TASK_ACTIONS = {
  "task.dispatch": { label: "Dispatch", fields: [{ name: "unit_id", label: "Unit", type: "unit" }] },
  "task.reassign": { label: "Reassign", fields: [{ name: "unit_id", label: "New unit", type: "unit" }, REASON] },
  "task.cancel": { label: "Cancel task", fields: [REASON] },
  "incident.detach_signal": { label: "Detach signal", fields: [REASON] },
};

/** The unit the "a" key accepts: the top free candidate of the first waiting task this console may dispatch. */
function topChoice(view, recommendations, agency) {
  const recs = new Map((recommendations || []).map((r) => [r.task_id, r.candidates || []]));
  for (const task of view.tasks) {
    if (task.status !== "pending" || (agency && task.agency !== agency)) continue;
    const top = (recs.get(task.task_id) || []).find((c) => !c.stacked);
    if (top) return { task, unit_id: top.unit_id };
  }
  return null;
}

const DONE = {
  "incident.verify": "Verified", "incident.escalate": "Escalated", "incident.set_priority": "Priority set",
  "incident.reclassify": "Reclassified", "incident.add_note": "Note added", "incident.link": "Linked",
  "incident.merge": "Merged", "incident.undo_merge": "Merge undone", "incident.split": "Signals split off",
  "incident.warn": "Public warning issued", "incident.end_warning": "Public warning ended",
  "incident.resolve": "Resolved", "incident.cancel": "Incident cancelled", "incident.close": "Closed",
  "incident.reopen": "Reopened", "incident.detach_signal": "Signal detached", "task.dispatch": "Dispatched",
  "task.reassign": "Reassigned", "task.cancel": "Task cancelled",
};

const time = (iso) => (iso ? new Date(iso).toLocaleTimeString([], { hour12: false }) : "");
const short = (id) => (id ? id.slice(0, 8) : "");
const pct = (x) => `${Math.round((x ?? 0) * 100)}%`;
const words = (s) => String(s ?? "").replaceAll("_", " ");

/** One line for a recorded event: what happened, in words. */
function describe(e, unitName) {
  const d = e.data || {};
  switch (e.type) {
    case "incident.reported": return `Reported from ${d.source}: ${categoryLabel(d.category)}, P${d.priority}, confidence ${pct(d.confidence)} — “${d.summary}”`;
    case "incident.signal_attached": return `Signal ${d.signal_id} from ${d.source} attached (confidence ${pct(d.confidence)})`;
    case "incident.signal_detached": return `Signal ${d.signal_id} detached`;
    case "incident.verified": return "Verified";
    case "incident.reclassified": return `Reclassified: ${categoryLabel(d.previous)} → ${categoryLabel(d.category)}`;
    case "incident.priority_changed": return `Priority P${d.previous} → P${d.priority}`;
    case "incident.escalated": return `Escalated (${words(d.rule)})`;
    case "incident.note_added": return `Note: ${d.text}`;
    case "incident.linked": return `Linked to incident ${short(d.other_id)}`;
    case "incident.merged": return `Merged into incident ${short(d.into)}`;
    case "incident.merge_absorbed": {
      const n = (d.signals || []).length;
      return `Took in incident ${short(d.source_id)} (${n} signal${n === 1 ? "" : "s"})`;
    }
    case "incident.merge_undone": return `Merge undone; back to ${words(d.status)}`;
    case "incident.merge_released": return `Gave back the signals of incident ${short(d.source_id)}`;
    case "incident.split_off": return `Signals ${(d.signal_ids || []).join(", ")} split off into incident ${short(d.new_incident_id)}`;
    case "incident.status_changed": return `Status ${words(d.previous)} → ${words(d.status)}`;
    case "incident.public_warning": return `Public warning (${d.msg_type} #${d.sequence}): ${d.headline}`;
    case "task.created": return `Task created: ${d.agency} ${words(d.capability)}`;
    case "task.offered": return `Task offered to ${unitName(d.unit_id)}`;
    case "task.accepted": return `${unitName(d.unit_id)} accepted the task`;
    case "task.returned": return `${unitName(d.unit_id)} off the task (${words(d.why)}); the task waits for a unit`;
    case "task.moved": return `Task ${words(d.status)}`;
    case "task.cancelled": return `Task cancelled${d.unit_id ? ` (${unitName(d.unit_id)} released)` : ""}`;
    case "timer.scheduled": return `Timer set: ${words(d.kind)}, due ${time(d.due_at)}`;
    case "timer.cancelled": return "Timer cancelled";
    case "timer.fired": return "Timer fired";
    default: return words(e.type);
  }
}

export class Detail {
  constructor(app, { select, priorityBadge, map }) {
    this.app = app;
    this.select = select;
    this.badge = priorityBadge;
    this.map = map;
    this.id = null;
    this.data = null;        // the last incident.detail result
    this.error = null;
    this.form = null;        // {name, ctx}: the open action form
    this.inFlight = false;
    this.again = false;
    this.lastLoad = 0;
    this.debounce = null;
    this.el = $("detail");
    const part = (cls) => h("div", { class: cls });
    this.head = part("d-head");
    this.alerts = part("d-alerts");
    this.actions = h("div", { class: "d-actions", role: "toolbar", "aria-label": "Actions" });
    this.formBox = part("d-form");
    this.tasks = h("section", { class: "d-tasks", "aria-label": "Tasks" });
    this.signals = h("section", { class: "d-signals", "aria-label": "Signals" });
    this.notes = h("section", { class: "d-notes", "aria-label": "Notes" });
    this.timeline = h("section", { class: "d-timeline", "aria-label": "Timeline" });
    this.el.append(this.head, this.alerts, this.actions, this.formBox, this.tasks, this.signals, this.notes, this.timeline);
  }

  view() {
    return this.app.incidents.get(this.id) || (this.data && this.data.incident) || null;
  }

  open(id) {
    if (this.id !== id) {
      this.id = id;
      this.data = null;
      this.error = null;
      this.closeForm();
      for (const el of [this.head, this.alerts, this.actions, this.tasks, this.signals, this.notes, this.timeline]) {
        el._key = null;
      }
      this.el.scrollTop = 0;
    }
    this.el.hidden = false;
    document.body.classList.add("detail-open");
    this.select(id, true);
    this.app.render();
    this.load();
    const view = this.view();
    if (view) this.map.centreOnIfOutside?.(view.location.lat, view.location.lon);
  }

  close() {
    this.id = null;
    this.data = null;
    this.closeForm();
    this.el.hidden = true;
    document.body.classList.remove("detail-open");
    this.app.render();
    $("queue").focus();
  }

  /** Close the open action form; true if there was one. */
  closeForm() {
    if (!this.form) return false;
    this.form = null;
    this.formBox.replaceChildren();
    this.actions._key = null;
    this.app.render();
    return true;
  }

  refresh() {
    if (!this.id) return;
    clearTimeout(this.debounce);
    this.debounce = setTimeout(() => this.load(), 150);
  }

  async load() {
    if (!this.id || !this.app.conn) return;
    if (this.inFlight) { this.again = true; return; }
    this.inFlight = true;
    const id = this.id;
    const result = await this.app.conn.query("incident.detail", id);
    this.inFlight = false;
    this.lastLoad = Date.now();
    if (id === this.id) {
      if (result.ok) { this.data = result.data; this.error = null; }
      else if (result.code !== "offline") this.error = result.message || result.code;
      this.app.render();
    }
    if (this.again) { this.again = false; this.refresh(); }
  }

  /** An event for incident `id` with its view after it: shown at once, the rest re-asked. */
  eventFor(id, view) {
    if (id !== this.id) return;
    if (view && this.data) this.data = { ...this.data, incident: view };
    this.refresh();
  }

  unitChanged(unit) {
    if (!unit || !this.id) return;
    const view = this.view();
    if (unit.incident_id === this.id || (view && view.tasks.some((t) => t.unit_id === unit.unit_id))) this.app.render();
  }

  rolesChanged() {
    for (const el of [this.actions, this.tasks, this.signals]) el._key = null;
    if (this.form && !this.app.can(this.form.name)) this.closeForm();
    this.app.render();
  }

  tick() {
    if (!this.id) return;
    const view = this.view();
    const age = this.head.querySelector(".d-age");
    if (view && age) {
      const sla = slaOf(view);
      const now = this.app.now();
      let text = `age ${clock((now - Date.parse(view.reported_at)) / 1000)}`;
      if (sla) {
        const left = (sla.due - now) / 1000;
        text += left >= 0 ? ` · ${sla.label} in ${clock(left)}` : ` · ${sla.label} OVERDUE ${clock(-left)}`;
      }
      age.textContent = text;
    }
    // the dispatcher's recommendations change without events: look again while a task waits
    if (view && view.tasks.some((t) => t.status === "pending") && Date.now() - this.lastLoad > 4000) this.load();
  }

  unitName(unitId) {
    const u = this.app.units.get(unitId);
    return u && u.call_sign && u.call_sign !== unitId ? `${unitId} (${u.call_sign})` : unitId;
  }

  // --- rendering -------------------------------------------------------------------------

  render() {
    if (!this.id) { this.el.hidden = true; return; }
    const view = this.view();
    if (!view) {
      section(this.head, `none|${this.error}`, () => [
        h("div", { class: "d-title" }, h("h2", { id: "detail-title", tabindex: -1 }, `Incident ${short(this.id)}`), this.closeButton()),
        h("p", { class: "muted" }, this.error ? `Could not load it: ${this.error}` : "Loading…")]);
      return;
    }
    const can = [...this.app.allowed].sort().join(",");
    section(this.head, JSON.stringify([view.version, view.status, view.priority, view.category, view.summary]), () => this.renderHead(view));
    section(this.alerts, JSON.stringify([view.escalations, view.warning_text, view.merged_into, view.close_reason, view.links]), () => this.renderAlerts(view));
    section(this.actions, JSON.stringify([can, view.actions, this.form && this.form.name]), () => this.renderActions(view));
    const unitKey = view.tasks.map((t) => { const u = this.app.units.get(t.unit_id); return u ? `${u.unit_id}:${u.status}` : ""; });
    const recs = this.data ? this.data.recommendations : null;
    const avail = [...this.app.units.values()].filter((u) => u.status === "available").length;
    section(this.tasks, JSON.stringify([view.tasks, view.task_actions, recs, unitKey, can, avail, this.app.me && this.app.me.agency]), () => this.renderTasks(view));
    const sigs = this.data ? this.data.signals : null;
    section(this.signals, JSON.stringify([view.signals, sigs, can]), () => this.renderSignals(view));
    const tl = this.data ? this.data.timeline : null;
    const tlKey = JSON.stringify([tl ? tl.length : -1, tl && tl.length ? tl[tl.length - 1].seq : 0, this.error]);
    section(this.notes, tlKey, () => this.renderNotes(tl));
    section(this.timeline, tlKey, () => this.renderTimeline(tl));
    this.tick();
  }

  closeButton() {
    return h("button", { type: "button", class: "close", onclick: () => this.close(), "aria-label": "Close the incident view (Esc)" }, "Close ", h("kbd", {}, "Esc"));
  }

  renderHead(v) {
    const l = v.location;
    return [
      h("div", { class: "d-title" },
        this.badge(v.priority),
        h("h2", { id: "detail-title", tabindex: -1 }, categoryLabel(v.category)),
        h("span", { class: `status st-${v.status}` }, words(v.status)),
        this.closeButton()),
      h("p", { class: "d-summary" }, v.summary || "(no summary)"),
      h("p", { class: "d-meta" },
        h("span", {}, l.address ? `${l.address} (${l.lat.toFixed(5)}, ${l.lon.toFixed(5)})` : `${l.lat.toFixed(5)}, ${l.lon.toFixed(5)}`),
        h("span", {}, `reported ${time(v.reported_at)}`),
        h("span", { class: "d-age" }),
        h("span", { class: "muted", title: v.incident_id }, `id ${short(v.incident_id)}`)),
    ];
  }

  renderAlerts(v) {
    const out = [];
    for (const e of [...v.escalations].reverse()) {
      out.push(h("div", { class: "alert esc", role: "note" }, h("b", {}, "ESCALATED "), `${words(e.rule)} — ${e.reason}`,
        h("span", { class: "muted" }, ` (${e.by}, ${time(e.at)})`)));
    }
    if (v.warning_text) {
      const w = v.warning_text;
      out.push(h("div", { class: "alert warn" }, h("b", {}, "PUBLIC WARNING STANDING "),
        `${w.headline} — ${w.instruction} (${w.severity}, ${w.urgency}, ${Math.round(w.radius_m)} m)`));
    }
    if (v.merged_into) out.push(h("div", { class: "alert" }, `Merged into incident ${short(v.merged_into)}.`));
    if (v.close_reason) out.push(h("div", { class: "alert" }, `Closed: ${v.close_reason}`));
    if (v.links && v.links.length) out.push(h("div", { class: "muted" }, `Linked: ${v.links.map(short).join(", ")}`));
    return out;
  }

  renderActions(v) {
    const buttons = ACTIONS.filter((a) => this.app.can(a.name) && offers(v, a.name)).map((a) => h("button", {
      type: "button", class: `action${this.form && this.form.name === a.name ? " active" : ""}`,
      dataset: { command: a.name },
      onclick: () => (a.fields || a.confirm ? this.openForm(a.name, {}) : this.send(a.name, {})),
    }, a.label, a.key ? h("kbd", {}, a.key) : null));
    return buttons.length ? buttons : [];
  }

  renderTasks(v) {
    const mine = this.app.me && this.app.me.agency;
    const recs = new Map(((this.data && this.data.recommendations) || []).map((r) => [r.task_id, r.candidates || []]));
    const tasks = v.tasks;
    if (!tasks.length) return [h("h3", {}, "Tasks"), h("p", { class: "muted" }, v.status === "reported" ? "None yet: tasks come with verification." : "None.")];
    const top = topChoice(v, this.data && this.data.recommendations, mine);
    return [h("h3", {}, "Tasks"), h("ul", { class: "task-list" }, tasks.map((t) => {
      const ours = !mine || t.agency === mine;
      const unit = t.unit_id ? this.app.units.get(t.unit_id) : null;
      const cands = recs.get(t.task_id) || [];
      const controls = [];
      if (offersTask(v, t, "task.dispatch")) {
        const free = cands.filter((c) => !c.stacked);
        if (ours && this.app.can("task.dispatch")) {
          free.forEach((c, i) => controls.push(h("button", {
            type: "button", class: `action accept${i === 0 ? " primary" : ""}`, dataset: { command: "task.dispatch", unit: c.unit_id },
            onclick: () => this.send("task.dispatch", { task_id: t.task_id, unit_id: c.unit_id }),
          }, `${i === 0 ? "Accept " : ""}${this.unitName(c.unit_id)} · ETA ${clock(c.eta_s)}${c.distance_m !== undefined ? ` · ${(c.distance_m / 1000).toFixed(1)} km` : ""}${c.mutual_aid ? " · mutual aid" : ""}`,
          top && top.task.task_id === t.task_id && top.unit_id === c.unit_id ? h("kbd", {}, "a") : null)));
          controls.push(h("button", { type: "button", class: "action", dataset: { command: "task.dispatch" },
            onclick: () => this.openForm("task.dispatch", { task: t }) }, "Choose unit…"));
        } else if (free.length) {
          controls.push(h("span", { class: "muted" }, `Recommended: ${free.map((c) => `${this.unitName(c.unit_id)} (ETA ${clock(c.eta_s)})`).join(", ")}`));
        }
        for (const c of cands.filter((x) => x.stacked)) {
          controls.push(h("span", { class: "muted" }, `No unit free: ${this.unitName(c.unit_id)} (${words(c.status)}) could take it in about ${clock(c.free_in_s)}`));
        }
        if (!cands.length) controls.push(h("span", { class: "muted" }, this.data ? "No recommendation yet." : "Loading recommendations…"));
      }
      if (ours && this.app.can("task.reassign") && offersTask(v, t, "task.reassign")) {
        controls.push(h("button", { type: "button", class: "action", dataset: { command: "task.reassign" },
          onclick: () => this.openForm("task.reassign", { task: t }) }, "Reassign…"));
      }
      if (ours && this.app.can("task.cancel") && offersTask(v, t, "task.cancel")) {
        controls.push(h("button", { type: "button", class: "action", dataset: { command: "task.cancel" },
          onclick: () => this.openForm("task.cancel", { task: t }) }, "Cancel task…"));
      }
      return h("li", { class: `task tk-${t.status}`, dataset: { taskId: t.task_id } },
        h("div", { class: "task-head" },
          h("span", { class: `agency-tag ag-${t.agency}` }, t.agency),
          h("span", {}, words(t.capability)),
          h("span", { class: `status tk-${t.status}` }, words(t.status)),
          t.unit_id ? h("span", { class: "task-unit" }, `${this.unitName(t.unit_id)}${unit && LIVE_TASK.has(t.status) ? ` — unit ${words(unit.status)}` : ""}`) : null,
          t.passed_over && t.passed_over.length ? h("span", { class: "muted" }, `passed over: ${t.passed_over.join(", ")}`) : null),
        controls.length ? h("div", { class: "task-controls" }, controls) : null);
    }))];
  }

  renderSignals(v) {
    const list = (this.data && this.data.signals) || v.signals;
    const detach = this.app.can("incident.detach_signal") && offers(v, "incident.detach_signal");
    return [h("h3", {}, `Signals (${list.length})`), h("ul", { class: "signal-list" }, list.map((s) => {
      const details = s.details || {};
      return h("li", { class: "signal", dataset: { signalId: s.signal_id } },
        h("div", { class: "sig-head" },
          h("span", { class: "source" }, s.source),
          s.category ? h("span", {}, categoryLabel(s.category)) : null,
          h("span", { class: "confidence" }, `confidence ${pct(s.confidence)}`),
          h("span", { class: "muted" }, `observed ${time(s.observed_at || s.at)}`),
          s.merged_from ? h("span", { class: "muted" }, `from merged ${short(s.merged_from)}`) : null,
          detach ? h("button", { type: "button", class: "action small", dataset: { command: "incident.detach_signal" },
            onclick: () => this.openForm("incident.detach_signal", { signal: s.signal_id }) }, "Detach…") : null),
        s.summary ? h("div", { class: "sig-summary" }, s.summary) : null,
        s.reporter && (s.reporter.name || s.reporter.phone)
          ? h("div", { class: "reporter" }, `Caller: ${[s.reporter.name, s.reporter.phone].filter(Boolean).join(", ")}`) : null,
        details.rule ? h("div", { class: "muted" }, `classified by rule “${details.rule}”${details.matched ? `, matched “${details.matched}”` : ""}`) : null,
        details.cap ? h("div", { class: `cap-trust${details.cap.signature === "signed_valid" && details.cap.schema === "valid" ? "" : " warn"}` },
          `CAP ${details.sender ? `from ${details.sender}: ` : ""}signature ${words(details.cap.signature)}${details.cap.signer ? ` by ${details.cap.signer}` : ""}; schema ${details.cap.schema}`) : null,
        h("div", { class: "muted mono" }, s.signal_id));
    }))];
  }

  renderNotes(tl) {
    const notes = (tl || []).filter((e) => e.type === "incident.note_added");
    if (!notes.length) return [];
    return [h("h3", {}, `Notes (${notes.length})`), h("ul", { class: "note-list" }, notes.map((e) =>
      h("li", {}, h("div", { class: "note-text" }, e.data.text), h("div", { class: "muted" }, `${e.data.by || e.actor}, ${time(e.recorded_at)}`))))];
  }

  renderTimeline(tl) {
    const head = h("h3", {}, "Timeline");
    if (!tl) return [head, h("p", { class: "muted" }, this.error ? `Could not load the timeline: ${this.error}` : "Loading the timeline…")];
    const name = (id) => this.unitName(id);
    return [head, this.error ? h("p", { class: "error-text" }, `Could not refresh: ${this.error}`) : null,
      h("ol", { class: "timeline" }, tl.map((e) => {
        const d = e.data || {};
        const by = d.by && d.by !== e.actor ? `${e.actor} · ${d.by}` : e.actor;
        const why = d.reason || (d.why && d.why !== "reassigned" ? words(d.why) : "");
        return h("li", { class: `ev${e.type.startsWith("timer.") ? " timer" : ""}`, dataset: { type: e.type, seq: e.seq } },
          h("span", { class: "ev-time" }, time(e.recorded_at || d.at)),
          h("span", { class: "ev-type mono" }, e.type),
          h("span", { class: "ev-text" }, describe(e, name)),
          h("span", { class: "ev-who" }, `by ${by}`),
          why ? h("span", { class: "ev-why" }, `why: ${why}`) : null);
      }))];
  }

  // --- actions -----------------------------------------------------------------------------

  /** Open the form for an incident action (from a key or a button) on incident `id`. */
  openAction(id, name) {
    if (!this.app.can(name)) {
      this.app.toast(`Your role (${this.app.me ? words(this.app.me.role) : "unknown"}) may not ${words(name.split(".")[1])}.`, "info");
      return;
    }
    if (this.id !== id) this.open(id);
    this.openForm(name, {});
  }

  openForm(name, ctx) {
    this.form = { name, ctx };
    const spec = ACTIONS.find((a) => a.name === name) || TASK_ACTIONS[name];
    const view = this.view();
    const fields = (spec.fields || []).map((f) => this.field(f, view, ctx));
    const message = h("p", { class: "form-error", role: "alert" });
    const submit = h("button", { type: "submit", class: "primary" }, spec.confirm ? `Confirm: ${spec.label}` : spec.label.replace("…", ""));
    const title = ctx.task ? `${spec.label.replace("…", "")} — ${ctx.task.agency} ${words(ctx.task.capability)}`
      : ctx.signal ? `${spec.label.replace("…", "")} ${ctx.signal}` : spec.label.replace("…", "");
    const form = h("form", { class: "action-form", dataset: { command: name } },
      h("h3", {}, title), ...fields.map((f) => f.el), message,
      h("div", { class: "form-buttons" }, submit,
        h("button", { type: "button", onclick: () => this.closeForm() }, "Back ", h("kbd", {}, "Esc"))));
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      const args = {};
      for (const f of fields) {
        const value = f.value();
        if (value === undefined) continue;
        args[f.name] = value;
      }
      if (ctx.task) args.task_id = ctx.task.task_id;
      if (ctx.signal) args.signal_id = ctx.signal;
      if (fields.some((f) => f.invalid && f.invalid())) {
        message.textContent = fields.map((f) => f.invalid && f.invalid()).filter(Boolean).join(" ");
        return;
      }
      submit.disabled = true;
      const result = await this.send(name, args);
      submit.disabled = false;
      if (result.ok) this.closeForm();
      else message.textContent = result.message || result.code;
    });
    this.formBox.replaceChildren(form);
    this.actions._key = null;
    this.app.render();
    const first = form.querySelector("input, textarea, select, button[type=submit]");
    if (first) first.focus();
  }

  field(f, view, ctx) {
    const id = `f-${f.name}`;
    const label = h("label", { for: id }, f.label);
    let input;
    let value = () => (input.value.trim() === "" && !f.required ? undefined : input.value.trim());
    let invalid = null;
    if (f.type === "textarea") {
      input = h("textarea", { id, rows: 3, required: f.required, maxlength: f.max });
    } else if (f.type === "number") {
      input = h("input", { id, type: "number", required: f.required, min: f.min, max: f.max, step: "any", value: f.value });
      value = () => (input.value === "" ? undefined : Number(input.value));
    } else if (f.type === "select") {
      input = h("select", { id }, f.options.map((o) => h("option", { value: o, selected: o === f.value }, o)));
    } else if (f.type === "priority") {
      input = h("select", { id }, [1, 2, 3, 4].map((p) => h("option", { value: p, selected: view && p === view.priority },
        `${PRIORITY[p].short} ${PRIORITY[p].word}`)));
      value = () => Number(input.value);
    } else if (f.type === "category") {
      input = h("select", { id }, Object.entries(CATEGORIES).map(([k, [label]]) => h("option", { value: k, selected: view && k === view.category }, label)));
    } else if (f.type === "incident") {
      const others = [...this.app.incidents.values()].filter((v) => v.incident_id !== this.id);
      input = h("select", { id, required: true }, h("option", { value: "" }, others.length ? "— choose —" : "no other open incident"),
        others.map((v) => h("option", { value: v.incident_id }, `P${v.priority} ${categoryLabel(v.category)} — ${v.summary.slice(0, 60)} (${short(v.incident_id)})`)));
    } else if (f.type === "unit") {
      const task = ctx.task;
      const at = view ? view.location : null;
      const dist = (u) => (u.home && at ? Math.hypot((u.home.lat - at.lat) * 111, (u.home.lon - at.lon) * 91) : 999);
      const able = [...this.app.units.values()].filter((u) => u.status === "available" && u.agency === task.agency
        && (u.capabilities || []).includes(task.capability) && u.unit_id !== task.unit_id).sort((a, b) => dist(a) - dist(b));
      input = h("select", { id, required: true }, h("option", { value: "" }, able.length ? "— choose —" : `no ${task.agency} ${words(task.capability)} unit available`),
        able.map((u) => h("option", { value: u.unit_id }, `${this.unitName(u.unit_id)} — about ${dist(u).toFixed(1)} km from its station`)));
    } else if (f.type === "signals") {
      const boxes = view.signals.map((s) => h("input", { type: "checkbox", value: s.signal_id, id: `sig-${s.signal_id}` }));
      input = h("fieldset", { id, class: "checks" }, h("legend", {}, f.label),
        view.signals.map((s, i) => h("label", { for: `sig-${s.signal_id}` }, boxes[i], ` ${s.source} · ${s.signal_id}`)));
      value = () => boxes.filter((b) => b.checked).map((b) => b.value);
      invalid = () => (boxes.some((b) => b.checked) ? "" : "Choose at least one signal.");
      return { name: f.name, el: input, value, invalid };
    } else {
      input = h("input", { id, type: "text", required: f.required, maxlength: f.max, autocomplete: "off" });
    }
    return { name: f.name, el: h("div", { class: "field" }, label, input), value, invalid };
  }

  /** Send a command about the open incident; toasts the outcome (a refusal verbatim). */
  async send(name, args) {
    const id = this.id;
    const result = await this.app.conn.command(name, id, args);
    if (result.ok) {
      this.app.toast(`${DONE[name] || words(name)}${args.unit_id ? `: ${this.unitName(args.unit_id)}` : ""}.`, "ok", 4000);
      this.refresh();
    } else {
      this.app.toast(result.message || `Refused (${result.code}).`, "error");
    }
    return result;
  }

  async verify(id) {
    if (!this.app.can("incident.verify")) {
      this.app.toast("Your role may not verify incidents.", "info");
      return;
    }
    if (this.id !== id) this.open(id);
    await this.send("incident.verify", {});
  }

  /** Dispatch the top recommended unit to the first task that waits for one. */
  async acceptTop(id) {
    if (!this.app.can("task.dispatch")) {
      this.app.toast("Your role may not dispatch units.", "info");
      return;
    }
    if (this.id !== id) this.open(id);
    if (!this.data || this.inFlight) {
      const result = await this.app.conn.query("incident.detail", id);
      if (!result.ok) { this.app.toast(result.message || result.code, "error"); return; }
      if (id !== this.id) return;
      this.data = result.data;
      this.app.render();
    }
    const view = this.view();
    const top = view && topChoice(view, this.data.recommendations, this.app.me && this.app.me.agency);
    if (!top) {
      this.app.toast("No recommendation to accept on this incident.", "info");
      return;
    }
    await this.send("task.dispatch", { task_id: top.task.task_id, unit_id: top.unit_id });
  }
}

/** Rebuild a part of the view only when what it shows changed (so a click is never lost to a redraw). */
function section(el, key, build) {
  if (el._key === key) return;
  el._key = key;
  el.replaceChildren(...build().filter(Boolean));
}

// Playback: a period of the past on the map and the queue, from the event store.
//
// The history.period query gives the picture at the period's start (at_start,
// folded on the server from the event store) and the console-visible events of
// the period, each with its stream's view after it. A separate picture is built
// here from at_start and the events up to the slider's time, each view replacing
// the one before as live deltas do (model.js applyDelta: nothing is folded here);
// the live picture (app.incidents, app.units) keeps taking its deltas and is
// never touched. Moving the slider rebuilds from at_start.

import { $ } from "./dom.js";
import { OPEN, applyDelta } from "./model.js";

const MAX_SPAN_MS = 24 * 3600 * 1000;

/** Milliseconds since the epoch of an ISO time (microseconds cut to what Date takes). */
export const instant = (iso) => Date.parse(String(iso).replace(/(\.\d{3})\d+/, "$1"));

/** A datetime-local input's value ("2026-03-01T10:00:05") for an instant, in local time. */
export function localValue(ms) {
  const d = new Date(ms - new Date(ms).getTimezoneOffset() * 60000);
  return d.toISOString().slice(0, 19);
}

const two = (n) => String(n).padStart(2, "0");
const hms = (ms) => { const d = new Date(ms); return `${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}`; };

/** The picture at `at` (ms): at_start with the views of the period's events recorded at or before it. */
export function pictureAt(period, at) {
  const picture = {
    incidents: new Map(period.at_start.incidents.filter((i) => OPEN.has(i.status)).map((i) => [i.incident_id, i])),
    units: new Map(period.at_start.units.map((u) => [u.unit_id, u])),
  };
  for (const event of period.events) {
    if (event.at_ms > at) break;
    applyDelta(picture, event, event.view ?? null);
  }
  return picture;
}

export class Playback {
  constructor(app, { onChange }) {
    this.app = app;
    this.onChange = onChange;
    this.period = null;   // the query's data, with from_ms / to_ms and each event's at_ms
    this.picture = null;  // {incidents, units} while playing back, else null
    this.at = 0;
    $("playback-open").onclick = () => this.openForm();
    $("pb-cancel").onclick = () => this.closeForm();
    $("pb-form").addEventListener("submit", (e) => { e.preventDefault(); this.load(); });
    $("pb-slider").addEventListener("input", () => this.seek(this.period.from_ms + Number($("pb-slider").value) * 1000));
    $("pb-exit").onclick = () => this.exit();
  }

  get active() { return this.picture !== null; }

  openForm() {
    // the last hour up to now (the inputs take whole seconds: the end is rounded up, so
    // what just happened is in the period)
    const now = Math.ceil(this.app.now() / 1000) * 1000;
    $("pb-from").value = localValue(now - 3600 * 1000);
    $("pb-to").value = localValue(now);
    $("pb-error").textContent = "";
    $("playback").hidden = false;
    $("pb-from").focus();
  }

  /** Close the form; true when it was open (for Esc). */
  closeForm() {
    if ($("playback").hidden) return false;
    $("playback").hidden = true;
    return true;
  }

  async load() {
    const from = new Date($("pb-from").value), to = new Date($("pb-to").value);
    const problem = Number.isNaN(from.getTime()) || Number.isNaN(to.getTime()) ? "Give both times."
      : from >= to ? "The start must be before the end."
        : to - from > MAX_SPAN_MS ? "A period is at most 24 hours." : "";
    if (problem) { $("pb-error").textContent = problem; return; }
    $("pb-load").disabled = true;
    const result = await this.app.conn.request({ type: "query", name: "history.period",
      args: { from: from.toISOString(), to: to.toISOString() } });
    $("pb-load").disabled = false;
    if (!result.ok) { $("pb-error").textContent = result.message || `Refused (${result.code}).`; return; }
    const data = result.data;
    for (const e of data.events) e.at_ms = instant(e.recorded_at);
    this.period = { ...data, from_ms: from.getTime(), to_ms: to.getTime() };
    this.closeForm();
    const slider = $("pb-slider");
    slider.max = String(Math.round((this.period.to_ms - this.period.from_ms) / 1000));
    slider.value = slider.max;
    $("pb-range").textContent = `${hms(this.period.from_ms)} – ${hms(this.period.to_ms)}`;
    $("pb-bar").hidden = false;
    document.body.classList.add("playback");
    if (data.truncated) this.app.toast(`The period has more than ${data.events.length} events: playback stops at the last of them.`, "warn");
    this.seek(this.period.to_ms);
  }

  seek(at) {
    this.at = at;
    this.picture = pictureAt(this.period, at);
    $("pb-banner").textContent = `PLAYBACK ${hms(at)} — not live`;
    this.onChange();
  }

  exit() {
    this.picture = null;
    this.period = null;
    $("pb-bar").hidden = true;
    document.body.classList.remove("playback");
    this.onChange();
  }
}

// Call taking (the hotline desk): caller, phone, location (typed, or a click on
// the map), narrative; a live type suggestion as the narrative is typed; then
// call.take, the server's classification, and the incident the call raised or
// joined as soon as it appears on the feed.

import { $, h } from "./dom.js";
import { classify } from "./classify.js";
import { PRIORITY, categoryLabel } from "./model.js";

const pct = (x) => `${Math.round((x ?? 0) * 100)}%`;

export class CallDesk {
  constructor(app, { map, openIncident }) {
    this.app = app;
    this.map = map;
    this.openIncident = openIncident;
    this.waiting = new Map();  // signal_id -> the result element to fill in
    this.panel = $("call");
    this.form = $("call-form");
    $("call-narrative").addEventListener("input", () => this.suggest());
    for (const id of ["call-lat", "call-lon"]) $(id).addEventListener("change", () => this.showPick());
    $("call-close").onclick = () => this.close();
    $("call-again").onclick = () => this.reset();
    this.form.addEventListener("submit", (e) => { e.preventDefault(); this.submit(); });
    this.suggest();
  }

  get isOpen() { return !this.panel.hidden; }

  open() {
    if (!this.app.can("call.take")) {
      this.app.toast("Your role may not take calls.", "info");
      return;
    }
    this.panel.hidden = false;
    document.body.classList.add("call-open");
    $("call-name").focus();
  }

  close() {
    this.panel.hidden = true;
    document.body.classList.remove("call-open");
    this.map.setPick(null);
  }

  reset() {
    this.form.reset();
    $("call-result").replaceChildren();
    $("call-error").textContent = "";
    this.map.setPick(null);
    this.suggest();
    $("call-name").focus();
  }

  /** A click on the map while the form is open sets the call's location. */
  pick(lat, lon) {
    if (!this.isOpen) return;
    $("call-lat").value = lat.toFixed(5);
    $("call-lon").value = lon.toFixed(5);
    this.showPick();
  }

  showPick() {
    const lat = Number($("call-lat").value), lon = Number($("call-lon").value);
    const ok = $("call-lat").value !== "" && $("call-lon").value !== "" && Number.isFinite(lat) && Number.isFinite(lon);
    this.map.setPick(ok ? { lat, lon } : null);
  }

  suggest() {
    const text = $("call-narrative").value.trim();
    const out = $("call-suggest");
    if (!text) { out.textContent = "Type the narrative: ECC suggests the incident type as you type."; return; }
    const c = classify(text);
    const p = PRIORITY[c.priority];
    out.replaceChildren("Suggested type: ", h("b", {}, categoryLabel(c.category)), ` · ${p.short} ${p.word}`,
      c.matched ? ` (matched “${c.matched}”)` : " (no keyword matched)");
  }

  async submit() {
    const val = (id) => $(id).value.trim();
    const lat = Number(val("call-lat")), lon = Number(val("call-lon"));
    const error = $("call-error");
    error.textContent = "";
    if (val("call-lat") === "" || val("call-lon") === "" || !Number.isFinite(lat) || !Number.isFinite(lon)) {
      error.textContent = "Give the location: latitude and longitude, or click the map.";
      return;
    }
    if (!val("call-narrative")) { error.textContent = "Write what the caller says."; return; }
    const args = { narrative: val("call-narrative"), lat, lon };
    if (val("call-accuracy")) args.accuracy_m = Number(val("call-accuracy"));
    if (val("call-address")) args.address = val("call-address");
    if (val("call-name")) args.caller_name = val("call-name");
    if (val("call-phone")) args.caller_phone = val("call-phone");
    const button = $("call-submit");
    button.disabled = true;
    const result = await this.app.conn.command("call.take", null, args);
    button.disabled = false;
    if (!result.ok) {
      error.textContent = result.message || result.code;
      this.app.toast(result.message || `Refused (${result.code}).`, "error");
      return;
    }
    const d = result.data;
    const p = PRIORITY[d.priority] || { short: `P${d.priority}`, word: "" };
    const where = h("p", { class: "call-incident" }, "Waiting for the incident…");
    const line = h("div", { class: "call-taken", role: "status", dataset: { signalId: d.signal_id } },
      h("p", {}, `Call ${d.call_id} taken. ECC classified it as `, h("b", { class: "call-category" }, categoryLabel(d.category)),
        ` · ${p.short} ${p.word} — rule “${d.rule}”${d.matched ? `, matched “${d.matched}”` : ""}, confidence ${pct(d.confidence)}.`),
      where);
    $("call-result").replaceChildren(line);
    this.waiting.set(d.signal_id, where);
    // the feed can be quicker than the command's answer
    const already = this.app.seenSignals.get(d.signal_id);
    if (already) this.signalLanded(d.signal_id, already.id, already.raised);
    // clear the form, location too: a stale location on the next call would send units astray
    this.form.reset();
    this.map.setPick(null);
    this.suggest();
  }

  /** A signal reached an incident (from the feed): if it is one of our calls, say where. */
  signalLanded(signalId, incidentId, isNew) {
    const where = this.waiting.get(signalId);
    if (!where) return;
    this.waiting.delete(signalId);
    const open = h("button", { type: "button", class: "primary", onclick: () => this.openIncident(incidentId) }, "Open it");
    where.replaceChildren(isNew ? "It raised a new incident. " : "It joined an open incident. ", open);
  }
}

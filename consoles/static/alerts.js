// Desk alerts (workflows/alert.py): what the supervisors must see that belongs to no
// incident — a retraction held for their confirmation, an accepted message ECC could
// not use, two different copies of one CAP alert. Shown in a banner above the picture
// on every console; only roles that may send alert.close get the buttons.

import { $, h } from "./dom.js";

const ACTIONS = {
  retraction_held: [["confirmed", "Confirm: take the signals back"], ["dismissed", "Dismiss: keep them"]],
};
const DEFAULT_ACTIONS = [["acknowledged", "Acknowledge"]];

export class DeskAlerts {
  constructor(app) {
    this.app = app;
    this.open = new Map();  // alert id -> view
    this.busy = new Set();
  }

  /** The snapshot's open alerts. */
  reset(views) {
    this.open = new Map((views || []).filter((v) => v.status === "open").map((v) => [v.alert_id, v]));
    this.render();
  }

  /** One alert event from the live feed; returns the view raised, if any (to sound it). */
  event(event) {
    const d = event.data;
    if (event.type === "alert.raised") {
      const view = { alert_id: d.alert_id, kind: d.kind, title: d.title, detail: d.detail,
        data: d.data || {}, raised_at: d.at, status: "open" };
      this.open.set(d.alert_id, view);
      this.render();
      return view;
    }
    if (event.type === "alert.closed") {
      this.open.delete(d.alert_id);
      this.render();
    }
    return null;
  }

  async close(view, outcome) {
    if (this.busy.has(view.alert_id)) return;
    this.busy.add(view.alert_id);
    this.render();
    const result = await this.app.conn.command("alert.close", null, { alert_id: view.alert_id, outcome });
    this.busy.delete(view.alert_id);
    if (result.ok) this.app.toast(`Alert ${outcome}.`, "info", 4000);
    else this.app.toast(result.message || result.code, "error");
    this.render();
  }

  render() {
    const box = $("alerts");
    if (!box) return;
    box.hidden = this.open.size === 0;
    const canClose = this.app.can("alert.close");
    box.replaceChildren(...[...this.open.values()].map((view) => h("div",
      { class: `desk-alert kind-${view.kind}`, role: "alert", dataset: { alert: view.alert_id } },
      h("strong", { class: "desk-alert-title" }, view.title),
      h("span", { class: "desk-alert-detail" }, view.detail),
      canClose ? h("span", { class: "desk-alert-actions" }, ...(ACTIONS[view.kind] || DEFAULT_ACTIONS).map(
        ([outcome, label]) => h("button", { type: "button", dataset: { outcome },
          disabled: this.busy.has(view.alert_id), onclick: () => this.close(view, outcome) }, label)))
        : h("span", { class: "muted" }, "A supervisor acts on this."))));
  }
}

// The city map: an SVG with a GeoJSON base layer (city.geojson, no tiles) and
// live layers of incidents (by type and priority) and units (by agency and
// status). Markers keep their size on screen whatever the zoom.

import { s } from "./dom.js";
import { categoryCode, categoryLabel, ON_TASK, PRIORITY, isEscalated } from "./model.js";

// The extent drawn: the demo city, from the Yellow River to the south of the 4th ring.
const LON0 = 113.48, LON1 = 113.86, LAT0 = 34.64, LAT1 = 34.96;
const K = Math.cos(((LAT0 + LAT1) / 2) * Math.PI / 180);
const SCALE = 1000 / ((LON1 - LON0) * K);
const WIDTH = 1000, HEIGHT = (LAT1 - LAT0) * SCALE;

export const project = (lon, lat) => [(lon - LON0) * K * SCALE, (LAT1 - lat) * SCALE];
export const unproject = (x, y) => [x / (K * SCALE) + LON0, LAT1 - y / SCALE];

const STATUS_WORD = (st) => st.replaceAll("_", " ");

export class CityMap {
  /** svg: the <svg> element; onIncident(id): an incident marker was chosen; onPick(lat, lon): the map was clicked */
  constructor(svg, { onIncident, onPick }) {
    this.svg = svg;
    this.onIncident = onIncident;
    this.onPick = onPick;
    this.view = { x: 0, y: 0, w: WIDTH, h: HEIGHT };
    svg.setAttribute("preserveAspectRatio", "xMidYMid meet");
    this.base = s("g", { class: "base" });
    this.links = s("g", { class: "links" });
    this.unitLayer = s("g", { class: "units" });
    this.incidentLayer = s("g", { class: "incidents" });
    this.pickLayer = s("g", { class: "pick" });
    svg.append(s("rect", { class: "sea", x: -5000, y: -5000, width: 10000 + WIDTH, height: 10000 + HEIGHT }),
      this.base, this.links, this.unitLayer, this.incidentLayer, this.pickLayer);
    this.apply();
    this.last = { incidents: [], units: [], selected: null };
    this.interact();
  }

  async loadBase(url) {
    const response = await fetch(url);
    if (!response.ok) throw new Error(`${url}: ${response.status}`);
    const fc = await response.json();
    const path = (ring) => ring.map(([lon, lat], i) => {
      const [x, y] = project(lon, lat);
      return `${i ? "L" : "M"}${x.toFixed(1)},${y.toFixed(1)}`;
    }).join("");
    const order = { boundary: 0, district: 1, river: 2, road: 3, ring: 4, label: 5 };
    const features = [...fc.features].sort((a, b) => (order[a.properties.kind] ?? 9) - (order[b.properties.kind] ?? 9));
    for (const f of features) {
      const { kind, name } = f.properties;
      const g = f.geometry;
      if (g.type === "Polygon") {
        this.base.append(s("path", { class: kind, d: g.coordinates.map((r) => path(r) + "Z").join("") },
          s("title", {}, name)));
      } else if (g.type === "LineString") {
        this.base.append(s("path", { class: kind, d: path(g.coordinates) }, s("title", {}, name)));
      } else if (g.type === "Point" && kind === "label") {
        const [x, y] = project(...g.coordinates);
        this.base.append(s("text", { class: "district-label", x, y: y - 26, "text-anchor": "middle" }, name));
      }
    }
    if (fc.properties && fc.properties.schematic) {
      this.base.append(s("text", { class: "schematic-note", x: 12, y: 30 }, "schematic map, not to navigate by"));
    }
  }

  /** Screen pixels per map unit: markers are drawn at 1/px so they keep their size. */
  markerScale() {
    const box = this.svg.getBoundingClientRect();
    if (!box.width || !box.height) return 1;
    const px = Math.min(box.width / this.view.w, box.height / this.view.h);
    return 1 / px;
  }

  render(incidents, units, selected) {
    this.last = { incidents, units, selected };
    const k = this.markerScale();
    const where = new Map();  // incident id -> [x, y]
    const incidentNodes = [];
    for (const inc of incidents) {
      const [x, y] = project(inc.location.lon, inc.location.lat);
      where.set(inc.incident_id, [x, y]);
      const p = PRIORITY[inc.priority] || { short: `P${inc.priority}`, word: "" };
      const r = inc.priority === 1 ? 21 : 17;
      const classes = `incident p${inc.priority}${inc.incident_id === selected ? " selected" : ""}${isEscalated(inc) ? " escalated" : ""}`;
      const g = s("g", { class: classes, transform: `translate(${x},${y}) scale(${k})`, dataset: { incidentId: inc.incident_id },
        tabindex: -1 },
      s("title", {}, `${p.short} ${p.word} · ${categoryLabel(inc.category)} · ${inc.status.replaceAll("_", " ")} — ${inc.summary}`),
      isEscalated(inc) ? s("circle", { class: "esc-ring", r: r + 7 }) : null,
      s("circle", { class: "dot", r }),
      s("text", { class: "code", y: 4.5, "text-anchor": "middle" }, categoryCode(inc.category)),
      s("text", { class: "plabel", x: r + 4, y: -r + 6 }, p.short));
      g.addEventListener("click", (e) => { e.stopPropagation(); this.onIncident(inc.incident_id); });
      incidentNodes.push(g);
    }
    // P1 on top of the rest
    incidentNodes.reverse();

    const unitNodes = [];
    const linkNodes = [];
    const atHome = new Map();  // "lat,lon" -> units drawn there so far
    const zoomedIn = this.view.w < WIDTH / 2.5;
    for (const u of units) {
      const at = u.position || u.home;
      if (!at) continue;
      const key = `${at.lat},${at.lon}`;
      const n = atHome.get(key) || 0;
      atHome.set(key, n + 1);
      const [x0, y0] = project(at.lon, at.lat);
      // units of one station side by side, 13 px apart, in rows of five
      const dx = ((n % 5) - 2) * 13 * k, dy = (8 + Math.floor(n / 5) * 13) * k;
      const x = x0 + dx, y = y0 + dy;
      const onTask = ON_TASK.has(u.status);
      const down = u.status === "out_of_service" || u.status === "off_duty";
      const g = s("g", { class: `unit ${u.agency} st-${u.status}${onTask ? " on-task" : ""}${down ? " down" : ""}`,
        transform: `translate(${x},${y}) scale(${k})` },
      s("title", {}, `${u.call_sign || u.unit_id} (${u.agency}) — ${STATUS_WORD(u.status)}`),
      s("rect", { x: -5, y: -5, width: 10, height: 10, rx: 1.5 }),
      zoomedIn ? s("text", { class: "ulabel", y: 19, "text-anchor": "middle" }, u.unit_id) : null);
      unitNodes.push(g);
      if (onTask && u.incident_id && where.has(u.incident_id)) {
        const [ix, iy] = where.get(u.incident_id);
        linkNodes.push(s("line", { class: `link ${u.agency} st-${u.status}`, x1: x, y1: y, x2: ix, y2: iy,
          "stroke-width": 2 * k, "stroke-dasharray": u.status === "dispatched" ? `${6 * k} ${4 * k}` : null }));
      }
    }
    this.links.replaceChildren(...linkNodes);
    this.unitLayer.replaceChildren(...unitNodes);
    this.incidentLayer.replaceChildren(...incidentNodes);
    this.renderPick();
  }

  /** Show (or clear, with null) the point picked for a new call. */
  setPick(point) {
    this.pick = point;
    this.renderPick();
  }

  renderPick() {
    if (!this.pick) { this.pickLayer.replaceChildren(); return; }
    const k = this.markerScale();
    const [x, y] = project(this.pick.lon, this.pick.lat);
    this.pickLayer.replaceChildren(s("g", { class: "picked", transform: `translate(${x},${y}) scale(${k})` },
      s("circle", { r: 12 }), s("path", { d: "M-18,0H-6M6,0H18M0,-18V-6M0,6V18" }),
      s("title", {}, "location of the call")));
  }

  centreOn(lat, lon) {
    const [x, y] = project(lon, lat);
    this.view.x = x - this.view.w / 2;
    this.view.y = y - this.view.h / 2;
    this.apply();
  }

  /** Bring a point into view if it is off the map's current view. */
  centreOnIfOutside(lat, lon) {
    const [x, y] = project(lon, lat);
    const v = this.view;
    if (x < v.x || x > v.x + v.w || y < v.y || y > v.y + v.h) { this.centreOn(lat, lon); this.rerender(); }
  }

  apply() {
    const v = this.view;
    this.svg.setAttribute("viewBox", `${v.x} ${v.y} ${v.w} ${v.h}`);
  }

  zoom(factor, cx, cy) {
    const v = this.view;
    const w = Math.min(WIDTH * 1.5, Math.max(WIDTH / 16, v.w * factor));
    const f = w / v.w;
    const px = cx ?? v.x + v.w / 2, py = cy ?? v.y + v.h / 2;
    this.view = { x: px - (px - v.x) * f, y: py - (py - v.y) * f, w, h: v.h * f };
    this.apply();
    this.rerender();
  }

  reset() {
    this.view = { x: 0, y: 0, w: WIDTH, h: HEIGHT };
    this.apply();
    this.rerender();
  }

  rerender() {
    const { incidents, units, selected } = this.last;
    this.render(incidents, units, selected);
  }

  /** A screen point to map units. */
  toMap(clientX, clientY) {
    const pt = this.svg.createSVGPoint();
    pt.x = clientX; pt.y = clientY;
    const m = this.svg.getScreenCTM();
    const p = m ? pt.matrixTransform(m.inverse()) : { x: 0, y: 0 };
    return [p.x, p.y];
  }

  interact() {
    const svg = this.svg;
    svg.addEventListener("wheel", (e) => {
      e.preventDefault();
      const [x, y] = this.toMap(e.clientX, e.clientY);
      this.zoom(e.deltaY > 0 ? 1.2 : 1 / 1.2, x, y);
    }, { passive: false });
    let drag = null;
    svg.addEventListener("pointerdown", (e) => {
      if (e.button !== 0) return;
      drag = { x: e.clientX, y: e.clientY, view: { ...this.view }, moved: false };
    });
    svg.addEventListener("pointermove", (e) => {
      if (!drag) return;
      const dxPx = e.clientX - drag.x, dyPx = e.clientY - drag.y;
      if (!drag.moved && Math.hypot(dxPx, dyPx) < 5) return;
      if (!drag.moved) svg.setPointerCapture(e.pointerId);
      drag.moved = true;
      const k = this.markerScale();
      this.view = { ...drag.view, x: drag.view.x - dxPx * k, y: drag.view.y - dyPx * k };
      this.apply();
    });
    const end = (e) => {
      if (!drag) return;
      const wasDrag = drag.moved;
      drag = null;
      if (wasDrag) { svg.releasePointerCapture?.(e.pointerId); return; }
      if (e.type !== "pointerup" || e.target.closest?.(".incident")) return;
      const [x, y] = this.toMap(e.clientX, e.clientY);
      const [lon, lat] = unproject(x, y);
      this.onPick(lat, lon);
    };
    svg.addEventListener("pointerup", end);
    svg.addEventListener("pointercancel", end);
    addEventListener("resize", () => this.rerender());
  }
}

// The city map, drawn with Leaflet (vendored: /static/vendor/leaflet, no CDN). What it
// shows comes from the server (/map.json, docs/maps.md): the city's extent and centre,
// its base layers (the operator's tile servers, and the offline layer `ecc map build`
// made from the city's OpenStreetMap extract) and its named districts. Live layers on
// top: incidents (by type and priority) and units (by agency and status), at their
// reported position (window.ecc.positions, with heading) or else at their station.

import { categoryCode, categoryLabel, ON_TASK, PRIORITY, isEscalated } from "./model.js";

const L = window.L;
const STATUS_WORD = (st) => st.replaceAll("_", " ");
const ROAD_WEIGHT = { motorway: 4, primary: 3, secondary: 2, minor: 1 };
const esc = (text) => String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** The offline layer's look: by feature kind (and road class), as CSS classes. */
function offlineStyle(f) {
  const { kind, class: cls } = f.properties || {};
  const base = { className: `base ${kind || ""}${cls ? ` road-${cls}` : ""}`, interactive: false };
  if (kind === "road") return { ...base, weight: ROAD_WEIGHT[cls] || 1.5, color: "#44515c", opacity: 1 };
  if (kind === "ring") return { ...base, weight: 3, color: "#5b6975" };
  if (kind === "river" || kind === "waterway") return { ...base, weight: kind === "river" ? 8 : 2, color: "#2b5f86", opacity: 0.85 };
  if (kind === "water") return { ...base, weight: 0, fillColor: "#1d4566", fillOpacity: 0.9 };
  if (kind === "boundary") return { ...base, weight: 2, color: "#3a4955", fillColor: "#121a20", fillOpacity: 1 };
  if (kind === "district") return { ...base, weight: 1.2, color: "#33434f", dashArray: "6 4", fillColor: "#141d24", fillOpacity: 1 };
  return { ...base, weight: 1, color: "#44515c" };
}

export class CityMap {
  /** el: the map's <div>; onIncident(id): an incident marker was chosen; onPick(lat, lon): the map was clicked */
  constructor(el, { onIncident, onPick }) {
    this.el = el;
    this.onIncident = onIncident;
    this.onPick = onPick;
    this.bounds = null;
    this.map = L.map(el, { zoomControl: false, zoomSnap: 0.25, attributionControl: true, preferCanvas: false });
    this.map.attributionControl.setPrefix("Leaflet");
    this.baseLayers = {};
    this.districtLayer = L.featureGroup();
    this.linkLayer = L.layerGroup();
    this.unitLayer = L.layerGroup();
    this.incidentLayer = L.layerGroup();
    this.pickLayer = L.layerGroup();
    for (const layer of [this.districtLayer, this.linkLayer, this.unitLayer, this.incidentLayer, this.pickLayer]) layer.addTo(this.map);
    this.map.setView([0, 0], 2);
    this.last = { incidents: [], units: [], selected: null };
    this.map.on("click", (e) => this.onPick(e.latlng.lat, e.latlng.lng));
    this.map.on("zoomend", () => this.rerender());
    addEventListener("resize", () => this.map.invalidateSize());
  }

  /** Read the map's config from the server and set up its extent and layers. */
  async load(url = "/map.json") {
    const response = await fetch(url);
    if (!response.ok) throw new Error(`${url}: ${response.status}`);
    const config = await response.json();
    this.config = config;
    const [[s, w], [n, e]] = config.bounds;
    this.bounds = L.latLngBounds([s, w], [n, e]);
    this.map.setMaxBounds(this.bounds.pad(1));
    this.reset();
    for (const t of config.tiles || []) {
      this.baseLayers[t.name] = L.tileLayer(t.url, { attribution: esc(t.attribution), maxZoom: t.max_zoom });
    }
    if (config.offline) {
      const fc = await (await fetch(config.offline.url)).json();
      const layer = this.offlineLayer(fc, config.offline.attribution);
      this.baseLayers["Offline map"] = layer;
    }
    const first = config.default === "offline" ? "Offline map" : config.default;
    const chosen = this.baseLayers[first] || Object.values(this.baseLayers)[0];
    if (chosen) chosen.addTo(this.map);
    if (Object.keys(this.baseLayers).length > 1) L.control.layers(this.baseLayers, {}, { position: "bottomright" }).addTo(this.map);
    this.addDistricts(config.districts);
    this.rerender();
  }

  offlineLayer(fc, attribution) {
    const attrib = attribution || fc.properties?.attribution || "";
    const labels = [];
    const layer = L.geoJSON(fc, {
      attribution: esc(attrib),
      style: offlineStyle,
      filter: (f) => {
        if (f.geometry.type === "Point" && f.properties?.kind === "label") { labels.push(f); return false; }
        return f.geometry.type !== "Point";
      },
    });
    const group = L.featureGroup([layer]);
    for (const f of labels) {
      const [lon, lat] = f.geometry.coordinates;
      group.addLayer(L.marker([lat, lon], { interactive: false, keyboard: false,
        icon: L.divIcon({ className: "district-label above", html: `<span>${esc(f.properties.name)}</span>`, iconSize: null }) }));
    }
    group.getAttribution = () => esc(attrib);
    return group;
  }

  /** The city file's districts, over any base layer, with their names. */
  addDistricts(fc) {
    if (!fc || !fc.features?.length) return;
    const layer = L.geoJSON(fc, { style: () => ({ className: "city-district", weight: 1.5, color: "#6d8799", dashArray: "6 4", fill: false, interactive: false }) });
    this.districtLayer.addLayer(layer);
    for (const f of fc.features) {
      const centre = L.geoJSON(f).getBounds().getCenter();
      this.districtLayer.addLayer(L.marker(centre, { interactive: false, keyboard: false,
        icon: L.divIcon({ className: "district-label", html: `<span>${esc(f.properties.name)}</span>`, iconSize: null }) }));
    }
  }

  /** Where a unit is drawn: its reported position (window.ecc.positions), else its own, else its station. */
  unitPlace(u) {
    const p = window.ecc?.positions?.get?.(u.unit_id);
    if (p && Number.isFinite(p.lat) && Number.isFinite(p.lon)) return { at: p, heading: Number.isFinite(p.heading) ? p.heading : null, live: true };
    const at = u.position || u.home;
    return at ? { at, heading: null, live: false } : null;
  }

  /** The positions changed (the model calls this when a `positions` message arrives). */
  positionsChanged() {
    this.rerender();
  }

  render(incidents, units, selected) {
    this.last = { incidents, units, selected };
    const where = new Map();  // incident id -> LatLng
    const incidentMarkers = [];
    for (const inc of incidents) {
      const ll = L.latLng(inc.location.lat, inc.location.lon);
      where.set(inc.incident_id, ll);
      const p = PRIORITY[inc.priority] || { short: `P${inc.priority}`, word: "" };
      const r = inc.priority === 1 ? 21 : 17;
      const classes = `incident p${inc.priority}${inc.incident_id === selected ? " selected" : ""}${isEscalated(inc) ? " escalated" : ""}`;
      const size = 2 * (r + 8);
      const title = `${p.short} ${p.word} · ${categoryLabel(inc.category)} · ${inc.status.replaceAll("_", " ")} — ${inc.summary}`;
      const html = `<svg class="${classes}" data-incident-id="${esc(inc.incident_id)}" width="${size + 40}" height="${size}" viewBox="${-size / 2} ${-size / 2} ${size + 40} ${size}">`
        + `<title>${esc(title)}</title>`
        + (isEscalated(inc) ? `<circle class="esc-ring" r="${r + 7}"/>` : "")
        + `<circle class="dot" r="${r}"/>`
        + `<text class="code" y="4.5" text-anchor="middle">${esc(categoryCode(inc.category))}</text>`
        + `<text class="plabel" x="${r + 4}" y="${-r + 6}">${esc(p.short)}</text></svg>`;
      const marker = L.marker(ll, { keyboard: false, riseOnHover: true, zIndexOffset: inc.priority === 1 ? 1000 : 500 - inc.priority * 100,
        icon: L.divIcon({ className: "marker", html, iconSize: [size + 40, size], iconAnchor: [size / 2, size / 2] }) });
      marker.on("click", () => this.onIncident(inc.incident_id));
      incidentMarkers.push(marker);
    }

    const unitMarkers = [];
    const links = [];
    const atHome = new Map();  // "lat,lon" -> units drawn there so far
    const zoomedIn = this.bounds ? this.map.getZoom() >= this.map.getBoundsZoom(this.bounds) + 1.25 : false;
    for (const u of units) {
      const place = this.unitPlace(u);
      if (!place) continue;
      const { at, heading, live } = place;
      // units of one place side by side, 13 px apart, in rows of five
      const key = `${at.lat},${at.lon}`;
      const n = live ? 0 : (atHome.get(key) || 0);
      if (!live) atHome.set(key, n + 1);
      const dx = live ? 0 : ((n % 5) - 2) * 13, dy = live ? 0 : 8 + Math.floor(n / 5) * 13;
      const onTask = ON_TASK.has(u.status);
      const down = u.status === "out_of_service" || u.status === "off_duty";
      const classes = `unit ${u.agency} st-${u.status}${onTask ? " on-task" : ""}${down ? " down" : ""}${live ? " live" : ""}`;
      const arrow = heading === null ? "" : `<path class="heading" transform="rotate(${heading})" d="M0,-15L4,-8H-4Z"/>`;
      const html = `<svg class="${classes}" data-unit-id="${esc(u.unit_id)}" width="60" height="44" viewBox="-30 -22 60 44">`
        + `<title>${esc(`${u.call_sign || u.unit_id} (${u.agency}) — ${STATUS_WORD(u.status)}`)}</title>`
        + `${arrow}<rect x="-5" y="-5" width="10" height="10" rx="1.5"/>`
        + (zoomedIn ? `<text class="ulabel" y="19" text-anchor="middle">${esc(u.unit_id)}</text>` : "") + "</svg>";
      const ll = L.latLng(at.lat, at.lon);
      unitMarkers.push(L.marker(ll, { interactive: false, keyboard: false,
        icon: L.divIcon({ className: "marker", html, iconSize: [60, 44], iconAnchor: [30 - dx, 22 - dy] }) }));
      if (onTask && u.incident_id && where.has(u.incident_id)) {
        const p0 = this.map.latLngToLayerPoint(ll).add([dx, dy]);
        links.push(L.polyline([this.map.layerPointToLatLng(p0), where.get(u.incident_id)], {
          className: `link ${u.agency} st-${u.status}`, weight: 2, interactive: false,
          dashArray: u.status === "dispatched" ? "6 4" : null }));
      }
    }
    this.linkLayer.clearLayers();
    links.forEach((l) => this.linkLayer.addLayer(l));
    this.unitLayer.clearLayers();
    unitMarkers.forEach((m) => this.unitLayer.addLayer(m));
    this.incidentLayer.clearLayers();
    incidentMarkers.reverse().forEach((m) => this.incidentLayer.addLayer(m));
    this.renderPick();
    // no map from the server: the first picture with units decides the view
    if (!this.bounds && !this.fitted && units.length) { this.fitted = true; this.reset(); }
  }

  /** Show (or clear, with null) the point picked for a new call. */
  setPick(point) {
    this.pick = point;
    this.renderPick();
  }

  renderPick() {
    this.pickLayer.clearLayers();
    if (!this.pick) return;
    const html = `<svg class="picked" width="40" height="40" viewBox="-20 -20 40 40"><title>location of the call</title>`
      + `<circle r="12"/><path d="M-18,0H-6M6,0H18M0,-18V-6M0,6V18"/></svg>`;
    this.pickLayer.addLayer(L.marker([this.pick.lat, this.pick.lon], { interactive: false, keyboard: false,
      icon: L.divIcon({ className: "marker", html, iconSize: [40, 40] }) }));
  }

  centreOn(lat, lon) {
    this.map.panTo([lat, lon], { animate: false });
  }

  /** Bring a point into view if it is off the map's current view. */
  centreOnIfOutside(lat, lon) {
    if (!this.map.getBounds().contains([lat, lon])) { this.centreOn(lat, lon); this.rerender(); }
  }

  zoom(factor) {
    this.map.setZoom(this.map.getZoom() - Math.log2(factor), { animate: false });
  }

  /** The whole city in view (its extent; the markers' when the server sent no map). */
  reset() {
    if (this.bounds) {
      this.map.fitBounds(this.bounds, { animate: false });
      if (this.config?.centre) this.map.panTo(this.config.centre, { animate: false });
      return;
    }
    const points = [...this.last.incidents.map((i) => [i.location.lat, i.location.lon]),
      ...this.last.units.map((u) => u.position || u.home).filter(Boolean).map((p) => [p.lat, p.lon])];
    if (points.length) this.map.fitBounds(L.latLngBounds(points).pad(0.1), { animate: false });
  }

  rerender() {
    const { incidents, units, selected } = this.last;
    this.render(incidents, units, selected);
  }
}

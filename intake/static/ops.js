// The operations map (/ops, an officer's token) and the public map (/map): one script, two modes.
// Points coloured as CROP did (red waiting, yellow in progress, green done), SLA clocks against
// the 6-hour coordination and 7-day resolution targets, filters, a report's detail, the
// kelurahan ranking, and live updates from the event stream (no reload).
"use strict";

const MODE = document.body.dataset.mode; // "ops" or "public"
const COLOURS = {
  menunggu: "#d7191c",
  koordinasi: "#f0b400",
  disposisi: "#f0b400",
  proses: "#f0b400",
  selesai: "#1a9641",
};
const SLA_COORDINATION_H = 6;
const SLA_RESOLUTION_H = 168;
const $ = (id) => document.getElementById(id);

const state = {
  token: MODE === "ops" ? sessionStorage.getItem("twin-token") : null,
  reports: new Map(), // id -> report
  markers: new Map(), // id -> Leaflet circle marker (only those shown)
  kelurahan: new Map(), // code -> {name, kecamatan, kota}
  skew: 0, // server clock minus ours, seconds
  lastEventId: null,
  stream: null,
};

const map = L.map("map", { preferCanvas: true }).setView([-6.2, 106.83], 11);
// Base tiles are optional (?tiles=https://.../{z}/{x}/{y}.png): by default the map needs no network.
const tiles = new URLSearchParams(location.search).get("tiles");
if (tiles) L.tileLayer(tiles, { maxZoom: 19 }).addTo(map);
const points = L.layerGroup().addTo(map);

function headers() {
  return state.token ? { Authorization: "Bearer " + state.token } : {};
}

function showError(text) {
  $("error").textContent = text || "";
}

async function getJSON(url) {
  const r = await fetch(url, { headers: headers() });
  if (!r.ok) {
    let detail = r.statusText;
    try {
      detail = (await r.json()).detail || detail;
    } catch (e) {}
    throw new Error(r.status + ": " + detail);
  }
  return r.json();
}

function now() {
  return Date.now() / 1000 + state.skew;
}

function sla(report) {
  const ageH = (now() - report.created) / 3600;
  if (report.status === "selesai") return { ageH, targetH: null, breached: false };
  const targetH = report.status === "menunggu" ? SLA_COORDINATION_H : SLA_RESOLUTION_H;
  return { ageH, targetH, breached: ageH > targetH };
}

function place(code) {
  return state.kelurahan.get(code) || { name: code, kecamatan: "", kota: "" };
}

function passes(report) {
  const f = (id) => $(id).value;
  if (f("f-status") && report.status !== f("f-status")) return false;
  if (f("f-category") && report.category !== f("f-category")) return false;
  if (f("f-kelurahan") && report.kelurahan_code !== f("f-kelurahan")) return false;
  if (f("f-kota") && place(report.kelurahan_code).kota !== f("f-kota")) return false;
  return true;
}

function style(report) {
  const clock = sla(report);
  return {
    radius: clock.breached ? 7 : 5,
    color: clock.breached ? "#000" : COLOURS[report.status],
    weight: clock.breached ? 2.5 : 1,
    fillColor: COLOURS[report.status] || "#777",
    fillOpacity: 0.85,
  };
}

function clockText(report) {
  const clock = sla(report);
  if (clock.targetH === null) return "done";
  const text = clock.ageH.toFixed(1) + " h of " + clock.targetH + " h";
  return clock.breached ? text + " (SLA breached)" : text;
}

function show(report) {
  let marker = state.markers.get(report.id);
  if (!passes(report)) {
    if (marker) {
      points.removeLayer(marker);
      state.markers.delete(report.id);
    }
    return;
  }
  if (marker) {
    marker.setLatLng([report.lat, report.lon]);
    marker.setStyle(style(report));
  } else {
    marker = L.circleMarker([report.lat, report.lon], style(report));
    marker.on("click", () => detail(report.id));
    marker.bindTooltip(() => report.category + " · " + report.status + " · " + clockText(report));
    points.addLayer(marker);
    state.markers.set(report.id, marker);
  }
}

function summarise() {
  let breached = 0;
  for (const id of state.markers.keys()) if (sla(state.reports.get(id)).breached) breached += 1;
  $("count").textContent = state.markers.size;
  $("count").dataset.count = state.markers.size;
  $("breached").textContent = breached;
  $("breached").dataset.count = breached;
}

function renderAll() {
  points.clearLayers();
  state.markers.clear();
  for (const report of state.reports.values()) show(report);
  summarise();
}

function fillSelect(id, values, label) {
  const select = $(id);
  for (const value of [...values].sort()) {
    const option = document.createElement("option");
    option.value = value;
    option.textContent = label ? label(value) : value;
    select.appendChild(option);
  }
  select.addEventListener("change", renderAll);
}

async function loadBoundaries() {
  const geo = await getJSON("/api/v1/ops/kelurahan.geojson");
  for (const f of geo.features) state.kelurahan.set(f.properties.code, f.properties);
  const layer = L.geoJSON(geo, {
    style: { color: "#4a6a8a", weight: 0.7, fill: false },
    interactive: false,
  }).addTo(map);
  map.fitBounds(layer.getBounds());
  fillSelect("f-kota", new Set([...state.kelurahan.values()].map((k) => k.kota)));
}

async function loadReports() {
  const url = MODE === "ops" ? "/api/v1/ops/reports" : "/api/v1/public/reports";
  const data = await getJSON(url);
  state.skew = data.now - Date.now() / 1000;
  state.reports.clear();
  const col = Object.fromEntries(data.columns.map((name, i) => [name, i]));
  for (const row of data.rows) {
    const report = {
      id: String(row[col.id]),
      lat: row[col.lat],
      lon: row[col.lon],
      status: row[col.status],
      category: row[col.category],
      kelurahan_code: row[col.kelurahan_code],
      created: row[col.created],
      coordinated: row[col.coordinated],
    };
    state.reports.set(report.id, report);
  }
  const inScope = new Set([...state.reports.values()].map((r) => r.kelurahan_code));
  if (data.scope !== "*") inScope.add(data.scope);
  return inScope;
}

function applyEvent(payload) {
  const r = payload.report;
  const known = state.reports.get(r.id);
  const report = Object.assign(known || {}, {
    id: r.id,
    status: r.status,
    category: r.category,
    kelurahan_code: r.kelurahan_code,
    created: Date.parse(r.created_at) / 1000,
    coordinated: r.coordinated_at ? Date.parse(r.coordinated_at) / 1000 : null,
  });
  if (!known) Object.assign(report, { lat: r.lat, lon: r.lon }); // ours stay exact
  state.reports.set(report.id, report);
  show(report);
  summarise();
}

// Server-sent events read with fetch (EventSource cannot send an Authorization header).
async function stream() {
  const url = MODE === "ops" ? "/api/v1/events" : "/api/v1/public/events";
  const extra = state.lastEventId ? { "Last-Event-ID": state.lastEventId } : {};
  const controller = new AbortController();
  state.stream = controller;
  try {
    const r = await fetch(url, { headers: { ...headers(), ...extra }, signal: controller.signal });
    if (!r.ok) throw new Error("event stream: " + r.status);
    $("live").textContent = "live";
    $("live").dataset.live = "1";
    const reader = r.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0 || (end = buffer.indexOf("\r\n\r\n")) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + (buffer[end] === "\r" ? 4 : 2));
        const fields = {};
        for (const line of block.split(/\r?\n/)) {
          const at = line.indexOf(":");
          if (at > 0) fields[line.slice(0, at)] = (fields[line.slice(0, at)] || "") + line.slice(at + 1).trim();
        }
        if (fields.id) state.lastEventId = fields.id;
        if (fields.data) applyEvent(JSON.parse(fields.data));
      }
    }
  } catch (e) {
    if (controller.signal.aborted) return;
  }
  $("live").textContent = "reconnecting";
  $("live").dataset.live = "0";
  setTimeout(stream, 2000);
}

function el(tag, text) {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = text;
  return node;
}

async function detail(id) {
  const box = $("detail");
  box.hidden = false;
  box.replaceChildren(el("p", "Loading report " + id + "..."));
  try {
    const base = MODE === "ops" ? "/api/v1/ops/reports/" : "/api/v1/public/reports/";
    const view = await getJSON(base + encodeURIComponent(id));
    const history = view.history.map((h) => [h.at, h.status, h.note]);
    const photo = view.photo;
    const report = state.reports.get(String(id));
    const k = place(report ? report.kelurahan_code : view.kelurahan_code);
    const parts = [
      el("h3", "Report " + id + ": " + view.category),
      el("p", "Kelurahan " + k.name + ", " + k.kota + " · status " + view.status),
    ];
    if (report) {
      const clock = el("p", "SLA clock: " + clockText(report));
      if (sla(report).breached) clock.className = "breached-text";
      parts.push(clock);
    }
    const list = el("ol");
    list.id = "history";
    for (const [at, status, note] of history) {
      list.appendChild(el("li", new Date(at).toLocaleString() + " · " + status + (note ? " · " + note : "")));
    }
    parts.push(el("h4", "History"), list);
    if (photo) {
      const img = el("img");
      img.src = photo;
      img.alt = "proof photo of the finished work";
      img.id = "proof";
      parts.push(el("h4", "Proof photo"), img);
    }
    box.replaceChildren(...parts);
  } catch (e) {
    box.replaceChildren(el("p", String(e.message)));
  }
}

async function ranking() {
  const data = await getJSON("/api/v1/kpis/ranking");
  const box = $("ranking");
  const hours = (v) => (v === null ? "no report resolved" : v.toFixed(1) + " h");
  const block = (title, rows, id) => {
    const list = el("ol");
    list.id = id;
    for (const r of rows) list.appendChild(el("li", place(r.kelurahan_code).name + " · " + hours(r.mean_resolution_h)));
    return [el("h4", title), list];
  };
  box.replaceChildren(
    el("h3", "Kelurahan ranking (mean resolution)"),
    ...block("Best 15", data.best, "best"),
    ...block("Worst 15", data.worst, "worst"),
  );
}

async function start() {
  showError("");
  if (MODE === "ops" && !state.token) {
    showError("Enter your officer token to open the map.");
    return;
  }
  try {
    if (!state.kelurahan.size) await loadBoundaries();
    const inScope = await loadReports();
    const kelurahan = MODE === "ops" ? inScope : new Set(state.kelurahan.keys());
    if ($("f-kelurahan").options.length === 1) {
      fillSelect("f-kelurahan", kelurahan, (code) => place(code).name + " (" + code + ")");
      fillSelect("f-status", Object.keys(COLOURS));
      const services = await getJSON("/open311/v2/services.json");
      fillSelect("f-category", new Set(services.map((s) => s.service_code)));
    }
    renderAll();
    document.body.dataset.ready = "1";
    stream();
    ranking().catch((e) => showError("ranking: " + e.message));
    setInterval(summarise, 60000); // SLA clocks tick
  } catch (e) {
    state.reports.clear();
    renderAll();
    showError(e.message);
    if (MODE === "ops") sessionStorage.removeItem("twin-token");
  }
}

if (MODE === "ops") {
  $("login").addEventListener("submit", (event) => {
    event.preventDefault();
    state.token = $("token").value.trim();
    sessionStorage.setItem("twin-token", state.token);
    if (state.stream) state.stream.abort();
    start();
  });
}
start();

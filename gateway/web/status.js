// The status page: fetches /status.json every 2 seconds and fills the
// tables. Values from the gateway (client ids, errors) are set as text,
// never as HTML.
"use strict";

const refreshMs = 2000;

function fmtDuration(s) {
  if (s === null || s === undefined) return "never";
  if (s < 1) return "< 1 s";
  s = Math.round(s);
  const d = Math.floor(s / 86400), h = Math.floor(s % 86400 / 3600), m = Math.floor(s % 3600 / 60), r = s % 60;
  if (d) return d + " d" + (h ? " " + h + " h" : "");
  if (h) return h + " h" + (m ? " " + m + " min" : "");
  if (m) return m + " min" + (r ? " " + r + " s" : "");
  return r + " s";
}

function fmtBytes(n) {
  const units = ["B", "KiB", "MiB", "GiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return (i ? n.toFixed(1) : n) + " " + units[i];
}

function ago(t, now) {
  const ms = now - Date.parse(t);
  if (!(ms >= 0) || Date.parse(t) <= 0) return "";
  return fmtDuration(ms / 1000) + " ago";
}

// cell makes a td with text, an optional class and data-field name.
function cell(text, cls, field) {
  const td = document.createElement("td");
  td.textContent = text === undefined || text === null ? "" : String(text);
  if (cls) td.className = cls;
  if (field) td.dataset.field = field;
  return td;
}

// fill replaces the rows of table id with one row per item.
function fill(id, items, row, empty) {
  const tbody = document.querySelector("#" + id + " tbody");
  const rows = [];
  for (const it of items || []) rows.push(row(it));
  if (rows.length === 0) {
    const tr = document.createElement("tr");
    const td = cell(empty, "empty");
    td.colSpan = document.querySelectorAll("#" + id + " thead th").length;
    tr.appendChild(td);
    rows.push(tr);
  }
  tbody.replaceChildren(...rows);
}

function tr(cells, data) {
  const r = document.createElement("tr");
  for (const [k, v] of Object.entries(data || {})) r.dataset[k] = v;
  r.append(...cells);
  return r;
}

function render(s) {
  const now = Date.parse(s.Time);
  document.getElementById("version").textContent = s.Version;
  const ready = document.getElementById("ready");
  ready.textContent = s.Ready ? "ready" : "not ready";
  ready.className = "badge " + (s.Ready ? "ok" : "bad");
  document.getElementById("uptime").textContent = "up " + fmtDuration(s.UptimeSeconds);
  document.getElementById("updated").textContent = "updated " + new Date(now).toLocaleTimeString();

  fill("uplinks", s.Uplinks, u => tr([
    cell(u.Name),
    cell(u.State, u.State, "state"),
    cell(ago(u.Since, now)),
    cell(u.Depth, "num depth", "depth"),
    cell(fmtBytes(u.Bytes), "num"),
    cell(u.DrainRate.toFixed(1) + "/s", "num"),
    cell(u.Depth === 0 ? "–" : u.ETASeconds === null ? "not draining" : fmtDuration(u.ETASeconds), "num", "eta"),
    cell(u.Quarantined, "num"),
    cell(u.Dropped, "num"),
    cell(u.LastError, "err"),
  ], {uplink: u.Name}), "No uplink configured.");
  const sp = s.Spool;
  document.getElementById("spool").textContent = "Spool: " + sp.Messages + " messages, " + fmtBytes(sp.Bytes) +
    (sp.Messages ? ", oldest " + fmtDuration(sp.OldestSecond) : "") + (sp.NoSpace ? " — DISK FULL, new messages refused" : "");

  fill("clients", s.Clients, c => tr([
    cell(c.Protocol),
    cell(c.ClientID, "", "id"),
    cell(c.Link),
    cell(c.Remote),
    cell(c.State, c.State, "state"),
    cell(ago(c.LastSeen, now)),
    cell(c.RSSI === undefined ? "" : c.RSSI + " dBm" + (c.SNR === undefined ? "" : " / " + c.SNR + " dB"), "num"),
    cell(c.KeepAlive ? fmtDuration(c.KeepAlive) : "none", "num"),
  ], {client: c.ClientID, protocol: c.Protocol}), "No client connected.");
  if (s.ClientsTotal > s.Clients.length) {
    const more = document.createElement("tr");
    const td = cell("… and " + (s.ClientsTotal - s.Clients.length) + " more (" + s.ClientsTotal +
      " in all; the metrics count them by state)", "empty", "more");
    td.colSpan = document.querySelectorAll("#clients thead th").length;
    more.appendChild(td);
    document.querySelector("#clients tbody").appendChild(more);
  }

  fill("listeners", s.Listeners, l => tr([
    cell(l.Name), cell(l.Kind), cell(l.Address),
    cell(l.Connections, "num"), cell(l.MessagesReceived, "num"), cell(l.MessagesSent, "num"),
    cell(fmtBytes(l.BytesReceived), "num"), cell(fmtBytes(l.BytesSent), "num"),
  ], {listener: l.Name}), "No listener.");
  const sn = (s.Transports || []).map(t => ({Name: "mqtt-sn/" + t.Name, Kind: "mqtt-sn", Address: t.Address,
    Connections: (s.TransportClients || {})[t.Name] || 0,
    MessagesReceived: t.PublishIn, MessagesSent: t.PublishOut, BytesReceived: t.BytesIn, BytesSent: t.BytesOut}));
  if (sn.length) {
    const tbody = document.querySelector("#listeners tbody");
    for (const l of sn) tbody.appendChild(tr([
      cell(l.Name), cell(l.Kind), cell(l.Address || "serial"),
      cell(l.Connections, "num"), cell(l.MessagesReceived, "num"), cell(l.MessagesSent, "num"),
      cell(fmtBytes(l.BytesReceived), "num"), cell(fmtBytes(l.BytesSent), "num"),
    ], {transport: l.Name}));
  }

  fill("serial", s.Serial, l => tr([
    cell(l.Name), cell(l.State, l.State, "state"), cell(l.Device),
    cell(l.FramesIn, "num"), cell(l.FramesOut, "num"), cell(l.Errors, "num"),
    cell(l.Reconnects, "num"), cell(l.Nodes, "num"),
  ], {serial: l.Name}), "No serial link configured.");
}

let failing = false;

async function refresh() {
  try {
    const r = await fetch("/status.json", {cache: "no-store", credentials: "same-origin"});
    if (!r.ok) throw new Error("HTTP " + r.status);
    render(await r.json());
    failing = false;
  } catch (e) {
    const ready = document.getElementById("ready");
    ready.textContent = "unreachable";
    ready.className = "badge bad";
    if (!failing) console.warn("status refresh failed:", e);
    failing = true;
  } finally {
    setTimeout(refresh, refreshMs);
  }
}

refresh();

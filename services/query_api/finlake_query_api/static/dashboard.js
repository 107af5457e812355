// finlake dashboard: bars from /v1, the quality panel, and the alert stream. No framework.
"use strict";

const SPAN_SECONDS = { "1m": 86400, "1h": 30 * 86400, "1d": 365 * 86400 };
const KEY_ITEM = "finlake-api-key";
const FEED_ITEMS = 200; // alerts the live feed keeps on the page
// barsTicket: the newest chart request (older ones are abandoned); barLoads: those in flight.
const state = { symbol: null, interval: "1m", symbols: [], chart: null, candles: null, volume: null,
  barsTicket: 0, barLoads: 0 };
window.finlakeDashboard = state;

// The key lives in this tab's sessionStorage (gone when the tab closes), taken from a #key= link.
function apiKey() {
  const match = location.hash.match(/key=([^&]+)/);
  if (match) {
    history.replaceState(null, "", location.pathname);
    try {
      sessionStorage.setItem(KEY_ITEM, decodeURIComponent(match[1]));
    } catch (error) { // a bad % escape: say so rather than fail on every reload
      setStatus("The link's #key= is not a valid URL-encoded key: enter the API key.", true, "key-status");
    }
  }
  return sessionStorage.getItem(KEY_ITEM) || "";
}

// Each source reports into its own element, so one's success never wipes another's error.
function setStatus(text, isError, where = "status") {
  const status = document.getElementById(where);
  status.textContent = text;
  status.classList.toggle("error", Boolean(isError));
}

async function api(path) {
  const response = await fetch(path, { headers: { "X-API-Key": apiKey() } });
  // A proxy in between may answer an error with HTML: say its status rather than a parse error.
  const body = await response.json().catch(() => null);
  if (!response.ok || body === null) {
    throw new Error(body?.detail || `${response.status} ${response.statusText}`.trim());
  }
  return body;
}

function initChart() {
  if (!window.LightweightCharts) return;
  const lib = window.LightweightCharts;
  const element = document.getElementById("chart");
  state.chart = lib.createChart(element, {
    autoSize: true,
    layout: { background: { color: "#0f1419" }, textColor: "#d8dee9" },
    grid: { vertLines: { color: "#1b2129" }, horzLines: { color: "#1b2129" } },
    timeScale: { timeVisible: true, secondsVisible: false },
  });
  state.candles = state.chart.addSeries(lib.CandlestickSeries, {});
  state.volume = state.chart.addSeries(lib.HistogramSeries, {
    priceFormat: { type: "volume" }, priceScaleId: "", color: "#3d7bd988",
  });
  state.volume.priceScale().applyOptions({ scaleMargins: { top: 0.8, bottom: 0 } });
}

function rangeFor(symbol, interval) {
  const info = state.symbols.find((s) => s.symbol === symbol) || {};
  const last = info.last_tick ? Date.parse(info.last_tick) : Date.now();
  const endSeconds = Math.ceil(last / 60000) * 60 + 60;
  return { start: new Date((endSeconds - SPAN_SECONDS[interval]) * 1000).toISOString(),
           end: new Date(endSeconds * 1000).toISOString() };
}

async function fetchBars(symbol, interval, start, end) {
  const bars = [];
  let cursor = null;
  for (let page = 0; page < 5; page++) {
    const query = new URLSearchParams({ interval, start, end, limit: "5000" });
    if (cursor) query.set("cursor", cursor);
    const body = await api(`/v1/symbols/${encodeURIComponent(symbol)}/ohlc?${query}`);
    bars.push(...body.bars);
    cursor = body.next_cursor;
    if (!cursor) break;
  }
  return bars;
}

// The symbol list, selection kept; true when the selection changed (none before, or it left).
async function loadSymbols() {
  state.symbols = (await api("/v1/symbols")).symbols;
  const select = document.getElementById("symbol");
  const names = state.symbols.map((s) => s.symbol);
  if (names.join("\n") !== [...select.options].map((option) => option.value).join("\n")) {
    select.replaceChildren(...names.map((name) => new Option(name, name)));
  }
  const changed = !names.includes(state.symbol);
  if (changed) state.symbol = names.length ? names[0] : null;
  select.value = state.symbol || "";
  return changed;
}

// Retried every 5 s while empty (the page opened before data landed, or the request failed),
// refreshed every 30 s after.
async function pollSymbols() {
  await refresh(async () => {
    if (await loadSymbols()) await showBars();
  });
  setTimeout(pollSymbols, state.symbols.length ? 30000 : 5000);
}

// A switch rereads the symbol list first, so the range ends at the freshest last tick.
async function switchChart() {
  try {
    await loadSymbols();
  } catch (error) {
    // the list already known still gives a range; pollSymbols reports the failure
  }
  await showBars();
}

async function showBars() {
  const { symbol, interval } = state;
  if (!symbol) return;
  const ticket = ++state.barsTicket;
  const { start, end } = rangeFor(symbol, interval);
  state.barLoads++;
  try {
    const bars = await fetchBars(symbol, interval, start, end);
    if (ticket !== state.barsTicket) return; // a newer choice won
    plotBars(symbol, interval, start, end, bars);
    setStatus("", false, "chart-status");
  } catch (error) {
    if (ticket !== state.barsTicket) return; // abandoned: the newer choice reports for itself
    plotBars(symbol, interval, start, end, []);
    document.getElementById("chart-title").textContent = `${symbol} · ${interval} · failed`;
    setStatus(`${symbol} ${interval} bars failed: ${error.message}`, true, "chart-status");
  } finally {
    state.barLoads--;
  }
}

function plotBars(symbol, interval, start, end, bars) {
  const time = (bar) => Date.parse(bar.window_start) / 1000;
  if (state.candles) {
    state.candles.setData(bars.map((bar) => ({ time: time(bar), open: +bar.open,
      high: +bar.high, low: +bar.low, close: +bar.close })));
    state.volume.setData(bars.map((bar) => ({ time: time(bar), value: bar.volume,
      color: +bar.close >= +bar.open ? "#26a69a88" : "#ef535088" })));
    state.chart.timeScale().fitContent();
  }
  const element = document.getElementById("chart");
  element.dataset.symbol = symbol;
  element.dataset.interval = interval;
  element.dataset.start = start;
  element.dataset.end = end;
  element.dataset.barCount = String(bars.length);
  element.dataset.firstStart = bars.length ? bars[0].window_start : "";
  element.dataset.lastClose = bars.length ? bars[bars.length - 1].close : "";
  document.getElementById("chart-title").textContent = `${symbol} · ${interval} · ${bars.length} bars`;
}

function lag(seconds) {
  if (seconds === null) return "–";
  if (seconds < 120) return `${Math.round(seconds)} s`;
  if (seconds < 7200) return `${Math.round(seconds / 60)} min`;
  return `${(seconds / 3600).toFixed(1)} h`;
}

async function showQuality() {
  const quality = await api("/v1/quality");
  const rows = quality.layers.map((layer) => {
    const row = document.createElement("tr");
    row.dataset.layer = layer.layer;
    for (const text of [layer.layer, layer.is_available ? layer.row_count.toLocaleString() : "no table",
      layer.max_event_time || "–", lag(layer.lag_seconds)]) {
      const cell = document.createElement("td");
      cell.textContent = text;
      row.appendChild(cell);
    }
    return row;
  });
  document.querySelector("#quality tbody").replaceChildren(...rows);
  const rules = Object.entries(quality.quarantine_by_rule).map(([rule, count]) => {
    const item = document.createElement("li");
    item.textContent = `${rule}: ${count}`;
    return item;
  });
  document.getElementById("quarantine").replaceChildren(...rules);
}

async function followAlerts() {
  // fetch() rather than EventSource: EventSource cannot send the X-API-Key header.
  const feedStatus = document.getElementById("feed-status");
  // The server sends a keep-alive every keepaliveMs: nothing at all for twice that means a silently
  // dead connection (a laptop asleep, a proxy dropping it without a reset), so abort and reconnect.
  const keepaliveMs = Number(document.getElementById("feed-panel").dataset.keepaliveMs) || 15000;
  const controller = new AbortController();
  let watchdog = null;
  const heard = () => {
    clearTimeout(watchdog);
    watchdog = setTimeout(() => controller.abort(), Math.max(2 * keepaliveMs, 1000));
  };
  let connected = false;
  let refused = null;
  try {
    heard();
    const response = await fetch("/v1/alerts/stream",
      { headers: { "X-API-Key": apiKey() }, signal: controller.signal });
    if (!response.ok) {
      refused = `offline: ${response.status === 401 ? "the API key was refused"
        : `${response.status} ${response.statusText}`.trim()}`;
      throw new Error(refused);
    }
    connected = true;
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      heard();
      buffer += value;
      let split;
      while ((split = buffer.indexOf("\n\n")) >= 0) {
        handleEvent(buffer.slice(0, split), feedStatus);
        buffer = buffer.slice(split + 2);
      }
    }
  } catch (error) {
    // a refused or failed connect (offline), or the stream broke or went silent (reconnecting)
  } finally {
    clearTimeout(watchdog);
  }
  feedStatus.textContent = connected ? "reconnecting" : refused || "offline";
  setTimeout(followAlerts, 5000);
}

function showAlert(alert) {
  const feed = document.getElementById("feed");
  if (feed.querySelector(`li[data-event-id="${CSS.escape(alert.event_id)}"]`)) return;
  const item = document.createElement("li");
  item.dataset.eventId = alert.event_id;
  item.dataset.type = alert.type;
  item.dataset.symbol = alert.symbol;
  item.className = `alert severity-${alert.severity}`;
  const when = document.createElement("time");
  when.dateTime = alert.fired_at;
  when.textContent = alert.fired_at.replace("T", " ").slice(0, 19);
  const title = document.createElement("strong");
  title.textContent = alert.type === "silence_expired" ? " silence expired "
    : ` ${alert.severity.toUpperCase()} ${alert.symbol} ${alert.rule} `;
  const text = document.createElement("span");
  text.className = "message";
  text.textContent = alert.message;
  item.append(when, title, text);
  // Newest first by firing time: an alert read back after a reconnect may be older than one the
  // stream delivered meanwhile.
  const firedAt = Date.parse(alert.fired_at);
  const older = [...feed.children].find(
    (other) => Date.parse(other.querySelector("time").dateTime) < firedAt);
  feed.insertBefore(item, older || null);
  while (feed.children.length > FEED_ITEMS) feed.lastElementChild.remove();
}

async function showRecentAlerts() {
  // As many as the feed shows: more than that may have fired while the stream was down.
  const recent = (await api(`/v1/alerts?limit=${FEED_ITEMS}`)).alerts;
  for (const alert of recent) showAlert(alert);
}

function handleEvent(block, feedStatus) {
  const fields = {};
  for (const line of block.split("\n")) {
    if (!line || line.startsWith(":")) continue; // comments are keep-alives
    const at = line.indexOf(":");
    fields[line.slice(0, at)] = line.slice(at + 1).trim();
  }
  if (fields.event === "ready") {
    feedStatus.textContent = "live";
    refresh(showRecentAlerts, "alerts-status"); // whatever fired while disconnected
    return;
  }
  if (fields.data === undefined) return;
  try {
    showAlert(JSON.parse(fields.data));
  } catch (error) {
    setStatus(`unreadable alert: ${error.message}`, true, "alerts-status");
  }
}

async function refresh(what, where = "status") {
  try {
    await what();
    setStatus("", false, where);
  } catch (error) {
    setStatus(error.message, true, where);
  }
}

async function start() {
  localStorage.removeItem(KEY_ITEM); // where earlier versions kept the key, with no expiry
  const keyInput = document.getElementById("api-key");
  keyInput.value = apiKey();
  keyInput.addEventListener("change", () => {
    sessionStorage.setItem(KEY_ITEM, keyInput.value);
    location.reload();
  });
  initChart();
  const select = document.getElementById("symbol");
  select.addEventListener("change", () => { state.symbol = select.value; switchChart(); });
  for (const button of document.querySelectorAll("#intervals button")) {
    button.addEventListener("click", () => {
      document.querySelectorAll("#intervals button").forEach((b) => b.classList.remove("active"));
      button.classList.add("active");
      state.interval = button.dataset.interval;
      switchChart();
    });
  }
  await pollSymbols();
  refresh(showQuality, "quality-status");
  setInterval(() => refresh(showQuality, "quality-status"), 30000);
  followAlerts();
}

document.addEventListener("DOMContentLoaded", start);

// finlake dashboard: bars from /v1, the quality panel, and the alert stream. No framework.
"use strict";

const SPAN_SECONDS = { "1m": 86400, "1h": 30 * 86400, "1d": 365 * 86400 };
const state = { symbol: null, interval: "1m", symbols: [], chart: null, candles: null, volume: null };
window.finlakeDashboard = state;

function apiKey() {
  const match = location.hash.match(/key=([^&]+)/);
  if (match) {
    localStorage.setItem("finlake-api-key", decodeURIComponent(match[1]));
    history.replaceState(null, "", location.pathname);
  }
  return localStorage.getItem("finlake-api-key") || "";
}

function setStatus(text, isError) {
  const status = document.getElementById("status");
  status.textContent = text;
  status.className = isError ? "error" : "";
}

async function api(path) {
  const response = await fetch(path, { headers: { "X-API-Key": apiKey() } });
  const body = await response.json();
  if (!response.ok) throw new Error(body.detail || response.statusText);
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

async function showBars() {
  const { symbol, interval } = state;
  if (!symbol) return;
  const { start, end } = rangeFor(symbol, interval);
  const bars = await fetchBars(symbol, interval, start, end);
  if (symbol !== state.symbol || interval !== state.interval) return; // a newer choice won
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
  try {
    const response = await fetch("/v1/alerts/stream", { headers: { "X-API-Key": apiKey() } });
    if (!response.ok) throw new Error(response.statusText);
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value;
      let split;
      while ((split = buffer.indexOf("\n\n")) >= 0) {
        handleEvent(buffer.slice(0, split), feedStatus);
        buffer = buffer.slice(split + 2);
      }
    }
  } catch (error) {
    feedStatus.textContent = "offline";
  }
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
  feed.prepend(item);
  while (feed.children.length > 200) feed.lastElementChild.remove();
}

async function showRecentAlerts() {
  const recent = (await api("/v1/alerts?limit=50")).alerts;
  for (const alert of recent.reverse()) showAlert(alert);
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
    refresh(showRecentAlerts); // whatever fired while disconnected
    return;
  }
  if (fields.data === undefined) return;
  try {
    showAlert(JSON.parse(fields.data));
  } catch (error) {
    setStatus(`unreadable alert: ${error.message}`, true);
  }
}

async function refresh(what) {
  try {
    await what();
    setStatus("");
  } catch (error) {
    setStatus(error.message, true);
  }
}

async function start() {
  const keyInput = document.getElementById("api-key");
  keyInput.value = apiKey();
  keyInput.addEventListener("change", () => {
    localStorage.setItem("finlake-api-key", keyInput.value);
    location.reload();
  });
  initChart();
  const select = document.getElementById("symbol");
  select.addEventListener("change", () => { state.symbol = select.value; refresh(showBars); });
  for (const button of document.querySelectorAll("#intervals button")) {
    button.addEventListener("click", () => {
      document.querySelectorAll("#intervals button").forEach((b) => b.classList.remove("active"));
      button.classList.add("active");
      state.interval = button.dataset.interval;
      refresh(showBars);
    });
  }
  await refresh(async () => {
    state.symbols = (await api("/v1/symbols")).symbols;
    select.replaceChildren(...state.symbols.map((s) => new Option(s.symbol, s.symbol)));
    state.symbol = state.symbols.length ? state.symbols[0].symbol : null;
    await showBars();
  });
  refresh(showQuality);
  setInterval(() => refresh(showQuality), 30000);
  followAlerts();
}

document.addEventListener("DOMContentLoaded", start);

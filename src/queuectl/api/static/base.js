// The dashboard's ground: its constants and state, DOM built from data (every value from the
// API is attacker-controlled: it reaches the page only as text nodes, attribute values or SVG
// numbers, never as HTML), instants as text, the API and its token.
"use strict";

const TOKEN_KEY = "queuectl-token";
// `serve` prints the dashboard's address with its token (#token=...): keep it for this tab,
// then drop it from the address bar so that it is not bookmarked, shared or shown.
(function keepTokenFromAddress() {
  const token = new URLSearchParams(location.hash.slice(1)).get("token");
  if (!token) return;
  sessionStorage.setItem(TOKEN_KEY, token);
  history.replaceState(null, "", location.pathname + location.search);
})();
const STATES = ["pending", "processing", "completed", "failed", "dead", "cancelled"];
const POLL_MS = 2000;
// A running job's output is saved by its runner about once a second: read it as often.
const LIVE_MS = 1000;
const PAGE = 50;

const $ = (id) => document.getElementById(id);
const NARROW = window.matchMedia("(max-width: 640px)");

let jobLimit = PAGE;
let batchFilter = ""; // the batch whose jobs are listed ("": every job)
let selectedId = null;
let selectedAttempt = null; // null: the latest attempt
let timer = null;
let liveTimer = null;
let needToken = false;

// -- building DOM from data, safely

function el(tag, props, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  for (const child of children) {
    node.append(child instanceof Node ? child : document.createTextNode(child == null ? "" : String(child)));
  }
  return node;
}

function stateBadge(state) {
  const known = STATES.includes(state) ? state : "";
  return el("span", { class: "state " + known }, state);
}

// One format for every instant on the page, as the CLI prints them: local time, 24-hour
// clock, the zone named (2026-11-27 23:33:28 CET).
const CLOCK = new Intl.DateTimeFormat(undefined, {
  year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit",
  second: "2-digit", hourCycle: "h23", timeZoneName: "short",
});

function localTime(date) {
  const part = {};
  for (const { type, value } of CLOCK.formatToParts(date)) part[type] = value;
  return `${part.year}-${part.month}-${part.day} ${part.hour}:${part.minute}:${part.second} ${part.timeZoneName}`;
}

function when(iso) {
  if (!iso) return "";
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? String(iso) : localTime(date);
}

// The same without the date when it is today: for the narrow columns.
function shortWhen(iso) {
  const full = when(iso);
  const today = localTime(new Date()).slice(0, 11);
  return full.startsWith(today) ? full.slice(11) : full;
}

// "in 45s", "in 3m", "in 2h 5m"; "now" once it is due.
function fromNow(iso) {
  const s = Math.round((Date.parse(iso) - Date.now()) / 1000);
  if (Number.isNaN(s)) return "";
  if (s <= 0) return "due now";
  if (s < 120) return `in ${s}s`;
  const m = Math.round(s / 60);
  return m < 120 ? `in ${m}m` : `in ${Math.floor(m / 60)}h ${m % 60}m`;
}

function isLater(iso) {
  return Boolean(iso) && Date.parse(iso) > Date.now();
}

function ago(iso) {
  if (!iso) return "";
  const s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
  return s < 120 ? `${s}s ago` : `${Math.round(s / 60)}m ago`;
}

function replaceRows(table, rows) {
  const body = table.tBodies[0];
  body.replaceChildren(...rows);
}

// -- the API

class ApiError extends Error {}

async function api(method, path, body) {
  const headers = {};
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) headers["Authorization"] = "Bearer " + token;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, {
    method, headers, body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (response.status === 401) {
    askForToken(token ? "that token was refused" : "");
    throw new ApiError("a token is needed");
  }
  if (!response.ok) {
    let message = `${response.status} ${response.statusText}`;
    try { message = (await response.json()).error || message; } catch (_) { /* not JSON */ }
    throw new ApiError(message);
  }
  const type = response.headers.get("content-type") || "";
  return type.startsWith("application/json") ? response.json() : response.text();
}

const jobPath = (id) => "/api/jobs/" + encodeURIComponent(id);

// -- token

function askForToken(message) {
  needToken = true;
  $("token-panel").hidden = false;
  $("token-message").textContent = message || "";
  $("token-input").focus();
}

$("token-form").addEventListener("submit", (event) => {
  event.preventDefault();
  sessionStorage.setItem(TOKEN_KEY, $("token-input").value);
  $("token-input").value = "";
  role = null;
  $("token-panel").hidden = true;
  needToken = false;
  refresh();
});
$("token-button").addEventListener("click", () => askForToken(""));

// The queuectl dashboard: polls the API every 2 s and redraws. Every value from the API is
// attacker-controlled (commands, outputs, ids): it reaches the page only as text nodes,
// attribute values or SVG numbers, never as HTML.
"use strict";

(() => {
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
  const PAGE = 50;

  const $ = (id) => document.getElementById(id);

  let jobLimit = PAGE;
  let selectedId = null;
  let selectedAttempt = null; // null: the latest attempt
  let timer = null;
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
    $("token-panel").hidden = true;
    needToken = false;
    refresh();
  });
  $("token-button").addEventListener("click", () => askForToken(""));

  // -- rendering

  function renderCounts(status) {
    $("counts").replaceChildren(...STATES.map((state) =>
      el("div", { class: "card " + state, "data-state": state },
        el("div", { class: "count" }, status.counts[state] || 0),
        el("div", { class: "label" }, state))));
  }

  function setOptions(select, values) {
    const current = select.value;
    const wanted = ["", ...values];
    const have = Array.from(select.options, (o) => o.value);
    if (wanted.join("\n") === have.join("\n")) return;
    select.replaceChildren(...wanted.map((v) => el("option", { value: v }, v || "all")));
    select.value = wanted.includes(current) ? current : "";
  }

  function renderQueues(queues) {
    const rows = Object.entries(queues).map(([name, q]) =>
      el("tr", { "data-queue": name },
        el("td", { class: "queue", title: name }, name),
        el("td", {}, q.paused ? "paused" : "active"),
        el("td", { class: "limit" }, q.concurrency == null ? "-" : String(q.concurrency)),
        el("td", { class: "rate" }, q.rate == null ? "-" : `${q.rate.jobs}/${q.rate.seconds}s`),
        ...STATES.map((s) => el("td", {}, q.counts[s] || 0)),
        el("td", {}, el("button", {
          type: "button",
          onclick: () => act(`/api/queues/${encodeURIComponent(name)}/${q.paused ? "resume" : "pause"}`, "dlq-message"),
        }, q.paused ? "Resume" : "Pause"))));
    replaceRows($("queues"), rows);
    setOptions($("filter-queue"), Object.keys(queues));
  }

  function renderRunners(runners) {
    replaceRows($("runners"), runners.map((r) =>
      el("tr", {},
        el("td", { class: "queue", title: r.host }, r.host),
        el("td", {}, r.stopping
          ? el("span", { class: "state stopping", title: "asked to stop: finishes its running jobs, takes no new one" }, "stopping")
          : el("span", { class: "state up" }, "up")),
        el("td", {}, r.pid), el("td", {}, r.workers),
        el("td", { class: "queue", title: (r.queues || ["*"]).join(", ") }, (r.queues || ["*"]).join(", ")),
        el("td", {}, when(r.started_at)),
        el("td", { title: when(r.heartbeat_at) }, ago(r.heartbeat_at)),
        el("td", { class: "ids", title: r.running.join(" ") }, r.running.join(" ") || "-"))));
    $("no-runner").hidden = runners.length > 0;
  }

  function renderJobs(page) {
    const needle = $("search").value.trim();
    const jobs = needle ? page.jobs.filter((j) => j.id.includes(needle)) : page.jobs;
    replaceRows($("jobs"), jobs.map((j) =>
      el("tr", { "data-id": j.id, class: j.id === selectedId ? "selected" : "", onclick: () => select(j.id) },
        el("td", { class: "id", title: j.id }, j.id), el("td", {}, stateBadge(j.state)),
        el("td", { class: "queue", title: j.queue }, j.queue),
        el("td", { class: "command", title: j.made_by ? `${j.made_by}: ${j.command}` : j.command },
          ...(j.hook ? [el("span", { class: "hook-badge", title: j.made_by }, "hook " + j.hook), " "] : []), j.command),
        el("td", {}, `${j.attempts}/${j.max_retries + 1}`), el("td", {}, when(j.created_at)),
        el("td", { class: "error", title: j.last_error || "" }, j.last_error || "",
          j.state === "failed" ? el("span", { class: "next-run" }, ` (next run ${when(j.run_at)})`) : ""))));
    $("more").hidden = !page.next_cursor;
  }

  function renderDlq(jobs) {
    replaceRows($("dlq"), jobs.map((j) =>
      el("tr", { "data-id": j.id },
        el("td", { class: "id", title: j.id }, j.id), el("td", { class: "queue", title: j.queue }, j.queue),
        el("td", { class: "command", title: j.command }, j.command),
        el("td", {}, j.attempts), el("td", {}, when(j.finished_at)),
        el("td", { class: "error", title: j.last_error || "" }, j.last_error || ""),
        el("td", {}, el("button", {
          type: "button", class: "retry",
          onclick: () => act(jobPath(j.id) + "/retry", "dlq-message"),
        }, "Retry")))));
    $("dlq-retry-all").disabled = $("dlq-purge").disabled = jobs.length === 0;
  }

  function renderHooks(hooks) {
    replaceRows($("hooks"), hooks.map((h) =>
      el("tr", { "data-hook": h.name },
        el("td", { class: "queue", title: h.name }, h.name), el("td", {}, h.on.join(", ")),
        el("td", { class: "queue", title: h.queue || "*" }, h.queue || "*"),
        el("td", { class: "command", title: h.job.command }, h.job.command))));
    $("no-hook").hidden = hooks.length > 0;
  }

  const SVG = "http://www.w3.org/2000/svg";
  function svg(tag, attrs, text) {
    const node = document.createElementNS(SVG, tag);
    for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, String(value));
    if (text !== undefined) node.textContent = String(text);
    return node;
  }

  let lastSeries = null;

  function renderChart(series) {
    lastSeries = series;
    const box = $("chart");
    const W = Math.max(240, Math.floor(box.clientWidth)), H = 180, left = 36, right = 4, bottom = 20, top = 8;
    const buckets = series.buckets;
    const max = Math.max(1, ...buckets.map((b) => b.completed + b.failed));
    const scale = (H - bottom - top) / max;
    const step = (W - left - right) / Math.max(1, buckets.length);
    const chart = svg("svg", { viewBox: `0 0 ${W} ${H}`, width: W, height: H, role: "img", "aria-label": "jobs finished per minute" });
    chart.append(svg("line", { class: "axis", x1: left, y1: H - bottom, x2: W - right, y2: H - bottom }));
    chart.append(svg("text", { x: left - 6, y: top + 10, "text-anchor": "end" }, max));
    chart.append(svg("text", { x: left - 6, y: H - bottom, "text-anchor": "end" }, 0));
    buckets.forEach((b, i) => {
      const x = left + i * step + 1, w = Math.max(1, step - 2);
      const hc = b.completed * scale, hf = b.failed * scale;
      const group = svg("g", {});
      group.append(svg("title", {}, `${when(b.start)}: ${b.completed} completed, ${b.failed} failed`));
      if (hc) group.append(svg("rect", { class: "bar-completed", x, y: H - bottom - hc, width: w, height: hc }));
      if (hf) group.append(svg("rect", { class: "bar-failed", x, y: H - bottom - hc - hf, width: w, height: hf }));
      group.append(svg("rect", { x, y: top, width: w, height: H - bottom - top, fill: "transparent" }));
      chart.append(group);
    });
    // The end labels are anchored inside the drawing, so neither is cut at its edge.
    const labels = [
      [left, "start", `-${buckets.length}m`],
      [left + (W - left - right) / 2, "middle", `-${Math.round(buckets.length / 2)}m`],
      [W - right, "end", "now"],
    ];
    for (const [x, anchor, label] of labels) {
      chart.append(svg("text", { class: "tick", x, y: H - 5, "text-anchor": anchor }, label));
    }
    box.replaceChildren(chart);
  }

  let resizeTimer = null;
  window.addEventListener("resize", () => {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(() => { if (lastSeries) renderChart(lastSeries); }, 100);
  });

  async function renderDetail() {
    if (selectedId === null) return;
    const id = selectedId;
    let job, output;
    try {
      const attempt = selectedAttempt === null ? "" : "?attempt=" + selectedAttempt;
      [job, output] = await Promise.all([
        api("GET", jobPath(id)),
        api("GET", jobPath(id) + "/output" + attempt),
      ]);
    } catch (error) {
      if (id === selectedId) $("detail-message").textContent = error.message;
      return;
    }
    if (id !== selectedId) return;
    const dialog = $("detail");
    if (!dialog.open) dialog.showModal();
    $("detail-id").textContent = job.id;
    const fields = [];
    for (const [key, value] of Object.entries(job)) {
      if (key === "history") continue;
      let text = value !== null && typeof value === "object" ? JSON.stringify(value) : value;
      if (key.endsWith("_at") && typeof value === "string") text = when(value);
      fields.push(el("dt", {}, key), el("dd", { "data-field": key }, text == null ? "" : text));
    }
    $("detail-fields").replaceChildren(...fields);
    $("detail-cancel").hidden = !["pending", "processing", "failed"].includes(job.state);
    $("detail-retry").hidden = !["completed", "dead", "cancelled", "failed"].includes(job.state);
    $("detail-retry").textContent = job.state === "failed" ? "Run now" : "Run again";
    const history = job.history || [];
    // Output is asked for by position (a requeue starts attempt numbers again).
    replaceRows($("detail-history"), history.map((a, index) => {
      const took = a.duration_ms == null ? "" : (a.duration_ms / 1000).toFixed(3) + " s";
      const row = el("tr", { class: "clickable" },
        el("td", {}, String(a.attempt)), el("td", {}, when(a.started_at)),
        el("td", {}, a.finished_at ? when(a.finished_at) : "running"), el("td", {}, took),
        el("td", {}, a.exit_code == null ? "" : String(a.exit_code)), el("td", {}, a.error || ""),
        el("td", {}, a.host || ""));
      row.addEventListener("click", () => { selectedAttempt = index + 1; renderDetail(); });
      return row;
    }));
    const shown = history[(selectedAttempt === null ? history.length : selectedAttempt) - 1];
    $("detail-attempt").textContent = shown ? "of attempt " + shown.attempt : "";
    const out = $("detail-output");
    const atEnd = out.scrollTop + out.clientHeight >= out.scrollHeight - 4;
    if (out.textContent !== output) {
      out.textContent = output || "(no output yet)";
      if (atEnd) out.scrollTop = out.scrollHeight;
    }
  }

  function select(id) {
    selectedId = id;
    selectedAttempt = null;
    $("detail-message").textContent = "";
    $("search-message").textContent = "";
    renderDetail();
  }

  // -- actions

  async function act(path, messageId, method = "POST", body) {
    $(messageId).textContent = "";
    try {
      await api(method, path, body);
    } catch (error) {
      $(messageId).textContent = error.message;
    }
    refresh();
  }

  $("detail-cancel").addEventListener("click", () => act(jobPath(selectedId) + "/cancel", "detail-message"));
  $("detail-retry").addEventListener("click", () => act(jobPath(selectedId) + "/retry", "detail-message"));
  $("detail-close").addEventListener("click", () => $("detail").close());
  // Escape closes a modal dialog by itself; either way the selection goes with it.
  $("detail").addEventListener("close", () => {
    selectedId = null;
    $("detail-output").textContent = "";
    refresh();
  });
  $("dlq-retry-all").addEventListener("click", () => act("/api/dlq/retry", "dlq-message", "POST", { all: true }));
  $("dlq-purge").addEventListener("click", () => {
    if (confirm("Delete every dead job?")) act("/api/dlq", "dlq-message", "DELETE");
  });
  $("more").addEventListener("click", () => { jobLimit = Math.min(1000, jobLimit + PAGE); refresh(); });
  $("filter-state").append(...STATES.map((s) => el("option", { value: s }, s)));
  for (const id of ["filter-state", "filter-queue"]) {
    $(id).addEventListener("change", () => { jobLimit = PAGE; refresh(); });
  }
  $("search").addEventListener("input", () => refresh());
  $("search-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const id = $("search").value.trim();
    if (!id) return;
    try {
      await api("GET", jobPath(id));
      select(id);
    } catch (error) {
      $("search-message").textContent = error.message;
    }
  });

  // -- polling

  // One refresh at a time: a refresh asked for while one runs happens right after it.
  let running = false;
  let again = false;

  async function refresh() {
    if (running) { again = true; return; }
    clearTimeout(timer);
    if (needToken) return;
    running = true;
    const params = new URLSearchParams({ limit: String(jobLimit) });
    if ($("filter-state").value) params.set("state", $("filter-state").value);
    if ($("filter-queue").value) params.set("queue", $("filter-queue").value);
    try {
      const [status, page, dlq, queues, series] = await Promise.all([
        api("GET", "/api/status"), api("GET", "/api/jobs?" + params),
        api("GET", "/api/dlq?limit=100"), api("GET", "/api/queues"),
        api("GET", "/api/stats/throughput"),
      ]);
      renderCounts(status);
      renderQueues(queues);
      renderRunners(status.runners);
      renderJobs(page);
      renderDlq(dlq);
      renderChart(series);
      renderHooks(await api("GET", "/api/hooks"));
      await renderDetail();
      $("connection").textContent = "updated " + localTime(new Date());
      $("connection").className = "muted";
    } catch (error) {
      $("connection").textContent = error.message;
      $("connection").className = "error";
    }
    running = false;
    if (again) { again = false; refresh(); }
    else if (!needToken) timer = setTimeout(refresh, POLL_MS);
  }

  refresh();
})();

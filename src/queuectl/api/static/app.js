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

  // -- rendering

  // The cards are made once and only their counts change: a card replaced under the pointer
  // would lose the click.
  (function makeCards() {
    $("counts").replaceChildren(...["all", ...STATES].map((state) => {
      const card = el("button", {
        type: "button", class: "card " + state, "data-state": state, "aria-pressed": "false",
        title: state === "all" ? "list the jobs in every state" : `list only the ${state} jobs (click again for all)`,
      }, el("div", { class: "count" }, "0"), el("div", { class: "label" }, state));
      card.addEventListener("click", () => filterByState(state === "all" || state === $("filter-state").value ? "" : state));
      return card;
    }));
  })();

  function filterByState(state) {
    $("filter-state").value = state;
    jobLimit = PAGE;
    markCards();
    refresh();
  }

  function markCards() {
    const chosen = $("filter-state").value || "all";
    for (const card of $("counts").children) {
      card.setAttribute("aria-pressed", String(card.dataset.state === chosen));
    }
  }

  function renderCounts(status) {
    let total = 0;
    for (const state of STATES) {
      const n = status.counts[state] || 0;
      total += n;
      $("counts").querySelector(`[data-state="${state}"] .count`).textContent = String(n);
    }
    $("counts").querySelector('[data-state="all"] .count').textContent = String(total);
    markCards();
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
        el("td", { class: "queue name", title: name }, name),
        el("td", { class: "st" }, q.paused ? "paused" : "active"),
        el("td", { class: "limit", "data-label": "limit" }, q.concurrency == null ? "-" : String(q.concurrency)),
        el("td", { class: "rate", "data-label": "rate" }, q.rate == null ? "-" : `${q.rate.jobs}/${q.rate.seconds}s`),
        ...STATES.map((s) => el("td", { "data-label": s }, q.counts[s] || 0)),
        el("td", { class: "act" }, el("button", {
          type: "button", class: "needs-operate",
          onclick: () => act(`/api/queues/${encodeURIComponent(name)}/${q.paused ? "resume" : "pause"}`, "queue-message"),
        }, q.paused ? "Resume" : "Pause"))));
    replaceRows($("queues"), rows);
    setOptions($("filter-queue"), Object.keys(queues));
  }

  function renderRunners(runners) {
    replaceRows($("runners"), runners.map((r) =>
      el("tr", {},
        el("td", { class: "queue name", title: r.host }, r.host),
        el("td", { class: "st" }, r.stopping
          ? el("span", { class: "state stopping", title: "asked to stop: finishes its running jobs, takes no new one" }, "stopping")
          : el("span", { class: "state up" }, "up")),
        el("td", { "data-label": "pid" }, r.pid), el("td", { "data-label": "workers" }, r.workers),
        el("td", { class: "queue", "data-label": "queues", title: (r.queues || ["*"]).join(", ") }, (r.queues || ["*"]).join(", ")),
        el("td", { "data-label": "started" }, when(r.started_at)),
        el("td", { "data-label": "heartbeat", title: when(r.heartbeat_at) }, ago(r.heartbeat_at)),
        el("td", { class: "ids", "data-label": "running", title: r.running.join(" ") }, r.running.join(" ") || "-"))));
    $("no-runner").hidden = runners.length > 0;
  }


  // -- batches: the newest first, each with a bar of its jobs by state

  const BATCHES_SHOWN = 20;
  // The bar's segments, left to right: what ended, then what runs; the rest waits.
  const BAR_STATES = ["completed", "dead", "cancelled", "processing", "failed"];

  function batchBar(b) {
    const bar = svg("svg", {
      class: "batch-bar", viewBox: "0 0 100 10", preserveAspectRatio: "none", role: "img",
      "aria-label": `${b.done} of ${b.total} finished`,
    });
    bar.append(svg("rect", { class: "bar-rest", x: 0, y: 0, width: 100, height: 10 }));
    let x = 0;
    for (const state of BAR_STATES) {
      const n = b.counts[state] || 0;
      if (!n || !b.total) continue;
      const width = (100 * n) / b.total;
      bar.append(svg("rect", { class: "bar-" + state, x, y: 0, width, height: 10 }));
      x += width;
    }
    return bar;
  }

  function batchStatus(b) {
    if (b.completed) return el("span", { class: "state completed" }, "completed");
    if (b.finished) return el("span", { class: "state dead", title: "every job ended, not all completed" }, "finished");
    if (b.counts.processing) return el("span", { class: "state processing" }, "running");
    return el("span", { class: "state pending" }, "waiting");
  }

  function eta(seconds) {
    if (seconds == null) return "-";
    const s = Math.round(seconds);
    if (s < 120) return `${s}s`;
    const m = Math.round(s / 60);
    return m < 120 ? `${m}m` : `${Math.floor(m / 60)}h ${m % 60}m`;
  }

  function renderBatches(batches) {
    const newest = batches.slice(-BATCHES_SHOWN).reverse();
    replaceRows($("batches"), newest.map((b) => {
      const percent = b.total ? Math.floor((100 * b.done) / b.total) : 0;
      return el("tr", {
        "data-batch": b.name, class: b.name === batchFilter ? "selected" : "",
        title: "list this batch's jobs", onclick: () => filterByBatch(b.name === batchFilter ? "" : b.name),
      },
        el("td", { class: "queue name", title: b.name }, b.name),
        el("td", { class: "st" }, batchStatus(b)),
        el("td", { class: "progress", "data-label": "progress", title: `${b.done} of ${b.total} finished` },
          batchBar(b), el("span", { class: "done" }, `${b.done}/${b.total} (${percent}%)`)),
        el("td", { "data-label": "limit" }, b.concurrency == null ? "-" : String(b.concurrency)),
        el("td", { "data-label": "ETA", title: b.first_start ? `first start ${when(b.first_start)}` : "not started" }, eta(b.eta_s)),
        ...STATES.map((s) => el("td", { "data-label": s }, b.counts[s] || 0)),
        el("td", { class: "act" }, b.finished ? "" : el("button", {
          type: "button", class: "cancel needs-operate", title: "cancel every job of it that has not ended",
          onclick: (event) => {
            event.stopPropagation(); // not also a click on the row
            if (confirm(`Cancel the ${b.total - b.done} job${b.total - b.done === 1 ? "" : "s"} of batch ${b.name} that have not ended?`)) {
              act(`/api/batches/${encodeURIComponent(b.name)}/cancel`, "batch-message");
            }
          },
        }, "Cancel")));
    }));
    $("no-batch").hidden = batches.length > 0;
    $("batches").hidden = batches.length === 0;
    const more = batches.length - newest.length;
    $("more-batches").hidden = more <= 0;
    $("more-batches").textContent = more > 0 ? `and ${more} older (queuectl batch list)` : "";
  }

  function filterByBatch(name) {
    batchFilter = name;
    jobLimit = PAGE;
    $("filter-batch").hidden = !name;
    $("filter-batch").textContent = name ? `batch ${name} ×` : "";
    refresh();
    if (name) $("jobs-panel").scrollIntoView({ block: "start" });
  }

  // What may be done to a job from its row, by state: the one thing most often wanted.
  const ROW_ACTIONS = {
    failed: ["Run now", "retry", "run it at once instead of waiting for its next attempt"],
    dead: ["Retry", "retry", "run it again from attempt 0"],
    cancelled: ["Retry", "retry", "run it again from attempt 0"],
    pending: ["Cancel", "cancel", "cancel it"],
    processing: ["Cancel", "cancel", "kill it and cancel it"],
  };

  function rowAction(job, messageId) {
    const action = job.held ? ["Release", "release", "let runners take it again"] : ROW_ACTIONS[job.state];
    if (!action) return "";
    const [label, verb, title] = action;
    return el("button", {
      type: "button", class: verb + " needs-operate", title,
      onclick: (event) => {
        event.stopPropagation(); // not also a click on the row
        if (verb === "cancel" && !confirm(`Cancel job ${job.id}?` + (job.state === "processing" ? " Its command is killed." : ""))) return;
        act(jobPath(job.id) + "/" + verb, messageId);
      },
    }, label);
  }

  // Why a job waits, under its error: a failed job's next attempt, a delayed job's start.
  function waitNote(job) {
    if (job.state === "failed" && job.run_at) {
      return el("div", { class: "next-run", title: `next attempt ${when(job.run_at)} (${fromNow(job.run_at)})` },
        `next run ${shortWhen(job.run_at)}`);
    }
    if (job.state === "pending" && isLater(job.run_at)) {
      return el("div", { class: "run-at", title: `not started before ${when(job.run_at)} (${fromNow(job.run_at)})` },
        `runs at ${shortWhen(job.run_at)}`);
    }
    return "";
  }

  function heldBadge(job) {
    return job.held ? [" ", el("span", { class: "held-badge", title: "held: no runner takes it until it is released" }, "held")] : [];
  }

  function commandCell(job) {
    return el("td", { class: "command", title: job.made_by ? `${job.made_by}: ${job.command}` : job.command },
      ...(job.hook ? [el("span", { class: "hook-badge", title: job.made_by || "enqueued by a hook" }, "hook " + job.hook), " "] : []),
      job.command);
  }

  // A running job's last progress report: a bar, and its words (done/total, message, ETA).
  function progressText(p) {
    const eta = p.eta_s == null ? "" : `, ETA ${Math.round(p.eta_s)} s`;
    const amount = p.total === 100 ? `${p.percent}%` : `${p.done}/${p.total} (${p.percent}%)`;
    return amount + (p.message ? " " + p.message : "") + eta;
  }

  function progressBar(p) {
    if (!p) return "";
    return el("progress", { class: "job-progress", max: String(p.total), value: String(p.done), title: progressText(p) });
  }

  function renderJobs(page) {
    const jobs = page.jobs;
    replaceRows($("jobs"), jobs.map((j) =>
      el("tr", { "data-id": j.id, class: j.id === selectedId ? "selected" : "", onclick: () => select(j.id) },
        el("td", { class: "id", title: j.id }, j.id),
        el("td", { class: "st" }, stateBadge(j.state), ...heldBadge(j), progressBar(j.progress)),
        el("td", { class: "queue", title: j.queue, "data-label": "queue" }, j.queue),
        commandCell(j),
        el("td", { "data-label": "attempts" }, `${j.attempts}/${j.max_retries + 1}`),
        el("td", { class: "created", "data-label": "created" }, when(j.created_at)),
        el("td", { class: "error", title: j.last_error || "" },
          ...(j.last_error ? [el("div", {}, j.last_error)] : []), waitNote(j)),
        el("td", { class: "act" }, rowAction(j, "jobs-message")))));
    $("no-job").hidden = jobs.length > 0;
    $("no-job").textContent = page.next_cursor ? "No match among the newest jobs yet." : "No job here.";
    $("more").hidden = !page.next_cursor;
    $("bulk").hidden = !filterParams().toString();
  }

  // -- the filter: state, queue and search, as the API takes them

  function filterParams() {
    const params = new URLSearchParams();
    if ($("filter-state").value) params.set("state", $("filter-state").value);
    if ($("filter-queue").value) params.set("queue", $("filter-queue").value);
    if (batchFilter) params.set("batch", batchFilter);
    const search = $("search").value.trim();
    if (search) params.set("search", search);
    return params;
  }

  function filterBody() {
    const filter = {};
    if ($("filter-state").value) filter.state = [$("filter-state").value];
    if ($("filter-queue").value) filter.queue = [$("filter-queue").value];
    if (batchFilter) filter.batch = batchFilter;
    const search = $("search").value.trim();
    if (search) filter.search = search;
    return filter;
  }

  function describeFilter(filter) {
    const parts = [];
    if (filter.state) parts.push("state " + filter.state[0]);
    if (filter.queue) parts.push("queue " + filter.queue[0]);
    if (filter.batch) parts.push("batch " + filter.batch);
    if (filter.search) parts.push(`search "${filter.search}"`);
    return parts.join(", ");
  }

  // A search reads a window of jobs at a time: its pages may be short with more to read, so
  // the next ones are read until the page is full (or a few windows were read).
  const SEARCH_WINDOWS = 4;

  async function readJobs() {
    const params = filterParams();
    params.set("limit", String(jobLimit));
    let page = await api("GET", "/api/jobs?" + params);
    if (!params.has("search")) return page;
    const jobs = [...page.jobs];
    for (let n = 1; n < SEARCH_WINDOWS && page.next_cursor && jobs.length < jobLimit; n++) {
      params.set("cursor", page.next_cursor);
      params.set("limit", String(jobLimit - jobs.length));
      page = await api("GET", "/api/jobs?" + params);
      jobs.push(...page.jobs);
    }
    return { jobs, next_cursor: page.next_cursor };
  }

  // -- acting on every job the filter matches: counted first, confirmed, then done

  const BULK_DONE = { cancel: "cancelled", retry: "retried", hold: "held", release: "released", delete: "deleted" };

  async function bulk(action) {
    // Release acts on the held jobs the filter matches: the others are not counted.
    const filter = action === "release" ? { ...filterBody(), held: true } : filterBody();
    const message = $("bulk-message");
    message.className = "muted";
    message.textContent = "counting…";
    try {
      const counted = await api("POST", "/api/jobs/bulk", { filter, action, dry_run: true });
      const n = counted.matched;
      if (!n) { message.textContent = "no job matches"; return; }
      const verb = action[0].toUpperCase() + action.slice(1);
      const which = action === "release" ? "held job" : "job";
      if (!confirm(`${verb} the ${n} ${which}${n === 1 ? "" : "s"} that match ${describeFilter(filter)}?`)) {
        message.textContent = "";
        return;
      }
      message.textContent = `working on ${n} job${n === 1 ? "" : "s"}…`;
      const done = await api("POST", "/api/jobs/bulk", { filter, action });
      const left = done.matched - done.changed;
      message.textContent = `${BULK_DONE[action]} ${done.changed} of ${done.matched}`
        + (left ? ` (${left} in a state it does not apply to)` : "");
    } catch (error) {
      message.className = "error";
      message.textContent = error.message;
    }
    refresh();
  }

  for (const button of $("bulk").querySelectorAll("button[data-action]")) {
    button.addEventListener("click", () => bulk(button.dataset.action));
  }

  // -- who the token is: what its role may not do is hidden

  let role = null;

  async function learnRole() {
    if (role !== null) return;
    const me = await api("GET", "/api/whoami");
    role = me.role;
    document.body.dataset.role = me.role;
    $("whoami").textContent = `${me.name} (${me.role})`;
    $("whoami").title = `this page's token and its role: ${me.role === "admin" ? "every action" : me.role === "operate" ? "cancel, retry, hold, release, pause and resume" : "looking only"}`;
  }

  function renderDlq(jobs) {
    replaceRows($("dlq"), jobs.map((j) =>
      el("tr", { "data-id": j.id, onclick: () => select(j.id) },
        el("td", { class: "id", title: j.id }, j.id),
        el("td", { class: "queue", title: j.queue, "data-label": "queue" }, j.queue),
        commandCell(j),
        el("td", { "data-label": "attempts" }, j.attempts),
        el("td", { "data-label": "finished" }, when(j.finished_at)),
        el("td", { class: "error", title: j.last_error || "" }, j.last_error || ""),
        el("td", { class: "act" }, rowAction(j, "dlq-message")))));
    $("dlq-retry-all").disabled = $("dlq-purge").disabled = jobs.length === 0;
  }

  function seconds(total) {
    const units = [[86400, "d"], [3600, "h"], [60, "m"], [1, "s"]];
    for (const [size, unit] of units) if (total % size === 0) return `${total / size}${unit}`;
    return `${total}s`;
  }

  function renderSchedules(schedules) {
    replaceRows($("schedules"), schedules.map((s) => {
      const rule = s.cron ? `cron ${s.cron}${s.tz ? " " + s.tz : " UTC"}` : `every ${seconds(s.every)}`;
      const job = s.job || {};
      return el("tr", { "data-schedule": s.name },
        el("td", { class: "id", title: s.name }, s.name),
        el("td", { class: "rule" }, rule),
        el("td", { class: "queue", title: job.queue || "default", "data-label": "queue" }, job.queue || "default"),
        el("td", { class: "command", title: job.command || "" }, job.command || ""),
        el("td", { "data-label": "last", title: when(s.last_at) }, s.last_at ? shortWhen(s.last_at) : "never"),
        el("td", { "data-label": "next", title: s.next_at ? `${when(s.next_at)} (${fromNow(s.next_at)})` : "" }, s.next_at ? shortWhen(s.next_at) : "-"),
        el("td", { class: "act" }, el("button", {
          type: "button", class: "danger remove needs-admin", title: "remove the schedule; the jobs it enqueued stay",
          onclick: () => {
            if (confirm(`Remove schedule ${s.name}? The jobs it already enqueued stay.`)) {
              act("/api/schedules/" + encodeURIComponent(s.name), "schedule-message", "DELETE");
            }
          },
        }, "Remove")));
    }));
    $("no-schedule").hidden = schedules.length > 0;
    $("schedules").hidden = schedules.length === 0;
  }

  function renderHooks(hooks) {
    replaceRows($("hooks"), hooks.map((h) =>
      el("tr", { "data-hook": h.name },
        el("td", { class: "queue name", title: h.name }, h.name), el("td", { class: "rule", "data-label": "on" }, h.on.join(", ")),
        el("td", { class: "queue", "data-label": "queue", title: h.queue || "*" }, h.queue || "*"),
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

  // -- one job's view

  // Only the newest call draws: an older answer arriving late is dropped.
  let detailSeq = 0;

  function explainWait(job) {
    const last = job.history && job.history.length ? job.history[job.history.length - 1] : null;
    if (job.held) return "Held: no runner takes it until it is released.";
    if (job.state === "failed") {
      return `Attempt ${job.attempts} of ${job.max_retries + 1} failed (${job.last_error || "no error kept"}); `
        + `next run ${when(job.run_at)} (${fromNow(job.run_at)}). "Run now" starts it at once.`;
    }
    if (job.state === "pending" && isLater(job.run_at)) {
      return `Waits until ${when(job.run_at)} (${fromNow(job.run_at)}).`;
    }
    if (job.state === "pending" && job.depends_on && job.depends_on.length) {
      return `Waits for ${job.depends_on.join(", ")} to complete.`;
    }
    if (job.state === "processing") {
      return `Running since ${when(job.started_at)}${last && last.host ? " on " + last.host : ""}.`;
    }
    return "";
  }

  async function renderDetail() {
    if (selectedId === null) return;
    const id = selectedId;
    const seq = ++detailSeq;
    clearTimeout(liveTimer);
    let job, output;
    try {
      const attempt = selectedAttempt === null ? "" : "?attempt=" + selectedAttempt;
      [job, output] = await Promise.all([
        api("GET", jobPath(id)),
        api("GET", jobPath(id) + "/output" + attempt),
      ]);
    } catch (error) {
      if (seq === detailSeq) $("detail-message").textContent = error.message;
      return;
    }
    if (seq !== detailSeq || id !== selectedId) return;
    const dialog = $("detail");
    if (!dialog.open) dialog.showModal();
    $("detail-id").textContent = job.id;
    $("detail-when").textContent = explainWait(job);
    const fields = [];
    for (const [key, value] of Object.entries(job)) {
      if (key === "history") continue;
      if (key === "progress" && value) {
        fields.push(el("dt", {}, key), el("dd", { "data-field": key }, progressBar(value), " ", progressText(value)));
        continue;
      }
      let text = value !== null && typeof value === "object" ? JSON.stringify(value) : value;
      if (key.endsWith("_at") && typeof value === "string") text = when(value);
      fields.push(el("dt", {}, key), el("dd", { "data-field": key }, text == null ? "" : text));
    }
    $("detail-fields").replaceChildren(...fields);
    $("detail-cancel").hidden = !["pending", "processing", "failed"].includes(job.state);
    $("detail-retry").hidden = !["completed", "dead", "cancelled", "failed"].includes(job.state);
    $("detail-retry").textContent = job.state === "failed" ? "Run now" : "Run again";
    $("detail-hold").hidden = job.held || !["pending", "failed"].includes(job.state);
    $("detail-release").hidden = !job.held;
    const history = job.history || [];
    const bytes = (n) => {
      let value = n, unit = 0;
      while (value >= 1024 && unit < 4) { value /= 1024; unit += 1; }
      return unit ? value.toFixed(1) + " " + ["B", "KiB", "MiB", "GiB", "TiB"][unit] : n + " B";
    };
    // Output is asked for by position (a requeue starts attempt numbers again).
    replaceRows($("detail-history"), history.map((a, index) => {
      const took = a.duration_ms == null ? "" : (a.duration_ms / 1000).toFixed(3) + " s";
      const cpu = a.cpu_ms == null ? "" : (a.cpu_ms / 1000).toFixed(3) + " s";
      const row = el("tr", { class: "clickable" },
        el("td", {}, String(a.attempt)), el("td", {}, when(a.started_at)),
        el("td", {}, a.finished_at ? when(a.finished_at) : "running"), el("td", {}, took),
        el("td", {}, cpu), el("td", {}, a.max_rss_bytes == null ? "" : bytes(a.max_rss_bytes)),
        el("td", {}, a.exit_code == null ? "" : String(a.exit_code)), el("td", {}, a.error || ""),
        el("td", {}, a.host || ""));
      row.addEventListener("click", () => { selectedAttempt = index + 1; renderDetail(); });
      return row;
    }));
    const shown = history[(selectedAttempt === null ? history.length : selectedAttempt) - 1];
    $("detail-attempt").textContent = shown ? "of attempt " + shown.attempt : "";
    const out = $("detail-output");
    const atEnd = out.scrollTop + out.clientHeight >= out.scrollHeight - 4;
    const ended = shown ? Boolean(shown.finished_at) : false;
    const text = output || (!shown ? "(not run yet)" : ended ? "(it printed nothing)" : "(no output yet)");
    if (out.textContent !== text) {
      out.textContent = text;
      if (atEnd) out.scrollTop = out.scrollHeight;
    }
    // While the attempt shown runs, its output is read again every second, until it ends.
    const live = job.state === "processing" && (selectedAttempt === null || selectedAttempt === history.length);
    $("detail-live").hidden = !live;
    if (live) liveTimer = setTimeout(renderDetail, LIVE_MS);
  }

  function select(id) {
    selectedId = id;
    selectedAttempt = null;
    $("detail-message").textContent = "";
    $("search-message").textContent = "";
    $("detail-output").textContent = "";
    $("detail-when").textContent = "";
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
  $("detail-hold").addEventListener("click", () => act(jobPath(selectedId) + "/hold", "detail-message"));
  $("detail-release").addEventListener("click", () => act(jobPath(selectedId) + "/release", "detail-message"));
  $("filter-batch").addEventListener("click", () => filterByBatch(""));
  $("detail-close").addEventListener("click", () => $("detail").close());
  // Escape closes a modal dialog by itself; either way the selection goes with it.
  $("detail").addEventListener("close", () => {
    selectedId = null;
    detailSeq++;
    clearTimeout(liveTimer);
    $("detail-live").hidden = true;
    $("detail-output").textContent = "";
    refresh();
  });
  $("dlq-retry-all").addEventListener("click", () => act("/api/dlq/retry", "dlq-message", "POST", { all: true }));
  $("dlq-purge").addEventListener("click", () => {
    if (confirm("Delete every dead job?")) act("/api/dlq", "dlq-message", "DELETE");
  });
  $("more").addEventListener("click", () => { jobLimit = Math.min(1000, jobLimit + PAGE); refresh(); });
  $("filter-state").append(...STATES.map((s) => el("option", { value: s }, s)));
  $("filter-state").addEventListener("change", () => filterByState($("filter-state").value));
  $("filter-queue").addEventListener("change", () => { jobLimit = PAGE; refresh(); });
  // The server searches: asked once typing pauses, not at every key.
  let searchTimer = null;
  $("search").addEventListener("input", () => {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(() => { jobLimit = PAGE; refresh(); }, 300);
  });
  // Enter on a whole id opens that job; any other text lists what it matches.
  $("search-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    clearTimeout(searchTimer);
    $("search-message").textContent = "";
    jobLimit = PAGE;
    const id = $("search").value.trim();
    if (id) {
      try {
        await api("GET", jobPath(id));
        select(id);
      } catch (_) { /* no job of that id: the list shows what matches */ }
    }
    refresh();
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
    try {
      await learnRole();
      const [status, page, dlq, queues, series, schedules, hooks, batches] = await Promise.all([
        api("GET", "/api/status"), readJobs(),
        api("GET", "/api/dlq?limit=100"), api("GET", "/api/queues"),
        api("GET", "/api/stats/throughput"), api("GET", "/api/schedules"), api("GET", "/api/hooks"),
        api("GET", "/api/batches"),
      ]);
      renderCounts(status);
      renderQueues(queues);
      renderRunners(status.runners);
      renderJobs(page);
      renderDlq(dlq);
      renderSchedules(schedules);
      renderChart(series);
      renderHooks(hooks);
      renderBatches(batches);
      // A live view reads its job by itself; the others follow the page's pace.
      if ($("detail-live").hidden) await renderDetail();
      const now = localTime(new Date());
      // On a phone the date would push the buttons to a second line: the time is enough.
      $("connection").textContent = "updated " + (NARROW.matches ? now.slice(11) : now);
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

// The queuectl dashboard: polls the API every 2 s and redraws. base.js, tables.js, panels.js
// and detail.js, loaded before this file, hold its parts (classic scripts share their
// top-level names); this one wires the controls and runs the polling.
"use strict";

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

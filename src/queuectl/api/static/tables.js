// The dashboard's overview: the counts, queues, runners, batches and jobs tables, and the
// filter they are listed by.
"use strict";

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

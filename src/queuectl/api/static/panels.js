// Bulk actions, the token's role, and the dead-letter, schedules, hooks and chart panels.
"use strict";

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

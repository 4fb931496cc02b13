// One job's view: its output (live while it runs), attempts and fields.
"use strict";

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

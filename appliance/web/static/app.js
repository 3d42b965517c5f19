// The status page: reads the /v1 API with the session cookie, follows WS /v1/events, and never
// puts user-supplied text into HTML (every value goes through textContent or an attribute).
"use strict";

const csrf = document.querySelector('meta[name="csrf-token"]').content;
const SVG = "http://www.w3.org/2000/svg";

async function api(path, options = {}) {
  const headers = { "X-CSRF-Token": csrf, ...(options.headers || {}) };
  const response = await fetch(path, { credentials: "same-origin", ...options, headers });
  if (response.status === 401) {
    window.location.assign("/login");
    throw new Error("logged out");
  }
  if (!response.ok) {
    const body = await response.json().catch(() => ({}));
    throw new Error((body.error && body.error.message) || response.statusText);
  }
  return response.json();
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null) continue;
    if (key === "text") node.textContent = String(value);
    else if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, String(value));
  }
  for (const child of children) if (child) node.append(child);
  return node;
}

const number = (n) => Number(n || 0).toLocaleString("en-US");
const when = (iso) => (iso ? new Date(iso).toLocaleString() : "");

async function refreshQueues() {
  const { items } = await api("/v1/queues");
  const body = document.getElementById("queue-rows");
  body.replaceChildren(...items.map((q) => el("tr", { "data-queue": q.name },
    el("td", { text: q.name }),
    el("td", { class: "num active", text: `${q.active}/${q.concurrency}` }),
    el("td", { class: "num waiting", text: number(q.waiting) }),
    el("td", { class: "num completed", text: number(q.completed_24h) }),
    el("td", { class: "num failed", text: number(q.failed_24h) }),
    el("td", { class: "num dead", text: number(q.dead) }),
  )));
}

function chart(queue, buckets) {
  const width = 480, height = 100;
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.setAttribute("preserveAspectRatio", "none");
  const most = Math.max(1, ...buckets.map((b) => b.completed + b.failed));
  const step = width / buckets.length;
  const points = [];
  buckets.forEach((b, i) => {
    const total = b.completed + b.failed;
    const bar = document.createElementNS(SVG, "rect");
    const h = (b.completed / most) * (height - 4);
    bar.setAttribute("class", "bar");
    bar.setAttribute("x", String(i * step + 1));
    bar.setAttribute("y", String(height - h));
    bar.setAttribute("width", String(Math.max(1, step - 2)));
    bar.setAttribute("height", String(h));
    const title = document.createElementNS(SVG, "title");
    title.textContent = `${when(b.start)}: ${b.completed} completed, ${b.failed} failed`;
    bar.append(title);
    svg.append(bar);
    const rate = total ? b.failed / total : 0;
    points.push(`${i * step + step / 2},${height - 2 - rate * (height - 4)}`);
  });
  const line = document.createElementNS(SVG, "polyline");
  line.setAttribute("class", "rate");
  line.setAttribute("points", points.join(" "));
  svg.append(line);
  const done = buckets.reduce((s, b) => s + b.completed, 0);
  const failed = buckets.reduce((s, b) => s + b.failed, 0);
  return el("figure", { class: "chart", "data-queue": queue },
    el("figcaption", { text: `${queue}: ${number(done)} completed, ${number(failed)} failed` }), svg);
}

async function refreshCharts() {
  const { items } = await api("/v1/stats");
  document.getElementById("chart-grid").replaceChildren(...items.map((q) => chart(q.queue, q.buckets)));
}

async function refreshDlq() {
  const { items } = await api("/v1/dlq");
  const act = (job, verb) => async (event) => {
    event.target.disabled = true;
    if (verb === "retry") await api(`/v1/dlq/${encodeURIComponent(job.id)}/retry`, { method: "POST" });
    else await api(`/v1/dlq/${encodeURIComponent(job.id)}`, { method: "DELETE" });
    await Promise.all([refreshDlq(), refreshQueues()]);
  };
  document.getElementById("dlq-rows").replaceChildren(...items.map((job) => el("tr", { "data-job": job.id },
    el("td", { text: job.id }), el("td", { text: job.queue }), el("td", { text: job.kind }),
    el("td", { class: "num", text: `${job.attempts}/${job.max_attempts}` }),
    el("td", { class: "error", text: job.error || "" }), el("td", { text: when(job.finished_at) }),
    el("td", {},
      el("button", { class: "retry", type: "button", text: "Retry", onclick: act(job, "retry") }),
      el("button", { class: "discard", type: "button", text: "Discard", onclick: act(job, "discard") })),
  )));
  document.getElementById("dlq-empty").hidden = items.length > 0;
}

function variantList(variants) {
  return el("ul", {}, ...Object.entries(variants).sort().map(([name, v]) => el("li", {},
    el("span", { text: `${name}: ` }),
    el("span", { class: `state-${v.state}`, "data-variant": name, text: v.state }),
    v.width ? el("span", { text: ` ${v.width}x${v.height}` }) : null)));
}

async function refreshAssets() {
  const { items } = await api("/v1/assets?limit=12");
  document.getElementById("asset-grid").replaceChildren(...items.map((asset) => {
    const v = asset.variants || {};
    const mobile = v["720p"];
    const thumb = v.thumbnail;
    const media = mobile && mobile.state === "completed" && mobile.url
      ? el("video", { controls: "", preload: "metadata", src: mobile.url, poster: thumb && thumb.url, "data-asset": asset.id })
      : thumb && thumb.state === "completed" && thumb.url ? el("img", { src: thumb.url, alt: "" }) : null;
    return el("article", { class: "asset", "data-asset": asset.id },
      media,
      el("div", { class: "name", text: asset.filename || asset.id }),
      el("div", { class: "hint", text: `${asset.kind}, ${asset.mime}, ${number(asset.size)} bytes` }),
      variantList(v));
  }));
}

async function refreshWebhooks() {
  const params = new URLSearchParams();
  for (const [key, value] of new FormData(document.getElementById("webhook-filters"))) if (value) params.set(key, value);
  const [{ items }, alerts] = await Promise.all([api(`/v1/webhooks?${params}`), api("/v1/alerts")]);
  const replay = (hook) => async (event) => {
    event.target.disabled = true;
    await api(`/v1/webhooks/${encodeURIComponent(hook.id)}/replay`, { method: "POST" });
    await refreshWebhooks();
  };
  document.getElementById("webhook-rows").replaceChildren(...items.map((hook) => el("tr", {},
    el("td", { text: when(hook.received_at) }), el("td", { text: hook.source }), el("td", { text: hook.type }),
    el("td", { text: hook.id }), el("td", { text: hook.status }), el("td", { class: "num", text: hook.attempts }),
    el("td", { class: "error", text: hook.error || "" }),
    el("td", {}, el("button", { type: "button", text: "Replay", onclick: replay(hook) })))));
  document.getElementById("alert-list").replaceChildren(...alerts.items.map((a) =>
    el("li", { text: `${when(a.at)}: ${a.message}` })));
}

async function refreshSystem() {
  const s = await api("/v1/system");
  const gib = (n) => `${(n / 1024 ** 3).toFixed(1)} GiB`;
  document.getElementById("version").textContent = `v${s.versions.ingestbox}`;
  const facts = [
    ["Encoder", `${s.hwaccel.chosen} (mode ${s.hwaccel.mode})`],
    ["Cores", s.cores], ["Scheduler", s.scheduler.reason], ["CPU", `${s.cpu_percent}%`],
    ["Memory", `${gib(s.memory.available)} free of ${gib(s.memory.total)}`],
    ["Disk", `${gib(s.disk.free)} free of ${gib(s.disk.total)} (${s.disk.path})`],
    ["Storage", s.storage], ["Config", s.config],
    ["Versions", Object.entries(s.versions).map(([k, v]) => `${k} ${v}`).join(", ")],
  ];
  document.getElementById("system-facts").replaceChildren(...facts.flatMap(([k, v]) =>
    [el("dt", { text: k }), el("dd", { text: v })]));
  const rows = [...s.hwaccel.backends.map((b) => [b.name, "encoder", b]),
    ...(s.hwaccel.decoders || []).map((d) => [d.name, "decoder", d])];
  document.getElementById("hw-rows").replaceChildren(...rows.map(([name, kind, r]) => el("tr", {},
    el("td", { text: name }), el("td", { text: kind }),
    el("td", { class: r.usable ? "state-completed" : "state-failed", text: r.usable ? "yes" : "no" }),
    el("td", { text: r.reason }))));
  const policies = Object.entries(s.queues).map(([name, q]) => `${name}: ${q.retry}`);
  document.getElementById("retry-policy").textContent = `Retry policy: ${policies.join(" · ")}`;
}

// Many events in a burst become one refresh.
const pending = new Map();
function soon(fn, ms) {
  if (pending.has(fn)) return;
  pending.set(fn, setTimeout(() => { pending.delete(fn); fn().catch(console.error); }, ms));
}

function follow() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const socket = new WebSocket(`${scheme}://${location.host}/v1/events`);
  const badge = document.getElementById("live");
  socket.onopen = () => { badge.textContent = "live"; badge.classList.add("on"); };
  socket.onmessage = (message) => {
    const event = JSON.parse(message.data);
    if (event.type !== "job") return;
    soon(refreshQueues, 150);
    const job = event.job;
    if (job.state === "dead" || job.state === "completed") soon(refreshDlq, 300);
    if (job.queue === "file-processing" || job.queue === "media-transcoding") soon(refreshAssets, 500);
    if (job.queue === "webhook-handling") soon(refreshWebhooks, 1000);
  };
  socket.onclose = () => {
    badge.textContent = "reconnecting"; badge.classList.remove("on");
    setTimeout(follow, 2000);
  };
}

document.getElementById("webhook-filters").addEventListener("submit", (event) => {
  event.preventDefault();
  refreshWebhooks().catch(console.error);
});

const everything = [refreshQueues, refreshCharts, refreshDlq, refreshAssets, refreshWebhooks, refreshSystem];
Promise.all(everything.map((fn) => fn())).catch(console.error);
follow();
setInterval(() => everything.forEach((fn) => fn().catch(console.error)), 15000);

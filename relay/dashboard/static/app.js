// Relay's web dashboard (docs/dashboard.md): one page, its views picked by the location's hash (#/keys, …).
// It calls the admin API with the session token of sign-in (POST /admin/v1/session), kept in this tab's
// sessionStorage and sent as "Authorization: Bearer"; no cookie is used. Every element is built with the DOM API
// (no HTML parsing of strings), so text from the API is never read as markup. Charts are uPlot's (vendor/).
"use strict";

const TOKEN = "relay.session";
const state = { name: null, role: null, charts: [] };

// ---- small helpers ------------------------------------------------------------------------------------------

function h(tag, props, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(props || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on")) el.addEventListener(name.slice(2), value);
    else if (name === "dataset") Object.assign(el.dataset, value);
    else if (name in el && name !== "list") el[name] = value;
    else el.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

// Credits to the micro-credit, without trailing zeros (0.00059, 24.9884, 10).
const credits = (micros) =>
  micros === null || micros === undefined ? "unlimited" : String(Number((micros / 1e6).toFixed(6)));
const ms = (value) => (value === null || value === undefined ? "–" : `${Math.round(value)} ms`);
const when = (seconds) => (seconds ? new Date(seconds * 1000).toISOString().replace("T", " ").slice(0, 19) : "–");
const isAdmin = () => state.role === "admin";

function flash(text, kind) {
  const el = document.getElementById("flash");
  el.textContent = text;
  el.className = kind || "ok";
  el.hidden = false;
  clearTimeout(flash.timer);
  flash.timer = setTimeout(() => (el.hidden = true), 5000);
}

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

async function api(method, path, body, extraHeaders) {
  const headers = { authorization: `Bearer ${sessionStorage.getItem(TOKEN) || ""}`, ...(extraHeaders || {}) };
  if (body !== undefined) headers["content-type"] = "application/json";
  const reply = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  if (reply.status === 401 && path.startsWith("/admin/")) {
    signOut("Your session ended: sign in again.");
    throw new ApiError(401, "signed out");
  }
  if (!reply.ok) throw new ApiError(reply.status, await errorText(reply));
  return reply;
}

async function errorText(reply) {
  try {
    const payload = await reply.json();
    return payload.error?.message || `${reply.status}`;
  } catch {
    return `HTTP ${reply.status}`;
  }
}

const getJson = async (path) => (await api("GET", path)).json();

function table(columns, rows, empty) {
  if (!rows.length) return h("p", { className: "empty" }, empty || "Nothing yet.");
  return h(
    "table",
    {},
    h(
      "thead",
      {},
      h(
        "tr",
        {},
        columns.map(([title]) => h("th", {}, title)),
      ),
    ),
    h(
      "tbody",
      {},
      rows.map((row) =>
        h(
          "tr",
          {},
          columns.map(([, cell]) => h("td", {}, cell(row))),
        ),
      ),
    ),
  );
}

function failure(error) {
  if (error.status === 401) return;
  flash(error.message, "error");
}

// ---- sign-in ------------------------------------------------------------------------------------------------

async function signIn(event) {
  event.preventDefault();
  const key = document.getElementById("admin-key").value.trim();
  const errorBox = document.getElementById("signin-error");
  errorBox.textContent = "";
  const reply = await fetch("/admin/v1/session", { method: "POST", headers: { authorization: `Bearer ${key}` } });
  if (!reply.ok) {
    errorBox.textContent = await errorText(reply);
    return;
  }
  const session = await reply.json();
  sessionStorage.setItem(TOKEN, session.token);
  document.getElementById("admin-key").value = "";
  await start();
}

function signOut(message) {
  sessionStorage.removeItem(TOKEN);
  state.name = state.role = null;
  document.getElementById("top").hidden = true;
  document.getElementById("view").hidden = true;
  document.getElementById("signin").hidden = false;
  document.getElementById("signin-error").textContent = message || "";
}

async function start() {
  if (!sessionStorage.getItem(TOKEN)) return signOut();
  let who;
  try {
    who = await getJson("/admin/v1/session");
  } catch (error) {
    return failure(error);
  }
  state.name = who.name;
  state.role = who.role;
  document.getElementById("who").textContent = `${who.name} (${who.role})`;
  document.body.classList.toggle("viewer", who.role !== "admin");
  document.getElementById("signin").hidden = true;
  document.getElementById("top").hidden = false;
  document.getElementById("view").hidden = false;
  if (!location.hash) location.hash = "#/overview";
  else await route();
}

// ---- views --------------------------------------------------------------------------------------------------

const VIEWS = {};

async function route() {
  if (!state.role) return;
  const [page, ...rest] = location.hash.replace(/^#\/?/, "").split("/");
  const name = VIEWS[page] ? page : "overview";
  for (const link of document.querySelectorAll("nav a")) link.classList.toggle("active", link.dataset.page === name);
  for (const chart of state.charts) chart.destroy();
  state.charts = [];
  const view = document.getElementById("view");
  view.replaceChildren(h("p", { className: "empty" }, "Loading…"));
  try {
    view.replaceChildren(await VIEWS[name](rest.map(decodeURIComponent)));
  } catch (error) {
    view.replaceChildren(h("p", { className: "error" }, error.message));
    failure(error);
  }
}

// Overview: the request log's time series (GET /admin/v1/stats) as charts.
const RANGES = { "15m": [900, 15], "1h": [3600, 60], "24h": [86400, 1800], "7d": [604800, 3 * 3600] };

VIEWS.overview = async () => {
  const range = sessionStorage.getItem("relay.range") || "24h";
  const [span, bucket] = RANGES[range] || RANGES["24h"];
  const until = Math.ceil(Date.now() / 1000 / bucket) * bucket;
  const stats = await getJson(`/admin/v1/stats?since=${until - span}&until=${until}&bucket=${bucket}`);
  const rows = stats.data;
  const sum = (field) => rows.reduce((total, row) => total + row[field], 0);
  const total = sum("requests");
  const picker = h(
    "div",
    { className: "toolbar" },
    Object.keys(RANGES).map((name) =>
      h(
        "button",
        {
          type: "button",
          className: name === range ? "chosen" : "",
          onclick: () => {
            sessionStorage.setItem("relay.range", name);
            route();
          },
        },
        `Last ${name}`,
      ),
    ),
  );
  const tiles = h(
    "div",
    { className: "tiles" },
    tile("Requests", String(total)),
    tile("Errors", String(sum("errors")) + (total ? ` (${((100 * sum("errors")) / total).toFixed(1)}%)` : "")),
    tile("Spend (credits)", credits(sum("cost_micros"))),
    tile("Busiest bucket", String(Math.max(0, ...rows.map((row) => row.requests)))),
  );
  const grid = h("div", { className: "charts" });
  const x = rows.map((row) => row.start);
  const pick = (field) => rows.map((row) => row[field]);
  const charts = [
    [
      "Requests and errors",
      [
        ["requests", pick("requests"), "#2563eb"],
        ["errors", pick("errors"), "#dc2626"],
      ],
    ],
    ["Spend (credits)", [["spend", rows.map((row) => row.cost_micros / 1e6), "#059669"]]],
    [
      "Latency (ms)",
      [
        ["p50", pick("latency_ms_p50"), "#2563eb"],
        ["p95", pick("latency_ms_p95"), "#d97706"],
        ["p99", pick("latency_ms_p99"), "#dc2626"],
      ],
    ],
    [
      "Time to first token (ms)",
      [
        ["p50", pick("ttft_ms_p50"), "#7c3aed"],
        ["p95", pick("ttft_ms_p95"), "#db2777"],
      ],
    ],
  ];
  const boxes = charts.map(([title]) => h("div", { className: "chart card" }, h("h3", {}, title)));
  grid.append(...boxes);
  const page = h("div", {}, h("h2", {}, "Overview"), picker, tiles, grid);
  requestAnimationFrame(() => charts.forEach(([, series], index) => state.charts.push(chart(boxes[index], x, series))));
  return page;
};

function tile(label, value) {
  return h("div", { className: "tile card" }, h("span", { className: "label" }, label), h("strong", {}, value));
}

// A uPlot line chart in box: series are [label, values, colour, scale?]; a series on the "credits" scale gets an
// axis of its own on the right.
function chart(box, x, series) {
  const width = Math.max(300, box.clientWidth - 24);
  const axes = [{}, { size: 60 }];
  if (series.some(([, , , scale]) => scale === "credits"))
    axes.push({ scale: "credits", side: 1, size: 60, grid: { show: false } });
  const options = {
    width,
    height: 200,
    scales: { x: { time: true } },
    // Percentiles are null in buckets without requests: their lines join the buckets that have some.
    series: [
      {},
      ...series.map(([label, values, stroke, scale]) => ({
        label,
        stroke,
        scale: scale || "y",
        width: 2,
        spanGaps: values.includes(null),
        points: { show: true, size: 5 },
      })),
    ],
    axes,
    legend: { live: true },
  };
  return new uPlot(options, [x, ...series.map(([, values]) => values)], box);
}

// Keys: list with filters, create (the secret shown once), disable/enable, top up.
VIEWS.keys = async () => {
  const filters = JSON.parse(sessionStorage.getItem("relay.keyFilters") || "{}");
  const query = new URLSearchParams({ limit: "200" });
  if (filters.group) query.set("group", filters.group);
  if (filters.disabled) query.set("disabled", filters.disabled);
  const keys = (await getJson(`/admin/v1/keys?${query}`)).data;
  const group = h("input", { name: "group", placeholder: "group", value: filters.group || "" });
  const status = h(
    "select",
    { name: "disabled" },
    h("option", { value: "" }, "any status"),
    h("option", { value: "false", selected: filters.disabled === "false" }, "enabled"),
    h("option", { value: "true", selected: filters.disabled === "true" }, "disabled"),
  );
  const filterForm = h(
    "form",
    {
      className: "toolbar",
      onsubmit: (event) => {
        event.preventDefault();
        sessionStorage.setItem("relay.keyFilters", JSON.stringify({ group: group.value, disabled: status.value }));
        route();
      },
    },
    group,
    status,
    h("button", { type: "submit" }, "Filter"),
  );
  const columns = [
    ["Name", (key) => key.name],
    ["Status", (key) => h("span", { className: `status ${key.status}` }, key.status)],
    ["Balance", (key) => credits(key.balance_micros)],
    ["Group", (key) => key.group],
    ["Models", (key) => key.models.join(", ")],
    [
      "Limits",
      (key) => [key.rpm ? `${key.rpm} rpm` : "", key.tpm ? `${key.tpm} tpm` : ""].filter(Boolean).join(", ") || "–",
    ],
    ["Expires", (key) => when(key.expires_at)],
    ["Source", (key) => key.source],
  ];
  if (isAdmin()) columns.push(["", keyActions]);
  return h(
    "div",
    {},
    h("h2", {}, "Keys"),
    isAdmin() ? createKeyForm() : null,
    filterForm,
    table(columns, keys, "No keys match."),
  );
};

function keyActions(key) {
  const toggle = key.status === "disabled" ? "enable" : "disable";
  const amount = h("input", {
    className: "amount",
    placeholder: "credits",
    size: 7,
    "aria-label": `top up ${key.name}`,
  });
  const post = async (path, body, done) => {
    try {
      await api("POST", `/admin/v1/keys/${encodeURIComponent(key.name)}/${path}`, body);
      flash(done);
      route();
    } catch (error) {
      failure(error);
    }
  };
  return h(
    "span",
    { className: "actions" },
    h(
      "button",
      { type: "button", className: "write", onclick: () => post(toggle, undefined, `Key ${key.name}: ${toggle}d.`) },
      toggle === "enable" ? "Enable" : "Disable",
    ),
    key.balance_micros === null
      ? null
      : h(
          "form",
          {
            className: "inline",
            onsubmit: (event) => {
              event.preventDefault();
              post("topup", { amount: amount.value }, `Key ${key.name}: topped up by ${amount.value}.`);
            },
          },
          amount,
          h("button", { type: "submit", className: "write" }, "Top up"),
        ),
  );
}

function createKeyForm() {
  const field = (name, placeholder) => h("input", { name, placeholder, "aria-label": placeholder });
  const inputs = {
    name: field("name", "name"),
    quota: field("quota", "quota (credits, empty: unlimited)"),
    group: field("group", "group (default)"),
    models: field("models", "models (comma separated, empty: all)"),
  };
  const secret = h("div", { id: "new-secret", hidden: true, className: "secret card" });
  const form = h(
    "form",
    {
      id: "create-key",
      className: "toolbar card",
      onsubmit: async (event) => {
        event.preventDefault();
        const body = { name: inputs.name.value.trim() };
        if (inputs.quota.value.trim()) body.quota = inputs.quota.value.trim();
        if (inputs.group.value.trim()) body.group = inputs.group.value.trim();
        const models = inputs.models.value
          .split(",")
          .map((model) => model.trim())
          .filter(Boolean);
        if (models.length) body.models = models;
        try {
          const made = await (await api("POST", "/admin/v1/keys", body)).json();
          await route();
          const shown = document.getElementById("new-secret");
          shown.replaceChildren(
            h("strong", {}, `Key ${made.name} created. Its secret, shown this once:`),
            h("code", { id: "secret-value" }, made.secret),
            h("button", { type: "button", onclick: () => navigator.clipboard?.writeText(made.secret) }, "Copy"),
          );
          shown.hidden = false;
        } catch (error) {
          failure(error);
        }
      },
    },
    h("strong", {}, "New key"),
    Object.values(inputs),
    h("button", { type: "submit", className: "write" }, "Create"),
  );
  return h("div", {}, form, secret);
}

// Channels with their health; enable/disable.
VIEWS.channels = async () => {
  const channels = (await getJson("/admin/v1/channels")).data;
  const columns = [
    ["Name", (c) => c.name],
    ["Type", (c) => c.type],
    ["Base URL", (c) => c.base_url],
    ["Models", (c) => c.models.join(", ")],
    ["Priority", (c) => c.priority],
    [
      "State",
      (c) =>
        h(
          "span",
          { className: `status ${c.enabled === false ? "disabled" : "active"}` },
          c.enabled === false ? "disabled" : "enabled",
        ),
    ],
    ["Breaker", (c) => (c.breaker ? h("span", { className: `breaker ${c.breaker.state}` }, c.breaker.state) : "–")],
    ["Requests", (c) => c.window.requests],
    [
      "Errors",
      (c) => (c.window.error_rate === null ? "–" : `${c.window.errors} (${(100 * c.window.error_rate).toFixed(1)}%)`),
    ],
    ["p50", (c) => ms(c.window.latency_ms_p50)],
    ["p95", (c) => ms(c.window.latency_ms_p95)],
  ];
  if (isAdmin()) {
    columns.push([
      "",
      (c) => {
        const action = c.enabled === false ? "enable" : "disable";
        return h(
          "button",
          {
            type: "button",
            className: "write",
            onclick: async () => {
              try {
                await api("POST", `/admin/v1/channels/${encodeURIComponent(c.name)}/${action}`);
                flash(`Channel ${c.name}: ${action}d.`);
                route();
              } catch (error) {
                failure(error);
              }
            },
          },
          action === "enable" ? "Enable" : "Disable",
        );
      },
    ]);
  }
  const minutes = channels[0]?.window.minutes ?? 15;
  return h(
    "div",
    {},
    h("h2", {}, "Channels"),
    h(
      "p",
      { className: "hint" },
      `Requests, errors and latency of the last ${minutes} minutes; the breaker is this process's.`,
    ),
    table(columns, channels, "No channels."),
  );
};

// The request log, filtered and paged; one request's details.
VIEWS.requests = async (rest) => {
  if (rest[0]) return requestDetail(rest[0]);
  const filters = JSON.parse(sessionStorage.getItem("relay.logFilters") || "{}");
  const cursor = sessionStorage.getItem("relay.logCursor") || "";
  const query = new URLSearchParams({ limit: "50" });
  for (const [name, value] of Object.entries(filters)) if (value) query.set(name, value);
  if (cursor) query.set("cursor", cursor);
  const page = await getJson(`/admin/v1/requests?${query}`);
  const inputs = ["key", "model", "channel", "status"].map((name) =>
    h("input", { name, placeholder: name, value: filters[name] || "", "aria-label": `filter by ${name}` }),
  );
  const reload = (nextCursor) => {
    sessionStorage.setItem("relay.logCursor", nextCursor || "");
    route();
  };
  const form = h(
    "form",
    {
      className: "toolbar",
      onsubmit: (event) => {
        event.preventDefault();
        sessionStorage.setItem(
          "relay.logFilters",
          JSON.stringify(Object.fromEntries(inputs.map((i) => [i.name, i.value.trim()]))),
        );
        reload("");
      },
    },
    inputs,
    h("button", { type: "submit" }, "Filter"),
    h("button", { type: "button", onclick: () => reload("") }, "Newest"),
  );
  const columns = [
    ["Time (UTC)", (r) => when(r.time)],
    [
      "Request",
      (r) =>
        h("a", { href: `#/requests/${encodeURIComponent(r.request_id)}`, className: "request-link" }, r.request_id),
    ],
    ["Key", (r) => r.key_name ?? "–"],
    ["Route", (r) => r.route],
    ["Model", (r) => r.requested_model ?? "–"],
    ["Channel", (r) => r.channel ?? "–"],
    ["Status", (r) => h("span", { className: r.status >= 400 ? "bad" : "good" }, r.status)],
    ["Latency", (r) => ms(r.latency_ms)],
    ["TTFT", (r) => ms(r.ttft_ms)],
    ["Tokens in/out", (r) => `${r.input_tokens}/${r.output_tokens}`],
    ["Cost", (r) => credits(r.cost_micros)],
  ];
  return h(
    "div",
    {},
    h("h2", {}, "Requests"),
    form,
    table(columns, page.data, "No logged requests match (the log is written every few seconds)."),
    page.has_more ? h("button", { type: "button", onclick: () => reload(page.next_cursor) }, "Older") : null,
  );
};

async function requestDetail(id) {
  const r = await getJson(`/admin/v1/requests/${encodeURIComponent(id)}`);
  const rows = Object.entries(r).filter(([name]) => name !== "attempts");
  const value = (name, v) => {
    if (v === null) return "–";
    if (name === "time") return `${when(v)} UTC`;
    if (name === "cost_micros") return `${v} (${credits(v)} credits)`;
    if (name.endsWith("_ms")) return `${v.toFixed(1)} ms`;
    return String(v);
  };
  return h(
    "div",
    {},
    h("p", {}, h("a", { href: "#/requests" }, "← Requests")),
    h("h2", {}, `Request ${r.request_id}`),
    h(
      "dl",
      { className: "detail card" },
      rows.map(([name, v]) => [h("dt", {}, name), h("dd", { dataset: { field: name } }, value(name, v))]),
    ),
    h("h3", {}, "Attempts"),
    table(
      [
        ["Channel", (a) => a.channel],
        ["Outcome", (a) => a.outcome],
      ],
      r.attempts,
      "No upstream attempt.",
    ),
  );
}

// Usage by day (the daily totals), with a CSV download.
VIEWS.usage = async () => {
  const filters = JSON.parse(sessionStorage.getItem("relay.usageFilters") || "{}");
  const query = new URLSearchParams({ by: "day" });
  if (filters.since) query.set("since", filters.since);
  if (filters.until) query.set("until", filters.until);
  const rows = (await getJson(`/admin/v1/usage?${query}`)).data;
  const since = h("input", { type: "date", name: "since", value: filters.since || "", "aria-label": "since" });
  const until = h("input", { type: "date", name: "until", value: filters.until || "", "aria-label": "until" });
  const form = h(
    "form",
    {
      className: "toolbar",
      onsubmit: (event) => {
        event.preventDefault();
        sessionStorage.setItem("relay.usageFilters", JSON.stringify({ since: since.value, until: until.value }));
        route();
      },
    },
    "From",
    since,
    "to",
    until,
    h("button", { type: "submit" }, "Show"),
    h(
      "button",
      {
        type: "button",
        onclick: async () => {
          try {
            const blob = await (await api("GET", `/admin/v1/usage.csv?${query}`)).blob();
            const link = h("a", { href: URL.createObjectURL(blob), download: "usage-by-day.csv" });
            link.click();
            URL.revokeObjectURL(link.href);
          } catch (error) {
            failure(error);
          }
        },
      },
      "Download CSV",
    ),
  );
  const columns = [
    ["Day", (r) => r.day],
    ["Requests", (r) => r.requests],
    ["Errors", (r) => r.errors],
    ["Input tokens", (r) => r.input_tokens],
    ["Output tokens", (r) => r.output_tokens],
    ["Cached", (r) => r.cached_tokens],
    ["Reasoning", (r) => r.reasoning_tokens],
    ["Cost (credits)", (r) => credits(r.cost_micros)],
  ];
  const box = h("div", { className: "chart card" }, h("h3", {}, "Requests and spend by day"));
  if (rows.length) {
    // Every day of the range on the chart (two weeks up to today by default), those without use at zero.
    const day = 86400;
    const byDay = new Map(rows.map((r) => [Date.parse(`${r.day}T00:00:00Z`) / 1000, r]));
    const today = Math.floor(Date.now() / 1000 / day) * day;
    const first = filters.since
      ? Date.parse(`${filters.since}T00:00:00Z`) / 1000
      : Math.min(...byDay.keys(), today - 13 * day);
    const last = filters.until ? Date.parse(`${filters.until}T00:00:00Z`) / 1000 : Math.max(...byDay.keys(), today);
    const x = [];
    for (let t = first; t <= last; t += day) x.push(t);
    const of = (field, scale) => x.map((t) => (byDay.get(t)?.[field] ?? 0) / scale);
    requestAnimationFrame(() =>
      state.charts.push(
        chart(box, x, [
          ["requests", of("requests", 1), "#2563eb"],
          ["credits", of("cost_micros", 1e6), "#059669", "credits"],
        ]),
      ),
    );
  }
  return h(
    "div",
    {},
    h("h2", {}, "Usage by day"),
    form,
    rows.length ? box : null,
    table(columns, rows, "No usage in these days."),
  );
};

// Playground: a streamed chat billed to a chosen key (POST /pg/chat/completions, x-relay-key).
VIEWS.playground = async () => {
  if (!isAdmin())
    return h(
      "div",
      {},
      h("h2", {}, "Playground"),
      h("p", { className: "empty" }, "The playground needs the admin role."),
    );
  const [keys, channels] = await Promise.all([
    getJson("/admin/v1/keys?limit=200&disabled=false"),
    getJson("/admin/v1/channels"),
  ]);
  const models = [...new Set(channels.data.flatMap((c) => c.models).filter((m) => !/[*?[]/.test(m)))];
  const model = h("input", {
    id: "pg-model",
    list: "pg-models",
    placeholder: "model",
    value: models[0] || "",
    required: true,
  });
  model.setAttribute("list", "pg-models");
  const modelList = h(
    "datalist",
    { id: "pg-models" },
    models.map((m) => h("option", { value: m })),
  );
  const key = h(
    "select",
    { id: "pg-key", required: true },
    keys.data.map((k) => h("option", { value: k.name }, `${k.name} (${credits(k.balance_micros)})`)),
  );
  const system = h("textarea", { id: "pg-system", rows: 2, placeholder: "System prompt (optional)" });
  const prompt = h("textarea", { id: "pg-prompt", rows: 3, placeholder: "Message", required: true });
  const transcript = h("div", { id: "pg-transcript", className: "transcript card" });
  const status = h("p", { id: "pg-status", className: "hint" });
  const history = [];
  const send = h("button", { type: "submit", id: "pg-send" }, "Send");
  const form = h(
    "form",
    {
      className: "playground",
      onsubmit: async (event) => {
        event.preventDefault();
        const text = prompt.value.trim();
        if (!text) return;
        history.push({ role: "user", content: text });
        transcript.append(h("div", { className: "turn user" }, h("b", {}, "You"), h("p", {}, text)));
        const answer = h("p", { className: "streaming" });
        transcript.append(h("div", { className: "turn assistant" }, h("b", {}, model.value), answer));
        prompt.value = "";
        send.disabled = true;
        status.textContent = "Streaming…";
        const messages = system.value.trim() ? [{ role: "system", content: system.value.trim() }, ...history] : history;
        try {
          const reply = await api(
            "POST",
            "/pg/chat/completions",
            { model: model.value, messages, stream: true, stream_options: { include_usage: true } },
            { "x-relay-key": key.value },
          );
          const usage = await readStream(reply, (delta) => (answer.textContent += delta));
          history.push({ role: "assistant", content: answer.textContent });
          const id = reply.headers.get("x-request-id");
          status.replaceChildren(
            `Billed to ${key.value}`,
            usage ? ` · ${usage.prompt_tokens} in / ${usage.completion_tokens} out tokens` : "",
            id ? " · " : "",
            id ? h("a", { href: `#/requests/${id}`, id: "pg-request" }, `request ${id}`) : "",
          );
        } catch (error) {
          history.pop();
          answer.classList.add("error");
          answer.textContent = error.message;
          status.textContent = "";
        } finally {
          answer.classList.remove("streaming");
          send.disabled = false;
        }
      },
    },
    h("div", { className: "toolbar" }, h("label", {}, "Model ", model, modelList), h("label", {}, "Bill to key ", key)),
    system,
    transcript,
    prompt,
    h(
      "div",
      { className: "toolbar" },
      send,
      h(
        "button",
        {
          type: "button",
          onclick: () => {
            history.length = 0;
            transcript.replaceChildren();
            status.textContent = "";
          },
        },
        "Clear",
      ),
    ),
    status,
  );
  return h(
    "div",
    {},
    h("h2", {}, "Playground"),
    keys.data.length ? form : h("p", { className: "empty" }, "Create an enabled key first: the playground bills one."),
  );
};

// Reads a Chat Completions SSE stream as it arrives, calling onDelta with each piece of text; the usage, if sent.
async function readStream(reply, onDelta) {
  const reader = reply.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  let usage = null;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value.replace(/\r\n/g, "\n");
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const data = block
        .split("\n")
        .filter((line) => line.startsWith("data:"))
        .map((line) => line.slice(5).trim())
        .join("\n");
      if (!data || data === "[DONE]") continue;
      const chunk = JSON.parse(data);
      if (chunk.error) throw new Error(chunk.error.message || "The stream failed.");
      const delta = chunk.choices?.[0]?.delta?.content;
      if (delta) onDelta(delta);
      if (chunk.usage) usage = chunk.usage;
    }
  }
  return usage;
}

// ---- start --------------------------------------------------------------------------------------------------

document.getElementById("signin-form").addEventListener("submit", (event) => signIn(event).catch(failure));
document.getElementById("sign-out").addEventListener("click", () => signOut());
window.addEventListener("hashchange", () => route());
start().catch(failure);

// tenantvault dashboard. Rules this file keeps (see tenantvault/ui/__init__.py):
// - the token lives in the `token` variable only: never in storage, a cookie or a URL;
// - every name from the server (tenants, paths, display names) is set with textContent,
//   never as HTML; nothing here builds markup from strings;
// - what a user may see is the server's decision: the page asks, and shows the answer.
"use strict";

(function () {
  let token = null;
  let whoami = null; // {root: bool, tenant: string|null, display: string}
  const charts = [];

  const $ = (id) => document.getElementById(id);

  function el(tag, text, cls) {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    if (cls) node.className = cls;
    return node;
  }

  function row(cells) {
    const tr = document.createElement("tr");
    for (const cell of cells) {
      if (cell instanceof Node) {
        const td = document.createElement("td");
        td.appendChild(cell);
        tr.appendChild(td);
      } else if (typeof cell === "number") {
        tr.appendChild(el("td", cell, "num"));
      } else {
        tr.appendChild(el("td", cell === undefined || cell === null ? "" : cell));
      }
    }
    return tr;
  }

  function fill(tableId, rows, empty) {
    const body = $(tableId).querySelector("tbody");
    body.replaceChildren();
    if (!rows.length) {
      const tr = document.createElement("tr");
      const td = el("td", empty || "none", "na");
      td.colSpan = $(tableId).querySelectorAll("th").length;
      tr.appendChild(td);
      body.appendChild(tr);
      return;
    }
    for (const r of rows) body.appendChild(row(r));
  }

  function card(container, label, value, cls) {
    const box = el("div", null, "card");
    box.appendChild(el("div", label, "label"));
    box.appendChild(el("div", value, "value " + (cls || "")));
    container.appendChild(box);
  }

  function ms(seconds) {
    return seconds === null || seconds === undefined ? "–" : (seconds * 1000).toFixed(2);
  }

  // -- the API ------------------------------------------------------------------------------

  function selectedTenant() {
    if (!whoami) return null;
    if (!whoami.root) return null; // a tenant token is bound to its tenant by the server
    const value = $("tenant-select").value;
    return value === "" ? null : value;
  }

  async function api(path, params, namespace) {
    const url = new URL("/v1/" + path, window.location.origin);
    for (const [key, value] of Object.entries(params || {})) url.searchParams.set(key, value);
    const headers = { "X-Vault-Token": token };
    if (namespace) headers["X-Vault-Namespace"] = namespace;
    const response = await fetch(url, {
      headers, credentials: "omit", cache: "no-store", redirect: "error", referrerPolicy: "no-referrer",
    });
    let body = null;
    if (response.status !== 204) {
      try { body = await response.json(); } catch (e) { body = null; }
    }
    return { status: response.status, body };
  }

  async function apiData(path, params, namespace) {
    const answer = await api(path, params, namespace);
    if (answer.status !== 200 || !answer.body) return null;
    return answer.body.data !== undefined ? answer.body.data : answer.body;
  }

  // -- sign in / out ------------------------------------------------------------------------

  async function signIn(event) {
    event.preventDefault();
    const input = $("token");
    token = input.value;
    input.value = "";
    $("signin-error").textContent = "";
    const self = await api("auth/token/lookup-self");
    if (self.status !== 200 || !self.body || !self.body.data) {
      token = null;
      $("signin-error").textContent = "Sign-in failed: the token was refused.";
      return;
    }
    const data = self.body.data;
    const policies = data.policies || [];
    const ns = (data.namespace_path || "").replace(/\/$/, "");
    whoami = { root: policies.includes("root") && !ns, tenant: ns || null, display: data.display_name || "" };
    $("who").textContent = whoami.root ? "root (every tenant)" : "tenant " + whoami.tenant;
    $("signin").hidden = true;
    $("nav").hidden = false;
    $("signout").hidden = false;
    await loadTenants();
    if (!window.location.hash) window.location.hash = "#overview";
    else show();
  }

  function signOut() {
    token = null;
    whoami = null;
    for (const chart of charts.splice(0)) chart.destroy();
    for (const page of document.querySelectorAll(".page")) page.hidden = true;
    $("nav").hidden = true;
    $("signout").hidden = true;
    $("scope-bar").hidden = true;
    $("who").textContent = "";
    $("signin").hidden = false;
    window.location.hash = "";
  }

  async function loadTenants() {
    const select = $("tenant-select");
    select.replaceChildren();
    if (!whoami.root) {
      $("scope-bar").hidden = true;
      return;
    }
    const root = el("option", "(root namespace)");
    root.value = "";
    select.appendChild(root);
    const listed = await apiData("sys/namespaces", { list: "true" });
    for (const key of (listed && listed.keys) || []) {
      const name = key.replace(/\/$/, "");
      const option = el("option", name);
      option.value = name;
      select.appendChild(option);
    }
    $("scope-bar").hidden = false;
  }

  // -- charts -------------------------------------------------------------------------------

  function chart(containerId, labels, xs, series, colors) {
    const container = $(containerId);
    container.replaceChildren();
    const width = Math.max(300, container.clientWidth || 800);
    const opts = {
      width, height: 200,
      series: [{}, ...labels.map((label, i) => ({ label, stroke: colors[i], width: 2 }))],
      axes: [{}, {}],
    };
    const plot = new window.uPlot(opts, [xs, ...series], container);
    charts.push(plot);
  }

  function sparkline(values) {
    const canvas = document.createElement("canvas");
    canvas.width = 120;
    canvas.height = 24;
    canvas.className = "spark";
    const ctx = canvas.getContext("2d");
    const max = Math.max(1, ...values);
    ctx.strokeStyle = "#2b5fd9";
    ctx.beginPath();
    values.forEach((v, i) => {
      const x = (i / Math.max(1, values.length - 1)) * 118 + 1;
      const y = 22 - (v / max) * 20;
      if (i === 0) ctx.moveTo(x, y); else ctx.lineTo(x, y);
    });
    ctx.stroke();
    return canvas;
  }

  // -- pages --------------------------------------------------------------------------------

  async function overview() {
    const data = await apiData("sys/dashboard");
    const cards = $("overview-cards");
    cards.replaceChildren();
    if (!data) { cards.appendChild(el("p", "not available (needs read on sys/dashboard)", "na")); return; }
    const t = data.totals;
    card(cards, "Requests", t.requests);
    card(cards, "Errors", t.errors, t.errors ? "error" : "");
    card(cards, "Denied", t.denied, t.denied ? "error" : "");
    card(cards, "p50 ms", ms(t.p50_seconds));
    card(cards, "p99 ms", ms(t.p99_seconds));
    card(cards, "Alerts", data.alerts || 0, data.alerts ? "error" : "");
    const xs = data.history.map((p) => p.minute * 60);
    chart("chart-requests", ["requests", "errors", "denied"], xs,
      [data.history.map((p) => p.requests), data.history.map((p) => p.errors), data.history.map((p) => p.denied)],
      ["#2b5fd9", "#b3261e", "#e08a00"]);
    if (data.history.length && "p50" in data.history[0]) {
      chart("chart-latency", ["p50", "p99"], xs,
        [data.history.map((p) => (p.p50 === null ? null : p.p50 * 1000)),
         data.history.map((p) => (p.p99 === null ? null : p.p99 * 1000))],
        ["#1e7b34", "#7a3fc0"]);
    } else {
      $("chart-latency").replaceChildren(el("p", "server-wide latency history: root only", "na"));
    }
    fill("tenants-table", data.tenants.map((r) => [
      r.tenant, r.requests, r.errors, r.denied, ms(r.p50_seconds), ms(r.p99_seconds), sparkline(r.sparkline || []),
    ]));
    fill("services-table", Object.entries(data.services || {}).map(([name, s]) => [
      name, s.crash_looping ? "crash-looping (" + s.state + ")" : s.state, s.restarts, s.last_error || "",
    ]));
    const audit = $("audit-health");
    audit.replaceChildren();
    const a = data.audit || {};
    audit.appendChild(el("p", a.enabled ? (a.healthy ? "recording, healthy" : "FAILING") : "no audit device enabled",
      a.enabled && a.healthy ? "ok" : "error"));
    if (a.failing_sinks && a.failing_sinks.length) audit.appendChild(el("p", "failing: " + a.failing_sinks.join(", "), "error"));
    if ("chain_intact" in a) audit.appendChild(el("p", a.chain_intact ? "hash chain intact" : "hash chain has gaps",
      a.chain_intact ? "ok" : "error"));
  }

  async function report(since, format) {
    return apiData("sys/audit/report", { since, format: format || "json" }, selectedTenant());
  }

  async function usage() {
    const tenant = selectedTenant();
    const [data, rotation, pki] = await Promise.all([
      report("30d"),
      api("sys/rotation/expiring", { within: "30d", stale_days: "90" }, tenant),
      api("sys/pki/expiring", { within: "30d" }, tenant),
    ]);
    const rotationData = rotation.status === 200 && rotation.body ? rotation.body.data || {} : null;
    if (!data) {
      fill("usage-top", [], "not available (needs an audit store and read on sys/audit/report)");
      $("usage-never").replaceChildren(el("li", "not available", "na"));
    } else {
      const secrets = Object.entries(data.secrets || {});
      secrets.sort((a, b) => b[1].reads - a[1].reads);
      fill("usage-top", secrets.slice(0, 25).map(([path, s]) => {
        const readers = el("div");
        for (const reader of s.readers || []) {
          const line = el("div", (reader.display_name || "(no name)") + " ");
          line.appendChild(el("code", reader.accessor));
          readers.appendChild(line);
        }
        return [el("code", path), s.reads, s.writes, s.denied, readers];
      }), "no secret reads in the period");
      list("usage-never", data.never_read || []);
    }
    // Stale: not rotated in 90 days (sys/rotation/expiring); without that endpoint, the
    // audit report's view: not written in the report's period.
    if (rotationData) {
      $("usage-stale-note").textContent = "not rotated in 90 days";
      list("usage-stale", (rotationData.stale || []).map((s) => s.path + " (" + s.age_days + " days)"));
    } else if (data) {
      $("usage-stale-note").textContent = "not written in the last 30 days (from the audit report)";
      const secrets = Object.entries(data.secrets || {});
      const written = new Set(secrets.filter(([, s]) => s.writes > 0).map(([p]) => p));
      const known = new Set([...(data.never_read || []), ...secrets.map(([p]) => p)]);
      list("usage-stale", [...known].filter((p) => !written.has(p)).sort());
    } else {
      $("usage-stale").replaceChildren(el("li", "not available", "na"));
    }
    const keys = $("usage-expiring");
    keys.replaceChildren();
    if (!rotationData) {
      keys.appendChild(el("p", "not available", "na"));
    } else {
      keys.appendChild(table(["Secret", "expires_at", "Expired"],
        (rotationData.expiring || []).map((k) => [el("code", k.path), k.expires_at, k.expired ? "yes" : "no"]),
        "nothing expires within 30 days"));
    }
    const certs = $("usage-certs");
    certs.replaceChildren();
    if (pki.status !== 200 || !pki.body) {
      certs.appendChild(el("p", "not available", "na"));
    } else {
      const found = (pki.body.data || {}).certificates || [];
      certs.appendChild(table(["Mount", "Common name", "Serial", "Not after", "CA", "Expired"],
        found.map((c) => [el("code", c.mount), c.common_name, el("code", c.serial_number), c.not_after,
          c.is_ca ? "yes" : "no", c.expired ? "yes" : "no"]),
        "no certificate expires within 30 days"));
    }
  }

  function table(headings, rows, empty) {
    const node = document.createElement("table");
    const head = document.createElement("thead");
    const tr = document.createElement("tr");
    for (const heading of headings) tr.appendChild(el("th", heading));
    head.appendChild(tr);
    node.appendChild(head);
    const body = document.createElement("tbody");
    if (!rows.length) {
      const none = document.createElement("tr");
      const td = el("td", empty, "na");
      td.colSpan = headings.length;
      none.appendChild(td);
      body.appendChild(none);
    }
    for (const r of rows) body.appendChild(row(r));
    node.appendChild(body);
    return node;
  }

  function list(id, items) {
    const ul = $(id);
    ul.replaceChildren();
    if (!items.length) { ul.appendChild(el("li", "none", "na")); return; }
    for (const item of items.slice(0, 200)) {
      const li = document.createElement("li");
      li.appendChild(el("code", item));
      ul.appendChild(li);
    }
  }

  async function events(params) {
    const data = await apiData("sys/audit/events", { since: "24h", limit: "1000", type: "response", ...params }, selectedTenant());
    return data ? data.events || [] : null;
  }

  async function security() {
    const [denied, all, dash, alerts, rep] = await Promise.all([
      events({ outcome: "denied" }), events({}), apiData("sys/dashboard"),
      apiData("sys/alerts", {}, selectedTenant()), report("30d"),
    ]);
    const cards = $("security-cards");
    cards.replaceChildren();
    const logins = (all || []).filter((e) => /\/login(\/|$)/.test((e.request || {}).path || "") && e.error);
    const rootUse = (all || []).filter((e) => ((e.auth || {}).policies || []).includes("root"));
    card(cards, "Denied (24 h)", denied ? denied.length : "–", denied && denied.length ? "error" : "");
    card(cards, "Cross-tenant attempts", dash ? dash.cross_tenant || 0 : "–", dash && dash.cross_tenant ? "error" : "");
    card(cards, "Failed logins (24 h)", all ? logins.length : "–");
    card(cards, "Tokens without expiry", rep ? (rep.tokens_without_expiry || []).length : "–");
    card(cards, "Root token use (24 h)", all ? rootUse.length : "–");
    const audit = dash ? dash.audit || {} : {};
    const chain = "chain_intact" in audit ? (audit.chain_intact ? "intact" : "GAPS") : (audit.healthy ? "healthy" : "unknown");
    card(cards, "Audit chain", chain, chain === "intact" || chain === "healthy" ? "ok" : "error");
    // Denied per hour over the last 24 h.
    const now = Math.floor(Date.now() / 3600000);
    const hours = Array.from({ length: 24 }, (_, i) => now - 23 + i);
    const counts = new Map(hours.map((h) => [h, 0]));
    for (const e of denied || []) {
      const hour = Math.floor(Number(e.time_ns || 0) / 3.6e12);
      if (counts.has(hour)) counts.set(hour, counts.get(hour) + 1);
    }
    chart("chart-denied", ["denied"], hours.map((h) => h * 3600), [hours.map((h) => counts.get(h))], ["#b3261e"]);
    fill("alerts-table", ((alerts && alerts.alerts) || []).slice().reverse().map((a) => [
      a.time, a.kind, a.tenant, a.display_name ? a.display_name + " " + a.accessor : a.accessor, a.message,
      el("code", JSON.stringify(a.numbers)),
    ]), alerts ? "no alerts" : "not available");
    fill("logins-table", logins.map((e) => [e.time, el("code", e.request.path), e.request.remote_address || "", e.error]),
      all ? "none" : "not available");
    fill("noexpiry-table", ((rep && rep.tokens_without_expiry) || []).map((t) => [
      t.display_name, (t.policies || []).join(", "), t.created, el("code", t.accessor),
    ]), rep ? "none" : "not available");
    fill("root-table", rootUse.slice(-100).reverse().map((e) => [
      e.time, e.request.operation, el("code", e.request.path), e.request.remote_address || "",
    ]), all ? "none" : "not available");
  }

  async function compliance() {
    const summary = $("report-summary");
    summary.replaceChildren();
    const data = await report($("report-since").value);
    if (!data) { summary.appendChild(el("p", "not available (needs an audit store and read on sys/audit/report)", "na")); return; }
    summary.appendChild(el("p", "Tenant " + data.tenant + ", " + data.since + " to " + data.until));
    summary.appendChild(el("p", Object.keys(data.secrets || {}).length + " secrets with activity, " +
      (data.never_read || []).length + " never read, " + data.denied_total + " denied requests, " +
      (data.tokens_without_expiry || []).length + " tokens without expiry"));
  }

  async function download(format) {
    const since = $("report-since").value;
    const data = await report(since, format);
    if (!data) { $("page-error").textContent = "The report is not available."; return; }
    const text = format === "csv" ? data.csv : JSON.stringify(data, null, 2);
    const blob = new Blob([text], { type: format === "csv" ? "text/csv" : "application/json" });
    const link = document.createElement("a");
    link.href = URL.createObjectURL(blob);
    link.download = "tenantvault-report-" + since + "." + format;
    document.body.appendChild(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(link.href), 1000);
  }

  const pages = { overview, usage, security, compliance };

  async function show() {
    if (!token) return;
    const name = (window.location.hash || "#overview").slice(1);
    const render = pages[name] || overview;
    for (const chart of charts.splice(0)) chart.destroy();
    for (const page of document.querySelectorAll(".page")) page.hidden = page.id !== "page-" + name;
    for (const link of document.querySelectorAll("nav a")) link.classList.toggle("active", link.dataset.page === name);
    $("scope-note").textContent = name === "overview" ? "(the overview shows every tenant)" : "";
    $("page-error").textContent = "";
    document.body.dataset.loading = name;
    try {
      await render();
    } catch (error) {
      $("page-error").textContent = "Could not load this page.";
    }
    document.body.dataset.loaded = name;
    delete document.body.dataset.loading;
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("signin-form").addEventListener("submit", signIn);
    $("signout").addEventListener("click", signOut);
    $("tenant-select").addEventListener("change", show);
    $("report-json").addEventListener("click", () => download("json"));
    $("report-csv").addEventListener("click", () => download("csv"));
    $("report-since").addEventListener("change", compliance);
    window.addEventListener("hashchange", show);
    document.body.dataset.ready = "1";
  });
})();

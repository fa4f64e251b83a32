// relaymeter's usage page: sign in with an API key, see the caller's usage
// (totals, charts, a table), live through the usageUpdated subscription,
// and download the table as CSV. No build step and no third-party code.
(function () {
  "use strict";

  var STORAGE = "relaymeter.usageKey";
  var SVGNS = "http://www.w3.org/2000/svg";
  var COLORS = ["#3b6fb6", "#e08a2c", "#3a9e5b", "#c2423f", "#7d5cb8", "#8c6b4f", "#d36fb0", "#6f7f8f", "#b3b33a", "#2fa7b8"];
  var MAX_SERIES = 9; // more groups are summed as "other"
  var GROUP_FIELDS = { SERVICE: "service", APPLICATION: "application", SUPPLIER: "supplier", PROTOCOL: "protocol", METHOD: "method" };
  var METRICS = ["messages", "relays", "units", "bytes"];

  function $(id) { return document.getElementById(id); }

  var state = {
    key: null,
    viewer: null,
    totals: null,
    rows: null,      // usageSeries rows, or null when the API has none
    ws: null,
    wsGen: 0,        // bumps on every (re)connect so that old sockets go quiet
    subID: 0,
    retry: 0,
    refreshTimer: null
  };

  // API.

  function gql(query, variables) {
    return fetch("/graphql", {
      method: "POST",
      credentials: "omit",
      referrerPolicy: "no-referrer",
      headers: { "Content-Type": "application/json", "Accept": "application/json", "Authorization": "Bearer " + state.key },
      body: JSON.stringify({ query: query, variables: variables || {} })
    }).then(function (res) {
      return res.json().catch(function () {
        throw new Error("HTTP " + res.status + ": not a GraphQL response");
      }).then(function (body) {
        if (body.errors && body.errors.length) {
          var err = new Error(body.errors.map(function (e) { return e.message; }).join("; "));
          err.code = body.errors[0].extensions && body.errors[0].extensions.code;
          throw err;
        }
        return body.data;
      });
    });
  }

  function filter() {
    var hours = Number($("range").value);
    if (!hours) { return {}; }
    return { from: new Date(Date.now() - hours * 3600e3).toISOString() };
  }

  function timeZone() {
    try { return Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC"; } catch (e) { return "UTC"; }
  }

  // Formatting.

  function fmt(n) { return typeof n === "number" ? n.toLocaleString("en-US") : String(n); }

  function setError(msg) { $("error").textContent = msg || ""; }

  // Sign in and out.

  function signIn(key) {
    state.key = key;
    sessionStorage.setItem(STORAGE, key);
    $("signin").hidden = true;
    $("app").hidden = false;
    $("signout").hidden = false;
    $("signin-error").textContent = "";
    state.viewer = null;
    loadViewer().then(function () { refresh(); connect(); });
  }

  function signOut(reason) {
    state.key = null;
    state.viewer = null;
    sessionStorage.removeItem(STORAGE);
    disconnect();
    $("app").hidden = true;
    $("signout").hidden = true;
    $("signin").hidden = false;
    $("who").textContent = "";
    $("live").textContent = "";
    $("signin-error").textContent = reason || "";
  }

  function refused(err) {
    if (err && err.code === "UNAUTHENTICATED") {
      signOut("The key was refused: " + err.message);
      return true;
    }
    return false;
  }

  // Who the key stands for, and the groupings its role may see.

  function loadViewer() {
    return gql("{ viewer { role application { id name } supplier { id name } } }").then(function (d) {
      state.viewer = d.viewer;
      var v = d.viewer || {};
      var who = v.role || "";
      if (v.application) { who += " · " + (v.application.name || v.application.id); }
      if (v.supplier) { who += " · " + (v.supplier.name || v.supplier.id); }
      $("who").textContent = who;
    }, function (err) {
      if (refused(err)) { return; }
      $("who").textContent = "viewer unavailable: " + err.message;
    }).then(fillGroups);
  }

  function fillGroups() {
    var role = state.viewer && state.viewer.role ? String(state.viewer.role).toLowerCase() : "";
    var groups = ["SERVICE", "PROTOCOL"];
    if (role !== "application") { groups.splice(1, 0, "APPLICATION"); }
    var sel = $("group");
    var prev = sel.value;
    sel.textContent = "";
    groups.forEach(function (g) {
      var o = document.createElement("option");
      o.value = g;
      o.textContent = GROUP_FIELDS[g];
      sel.appendChild(o);
    });
    if (groups.indexOf(prev) >= 0) { sel.value = prev; }
  }

  // Totals and series.

  var TOTALS_QUERY = "query($f: UsageFilter) { usage(filter: $f) { messages relays units bytes } }";
  var SERIES_QUERY = "query($f: UsageFilter, $g: [UsageGroup!], $w: Window, $tz: String) {" +
    " usageSeries(filter: $f, groupBy: $g, window: $w, timeZone: $tz, first: 1000) {" +
    " rows { window service application supplier protocol method messages relays units bytes } } }";

  function refresh() {
    if (!state.key) { return; }
    var f = filter();
    var totals = gql(TOTALS_QUERY, { f: f }).then(function (d) {
      state.totals = d.usage;
      renderTotals();
      return null;
    }, function (err) {
      if (refused(err)) { return null; }
      return "usage: " + err.message;
    });
    var series = gql(SERIES_QUERY, { f: f, g: [$("group").value], w: $("window").value, tz: timeZone() }).then(function (d) {
      state.rows = (d.usageSeries && d.usageSeries.rows) || [];
      return null;
    }, function (err) {
      state.rows = null;
      if (refused(err)) { return null; }
      return "usageSeries (charts by window): " + err.message;
    });
    return Promise.all([totals, series]).then(function (errs) {
      if (!state.key) { return; }
      setError(errs.filter(Boolean).join("\n"));
      render();
      // How many loads have finished: for tests and scripts to wait on.
      document.body.setAttribute("data-loaded", String(Number(document.body.getAttribute("data-loaded") || 0) + 1));
    });
  }

  function scheduleRefresh() {
    if (state.refreshTimer) { return; }
    state.refreshTimer = setTimeout(function () { state.refreshTimer = null; refresh(); }, 1000);
  }

  function renderTotals() {
    var t = state.totals;
    METRICS.forEach(function (m) { $("total-" + m).textContent = t ? fmt(t[m]) : "–"; });
  }

  // tableData is the table (and the CSV): a row per window and group from
  // usageSeries, or the totals alone when it is not there.
  function tableData() {
    var field = GROUP_FIELDS[$("group").value];
    var head = ["window", field].concat(METRICS);
    var body = [];
    if (state.rows) {
      state.rows.forEach(function (r) {
        body.push([r.window, r[field] == null ? "" : r[field]].concat(METRICS.map(function (m) { return r[m]; })));
      });
    } else if (state.totals) {
      var range = $("range");
      body.push([range.options[range.selectedIndex].text, "(all)"].concat(METRICS.map(function (m) { return state.totals[m]; })));
    }
    return { head: head, body: body };
  }

  function render() {
    renderTotals();
    var data = tableData();
    var tr = document.querySelector("#table thead tr");
    tr.textContent = "";
    data.head.forEach(function (h, i) {
      var th = document.createElement("th");
      th.textContent = h;
      if (i >= 2) { th.className = "n"; }
      tr.appendChild(th);
    });
    var tbody = document.querySelector("#table tbody");
    tbody.textContent = "";
    data.body.forEach(function (row) {
      var r = document.createElement("tr");
      row.forEach(function (v, i) {
        var td = document.createElement("td");
        td.textContent = i >= 2 ? fmt(v) : v;
        if (i >= 2) { td.className = "n"; }
        r.appendChild(td);
      });
      tbody.appendChild(r);
    });
    chart($("chart-messages"), "messages");
    chart($("chart-units"), "units");
  }

  // chart draws stacked bars of metric per window, a color per group.
  function chart(el, metric) {
    el.textContent = "";
    if (!state.rows) {
      var p = document.createElement("p");
      p.className = "empty";
      p.textContent = "No series from the API (see the error above); totals only.";
      el.appendChild(p);
      return;
    }
    var field = GROUP_FIELDS[$("group").value];
    var windows = [], byWindow = {}, groupTotal = {};
    state.rows.forEach(function (r) {
      var w = r.window, g = r[field] == null ? "" : String(r[field]);
      if (!(w in byWindow)) { byWindow[w] = {}; windows.push(w); }
      byWindow[w][g] = (byWindow[w][g] || 0) + Number(r[metric]);
      groupTotal[g] = (groupTotal[g] || 0) + Number(r[metric]);
    });
    windows.sort();
    if (!windows.length) {
      var q = document.createElement("p");
      q.className = "empty";
      q.textContent = "No usage in this range.";
      el.appendChild(q);
      return;
    }
    var groups = Object.keys(groupTotal).sort(function (a, b) { return groupTotal[b] - groupTotal[a]; });
    var shown = groups.slice(0, MAX_SERIES);
    var other = groups.length > MAX_SERIES;
    var stacks = windows.map(function (w) {
      var parts = shown.map(function (g) { return byWindow[w][g] || 0; });
      if (other) {
        var rest = 0;
        groups.slice(MAX_SERIES).forEach(function (g) { rest += byWindow[w][g] || 0; });
        parts.push(rest);
      }
      return parts;
    });
    var max = 0;
    stacks.forEach(function (s) { var t = s.reduce(function (a, b) { return a + b; }, 0); if (t > max) { max = t; } });
    var W = 600, H = 220, L = 60, B = 24, T = 8;
    var svg = document.createElementNS(SVGNS, "svg");
    svg.setAttribute("viewBox", "0 0 " + W + " " + H);
    svg.setAttribute("role", "img");
    svg.setAttribute("aria-label", metric + " per window");
    function add(parent, name, attrs, text) {
      var e = document.createElementNS(SVGNS, name);
      Object.keys(attrs).forEach(function (k) { e.setAttribute(k, attrs[k]); });
      if (text != null) { e.textContent = text; }
      parent.appendChild(e);
      return e;
    }
    add(svg, "line", { x1: L, y1: H - B, x2: W, y2: H - B, stroke: "#889" });
    add(svg, "text", { x: L - 4, y: T + 10, "text-anchor": "end", "font-size": 11, fill: "#556" }, fmt(max));
    add(svg, "text", { x: L - 4, y: H - B, "text-anchor": "end", "font-size": 11, fill: "#556" }, "0");
    var slot = (W - L) / windows.length, bw = Math.max(1, slot * 0.8);
    stacks.forEach(function (parts, i) {
      var x = L + i * slot + (slot - bw) / 2, y = H - B;
      parts.forEach(function (v, j) {
        if (!v || !max) { return; }
        var h = (H - B - T) * v / max;
        y -= h;
        var rect = add(svg, "rect", { x: x.toFixed(1), y: y.toFixed(1), width: bw.toFixed(1), height: h.toFixed(1), fill: COLORS[j % COLORS.length] });
        add(rect, "title", {}, windows[i] + " · " + (j < shown.length ? (shown[j] || "(none)") : "other") + ": " + fmt(v));
      });
    });
    var labels = Math.min(windows.length, 4);
    for (var k = 0; k < labels; k++) {
      var idx = labels === 1 ? 0 : Math.round(k * (windows.length - 1) / (labels - 1));
      add(svg, "text", { x: (L + idx * slot + slot / 2).toFixed(1), y: H - 6, "text-anchor": "middle", "font-size": 10, fill: "#556" },
        String(windows[idx]).replace("T", " ").replace(/:00(\.000)?Z?$/, "").slice(0, 16));
    }
    el.appendChild(svg);
    var legend = document.createElement("div");
    legend.className = "legend";
    shown.concat(other ? ["other"] : []).forEach(function (g, j) {
      var s = document.createElement("span");
      s.style.setProperty("--c", COLORS[j % COLORS.length]);
      s.textContent = g || "(none)";
      legend.appendChild(s);
    });
    el.appendChild(legend);
  }

  // CSV of the table. A field that a spreadsheet would take for a formula
  // is prefixed with a quote.
  function csvField(v) {
    var s = v == null ? "" : String(v);
    if (/^[=+\-@\t\r]/.test(s) && typeof v !== "number") { s = "'" + s; }
    if (/[",\r\n]/.test(s)) { s = "\"" + s.replace(/"/g, "\"\"") + "\""; }
    return s;
  }

  function downloadCSV() {
    var data = tableData();
    var lines = [data.head].concat(data.body).map(function (row) { return row.map(csvField).join(","); });
    var blob = new Blob([lines.join("\r\n") + "\r\n"], { type: "text/csv;charset=utf-8" });
    var a = document.createElement("a");
    a.href = URL.createObjectURL(blob);
    a.download = "relaymeter-usage.csv";
    a.rel = "noopener";
    document.body.appendChild(a);
    a.click();
    setTimeout(function () { URL.revokeObjectURL(a.href); a.remove(); }, 1000);
  }

  // Live updates: graphql-transport-ws over /graphql.

  var LIVE_QUERY = "subscription($f: UsageFilter) { usageUpdated(filter: $f) { messages relays units bytes } }";

  function connect() {
    disconnect();
    if (!state.key) { return; }
    var gen = ++state.wsGen;
    var ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/graphql", "graphql-transport-ws");
    state.ws = ws;
    $("live").textContent = "connecting…";
    ws.onopen = function () {
      ws.send(JSON.stringify({ type: "connection_init", payload: { Authorization: "Bearer " + state.key } }));
    };
    ws.onmessage = function (ev) {
      if (gen !== state.wsGen) { return; }
      var m;
      try { m = JSON.parse(ev.data); } catch (e) { return; }
      switch (m.type) {
        case "connection_ack":
          state.retry = 0;
          subscribe();
          $("live").textContent = "live";
          break;
        case "ping":
          ws.send(JSON.stringify({ type: "pong" }));
          break;
        case "next":
          if (m.id !== String(state.subID)) { return; }
          if (m.payload && m.payload.data && m.payload.data.usageUpdated) {
            state.totals = m.payload.data.usageUpdated;
            $("live").textContent = "live · updated " + new Date().toLocaleTimeString();
            if (state.rows) { renderTotals(); scheduleRefresh(); } else { render(); }
          }
          if (m.payload && m.payload.errors && m.payload.errors.length) {
            setError("usageUpdated: " + m.payload.errors.map(function (e) { return e.message; }).join("; "));
          }
          break;
        case "error":
          if (m.id !== String(state.subID)) { return; }
          setError("usageUpdated: " + (m.payload || []).map(function (e) { return e.message; }).join("; "));
          $("live").textContent = "not live";
          break;
        case "complete":
          if (m.id === String(state.subID)) { $("live").textContent = "not live"; }
          break;
      }
    };
    ws.onclose = function (ev) {
      if (gen !== state.wsGen) { return; }
      state.ws = null;
      if (ev.code === 4401) { signOut("The key was refused: " + (ev.reason || "unauthorized")); return; }
      if (!state.key) { return; }
      var wait = Math.min(30, Math.pow(2, state.retry++));
      $("live").textContent = "disconnected (" + ev.code + (ev.reason ? " " + ev.reason : "") + "); retrying in " + wait + " s";
      setTimeout(function () { if (gen === state.wsGen && state.key) { connect(); } }, wait * 1000);
    };
  }

  function subscribe() {
    var ws = state.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) { return; }
    if (state.subID) { ws.send(JSON.stringify({ type: "complete", id: String(state.subID) })); }
    state.subID++;
    ws.send(JSON.stringify({ type: "subscribe", id: String(state.subID), payload: { query: LIVE_QUERY, variables: { f: filter() } } }));
  }

  function disconnect() {
    state.wsGen++;
    if (state.ws) { try { state.ws.close(1000, "bye"); } catch (e) { /* closed already */ } }
    state.ws = null;
    state.subID = 0;
  }

  // Wiring.

  $("signin").addEventListener("submit", function (ev) {
    ev.preventDefault();
    var key = $("key").value.trim();
    $("key").value = "";
    if (!key) { $("signin-error").textContent = "Paste an API key first."; return; }
    signIn(key);
  });
  $("signout").addEventListener("click", function () { signOut(""); });
  $("range").addEventListener("change", function () { refresh(); subscribe(); });
  $("window").addEventListener("change", refresh);
  $("group").addEventListener("change", refresh);
  $("csv").addEventListener("click", downloadCSV);

  var saved = sessionStorage.getItem(STORAGE);
  if (saved) { signIn(saved); }
}());

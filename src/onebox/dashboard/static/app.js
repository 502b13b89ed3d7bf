/* onebox dashboard: live tables over the API's event stream, actions over the API with
   the session's CSRF token, hand-drawn SVG sparklines and charts, and the terminal. */
"use strict";
var onebox = (function () {
  var csrf = (document.querySelector('meta[name="csrf"]') || {}).content || "";

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function bytes(v) {
    var units = ["B", "KiB", "MiB", "GiB", "TiB"], i = 0;
    while (Math.abs(v) >= 1024 && i < units.length - 1) { v /= 1024; i++; }
    return i === 0 ? Math.round(v) + " B" : v.toFixed(1) + " " + units[i];
  }

  function age(started) {
    if (!started || started.indexOf("0001") === 0) return "–";
    var s = Math.max(0, Math.floor((Date.now() - Date.parse(started)) / 1000));
    var d = Math.floor(s / 86400), h = Math.floor(s % 86400 / 3600), m = Math.floor(s % 3600 / 60);
    if (d) return d + "d " + h + "h";
    if (h) return h + "h " + m + "m";
    return m ? m + "m " + (s % 60) + "s" : (s % 60) + "s";
  }

  function api(method, path, body) {
    var init = { method: method, headers: { "X-CSRF-Token": csrf }, credentials: "same-origin" };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    return fetch(path, init).then(function (r) {
      if (r.status === 204) return null;
      return r.json().then(function (data) {
        if (!r.ok) throw new Error(data.error + (data.fix ? " — " + data.fix : ""));
        return data;
      });
    });
  }

  function sparkPoints(values, width, height) {
    if (!values || !values.length) return "";
    var top = Math.max.apply(null, values.concat([1]));
    var step = width / Math.max(values.length - 1, 1);
    return values.map(function (v, i) {
      return (i * step).toFixed(1) + "," + (height - 1 - v / top * (height - 2)).toFixed(1);
    }).join(" ");
  }

  /* Resolves true on OK; `option`, when given, is a checkbox whose state the caller
     reads from #confirm-check afterwards. */
  function confirmDialog(text, option) {
    var dialog = document.getElementById("confirm"), extra = document.getElementById("confirm-option");
    document.getElementById("confirm-text").textContent = text;
    extra.hidden = !option;
    extra.querySelector("span").textContent = option || "";
    document.getElementById("confirm-check").checked = false;
    return new Promise(function (resolve) {
      dialog.addEventListener("close", function done() {
        dialog.removeEventListener("close", done);
        resolve(dialog.returnValue === "ok");
      });
      dialog.showModal();
    });
  }

  function stream(handlers) {
    var source = new EventSource("/api/stream");
    Object.keys(handlers).forEach(function (name) {
      source.addEventListener(name, function (e) { handlers[name](JSON.parse(e.data)); });
    });
    return source;
  }

  /* -- machines page ------------------------------------------------------------ */

  var COLUMNS = ["name", "ip", "url", "image", "state", "uptime", "cpu", "mem", "rx", "tx", "spark", "act"];

  function newRow(m) {
    var tr = el("tr", { "data-name": m.name });
    COLUMNS.forEach(function (c) { tr.appendChild(el("td", { "class": c })); });
    var cells = tr.children;
    var link = el("a", { href: "/machines/" + m.name }, m.name);
    cells[0].appendChild(link);
    cells[1].className += " mono"; cells[3].className += " mono";
    ["cpu", "mem", "rx", "tx"].forEach(function (c) { tr.querySelector("td." + c).className += " num"; });
    tr.querySelector("td.spark").innerHTML = '<svg viewBox="0 0 96 22" width="96" height="22"><polyline/></svg>';
    tr.querySelector("td.act").appendChild(el("a", { "class": "icon", href: "/machines/" + m.name + "/terminal", title: "Terminal" }, ">_"));
    return tr;
  }

  function fillRow(tr, m) {
    tr.dataset.ip = m.ip; tr.dataset.image = m.image; tr.dataset.state = m.state;
    tr.querySelector("td.ip").textContent = m.ip;
    var url = tr.querySelector("td.url");
    if (!url.firstChild || url.firstChild.textContent !== m.fqdn) {
      url.textContent = "";
      url.appendChild(el("a", { href: m.url, target: "_blank", rel: "noopener" }, m.fqdn));
    }
    tr.querySelector("td.image").textContent = m.image;
    var state = tr.querySelector("td.state");
    state.innerHTML = "";
    state.appendChild(el("span", { "class": "badge " + m.state }, m.state));
    var up = tr.querySelector("td.uptime");
    up.dataset.started = m.started_at; up.textContent = age(m.started_at);
    tr.querySelector("td.cpu").textContent = m.cpu_percent.toFixed(1) + "%";
    tr.querySelector("td.mem").textContent = bytes(m.memory_bytes);
    tr.querySelector("td.rx").innerHTML = '<span class="total"></span><small class="rate"></small>';
    tr.querySelector("td.rx .total").textContent = bytes(m.rx_bytes);
    tr.querySelector("td.rx .rate").textContent = bytes(m.rx_rate) + "/s";
    tr.querySelector("td.tx").innerHTML = '<span class="total"></span><small class="rate"></small>';
    tr.querySelector("td.tx .total").textContent = bytes(m.tx_bytes);
    tr.querySelector("td.tx .rate").textContent = bytes(m.tx_rate) + "/s";
    tr.querySelector("td.spark polyline").setAttribute("points", sparkPoints(m.spark, 96, 22));
  }

  function machinesPage() {
    var table = document.getElementById("machines"), body = table.tBodies[0];
    var filter = document.getElementById("filter"), empty = document.getElementById("empty");
    var sortKey = localStorage.getItem("onebox-sort") || "ip", sortDir = 1, latest = [];

    function ipKey(ip) { return (ip || "0.0.0.0").split(".").map(function (p) { return ("00" + p).slice(-3); }).join("."); }
    function sorted(rows) {
      return rows.slice().sort(function (a, b) {
        var x = a[sortKey], y = b[sortKey];
        if (sortKey === "ip") { x = ipKey(x); y = ipKey(y); }
        return (x < y ? -1 : x > y ? 1 : 0) * sortDir;
      });
    }
    function render(rows) {
      latest = rows;
      var byName = {};
      Array.prototype.forEach.call(body.rows, function (tr) { byName[tr.dataset.name] = tr; });
      var words = filter.value.trim().toLowerCase();
      sorted(rows).forEach(function (m) {
        var tr = byName[m.name] || newRow(m);
        delete byName[m.name];
        fillRow(tr, m);
        var text = [m.name, m.ip, m.image, m.state, m.fqdn].join(" ").toLowerCase();
        tr.hidden = words && text.indexOf(words) < 0;
        body.appendChild(tr);
      });
      Object.keys(byName).forEach(function (n) { byName[n].remove(); });
      document.getElementById("count").textContent = rows.length;
      table.hidden = !rows.length; empty.hidden = !!rows.length;
    }
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th) {
      if (!th.dataset.sort) return;
      th.addEventListener("click", function () {
        sortDir = sortKey === th.dataset.sort ? -sortDir : 1;
        sortKey = th.dataset.sort;
        localStorage.setItem("onebox-sort", sortKey);
        Array.prototype.forEach.call(th.parentNode.cells, function (c) { c.classList.remove("asc", "desc"); });
        th.classList.add(sortDir > 0 ? "asc" : "desc");
        render(latest);
      });
    });
    filter.addEventListener("input", function () { render(latest); });
    stream({ machines: render });
    setupCreate();
  }

  function setupCreate() {
    var form = document.getElementById("create"), status = document.getElementById("create-status");
    document.getElementById("new-toggle").addEventListener("click", function () {
      form.hidden = !form.hidden;
      if (!form.hidden) {
        form.elements.name.focus();
        api("GET", "/api/images").then(function (images) {
          var list = document.getElementById("image-list");
          list.innerHTML = "";
          images.forEach(function (i) { i.tags.forEach(function (t) { list.appendChild(el("option", { value: t })); }); });
        }).catch(function () {});
      }
    });
    form.addEventListener("submit", function (e) {
      e.preventDefault();
      var body = { name: form.elements.name.value.trim(), image: form.elements.image.value.trim() };
      if (form.elements.ip.value.trim()) body.ip = form.elements.ip.value.trim();
      var command = form.elements.command.value.trim();
      if (command) body.command = command.split(/\s+/);
      status.className = "progress"; status.textContent = "Creating " + body.name + "…";
      form.querySelector("button[type=submit]").disabled = true;
      api("POST", "/api/machines", body).then(function (m) {
        status.textContent = "Created " + m.name + " at " + m.ip + ".";
        form.elements.name.value = ""; form.elements.ip.value = "";
      }).catch(function (err) {
        status.className = "progress bad"; status.textContent = err.message;
      }).then(function () { form.querySelector("button[type=submit]").disabled = false; });
    });
  }

  /* -- one machine -------------------------------------------------------------- */

  function drawChart(box, points) {
    if (points.length < 2) return;
    var W = 600, H = 180, L = 52, B = 18;
    var t0 = points[0].t, t1 = points[points.length - 1].t;
    var top = Math.max.apply(null, points.map(function (p) { return Math.max(p.rx_rate, p.tx_rate); }).concat([1]));
    function line(key) {
      return points.map(function (p) {
        var x = L + (p.t - t0) / Math.max(t1 - t0, 1) * (W - L - 4);
        var y = H - B - p[key] / top * (H - B - 8);
        return x.toFixed(1) + "," + y.toFixed(1);
      }).join(" ");
    }
    box.innerHTML = '<svg viewBox="0 0 ' + W + " " + H + '" preserveAspectRatio="none">' +
      '<line class="axis" x1="' + L + '" y1="' + (H - B) + '" x2="' + W + '" y2="' + (H - B) + '"/>' +
      '<text x="0" y="12"></text><text x="0" y="' + (H - B) + '">0</text>' +
      '<text x="' + L + '" y="' + (H - 4) + '"></text><text x="' + (W - 40) + '" y="' + (H - 4) + '">now</text>' +
      '<polyline class="rx" points="' + line("rx_rate") + '"/><polyline class="tx" points="' + line("tx_rate") + '"/></svg>' +
      '<div class="legend"><span class="rx">■ received</span> &nbsp; <span class="tx">■ sent</span> &nbsp; per second</div>';
    var texts = box.querySelectorAll("text");
    texts[0].textContent = bytes(top) + "/s";
    texts[2].textContent = Math.round((t1 - t0) / 60) + " min ago";
  }

  function machinePage(name) {
    var actions = document.getElementById("actions"), status = document.getElementById("action-status");
    actions.addEventListener("click", function (e) {
      var verb = e.target.dataset && e.target.dataset.action;
      if (!verb) return;
      var go = verb === "remove"
        ? confirmDialog("Remove machine " + name + "? Its container goes and its address is freed.")
        : Promise.resolve(true);
      go.then(function (ok) {
        if (!ok) return;
        status.className = "progress"; status.textContent = verb + "…";
        var call = verb === "remove" ? api("DELETE", "/api/machines/" + name)
          : api("POST", "/api/machines/" + name + "/" + verb);
        return call.then(function () {
          if (verb === "remove") { window.location.href = "/"; return; }
          status.textContent = "";
        });
      }).catch(function (err) { status.className = "progress bad"; status.textContent = err.message; });
    });
    stream({ machines: function (rows) {
      var m = rows.filter(function (r) { return r.name === name; })[0];
      if (!m) return;
      var state = document.getElementById("state");
      state.textContent = m.state; state.className = "badge " + m.state;
      document.getElementById("uptime").textContent = age(m.started_at);
      document.getElementById("cpu").textContent = m.cpu_percent.toFixed(1) + "%";
      document.getElementById("mem").textContent = bytes(m.memory_bytes);
      document.getElementById("rx").textContent = bytes(m.rx_bytes) + " (" + bytes(m.rx_rate) + "/s)";
      document.getElementById("tx").textContent = bytes(m.tx_bytes) + " (" + bytes(m.tx_rate) + "/s)";
    } });
    var chart = document.getElementById("chart");
    function loadChart() {
      api("GET", "/api/machines/" + name + "/traffic?minutes=60").then(function (t) { drawChart(chart, t.points); }).catch(function () {});
    }
    loadChart(); setInterval(loadChart, 10000);
    var logs = document.getElementById("logs");
    var follow = new EventSource("/api/machines/" + name + "/logs/follow?tail=200");
    follow.addEventListener("log", function (e) {
      var atEnd = logs.scrollTop + logs.clientHeight >= logs.scrollHeight - 4;
      logs.textContent += JSON.parse(e.data);
      if (logs.textContent.length > 200000) logs.textContent = logs.textContent.slice(-150000);
      if (atEnd) logs.scrollTop = logs.scrollHeight;
    });
    follow.addEventListener("end", function () { follow.close(); });
  }

  /* -- terminal ----------------------------------------------------------------- */

  function terminalPage(name) {
    var box = document.getElementById("terminal"), status = document.getElementById("term-status");
    var term = new Terminal({ cursorBlink: true, fontSize: 14, convertEol: false,
      fontFamily: 'ui-monospace, "DejaVu Sans Mono", monospace', theme: { background: "#000000" } });
    var fit = new FitAddon.FitAddon();
    term.loadAddon(fit); term.open(box); fit.fit();
    var scheme = location.protocol === "https:" ? "wss://" : "ws://";
    var ws = new WebSocket(scheme + location.host + "/api/machines/" + name + "/terminal?cols=" + term.cols + "&rows=" + term.rows);
    ws.binaryType = "arraybuffer";
    var encoder = new TextEncoder();
    ws.onopen = function () { status.textContent = "Connected to " + name; term.focus(); };
    ws.onmessage = function (e) {
      if (typeof e.data === "string") {
        var msg = JSON.parse(e.data);
        status.className = "progress bad"; status.textContent = msg.error + (msg.fix ? " — " + msg.fix : "");
        return;
      }
      term.write(new Uint8Array(e.data));
    };
    ws.onclose = function () { if (status.className.indexOf("bad") < 0) status.textContent = "The shell has ended. Reload for a new one."; };
    term.onData(function (data) { if (ws.readyState === 1) ws.send(encoder.encode(data)); });
    term.onResize(function (size) { if (ws.readyState === 1) ws.send(JSON.stringify({ resize: [size.cols, size.rows] })); });
    window.addEventListener("resize", function () { fit.fit(); });
    window.oneboxTerminal = term;
  }

  /* -- templates and stacks ------------------------------------------------------ */

  var STACK_PATTERN = /^[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?$/;

  function templatesPage() {
    document.querySelectorAll("article.template").forEach(setupTemplate);
    api("GET", "/api/launches").then(function (list) {
      list.filter(function (l) { return l.state === "running"; }).reverse().forEach(followLaunch);
    }).catch(function () {});
    setupStacks();
  }

  function setupTemplate(card) {
    var name = card.dataset.template, form = card.querySelector("form");
    var status = form.querySelector(".progress"), stack = form.elements.stack;
    card.querySelector(".launch-toggle").addEventListener("click", function () {
      form.hidden = !form.hidden;
      if (!form.hidden) stack.focus();
    });
    stack.addEventListener("input", function () {
      var prefix = stack.value.trim() || "STACK";
      card.querySelectorAll(".makes code").forEach(function (c) { c.textContent = prefix + "-" + c.dataset.service; });
    });
    form.addEventListener("submit", function (e) {
      e.preventDefault();
      var body = { stack: stack.value.trim(), settings: {} };
      if (!STACK_PATTERN.test(body.stack)) {
        status.className = "progress bad";
        status.textContent = "A stack name is 1-32 lower-case letters, digits and inner hyphens, like blog.";
        stack.focus();
        return;
      }
      form.querySelectorAll("input[data-key]").forEach(function (i) { body.settings[i.dataset.key] = i.value; });
      var button = form.querySelector("button[type=submit]");
      status.className = "progress"; status.textContent = "Checking…"; button.disabled = true;
      api("POST", "/api/templates/" + name + "/launch", body).then(function (launch) {
        status.textContent = ""; form.hidden = true; stack.value = "";
        stack.dispatchEvent(new Event("input"));
        followLaunch(launch);
      }).catch(function (err) {
        status.className = "progress bad"; status.textContent = err.message;
      }).then(function () { button.disabled = false; });
    });
  }

  function followLaunch(launch) {
    var panel = document.getElementById("launch-panel").content.firstElementChild.cloneNode(true);
    panel.dataset.launch = launch.id;
    panel.querySelector(".title").textContent = "Launching " + launch.template + " as stack " + launch.stack;
    document.getElementById("launches").prepend(panel);
    var log = panel.querySelector("pre.log");
    var source = new EventSource("/api/launches/" + launch.id + "/stream");
    // A reconnected stream sends every line again.
    source.addEventListener("open", function () { log.textContent = ""; });
    source.addEventListener("line", function (e) {
      log.textContent += JSON.parse(e.data) + "\n";
      log.scrollTop = log.scrollHeight;
    });
    source.addEventListener("done", function (e) {
      source.close();
      showLaunch(panel, JSON.parse(e.data));
      refreshStacks();
    });
  }

  function showLaunch(panel, launch) {
    var state = panel.querySelector(".state");
    state.textContent = launch.state; state.className = "badge state " + launch.state;
    if (launch.error) {
      panel.querySelector(".title").textContent = "Launch of " + launch.template + " as stack " + launch.stack + " failed";
      var error = panel.querySelector(".error");
      error.hidden = false;
      error.textContent = launch.error.error + (launch.error.fix ? " — " + launch.error.fix : "");
      return;
    }
    var result = launch.result;
    panel.querySelector(".title").textContent = "Stack " + result.stack + " is up (" + result.template + ")";
    var body = panel.querySelector(".machines tbody");
    result.machines.forEach(function (m) {
      var tr = el("tr", { "data-machine": m.name });
      tr.appendChild(el("td", {}, m.service));
      var td = el("td"); td.appendChild(el("a", { href: "/machines/" + m.name }, m.name)); tr.appendChild(td);
      tr.appendChild(el("td", { "class": "mono" }, m.ip));
      td = el("td"); td.appendChild(el("a", { href: m.url, target: "_blank", rel: "noopener" }, m.url)); tr.appendChild(td);
      td = el("td"); td.appendChild(el("span", { "class": "badge " + m.state }, m.state)); tr.appendChild(td);
      body.appendChild(tr);
    });
    var keys = Object.keys(result.secrets || {}).sort();
    if (keys.length) {
      var box = panel.querySelector(".secrets");
      box.hidden = false;
      box.querySelector(".command").textContent = result.secrets_command;
      box.querySelector(".values").textContent = keys.map(function (k) { return k + "=" + result.secrets[k]; }).join("\n");
    } else if (result.kept_secrets.length) {
      var kept = panel.querySelector(".kept");
      kept.hidden = false;
      kept.querySelector(".command").textContent = result.secrets_command;
    }
    panel.querySelector(".notes").textContent = result.notes;
    panel.querySelector(".result").hidden = false;
  }

  function stackRow(s) {
    var tr = el("tr", { "data-stack": s.name });
    tr.appendChild(el("td", { "class": "name" }, s.name));
    var machines = el("td", { "class": "machines" });
    s.machines.forEach(function (m) {
      machines.appendChild(el("a", { href: "/machines/" + m.name }, m.name));
      machines.appendChild(document.createTextNode(" "));
      machines.appendChild(el("span", { "class": "badge " + m.state }, m.state));
      machines.appendChild(document.createTextNode(" "));
    });
    tr.appendChild(machines);
    var url = el("td", { "class": "url" });
    if (s.url) url.appendChild(el("a", { href: s.url, target: "_blank", rel: "noopener" }, s.url));
    tr.appendChild(url);
    var act = el("td", { "class": "act" });
    act.appendChild(el("button", { type: "button", "class": "danger", "data-remove": s.name }, "Remove"));
    tr.appendChild(act);
    return tr;
  }

  var stackRequests = 0;

  function refreshStacks() {
    // Answers may come back out of order; only the newest request's answer is current.
    var mine = ++stackRequests;
    return api("GET", "/api/stacks").then(function (list) {
      if (mine !== stackRequests) return;
      var table = document.getElementById("stacks"), body = table.tBodies[0];
      body.innerHTML = "";
      list.forEach(function (s) { body.appendChild(stackRow(s)); });
      document.getElementById("stack-count").textContent = list.length;
      table.hidden = !list.length;
      document.getElementById("stacks-empty").hidden = !!list.length;
    }).catch(function () {});
  }

  function setupStacks() {
    var table = document.getElementById("stacks"), seen = null;
    table.addEventListener("click", function (e) {
      var stack = e.target.dataset && e.target.dataset.remove;
      if (!stack) return;
      confirmDialog("Remove stack " + stack + "? Its machines go and their addresses are freed.",
        "Also remove its volumes and secrets (its data is lost)").then(function (ok) {
        if (!ok) return;
        var volumes = document.getElementById("confirm-check").checked;
        e.target.disabled = true; e.target.textContent = "Removing…";
        return api("DELETE", "/api/stacks/" + stack + "?volumes=" + volumes).then(refreshStacks);
      }).catch(function (err) { e.target.disabled = false; e.target.textContent = err.message; });
    });
    // The machines stream says when a stack's machines come, go or change state.
    stream({ machines: function (rows) {
      var now = rows.filter(function (m) { return m.labels["onebox.stack"]; })
        .map(function (m) { return m.name + ":" + m.state; }).sort().join(",");
      if (seen !== null && now !== seen) refreshStacks();
      seen = now;
    } });
  }

  /* -- events ------------------------------------------------------------------- */

  function eventsPage() {
    var table = document.getElementById("events"), empty = document.getElementById("empty");
    stream({ event: function (e) {
      var tr = el("tr");
      tr.appendChild(el("td", { "class": "mono" }, new Date(e.t * 1000).toISOString().replace("T", " ").slice(0, 19)));
      var td = el("td"); td.appendChild(el("a", { href: "/machines/" + e.machine }, e.machine)); tr.appendChild(td);
      td = el("td"); td.appendChild(el("span", { "class": "badge " + e.action }, e.action)); tr.appendChild(td);
      tr.appendChild(el("td", { "class": "muted" }, e.detail));
      table.tBodies[0].insertBefore(tr, table.tBodies[0].firstChild);
      table.hidden = false; empty.hidden = true;
    } });
  }

  /* -- everywhere --------------------------------------------------------------- */

  var toggle = document.getElementById("theme");
  if (toggle) toggle.addEventListener("click", function () {
    var dark = document.documentElement.dataset.theme
      ? document.documentElement.dataset.theme === "dark"
      : window.matchMedia("(prefers-color-scheme: dark)").matches;
    document.documentElement.dataset.theme = dark ? "light" : "dark";
    localStorage.setItem("onebox-theme", document.documentElement.dataset.theme);
  });
  setInterval(function () {
    document.querySelectorAll("[data-started]").forEach(function (n) { n.textContent = age(n.dataset.started); });
  }, 1000);

  return { machinesPage: machinesPage, machinePage: machinePage, terminalPage: terminalPage,
    eventsPage: eventsPage, templatesPage: templatesPage };
})();

// Townlink local page: plain JavaScript, no build step, no CDN.
"use strict";
(function () {
  const HOUR = 3600 * 1000;
  const $ = (id) => document.getElementById(id);
  const el = (tag, cls, text) => {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  };
  const series = {}; // device -> point -> [{t, v}]
  const devEls = {}; // device -> {root, state, points: {name -> {val, canvas}}}
  let loggedIn = false, loginEnabled = false, last = null;

  function age(ms) {
    if (!ms) return "–";
    const s = Math.round(ms / 1000);
    if (s < 60) return s + " s";
    const m = Math.floor(s / 60);
    if (m < 60) return m + " min";
    const h = Math.floor(m / 60);
    if (h < 48) return h + " h " + (m % 60) + " min";
    return Math.floor(h / 24) + " d " + (h % 24) + " h";
  }
  const num = (n) => Number(n).toLocaleString("en");

  function setPill(e, text, cls) {
    e.textContent = text;
    e.className = "pill " + (cls || "");
  }

  function render(st) {
    last = st;
    $("gw").textContent = st.gateway;
    $("ver").textContent = st.version;
    document.title = st.gateway + " · Townlink";
    setPill($("uplink"), st.uplink.connected ? "uplink connected" : "uplink offline", st.uplink.connected ? "ok" : "bad");
    setPill($("clock"), "clock " + st.clock, st.clock === "synced" ? "ok" : "deg");
    const ok = st.devices.filter((d) => d.state === "ok").length;
    $("sum-devices").textContent = ok + " / " + st.devices.length;
    $("sum-field").textContent = st.field.online + " / " + st.field.configured;
    $("sum-backlog").textContent = num(st.uplink.backlog);
    $("sum-oldest").textContent = age(st.uplink.oldest_unsent_ms);
    $("sum-alarms").textContent = st.alarms.length;
    renderAlarms(st.alarms);
    renderDevices(st.devices);
    renderLines(st.lines);
    renderUplink(st);
    renderCerts(st.certs);
    $("updated").textContent = "updated " + new Date(st.time).toLocaleTimeString();
  }

  function renderAlarms(alarms) {
    $("alarms-box").hidden = alarms.length === 0;
    const ul = $("alarms");
    ul.replaceChildren();
    for (const a of alarms) {
      const li = el("li", a.severity);
      li.append(el("b", "", a.device + " · " + a.rule), " ", el("span", "dim", a.severity + ", since " + new Date(a.since).toLocaleString()));
      if (a.message) li.append(el("div", "", a.message));
      ul.append(li);
    }
  }

  function deviceEl(d) {
    let de = devEls[d.id];
    if (de) return de;
    const root = el("div", "dev");
    root.dataset.device = d.id;
    const head = el("div", "dev-head");
    const state = el("span", "state");
    head.append(el("span", "id", d.id), state, el("span", "meta", d.kind + " · " + d.driver + (d.line ? " · " + d.line : "")));
    const read = el("button", "read plain", "Read now");
    read.dataset.action = "read";
    if (!["modbus", "modbus-tcp", "dlt645", "dlt645-1997", "cjt188"].includes(d.driver)) read.dataset.never = "1";
    read.hidden = !loggedIn || read.dataset.never === "1";
    read.addEventListener("click", () => act("/api/read?device=" + encodeURIComponent(d.id), "Reading " + d.id + "…", showRead, read));
    head.append(read);
    const points = el("div", "points");
    const none = el("div", "novals", "no values yet");
    const err = el("div", "lasterr");
    root.append(head, err, points, none);
    $("devices").append(root);
    de = devEls[d.id] = { root, state, points, none, read, err, pts: {} };
    fetch("/api/history?device=" + encodeURIComponent(d.id)).then((r) => r.json()).then((h) => {
      const s = (series[d.id] = series[d.id] || {});
      for (const [p, samples] of Object.entries(h)) {
        const mine = s[p] || [];
        const cut = mine.length ? mine[0].t : Infinity;
        s[p] = samples.filter((x) => x.t < cut).concat(mine);
        draw(d.id, p);
      }
    }).catch(() => {});
    return de;
  }

  function renderDevices(devs) {
    for (const d of devs) {
      const de = deviceEl(d);
      de.state.textContent = d.state;
      de.state.className = "state " + d.state;
      de.none.hidden = d.values.length > 0;
      de.err.textContent = d.state !== "ok" && d.last_error ? "last error: " + d.last_error : "";
      for (const v of d.values) {
        let pe = de.pts[v.name];
        if (!pe) {
          const box = el("div", "point");
          box.dataset.point = v.name;
          const val = el("div", "val");
          const canvas = el("canvas");
          box.append(el("div", "name", v.name), val);
          if (v.numeric) box.append(canvas);
          de.points.append(box);
          pe = de.pts[v.name] = { val, canvas, box };
        }
        pe.val.textContent = v.value;
        pe.val.title = new Date(v.time).toLocaleString();
        if (v.numeric) addSample(d.id, v.name, Date.parse(v.time), Number(v.value));
      }
    }
  }

  function addSample(dev, point, t, v) {
    const s = (series[dev] = series[dev] || {});
    const arr = (s[point] = s[point] || []);
    if (!arr.length || t > arr[arr.length - 1].t) arr.push({ t, v });
    const cut = Date.now() - HOUR;
    while (arr.length && arr[0].t < cut) arr.shift();
    draw(dev, point);
  }

  // draw plots a point's last hour on its canvas: time across, the
  // samples' range up, newest at the right edge.
  function draw(dev, point) {
    const de = devEls[dev];
    const pe = de && de.pts[point];
    const arr = series[dev] && series[dev][point];
    if (!pe || !arr || !pe.canvas.isConnected) return;
    const c = pe.canvas, dpr = window.devicePixelRatio || 1;
    const w = c.clientWidth || 200, h = c.clientHeight || 44;
    if (c.width !== Math.round(w * dpr)) { c.width = Math.round(w * dpr); c.height = Math.round(h * dpr); }
    const g = c.getContext("2d");
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.clearRect(0, 0, w, h);
    g.strokeStyle = "#d8dce1";
    g.beginPath(); g.moveTo(0, h - 0.5); g.lineTo(w, h - 0.5); g.stroke();
    if (!arr.length) return;
    // The last hour; a younger series fills the width, and says so.
    const now = Date.now();
    const span = Math.min(HOUR, Math.max(10000, now - arr[0].t));
    const t0 = now - span;
    let lo = Infinity, hi = -Infinity;
    for (const x of arr) { lo = Math.min(lo, x.v); hi = Math.max(hi, x.v); }
    if (hi === lo) { hi += 1; lo -= 1; }
    const pad = 10;
    const X = (t) => ((t - t0) / span) * (w - 4);
    const Y = (v) => pad / 2 + (1 - (v - lo) / (hi - lo)) * (h - pad);
    g.strokeStyle = "#0b5cad";
    g.lineWidth = 1.5;
    g.beginPath();
    arr.forEach((x, i) => (i ? g.lineTo(X(x.t), Y(x.v)) : g.moveTo(X(x.t), Y(x.v))));
    g.stroke();
    const lastX = arr[arr.length - 1];
    g.fillStyle = "#0b5cad";
    g.beginPath(); g.arc(X(lastX.t), Y(lastX.v), 2.5, 0, 7); g.fill();
    g.fillStyle = "#67707a";
    g.font = "10px system-ui, sans-serif";
    g.fillText(String(+hi.toPrecision(6)), 2, 10);
    g.fillText(String(+lo.toPrecision(6)), 2, h - 3);
    const label = span >= HOUR ? "last hour" : "last " + age(span);
    g.fillText(label, w - g.measureText(label).width - 2, h - 3);
  }

  function renderLines(lines) {
    const tb = $("lines").tBodies[0];
    tb.replaceChildren();
    for (const l of lines) {
      const tr = el("tr");
      tr.dataset.line = l.name;
      const errs = l.timeouts + l.frame_errors + l.device_errors + l.other_errors;
      const errText = errs ? num(errs) + " (" + l.timeouts + " t/o, " + l.frame_errors + " frame, " + l.device_errors + " dev)" : "0";
      tr.append(el("td", "", l.name), el("td", "", l.port + " " + l.mode + (l.port_open ? "" : " (closed)")),
        el("td", "", (l.utilisation * 100).toFixed(1) + " %"), el("td", "", num(l.ok)), el("td", errs ? "warn" : "", errText), el("td", "", l.reopens));
      const td = el("td");
      if (loggedIn) {
        const b = el("button", "plain", "Scan");
        b.addEventListener("click", () => {
          if (confirm("Scan " + l.name + "? Its devices are not polled while the scan runs (it can take minutes).")) {
            scan(l.name, b);
          }
        });
        td.append(b);
      }
      tr.append(td);
      tb.append(tr);
    }
  }

  function renderUplink(st) {
    $("brokers").textContent = "brokers: " + st.uplink.brokers.join(", ");
    const tb = $("streams").tBodies[0];
    tb.replaceChildren();
    for (const s of st.streams) {
      const tr = el("tr");
      tr.dataset.stream = s.name;
      tb.append(tr);
      tr.append(el("td", "", s.name), el("td", "", num(s.backlog)), el("td", "", age(s.oldest_unsent_ms)), el("td", "", num(s.last_seq)));
    }
    const d = st.dropped ? Object.entries(st.dropped) : [];
    $("dropped").hidden = d.length === 0;
    $("dropped").textContent = "dropped: " + d.map(([k, n]) => k + " " + num(n)).join(", ");
  }

  function renderCerts(certs) {
    const ul = $("certs");
    ul.replaceChildren();
    if (!certs.length) ul.append(el("li", "dim", "no certificates (plain MQTT uplink)"));
    for (const c of certs) {
      const li = el("li", c.days_left < 14 ? "major" : c.days_left < 30 ? "minor" : "");
      li.append(el("b", "", c.name), " ", c.days_left < 0 ? "expired " + -c.days_left + " days ago" : c.days_left + " days left");
      ul.append(li);
    }
  }

  function showResult(text, err) {
    const r = $("result");
    r.textContent = text;
    r.className = err ? "err" : "";
  }

  function showRead(res) {
    const lines = res.values.map((v) => "  " + v.name + " = " + v.value);
    showResult("Read " + res.device + " at " + new Date(res.time).toLocaleTimeString() + ":\n" + lines.join("\n") + (res.error ? "\n(partly: " + res.error + ")" : ""));
  }

  function showScan(res) {
    if (!res.found.length) return showResult("Scan: no device answered.");
    showResult("Found " + res.found.length + ":\n" + res.found.map((f) => "  " + f.protocol + " " + f.address + " " + f.serial + (f.reading ? "  " + f.reading : "")).join("\n"));
  }

  // scan reads the scan's answer as it streams: progress lines, then the result.
  async function scan(line, btn) {
    btn.disabled = true;
    showResult("Scanning " + line + "…");
    try {
      const r = await fetch("/api/scan?line=" + encodeURIComponent(line), { method: "POST", credentials: "same-origin" });
      if (!r.ok) {
        const body = await r.json();
        if (r.status === 401) setLogged(false);
        return showResult(body.error || r.statusText, true);
      }
      const reader = r.body.getReader(), dec = new TextDecoder();
      let buf = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return showResult("Scan of " + line + " ended without a result (did the gateway stop?)", true);
        buf += dec.decode(value, { stream: true });
        let i;
        while ((i = buf.indexOf("\n")) >= 0) {
          const ev = JSON.parse(buf.slice(0, i));
          buf = buf.slice(i + 1);
          if (ev.progress) {
            const p = ev.progress;
            showResult("Scanning " + line + ": " + p.done + " / " + p.total + (p.note ? "  " + p.note : ""));
          }
          if (ev.done) {
            showScan({ found: ev.found || [] });
            if (ev.error) showResult($("result").textContent + "\nStopped: " + ev.error, true);
            return;
          }
        }
      }
    } catch (e) {
      showResult(String(e), true);
    } finally {
      btn.disabled = false;
    }
  }

  async function act(url, busy, show, btn) {
    if (btn) btn.disabled = true;
    showResult(busy);
    try {
      const r = await fetch(url, { method: "POST", credentials: "same-origin" });
      const body = await r.json();
      if (r.status === 401) { setLogged(false); }
      if (!r.ok) return showResult(body.error || r.statusText, true);
      if (show) show(body); else showResult("Done.");
    } catch (e) {
      showResult(String(e), true);
    } finally {
      if (btn) btn.disabled = false;
    }
  }

  function setLogged(on) {
    loggedIn = on;
    $("login").hidden = on || !loginEnabled;
    $("login-off").hidden = loginEnabled;
    $("logged").hidden = !on;
    for (const de of Object.values(devEls)) de.read.hidden = !on || de.read.dataset.never === "1";
    if (last) renderLines(last.lines);
  }

  $("login").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const body = new URLSearchParams({ password: $("password").value });
    $("login-btn").disabled = true;
    try {
      const r = await fetch("/api/login", { method: "POST", body, credentials: "same-origin" });
      const res = await r.json();
      if (!r.ok) return showResult(res.error || r.statusText, true);
      $("password").value = "";
      showResult("Logged in.");
      setLogged(true);
    } finally {
      $("login-btn").disabled = false;
    }
  });
  $("logout").addEventListener("click", async () => {
    await fetch("/api/logout", { method: "POST", credentials: "same-origin" });
    showResult("Logged out.");
    setLogged(false);
  });
  $("time-sync").addEventListener("click", () =>
    act("/api/time-sync", "Broadcasting the time…", (r) => showResult("Time broadcast on " + r.lines + " line(s) at " + new Date(r.time).toLocaleTimeString() + ".")));

  fetch("/api/session").then((r) => r.json()).then((s) => {
    loginEnabled = s.login_enabled;
    setLogged(s.logged_in);
  });

  const es = new EventSource("/api/events");
  es.addEventListener("status", (ev) => {
    setPill($("live"), "live", "ok");
    render(JSON.parse(ev.data));
  });
  es.onerror = () => setPill($("live"), "reconnecting…", "deg");
  window.addEventListener("resize", () => {
    for (const [dev, pts] of Object.entries(series)) for (const p of Object.keys(pts)) draw(dev, p);
  });
})();

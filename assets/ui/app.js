// cch console: progressive enhancement only. Pages are rendered on the server; this file sends
// forms and buttons to the admin JSON API (same origin, session cookie), shows field errors
// next to their fields, asks before destructive actions, and copies text.
(function () {
  "use strict";
  var msg = function (k) { return (document.body && document.body.dataset[k]) || k; };

  document.addEventListener("change", function (e) {
    var t = e.target;
    if (t.matches && t.matches("[data-autosubmit]")) t.form.submit();
  });

  function clearErrors(form) {
    form.querySelectorAll(".ferr").forEach(function (el) { el.textContent = ""; });
    form.querySelectorAll("[aria-invalid]").forEach(function (el) { el.removeAttribute("aria-invalid"); });
    var fe = form.querySelector(".formerror");
    if (fe) { fe.hidden = true; fe.textContent = ""; }
  }

  function showError(form, err) {
    var field = err && err.field;
    var text = (err && err.message) || msg("failed");
    var slot = field && form.querySelector('[data-error-for="' + CSS.escape(field) + '"]');
    if (slot) {
      slot.textContent = text;
      var input = form.querySelector('[name="' + CSS.escape(field) + '"]');
      if (input) { input.setAttribute("aria-invalid", "true"); input.focus(); }
      return;
    }
    var fe = form.querySelector(".formerror");
    if (fe) { fe.textContent = (field ? field + ": " : "") + text; fe.hidden = false; }
    else alert(text);
  }

  function collect(form) {
    var patch = form.dataset.method === "PATCH";
    var body = {};
    var path = form.dataset.api;
    Array.prototype.forEach.call(form.elements, function (el) {
      if (!el.name || el.disabled || el.type === "submit" || el.type === "button") return;
      var type = el.dataset.type || "text";
      if (el.hasAttribute("data-path-only")) {
        path = path.replace("{" + el.name + "}", encodeURIComponent(el.value.trim()));
        return;
      }
      if (type === "bool") { body[el.name] = el.checked; return; }
      var raw = el.value.trim();
      if (raw === "") {
        if (!patch || el.hasAttribute("data-omit-empty")) return;
        if (el.hasAttribute("data-nullable")) body[el.name] = null;
        else if (type === "list") body[el.name] = [];
        else if (type === "map") body[el.name] = {};
        else if (type === "text") body[el.name] = "";
        return;
      }
      var v = raw;
      if (type === "int") { v = Number(raw); if (!Number.isInteger(v)) v = raw; }
      else if (type === "list") v = raw.split(/[\n,]/).map(function (s) { return s.trim(); }).filter(Boolean);
      else if (type === "map") {
        v = {};
        raw.split("\n").forEach(function (line) {
          var i = line.indexOf("=");
          if (i > 0) v[line.slice(0, i).trim()] = line.slice(i + 1).trim();
        });
      } else if (type === "datetime") {
        var d = new Date(raw);
        v = isNaN(d.getTime()) ? raw : d.toISOString();
      }
      body[el.name] = v;
    });
    return { path: path, body: body };
  }

  function send(method, path, body) {
    var init = { method: method, credentials: "same-origin", headers: { "accept": "application/json" } };
    if (body !== undefined) {
      init.headers["content-type"] = "application/json";
      init.body = typeof body === "string" ? body : JSON.stringify(body);
    }
    return fetch(path, init).then(function (r) {
      return r.text().then(function (t) {
        var j = null;
        try { j = t ? JSON.parse(t) : null; } catch (_) { j = null; }
        return { ok: r.ok, status: r.status, json: j, text: t };
      });
    });
  }

  function after(then, res, origin) {
    var j = res.json || {};
    if (!then || then === "reload") { location.reload(); return; }
    if (then.indexOf("go:") === 0) { location.href = then.slice(3).replace("{id}", j.id); return; }
    if (then === "showkey") {
      var box = document.getElementById("newkey");
      document.getElementById("newkey-value").textContent = j.key || "";
      box.hidden = false;
      box.scrollIntoView();
      if (origin && origin.reset) origin.reset();
      return;
    }
    if (then === "show") {
      var out = document.getElementById("action-output");
      var lines = Object.keys(j).map(function (k) { return k + ": " + j[k]; });
      out.textContent = lines.join("\n");
      out.className = "notice " + (j.ok === false ? "error" : "");
      out.hidden = false;
      out.scrollIntoView({ block: "nearest" });
    }
  }

  document.addEventListener("submit", function (e) {
    var form = e.target;
    if (form.id === "loginform") return login(e, form);
    if (!form.classList.contains("apiform")) return;
    e.preventDefault();
    clearErrors(form);
    var c = collect(form);
    var body = c.body;
    if (form.dataset.raw) body = form.elements[form.dataset.raw].value;
    var btn = form.querySelector("button[type=submit]");
    if (btn) btn.disabled = true;
    send(form.dataset.method || "POST", c.path, body).then(function (res) {
      if (btn) btn.disabled = false;
      if (res.ok) after(form.dataset.then, res, form);
      else showError(form, res.json && res.json.error ? res.json.error : { message: res.text || String(res.status) });
    }, function () { if (btn) btn.disabled = false; showError(form, null); });
  });

  document.addEventListener("click", function (e) {
    var el = e.target.closest ? e.target.closest("button[data-api],button[data-copy]") : null;
    if (!el) return;
    if (el.dataset.copy) {
      var src = document.querySelector(el.dataset.copy);
      if (src && navigator.clipboard) navigator.clipboard.writeText(src.textContent).then(function () { el.textContent = msg("copied"); });
      return;
    }
    if (el.dataset.confirm && !confirm(el.dataset.confirm)) return;
    var label = el.textContent;
    el.disabled = true;
    if (el.dataset.busy) el.textContent = el.dataset.busy;
    var body = el.dataset.body ? JSON.parse(el.dataset.body) : undefined;
    send(el.dataset.method || "POST", el.dataset.api, body).then(function (res) {
      el.disabled = false;
      el.textContent = label;
      if (res.ok) after(el.dataset.then, res, null);
      else alert((res.json && res.json.error && res.json.error.message) || res.text || msg("failed"));
    }, function () { el.disabled = false; el.textContent = label; alert(msg("failed")); });
  });

  function login(e, form) {
    e.preventDefault();
    var out = document.getElementById("loginerror");
    send("POST", form.action, { token: form.elements.token.value }).then(function (res) {
      if (res.ok && res.json && res.json.redirect) { location.href = res.json.redirect; return; }
      out.textContent = res.status === 429 ? form.dataset.throttled : form.dataset.failed;
      out.hidden = false;
    });
  }

  // Live parts: elements with data-poll="<ms>" reload their own fragment.
  document.querySelectorAll("[data-poll]").forEach(function (el) {
    var every = Math.max(2000, Number(el.dataset.poll) || 5000);
    setInterval(function () {
      if (document.hidden) return;
      fetch(location.href, { credentials: "same-origin" }).then(function (r) { return r.text(); }).then(function (html) {
        var doc = new DOMParser().parseFromString(html, "text/html");
        var fresh = doc.getElementById(el.id);
        if (fresh) el.innerHTML = fresh.innerHTML;
      });
    }, every);
  });

  // Charts: elements with data-chart='{"x":[epoch s],"lines":[{"name","values"}]}', drawn with
  // the vendored uPlot (loaded only by pages that have charts).
  var COLORS = ["#2563eb", "#dc2626", "#16a34a", "#d97706", "#7c3aed", "#6b7280"];
  function drawCharts() {
    if (typeof uPlot === "undefined") return;
    document.querySelectorAll("[data-chart]").forEach(function (el) {
      var d;
      try { d = JSON.parse(el.dataset.chart); } catch (_) { return; }
      if (!d || !d.x || !d.lines) return;
      if (!d.lines.length) { el.textContent = "—"; return; }
      var day = el.dataset.bucket === "day";
      var series = [{}].concat(d.lines.map(function (l, i) {
        return { label: l.name, stroke: COLORS[i % COLORS.length], width: 2, points: { show: day } };
      }));
      var data = [d.x].concat(d.lines.map(function (l) { return l.values; }));
      var opts = {
        width: Math.max(280, el.clientWidth || 600), height: 220, series: series,
        scales: { x: { time: true } }, legend: { live: false }
      };
      // Times in the gateway's configured zone, not the browser's.
      var tz = el.dataset.tz;
      if (tz && uPlot.tzDate) opts.tzDate = function (ts) { return uPlot.tzDate(new Date(ts * 1e3), tz); };
      el.textContent = "";
      new uPlot(opts, data, el);
    });
  }
  // This script runs before the chart library (both deferred, in document order): draw once
  // every deferred script has run.
  if (document.readyState === "complete") drawCharts();
  else window.addEventListener("load", drawCharts);
})();

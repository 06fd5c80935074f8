// barge fleet dashboard: live updates (Server-Sent Events from /ui/events replace <main>),
// the desired-value editor (POST to the device twin endpoint with the CSRF header) and the
// log view (follows the API's log stream). No framework, no build step.
"use strict";
(function () {
  var csrfMeta = document.querySelector('meta[name="csrf"]');
  var csrf = csrfMeta ? csrfMeta.content : "";
  var live = document.getElementById("live");
  var fleet = document.getElementById("fleet");

  function setLive(ok, text) {
    if (!live) return;
    live.textContent = text;
    live.className = ok ? "" : "off";
  }

  // Live updates: one EventSource, re-created after it closes (e.g. a 401 or a hub restart).
  function connect() {
    var es = new EventSource("/ui/events");
    es.addEventListener("fleet", function (e) {
      fleet.innerHTML = e.data;
      setLive(true, "live");
      document.body.dataset.updates = String(Number(document.body.dataset.updates || 0) + 1);
    });
    es.onopen = function () { setLive(true, "live"); };
    es.onerror = function () {
      setLive(false, "reconnecting");
      if (es.readyState === EventSource.CLOSED) {
        setTimeout(connect, 2000);
      }
    };
  }
  if (fleet) connect();

  // Desired-value editor.
  var editor = document.getElementById("editor");
  var target = null;
  if (fleet && editor) {
    var what = document.getElementById("ed-what");
    var value = document.getElementById("ed-value");
    var msg = document.getElementById("ed-msg");
    fleet.addEventListener("click", function (e) {
      var b = e.target.closest("button.edit");
      if (!b) return;
      target = { ns: b.dataset.ns, name: b.dataset.name, prop: b.dataset.prop };
      what.textContent = target.ns + "/" + target.name + " " + target.prop;
      value.value = b.dataset.value;
      msg.textContent = "";
      msg.className = "";
      editor.hidden = false;
      value.focus();
    });
    document.getElementById("ed-cancel").addEventListener("click", function () {
      editor.hidden = true;
    });
    editor.addEventListener("submit", function (e) {
      e.preventDefault();
      if (!target) return;
      var desired = {};
      desired[target.prop] = value.value;
      var url = "/apis/devices.kubeedge.io/v1beta1/namespaces/" + encodeURIComponent(target.ns) +
        "/devices/" + encodeURIComponent(target.name) + "/twin";
      msg.textContent = "saving…";
      msg.className = "";
      fetch(url, {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-Barge-CSRF": csrf },
        body: JSON.stringify({ desired: desired })
      }).then(function (r) {
        return r.text().then(function (t) {
          if (r.ok) {
            msg.textContent = "saved";
            msg.className = "ok";
            return;
          }
          var m = t;
          try { m = JSON.parse(t).message || t; } catch (_) { /* not JSON */ }
          msg.textContent = r.status + ": " + m;
          msg.className = "";
        });
      }).catch(function (err) {
        msg.textContent = "request failed: " + err;
      });
    });
  }

  // Log view.
  var log = document.getElementById("log");
  if (log) {
    var state = document.getElementById("log-state");
    fetch(log.dataset.src, { credentials: "same-origin" }).then(function (r) {
      if (!r.ok) {
        return r.text().then(function (t) {
          var m = t;
          try { m = JSON.parse(t).message || t; } catch (_) { /* not JSON */ }
          state.textContent = r.status + ": " + m;
        });
      }
      state.textContent = "following";
      var reader = r.body.getReader();
      var dec = new TextDecoder();
      function pump() {
        return reader.read().then(function (c) {
          if (c.done) { state.textContent = "stream ended"; return; }
          log.textContent += dec.decode(c.value, { stream: true });
          log.scrollTop = log.scrollHeight;
          return pump();
        });
      }
      return pump();
    }).catch(function (err) { state.textContent = "log stream failed: " + err; });
  }
})();

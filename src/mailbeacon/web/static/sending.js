// The send's progress bar: polls the progress route (JSON) until the send is done.
(function () {
  "use strict";
  var box = document.getElementById("sending");
  if (!box) { return; }
  var bar = document.getElementById("send-progress");
  var status = document.getElementById("send-status");
  var waiting = document.getElementById("send-waiting");
  function utc(iso) { return iso.slice(0, 16).replace("T", " ") + " UTC"; }
  function poll() {
    fetch(box.dataset.progressUrl, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { return r.json(); })
      .then(function (p) {
        bar.value = p.percent;
        bar.textContent = p.percent + "%";
        status.textContent = p.sent + " sent, " + p.failed + " failed, " + p.skipped + " skipped of " +
          p.recipients + (p.done ? ": done." : " (" + p.status + ")…");
        if (waiting) {
          waiting.textContent = p.scheduled ? p.scheduled + " waiting for their time, next at " +
            utc(p.next_at) + ", last at " + utc(p.last_at) + "." : "none waiting.";
        }
        // A best-hour send waits hours between copies: look less often meanwhile.
        if (!p.done) { setTimeout(poll, p.scheduled ? 5000 : 1000); }
      })
      .catch(function () { setTimeout(poll, 3000); });
  }
  poll();
})();

// The send's progress bar: polls the progress route (JSON) until the send is done.
(function () {
  "use strict";
  var box = document.getElementById("sending");
  if (!box) { return; }
  var bar = document.getElementById("send-progress");
  var status = document.getElementById("send-status");
  function poll() {
    fetch(box.dataset.progressUrl, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { return r.json(); })
      .then(function (p) {
        bar.value = p.percent;
        bar.textContent = p.percent + "%";
        status.textContent = p.sent + " sent, " + p.failed + " failed, " + p.skipped + " skipped of " +
          p.recipients + (p.done ? ": done." : " (" + p.status + ")…");
        if (!p.done) { setTimeout(poll, 1000); }
      })
      .catch(function () { setTimeout(poll, 3000); });
  }
  poll();
})();

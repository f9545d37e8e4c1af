// Keeps a background import's progress bar current: polls the job's status once a
// second and, when it is done (or failed), reloads so the server renders the result.
(function () {
  "use strict";
  var box = document.getElementById("import-job");
  var bar = document.getElementById("import-progress");
  var state = document.getElementById("import-state");
  if (!box || !bar) { return; }
  var url = box.getAttribute("data-status-url");

  function show(job) {
    bar.max = Math.max(job.total_rows, 1);
    bar.value = job.processed_rows;
    bar.textContent = job.processed_rows + " of " + job.total_rows;
    var word = job.status.charAt(0).toUpperCase() + job.status.slice(1);
    state.textContent = word + ": " + job.processed_rows + " of " + job.total_rows + " rows.";
  }

  function poll() {
    fetch(url, { credentials: "same-origin", cache: "no-store" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (job) {
        if (!job) { setTimeout(poll, 3000); return; }
        show(job);
        if (job.status === "done" || job.status === "failed") {
          window.location.reload();
        } else {
          setTimeout(poll, 1000);
        }
      })
      .catch(function () { setTimeout(poll, 3000); });
  }
  setTimeout(poll, 500);
})();

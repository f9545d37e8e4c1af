// The composer: the live preview frame follows the HTML textarea as it changes.
// The HTML is posted into the sandboxed frame (no scripts, no same origin) and comes
// back as its own document, whose CSP lets the email's inline styles and images load:
// a srcdoc frame would inherit the dashboard's strict CSP and lose them.
(function () {
  "use strict";
  var html = document.getElementById("html");
  var form = document.getElementById("live-preview-form");
  var field = document.getElementById("live-preview-html");
  if (!html || !form || !field) { return; }
  var timer = null;
  function show() { field.value = html.value; form.submit(); }
  html.addEventListener("input", function () {
    clearTimeout(timer);
    timer = setTimeout(show, 300);
  });
  show();
})();

// The composer: the live preview iframe follows the HTML textarea as it changes.
// The iframe is sandboxed (no scripts, no same origin): srcdoc is all it is given.
(function () {
  "use strict";
  var html = document.getElementById("html");
  var frame = document.getElementById("live-preview");
  if (!html || !frame) { return; }
  var timer = null;
  html.addEventListener("input", function () {
    clearTimeout(timer);
    timer = setTimeout(function () { frame.srcdoc = html.value; }, 250);
  });
})();

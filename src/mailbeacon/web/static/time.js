// Rewrites each <time data-local datetime="…Z"> into the reader's own time zone.
// The server renders UTC; this only changes the text, never the datetime attribute.
(function () {
  "use strict";
  var format = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });
  function localize(root) {
    root.querySelectorAll("time[data-local]").forEach(function (el) {
      var at = new Date(el.getAttribute("datetime"));
      if (!isNaN(at.getTime())) el.textContent = format.format(at);
    });
  }
  localize(document);
  // Fragments htmx swaps in get the same treatment.
  document.addEventListener("htmx:afterSwap", function (event) { localize(event.target); });
})();

// The leads page: one box ticks or clears every lead on the page. Without scripts the
// box stays hidden and each lead is ticked on its own.
(function () {
  "use strict";
  var all = document.getElementById("pick-all");
  if (!all) { return; }
  var boxes = function () {
    return Array.prototype.slice.call(document.querySelectorAll("input[name=lead_ids]"));
  };
  if (!boxes().length) { return; }
  all.parentNode.hidden = false;
  all.addEventListener("change", function () {
    boxes().forEach(function (b) { b.checked = all.checked; });
  });
  document.addEventListener("change", function (e) {
    if (e.target && e.target.name === "lead_ids") {
      var list = boxes();
      var ticked = list.filter(function (b) { return b.checked; }).length;
      all.checked = ticked === list.length;
      all.indeterminate = ticked > 0 && ticked < list.length;
    }
  });
})();

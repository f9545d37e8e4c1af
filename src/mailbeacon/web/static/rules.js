// The rule form: each action row shows the fields of the action type chosen in it.
// Without this script every field shows, each labelled, and the server reads only the
// ones of the chosen type.
(function () {
  "use strict";
  document.querySelectorAll("[data-action-row]").forEach(function (row) {
    var select = row.querySelector("[data-action-type]");
    function show() {
      row.querySelectorAll(".afield[data-for]").forEach(function (field) {
        field.hidden = field.dataset.for.split(" ").indexOf(select.value) < 0;
      });
    }
    select.addEventListener("change", show);
    show();
  });
})();

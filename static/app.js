// Progressive enhancement only: every page works without JavaScript.
(function () {
  "use strict";
  // Simulator: show only the fields of the chosen creation type.
  var form = document.querySelector("form[data-simulateur]");
  if (!form) return;
  var select = form.querySelector("select[name=type]");
  function sync() {
    var type = select.value;
    form.querySelectorAll("[data-for]").forEach(function (el) {
      var show = el.getAttribute("data-for").split(" ").indexOf(type) !== -1;
      el.hidden = !show;
    });
  }
  if (select) {
    select.addEventListener("change", sync);
    sync();
  }
})();

// Progressive enhancement only: every page works without JavaScript.
(function () {
  "use strict";
  // The simulator and the launch form: show only the fields of the chosen creation type.
  document.querySelectorAll("form[data-simulateur], form[data-par-type]").forEach(function (form) {
    var select = form.querySelector("select[name=type]");
    if (!select) return;
    function sync() {
      var type = select.value;
      form.querySelectorAll("[data-for]").forEach(function (el) {
        var show = el.getAttribute("data-for").split(" ").indexOf(type) !== -1;
        el.hidden = !show;
      });
    }
    select.addEventListener("change", sync);
    sync();
  });
})();

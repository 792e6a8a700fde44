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

  // A secret shown once (an API key): a button copies it; without JavaScript the field is
  // read-only text to select and copy.
  document.querySelectorAll("button[data-copier]").forEach(function (button) {
    var field = document.getElementById(button.getAttribute("data-copier"));
    var said = document.getElementById(button.getAttribute("data-annonce") || "");
    if (!field) return;
    button.hidden = false;
    button.addEventListener("click", function () {
      field.focus();
      field.select();
      var done = function () { if (said) said.textContent = "Clé copiée."; };
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(field.value).then(done, function () {
          if (document.execCommand("copy")) done();
        });
      } else if (document.execCommand("copy")) {
        done();
      }
    });
  });
})();

// Progressive enhancement only: every page works without JavaScript.
(function () {
  "use strict";
  // The header's links scroll sideways on a phone: a link reached with Tab shows whole (a
  // browser scrolls a focused element only until part of it shows).
  var nav = document.querySelector(".site-header nav");
  if (nav) {
    nav.addEventListener("focusin", function (event) {
      if (nav.scrollWidth > nav.clientWidth && event.target.scrollIntoView) {
        event.target.scrollIntoView({ block: "nearest", inline: "nearest" });
      }
    });
  }

  // The simulator and the launch form: show only the fields of the chosen creation type; the
  // contact form: the event's fields for an event only (`data-selon` names the choice).
  document.querySelectorAll("form[data-simulateur], form[data-par-type], form[data-selon]").forEach(function (form) {
    var select = form.querySelector("select[name=" + (form.getAttribute("data-selon") || "type") + "]");
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
  // The launch form: the cost of what is filled in, from the simulator's JSON, as it changes.
  // Without JavaScript the page links to the simulator instead. The line stays in the page (a
  // live region is announced when its text changes, not when it appears); it is empty while
  // there is nothing to estimate.
  var estimate = document.getElementById("cout-estime");
  var launchForm = estimate && estimate.closest("form");
  if (estimate && launchForm) {
    var amount = estimate.querySelector("[data-cout-montant]");
    var refusal = estimate.querySelector("[data-cout-refus]");
    var value = estimate.querySelector("[data-valeur]");
    var unit = estimate.querySelector("[data-singulier]");
    var asked = 0;
    var last = null;
    var timer = null;
    var field = function (name) {
      var checked = launchForm.querySelector("[name=" + name + "]:checked");
      var el = checked || launchForm.querySelector("[name=" + name + "]:not([type=radio])");
      return el ? el.value.trim() : "";
    };
    var show = function (cost, refused) {
      amount.hidden = cost === null;
      refusal.hidden = !refused;
      refusal.textContent = refused || "";
      if (cost !== null) {
        value.textContent = cost.toLocaleString("fr-FR");
        unit.textContent = unit.getAttribute(cost > 1 ? "data-pluriel" : "data-singulier");
      }
    };
    var ask = function () {
      var type = field("type");
      var params = new URLSearchParams({ type: type, plan: estimate.getAttribute("data-plan") });
      var wanted = {
        "video": ["duree", "format", "resolution"], "image": ["format", "resolution"],
        "musique": ["duree"], "mini-livre": ["pages", "illustrations"]
      }[type] || [];
      wanted.forEach(function (name) { var v = field(name); if (v) params.set(name, v); });
      var query = type ? params.toString() : "";
      // Typing the prompt changes no cost: no request, and nothing said again.
      if (query === last) return;
      last = query;
      var mine = ++asked;
      if (!type) { show(null, null); return; }
      fetch(estimate.getAttribute("data-cout") + "?" + query, {
        credentials: "same-origin", headers: { "Accept": "application/json" }
      }).then(function (response) {
        return response.ok ? response.json() : null;
      }).then(function (verdict) {
        if (mine !== asked) return;
        if (verdict && verdict.refusal) show(null, verdict.refusal.message);
        else if (verdict && typeof verdict.total_cost === "number") show(verdict.total_cost, null);
        else show(null, null);
      }).catch(function () { if (mine === asked) show(null, null); });
    };
    var later = function () { clearTimeout(timer); timer = setTimeout(ask, 250); };
    launchForm.addEventListener("input", later);
    launchForm.addEventListener("change", later);
    show(null, null);
    estimate.hidden = false;
    ask();
  }

  // Generations still rendering: the page asks for itself now and then and puts in what has
  // changed (each finished card, the launch's notice, the balance) until none is running. The
  // notice is a status: a screen reader says the outcome. Without JavaScript, a link reloads.
  var running = function (root) { return root.querySelectorAll("[data-en-cours]"); };
  if (running(document).length) {
    var delays = [3, 3, 5, 5, 10, 10, 20, 30];
    var tries = 0;
    var stopped = false;
    var started = Date.now();
    var swap = function (fresh, id) {
      var old = document.getElementById(id);
      var now = fresh.getElementById(id);
      if (old && now && old.innerHTML !== now.innerHTML) {
        // Focus on a link that goes away stays in the block, not lost to the page.
        var focused = old.contains(document.activeElement);
        old.className = now.className;
        old.innerHTML = now.innerHTML;
        if (focused) {
          old.setAttribute("tabindex", "-1");
          old.focus();
        }
      }
    };
    var poll = function () {
      if (document.hidden) { document.addEventListener("visibilitychange", poll, { once: true }); return; }
      fetch(window.location.href, { credentials: "same-origin", headers: { "Accept": "text/html" } })
        .then(function (response) {
          // Signed out meanwhile (sent to the login page): stop asking; a reload says why.
          if (response.redirected) { stopped = true; return null; }
          return response.ok ? response.text() : null;
        })
        .then(function (html) {
          if (!html) return;
          var fresh = new DOMParser().parseFromString(html, "text/html");
          running(document).forEach(function (card) {
            var now = fresh.getElementById(card.id);
            // A card no longer listed (a hundred newer ones) is not waited for.
            if (!now) card.removeAttribute("data-en-cours");
            else if (!now.hasAttribute("data-en-cours")) card.replaceWith(document.importNode(now, true));
          });
          swap(fresh, "lancement");
          swap(fresh, "solde-disponible");
        })
        .catch(function () {})
        .then(function () {
          // The engine answers within 30 minutes, or the generation expires.
          if (!stopped && running(document).length && Date.now() - started < 35 * 60 * 1000) {
            setTimeout(poll, 1000 * delays[Math.min(tries++, delays.length - 1)]);
          }
        });
    };
    setTimeout(poll, 1000 * delays[tries++]);
  }
})();

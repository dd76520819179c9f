/* Live regions: an element with data-live-src="<url>" is refreshed from that URL every
   data-live-every seconds (default 15) while the tab is visible. The server answers with the
   element's inner HTML. Pages work without this script; it only saves a reload. */
(function () {
  "use strict";
  function refresh(el) {
    var url = el.getAttribute("data-live-src");
    fetch(url, { credentials: "same-origin", headers: { "X-Requested-With": "live" } })
      .then(function (response) {
        if (!response.ok || response.redirected) { throw new Error("HTTP " + response.status); }
        return response.text();
      })
      .then(function (html) {
        el.innerHTML = html;
        el.removeAttribute("data-live-stale");
      })
      .catch(function () {
        el.setAttribute("data-live-stale", "true");
      });
  }
  function start() {
    var nodes = document.querySelectorAll("[data-live-src]");
    Array.prototype.forEach.call(nodes, function (el) {
      var every = Math.max(5, parseInt(el.getAttribute("data-live-every"), 10) || 15) * 1000;
      el.setAttribute("data-live-on", "true");
      window.setInterval(function () { if (!document.hidden) { refresh(el); } }, every);
      document.addEventListener("visibilitychange", function () { if (!document.hidden) { refresh(el); } });
    });
  }
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", start); } else { start(); }
})();

/* Placing the stamp on the storefront: choose a PDF and its page appears; tap it to put the stamp
   there, or drag a box (mouse or finger). The box fields of the form are filled in, in points from the
   page's bottom-left corner, and "another document" is chosen. Without this script the same fields are
   typed in (the form's fallback). No inline script or style: the page's CSP forbids them; positions are
   set through the CSSOM. */
(function () {
  "use strict";
  var TAP_SIDE_PT = 100, MIN_PT = 20, MAX_PT = 300;
  function start() {
    var form = document.querySelector("form[data-placement]");
    if (!form) { return; }
    var file = form.querySelector("input[type=file]");
    var pageInput = form.querySelector("input[name=page]");
    var holder = document.getElementById("placement");
    var img = document.getElementById("placement-page");
    var box = document.getElementById("placement-box");
    var note = document.getElementById("placement-note");
    var fields = {};
    ["llx", "lly", "urx", "ury"].forEach(function (n) { fields[n] = form.querySelector("input[name=" + n + "]"); });
    var size = null;  // the page in points

    function load() {
      if (!file.files.length) { return; }
      var body = new FormData();
      body.append("document", file.files[0]);
      body.append("page", pageInput.value || "1");
      var pw = form.querySelector("input[name=password]");
      if (pw && pw.value) { body.append("password", pw.value); }
      fetch(form.getAttribute("data-placement"), {
        method: "POST", body: body, credentials: "same-origin",
        headers: { "X-CSRFToken": form.querySelector("input[name=csrfmiddlewaretoken]").value }
      }).then(function (r) { return r.ok ? r.json() : Promise.reject(r.status); })
        .then(function (info) {
          size = { w: info.width, h: info.height };
          img.src = info.image;
          holder.hidden = false;
          box.hidden = true;
        })
        .catch(function () { holder.hidden = true; });
    }

    function toPoints(clientX, clientY) {
      var r = img.getBoundingClientRect();
      var x = Math.min(Math.max(clientX - r.left, 0), r.width);
      var y = Math.min(Math.max(clientY - r.top, 0), r.height);
      return { x: x / r.width * size.w, y: size.h - y / r.height * size.h };
    }

    function show(llx, lly, urx, ury) {
      var r = img.getBoundingClientRect();
      box.style.left = (llx / size.w * r.width) + "px";
      box.style.width = ((urx - llx) / size.w * r.width) + "px";
      box.style.top = ((size.h - ury) / size.h * r.height) + "px";
      box.style.height = ((ury - lly) / size.h * r.height) + "px";
      box.hidden = false;
    }

    function place(a, b) {
      var llx, lly, urx, ury;
      if (!b || (Math.abs(a.x - b.x) < MIN_PT && Math.abs(a.y - b.y) < MIN_PT)) {  // a tap: a box centred there
        var half = TAP_SIDE_PT / 2;
        llx = a.x - half; lly = a.y - half; urx = a.x + half; ury = a.y + half;
      } else {
        llx = Math.min(a.x, b.x); urx = Math.max(a.x, b.x); lly = Math.min(a.y, b.y); ury = Math.max(a.y, b.y);
        urx = Math.min(Math.max(urx, llx + MIN_PT), llx + MAX_PT); ury = Math.min(Math.max(ury, lly + MIN_PT), lly + MAX_PT);
      }
      var dx = Math.max(0, -llx) - Math.max(0, urx - size.w), dy = Math.max(0, -lly) - Math.max(0, ury - size.h);
      llx += dx; urx += dx; lly += dy; ury += dy;  // kept inside the page
      var values = { llx: llx, lly: lly, urx: urx, ury: ury };
      Object.keys(values).forEach(function (n) { fields[n].value = Math.round(values[n]); });
      var other = form.querySelector("input[name=preset][value=custom]");
      if (other) { other.checked = true; }
      show(llx, lly, urx, ury);
      if (note) { note.hidden = false; }
    }

    var down = null;
    img.addEventListener("pointerdown", function (e) {
      if (!size) { return; }
      e.preventDefault();
      down = toPoints(e.clientX, e.clientY);
      img.setPointerCapture(e.pointerId);
    });
    img.addEventListener("pointermove", function (e) {
      if (!down) { return; }
      var now = toPoints(e.clientX, e.clientY);
      show(Math.min(down.x, now.x), Math.min(down.y, now.y), Math.max(down.x, now.x), Math.max(down.y, now.y));
    });
    img.addEventListener("pointerup", function (e) {
      if (!down) { return; }
      place(down, toPoints(e.clientX, e.clientY));
      down = null;
    });
    img.addEventListener("dragstart", function (e) { e.preventDefault(); });
    file.addEventListener("change", load);
    pageInput.addEventListener("change", load);
  }
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", start); } else { start(); }
})();

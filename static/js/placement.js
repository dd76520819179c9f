/* Placing the stamp on the storefront: choose a PDF and its page appears with the suggested empty place
   (dashed: what the API's box=auto would pick); tap the page to put the stamp there, or drag a box (mouse
   or finger). A box dropped near the suggestion snaps to it exactly. The box fields of the form are
   filled in, in points from the page's bottom-left corner (with the suggestion as soon as it is known),
   and "another document" is chosen when the stamp is placed. Without this script the same fields are
   typed in, or filled by the form's "find an empty place" button (the fallback). No inline script or
   style: the page's CSP forbids them; positions are set through the CSSOM, in per cent of the page. */
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
    var mark = document.getElementById("placement-suggestion");
    var note = document.getElementById("placement-note");
    var snappedNote = document.getElementById("placement-snapped");
    var problem = document.getElementById("placement-error");
    var snap = parseFloat(form.getAttribute("data-snap")) || 40;
    var fields = {};
    ["llx", "lly", "urx", "ury"].forEach(function (n) { fields[n] = form.querySelector("input[name=" + n + "]"); });
    var size = null;  // the page in points
    var suggested = null;  // [llx, lly, urx, ury] in points
    var retry = null;

    function say(text) {
      if (!problem) { return; }
      problem.textContent = text || "";
      problem.hidden = !text;
    }

    function fill(values, exact) {
      Object.keys(fields).forEach(function (n) {
        if (fields[n]) { fields[n].value = exact ? String(values[n]) : String(Math.round(values[n])); }
      });
    }

    function load() {
      if (!file.files.length) { return; }
      if (retry) { clearTimeout(retry); retry = null; }
      var body = new FormData();
      body.append("document", file.files[0]);
      body.append("page", pageInput.value || "1");
      var pw = form.querySelector("input[name=password]");
      if (pw && pw.value) { body.append("password", pw.value); }
      fetch(form.getAttribute("data-placement"), {
        method: "POST", body: body, credentials: "same-origin",
        headers: { "X-CSRFToken": form.querySelector("input[name=csrfmiddlewaretoken]").value }
      }).then(function (r) {
        if (r.ok) { return r.json(); }
        var wait = parseInt(r.headers.get("Retry-After") || "", 10);
        return r.json().catch(function () { return {}; }).then(function (p) {
          return Promise.reject({ problem: p, wait: r.status === 429 && wait > 0 ? wait : 0 });
        });
      }).then(function (info) {
        say("");
        size = { w: info.width, h: info.height };
        suggested = info.suggested_box || null;
        img.src = info.image;
        holder.hidden = false;
        box.hidden = true;
        if (note) { note.hidden = true; }
        if (snappedNote) { snappedNote.hidden = true; }
        if (suggested) {
          fill({ llx: suggested[0], lly: suggested[1], urx: suggested[2], ury: suggested[3] }, true);
          position(mark, suggested[0], suggested[1], suggested[2], suggested[3]);
        } else {
          mark.hidden = true;
        }
      }).catch(function (failure) {
        holder.hidden = true;
        var p = (failure && failure.problem) || {};
        say([p.title, p.detail].filter(Boolean).join(": "));
        if (failure && failure.wait) { retry = setTimeout(load, failure.wait * 1000); }  // 429: again, once allowed
      });
    }

    function toPoints(clientX, clientY) {
      var r = img.getBoundingClientRect();
      var x = Math.min(Math.max(clientX - r.left, 0), r.width);
      var y = Math.min(Math.max(clientY - r.top, 0), r.height);
      return { x: x / r.width * size.w, y: size.h - y / r.height * size.h };
    }

    function position(el, llx, lly, urx, ury) {  // per cent of the page: stays right when the page is resized
      el.style.left = (llx / size.w * 100) + "%";
      el.style.width = ((urx - llx) / size.w * 100) + "%";
      el.style.top = ((size.h - ury) / size.h * 100) + "%";
      el.style.height = ((ury - lly) / size.h * 100) + "%";
      el.hidden = false;
    }

    function nearSuggestion(llx, lly, urx, ury) {  // the dropped box's centre within `snap` points of it
      if (!suggested) { return false; }
      var cx = (llx + urx) / 2, cy = (lly + ury) / 2;
      return cx >= suggested[0] - snap && cx <= suggested[2] + snap && cy >= suggested[1] - snap && cy <= suggested[3] + snap;
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
      var snapped = nearSuggestion(llx, lly, urx, ury);
      if (snapped) {
        llx = suggested[0]; lly = suggested[1]; urx = suggested[2]; ury = suggested[3];
      } else {
        var dx = Math.max(0, -llx) - Math.max(0, urx - size.w), dy = Math.max(0, -lly) - Math.max(0, ury - size.h);
        llx += dx; urx += dx; lly += dy; ury += dy;  // kept inside the page
      }
      fill({ llx: llx, lly: lly, urx: urx, ury: ury }, snapped);
      var other = form.querySelector("input[name=preset][value=custom]");
      if (other) { other.checked = true; }
      position(box, llx, lly, urx, ury);
      if (note) { note.hidden = snapped; }
      if (snappedNote) { snappedNote.hidden = !snapped; }
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
      position(box, Math.min(down.x, now.x), Math.min(down.y, now.y), Math.max(down.x, now.x), Math.max(down.y, now.y));
    });
    img.addEventListener("pointerup", function (e) {
      if (!down) { return; }
      place(down, toPoints(e.clientX, e.clientY));
      down = null;
    });
    img.addEventListener("pointercancel", function () { down = null; });
    img.addEventListener("dragstart", function (e) { e.preventDefault(); });
    file.addEventListener("change", load);
    pageInput.addEventListener("change", load);
  }
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", start); } else { start(); }
})();

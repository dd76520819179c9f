/* Forms that ask before they are sent: a form with data-confirm="<question>" is submitted only when
   the person answers OK. (An inline onsubmit handler would need 'unsafe-inline' in the
   Content-Security-Policy; this file is served from the site itself.) Without JavaScript the form is
   sent as it is. */
(function () {
  "use strict";
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var question = form && form.getAttribute && form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) { event.preventDefault(); }
  });
})();

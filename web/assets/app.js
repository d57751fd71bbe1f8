// Copy buttons: a button with data-copy="ID" copies the value of the input with that id.
// Everything else on the pages works without this script.
"use strict";
document.addEventListener("click", function (event) {
  var button = event.target.closest("button[data-copy]");
  if (!button) return;
  var field = document.getElementById(button.getAttribute("data-copy"));
  if (!field) return;
  var done = function () { button.textContent = "Copied"; };
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(field.value).then(done, function () { field.select(); });
  } else {
    field.select();
    try { document.execCommand("copy"); done(); } catch (e) { /* selected: copy by hand */ }
  }
});

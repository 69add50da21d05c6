// Progressive enhancement only: every page works without this file.
// After htmx swaps search results in, move focus to their heading so
// screen-reader and keyboard users land on what changed.
document.addEventListener("htmx:afterSwap", function (event) {
  var heading = event.detail.target.querySelector("#results-heading") ||
    document.getElementById("results-heading");
  if (heading) { heading.focus(); }
});
// A form that failed: focus its error summary.
document.addEventListener("DOMContentLoaded", function () {
  var summary = document.querySelector(".error-summary");
  if (summary) { summary.focus(); }
});

// Filters the rows of a table as you type. No dependencies; the pages work without it (the
// search boxes stay hidden and every row shows). A box is a <form data-filter="TABLE-ID">;
// `?q=...` in the address fills it, so a filtered view can be linked.
(function () {
  "use strict";
  function setUp(form) {
    var table = document.getElementById(form.getAttribute("data-filter"));
    if (!table || !table.tBodies.length) return;
    var input = form.querySelector("input");
    var output = form.querySelector("output");
    var rows = Array.prototype.slice.call(table.tBodies[0].rows);
    var texts = rows.map(function (r) { return r.textContent.toLowerCase(); });
    function apply() {
      var words = input.value.toLowerCase().split(/\s+/).filter(Boolean);
      var shown = 0;
      rows.forEach(function (row, i) {
        var hit = words.every(function (w) { return texts[i].indexOf(w) !== -1; });
        row.hidden = !hit;
        if (hit) shown++;
      });
      if (output) output.textContent = words.length ? shown + " of " + rows.length + " shown" : "";
    }
    form.addEventListener("submit", function (e) { e.preventDefault(); apply(); });
    input.addEventListener("input", apply);
    var q = new URLSearchParams(window.location.search).get("q");
    if (q) input.value = q;
    form.hidden = false;
    apply();
  }
  Array.prototype.forEach.call(document.querySelectorAll("form[data-filter]"), setUp);
})();

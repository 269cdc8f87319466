// Refreshes the event's delivery and opt table every two seconds (no page reload).
(function () {
  "use strict";
  var table = document.getElementById("deliveries");
  if (!table) { return; }
  var body = table.querySelector("tbody");
  function cell(text) { var td = document.createElement("td"); td.textContent = text; return td; }
  function code(text) {
    var td = document.createElement("td"), c = document.createElement("code");
    c.textContent = text; td.appendChild(c); return td;
  }
  function draw(data) {
    var rows = data.rows;
    document.getElementById("event-status").textContent = data.status;
    document.getElementById("event-modification").textContent = data.modification_number;
    body.replaceChildren();
    if (rows.length === 0) {
      var tr = document.createElement("tr"), td = cell("No registered VEN is targeted.");
      td.colSpan = 5; tr.appendChild(td); body.appendChild(tr); return;
    }
    rows.forEach(function (row) {
      var tr = document.createElement("tr");
      tr.dataset.ven = row.ven_id;
      tr.appendChild(code(row.ven_id));
      tr.appendChild(cell(row.targeted ? "yes" : "no"));
      tr.appendChild(cell(row.delivered_modification === null ? "not yet" : String(row.delivered_modification)));
      tr.appendChild(cell(row.up_to_date ? "yes" : "no"));
      var opt = cell((row.opt || "no answer yet") + (row.opted_out_later ? " · opted out later" : ""));
      opt.className = "opt";
      tr.appendChild(opt);
      body.appendChild(tr);
    });
  }
  function refresh() {
    fetch(table.dataset.source, { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (r) { if (!r.ok) { throw new Error(r.status); } return r.json(); })
      .then(draw)
      .catch(function () { document.getElementById("live-note").textContent = "(not refreshing: reload the page)"; })
      .finally(function () { window.setTimeout(refresh, 2000); });
  }
  window.setTimeout(refresh, 2000);
})();

// Draws every figure listed in <script type="application/json" id="chart-data"> with plotly.js.
(function () {
  "use strict";
  var source = document.getElementById("chart-data");
  if (!source || typeof Plotly === "undefined") { return; }
  var figures = JSON.parse(source.textContent);
  figures.forEach(function (figure) {
    var target = document.getElementById(figure.id);
    if (target) {
      Plotly.newPlot(target, figure.data, figure.layout, { responsive: true, displaylogo: false });
    }
  });
})();

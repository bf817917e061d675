// Injected by tests/pipeline into a copy of report.html: measures the page as Chromium laid it out, clicks a
// sortable header, and writes what it found as JSON into <pre id="layout-check"> (read back with --dump-dom).
(function () {
  var de = document.documentElement;
  var out = {page_width: de.clientWidth, scroll_width: de.scrollWidth, tables: []};
  document.querySelectorAll("table").forEach(function (t) {
    var r = t.getBoundingClientRect(), w = t.parentElement, wr = w.getBoundingClientRect();
    out.tables.push({width: r.width, right: r.right, wrapped: w.classList.contains("table-wrap"),
                     wrap_width: wr.width, wrap_right: wr.right, sortable: t.classList.contains("sortable"),
                     headers: Array.prototype.map.call(t.tHead ? t.tHead.rows[0].cells : [], function (c) {
                       return c.textContent; })});
  });
  function box(sel) {
    var e = document.querySelector(sel);
    if (!e) return null;
    var r = e.getBoundingClientRect();
    return {top: r.top + window.scrollY, bottom: r.bottom + window.scrollY, width: r.width, text: e.textContent};
  }
  out.summary = box(".summary");
  out.contents = box(".toc");
  out.summary_items = document.querySelectorAll(".summary li").length;
  out.toc_links = Array.prototype.map.call(document.querySelectorAll(".toc a"), function (a) {
    var id = a.getAttribute("href").slice(1);
    return {href: a.getAttribute("href"), target: !!document.getElementById(id), text: a.textContent};
  });
  // sorting: the first column of numbers (data-v) in a table of at least three rows, clicked twice
  out.sort = null;
  var tables = document.querySelectorAll("table.sortable");
  for (var k = 0; k < tables.length && !out.sort; k++) {
    var t = tables[k], rows = t.tBodies[0].rows;
    if (rows.length < 3) continue;
    for (var i = 0; i < rows[0].cells.length; i++) {
      var vals = Array.prototype.map.call(rows, function (r) { return r.cells[i].getAttribute("data-v"); });
      if (vals.some(function (v) { return v === null; }) || new Set(vals).size < 2) continue;
      var th = t.tHead.rows[0].cells[i], read = function () {
        return Array.prototype.map.call(t.tBodies[0].rows, function (r) {
          return parseFloat(r.cells[i].getAttribute("data-v")); });
      };
      th.click(); var asc = read(), ascAttr = th.getAttribute("aria-sort");
      th.click(); var desc = read(), descAttr = th.getAttribute("aria-sort");
      out.sort = {table: k, column: i, asc: asc, desc: desc, asc_attr: ascAttr, desc_attr: descAttr};
      break;
    }
  }
  var pre = document.createElement("pre");
  pre.id = "layout-check";
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
})();

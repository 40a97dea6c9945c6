(function () {
  "use strict";
  var holder = document.getElementById("rows-data");
  var shown = [];
  if (holder) {
    var data = JSON.parse(holder.textContent);
    var head = document.getElementById("rows-head");
    var body = document.getElementById("rows-body");
    var cols = ["id", "variables"].concat(data.raters);
    cols.forEach(function (c) {
      var th = document.createElement("th");
      th.textContent = c;
      head.appendChild(th);
    });
    data.rows.forEach(function (row) {
      var tr = document.createElement("tr");
      if (row.disagree) tr.className = "disagree";
      var cell = function (text, cls) {
        var td = document.createElement("td");
        td.textContent = text;
        if (cls) td.className = cls;
        tr.appendChild(td);
        return td;
      };
      cell(row.id);
      cell(row.vars.map(function (kv) { return kv[0] + ": " + kv[1]; }).join("\n"));
      var hay = [row.id];
      row.vars.forEach(function (kv) { hay.push(kv[1]); });
      data.raters.forEach(function (rater) {
        var a = row.cells.filter(function (c) { return c.rater === rater; })[0];
        if (!a) { cell(""); return; }
        var failed = a.status === "error" ? "err" : (a.score.indexOf("fail") >= 0 ? "fail" : "");
        var td = cell(a.text, failed);
        var meta = document.createElement("span");
        meta.className = "meta";
        meta.textContent = [a.cost, a.score].filter(Boolean).join(" \u00b7 ");
        td.appendChild(meta);
        hay.push(a.text);
      });
      body.appendChild(tr);
      shown.push({ tr: tr, failed: row.failed, disagree: row.disagree, hay: hay.join("\n").toLowerCase() });
    });
  }
  var failedBox = document.getElementById("f-failed");
  var disagreeBox = document.getElementById("f-disagree");
  var search = document.getElementById("f-search");
  var counter = document.getElementById("f-count");
  function apply() {
    var q = search ? search.value.toLowerCase() : "";
    var n = 0;
    shown.forEach(function (r) {
      var ok = (!failedBox.checked || r.failed) && (!disagreeBox.checked || r.disagree) && (!q || r.hay.indexOf(q) >= 0);
      r.tr.hidden = !ok;
      if (ok) n += 1;
    });
    if (counter) counter.textContent = n + " of " + shown.length + " rows";
    return n;
  }
  if (failedBox) {
    [failedBox, disagreeBox].forEach(function (b) { b.addEventListener("change", apply); });
    search.addEventListener("input", apply);
    apply();
  }
  // Test hook: report.html#selftest=WORD runs every filter and writes what it saw.
  var m = /^#selftest(?:=(.*))?$/.exec(location.hash);
  if (m) {
    var out = { rows: shown.length, charts: document.querySelectorAll(".chart svg").length };
    if (failedBox) {
      failedBox.checked = true; out.failed = apply(); failedBox.checked = false;
      disagreeBox.checked = true; out.disagree = apply(); disagreeBox.checked = false;
      search.value = decodeURIComponent(m[1] || ""); out.search = apply(); search.value = ""; apply();
    }
    out.resources = performance.getEntriesByType("resource").length;
    out.errors = window.__orbatch.errors;
    out.violations = window.__orbatch.violations;
    var pre = document.createElement("pre");
    pre.id = "selftest-result";
    pre.textContent = JSON.stringify(out);
    document.body.appendChild(pre);
  }
})();

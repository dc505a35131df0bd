// ckptdiff report page: draws the tree from the embedded JSON payload, rows only as they open.
// Every text goes in through textContent: keys come from files and are never parsed as HTML.
(function () {
  "use strict";
  var started = performance.now();
  var data = JSON.parse(document.getElementById("ckptdiff-data").textContent);
  var MARKS = { error: "\u2717", warning: "!", info: "i", ok: "\u2713", "": "" };
  var PAGE = 200;        // children drawn per batch; "show more" draws the next batch
  var OPEN_BUDGET = 400; // rows drawn at load by opening flagged nodes breadth-first
  var RESULTS = 200;     // search results drawn
  var nodes = [];        // node objects by the index stored on their row (data-n)

  function span(text, cls) {
    var el = document.createElement("span");
    el.className = cls;
    el.textContent = text;
    return el;
  }

  function row(node) {
    var li = document.createElement("li");
    li.className = node.c ? "branch" : "leaf";
    var line = document.createElement("div");
    line.className = node.c ? "row branch" : "row";
    line.dataset.n = String(nodes.push(node) - 1);
    line.appendChild(span(node.c ? "\u25b8" : "", "tog"));
    line.appendChild(span(node.l, "label"));
    if (node.x) line.appendChild(span("\u00d7" + node.x, "fold"));
    if (node.m) line.appendChild(span(MARKS[node.m] || "", "mark m-" + node.m));
    else line.appendChild(span("", "mark"));
    line.appendChild(span(node.d || "", "detail s-" + node.s));
    li.appendChild(line);
    return li;
  }

  function drawChildren(ul, node, from) {
    var end = Math.min(node.c.length, from + PAGE);
    var drawn = [];
    for (var i = from; i < end; i++) {
      var li = row(node.c[i]);
      ul.appendChild(li);
      drawn.push([li, node.c[i]]);
    }
    if (end < node.c.length) {
      var more = document.createElement("button");
      more.className = "more";
      more.textContent = "show " + Math.min(PAGE, node.c.length - end) + " more of " +
        (node.c.length - end);
      more.addEventListener("click", function () {
        more.remove();
        drawChildren(ul, node, end);
      });
      ul.appendChild(more);
    }
    return drawn;
  }

  function toggle(li, node) {
    var ul = li.querySelector(":scope > ul");
    var tog = li.querySelector(":scope > .row > .tog");
    if (ul) {
      ul.hidden = !ul.hidden;
      tog.textContent = ul.hidden ? "\u25b8" : "\u25be";
      return [];
    }
    ul = document.createElement("ul");
    ul.className = "tree";
    li.appendChild(ul);
    tog.textContent = "\u25be";
    return drawChildren(ul, node, 0);
  }

  var treeEl = document.getElementById("tree");
  var top = document.createElement("ul");
  top.className = "tree";
  var rootLi = row(data.tree);
  top.appendChild(rootLi);
  treeEl.appendChild(top);
  treeEl.addEventListener("click", function (event) {
    var line = event.target.closest(".row.branch");
    if (line) toggle(line.parentNode, nodes[Number(line.dataset.n)]);
  });

  // Open what the payload flags (broken branches), breadth-first, until the budget is spent.
  var queue = data.tree.c && data.tree.o ? [[rootLi, data.tree]] : [];
  var drawnRows = 1;
  while (queue.length && drawnRows < OPEN_BUDGET) {
    var next = queue.shift();
    var children = toggle(next[0], next[1]);
    drawnRows += children.length;
    for (var k = 0; k < children.length; k++) {
      if (children[k][1].c && children[k][1].o) queue.push(children[k]);
    }
  }

  // Search: every term must occur in the key (case-insensitive); the first RESULTS are drawn.
  var input = document.getElementById("q");
  var results = document.getElementById("results");
  var count = document.getElementById("count");
  var lowered = null;
  function search() {
    var terms = input.value.toLowerCase().split(/\s+/).filter(Boolean);
    results.textContent = "";
    if (!terms.length) {
      results.hidden = true;
      treeEl.hidden = false;
      count.textContent = data.keys.length + " keys";
      return;
    }
    if (!lowered) lowered = data.keys.map(function (k) { return k[0].toLowerCase(); });
    var ul = document.createElement("ul");
    ul.className = "tree";
    var found = 0;
    for (var i = 0; i < lowered.length; i++) {
      var hit = true;
      for (var t = 0; t < terms.length && hit; t++) hit = lowered[i].indexOf(terms[t]) >= 0;
      if (!hit) continue;
      found++;
      if (found > RESULTS) continue;
      var entry = data.keys[i];
      var status = data.statuses[entry[1]];
      ul.appendChild(row({ l: entry[0], s: status[0], m: status[1], d: data.details[entry[2]] }));
    }
    results.appendChild(ul);
    count.textContent = found + " of " + data.keys.length + " keys match" +
      (found > RESULTS ? " (first " + RESULTS + " shown)" : "");
    results.hidden = false;
    treeEl.hidden = true;
  }
  var timer = null;
  input.addEventListener("input", function () {
    clearTimeout(timer);
    timer = setTimeout(search, data.keys.length > 20000 ? 150 : 30);
  });
  // A #q=... fragment pre-fills the search: links to a key, and a hook for headless tests.
  if (location.hash.indexOf("#q=") === 0) input.value = decodeURIComponent(location.hash.slice(3));
  search();
  document.documentElement.dataset.renderMs = (performance.now() - started).toFixed(1);
  document.documentElement.dataset.loadMs = performance.now().toFixed(1);
})();

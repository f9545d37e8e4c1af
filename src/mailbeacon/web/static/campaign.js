// The campaign page: draws the charts from the embedded report and redraws them, with
// the headline numbers, whenever the live feed (server-sent events) sends a new report.
(function () {
  "use strict";
  var report = JSON.parse(document.getElementById("report-data").textContent);
  var charts = {};
  var DAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
  var COLORS = ["#2f6fed", "#1e7d3a", "#b3261e", "#8a5a00", "#7b3fd0", "#00838f", "#9aa1b1"];

  function entries(obj) { return Object.keys(obj).map(function (k) { return [k, obj[k]]; }); }

  function specs(r) {
    var t = r.over_time;
    return {
      "chart-time": { type: "line", labels: t.hours_since_send.map(function (h) { return h + "h"; }),
        sets: [["Human opens", t.human_opens], ["Clicks", t.clicks], ["Machine opens", t.machine_opens]] },
      "chart-hour": { type: "bar", labels: r.by_hour.map(function (_, h) { return h + ":00"; }),
        sets: [["Human opens", r.by_hour]] },
      "chart-client": { type: "bar", dict: r.by_client },
      "chart-device": { type: "bar", dict: r.by_device },
      "chart-country": { type: "bar", dict: r.by_country }
    };
  }

  function datasets(spec) {
    if (spec.dict) {
      var e = entries(spec.dict).slice(0, 12);
      spec.labels = e.map(function (x) { return x[0]; });
      spec.sets = [["Human opens", e.map(function (x) { return x[1]; })]];
    }
    return spec.sets.map(function (s, i) {
      return { label: s[0], data: s[1], backgroundColor: COLORS[i], borderColor: COLORS[i], tension: 0.25 };
    });
  }

  function draw(r) {
    var all = specs(r);
    Object.keys(all).forEach(function (id) {
      var spec = all[id], sets = datasets(spec), chart = charts[id];
      if (chart) {
        chart.data.labels = spec.labels;
        chart.data.datasets = sets;
        chart.update("none");
        return;
      }
      charts[id] = new Chart(document.getElementById(id), {
        type: spec.type,
        data: { labels: spec.labels, datasets: sets },
        options: { responsive: true, maintainAspectRatio: false, animation: false,
          plugins: { legend: { display: sets.length > 1 } },
          scales: { y: { beginAtZero: true, ticks: { precision: 0 } } } }
      });
    });
    heatmap(r.heatmap);
  }

  function heatmap(rows) {
    var table = document.getElementById("heatmap");
    var max = Math.max.apply(null, [1].concat(rows.map(function (r) { return Math.max.apply(null, r); })));
    table.textContent = "";
    var head = table.insertRow();
    head.appendChild(document.createElement("th"));
    for (var h = 0; h < 24; h++) {
      var th = document.createElement("th"); th.textContent = h; head.appendChild(th);
    }
    rows.forEach(function (row, d) {
      var tr = table.insertRow(), th = document.createElement("th");
      th.textContent = DAYS[d]; tr.appendChild(th);
      row.forEach(function (n, hour) {
        var td = tr.insertCell();
        td.title = DAYS[d] + " " + hour + ":00: " + n + " human opens";
        if (n) { td.textContent = n; td.style.background = "rgba(47,111,237," + (0.15 + 0.85 * n / max) + ")"; }
      });
    });
  }

  function numbers(r) {
    document.querySelectorAll("[data-field]").forEach(function (el) {
      var v = r[el.dataset.field];
      el.textContent = el.dataset.kind === "rate" ? (v * 100).toFixed(1) + "%" : String(v);
    });
    document.querySelectorAll("[data-interval]").forEach(function (el) {
      el.textContent = (r.estimated_open_rate_interval[+el.dataset.interval] * 100).toFixed(1) + "%";
    });
    var unreliable = document.getElementById("estimate-unreliable");
    if (unreliable) {
      unreliable.hidden = r.estimate.reliable;
      document.getElementById("estimate-reason").textContent = r.estimate.reason;
    }
    document.querySelectorAll("[data-reasons]").forEach(function (ul) {
      ul.textContent = "";
      entries(r[ul.dataset.reasons]).forEach(function (e) {
        var li = document.createElement("li"); li.textContent = e[1] + " × " + e[0]; ul.appendChild(li);
      });
    });
    var links = document.querySelector("#links tbody");
    if (r.links.length) {
      links.textContent = "";
      r.links.forEach(function (l) {
        var tr = links.insertRow();
        [l.index, l.url, l.clicks].forEach(function (v) { tr.insertCell().textContent = v; });
      });
    }
  }

  // Who engaged: each list's first page fetched again (an HTML fragment) and swapped
  // in when the report changes, so a new opener shows under "Opened" (and leaves
  // "Not opened") without a reload.
  var refetching = false;
  function refreshEngaged() {
    var lists = Array.prototype.slice.call(document.querySelectorAll("section.engaged[data-engagement]"));
    if (!lists.length || refetching) { return; }
    refetching = true;
    Promise.all(lists.map(function (old) {
      var key = old.dataset.engagement;
      return fetch(window.location.pathname + "/engaged/" + key + "/fragment", { credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
        .then(function (html) {
          var box = document.createElement("div");
          box.innerHTML = html;
          var fresh = box.querySelector("#engaged-" + key);
          var now = document.getElementById("engaged-" + key);
          if (fresh && now) { now.replaceWith(fresh); }
        });
    }))
      .catch(function () { /* the next report tries again */ })
      .then(function () { refetching = false; });
  }

  draw(report);
  if (window.EventSource) {
    var live = document.getElementById("live");
    var source = new EventSource(window.location.pathname + "/live");
    source.addEventListener("report", function (msg) {
      var r = JSON.parse(msg.data);
      numbers(r); draw(r); refreshEngaged();
      live.classList.add("flash");
      setTimeout(function () { live.classList.remove("flash"); }, 600);
    });
  }
})();

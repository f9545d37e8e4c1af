// The campaign page: draws the charts from the embedded report and redraws them, with
// the headline numbers, whenever the live feed (server-sent events) sends a new report.
(function () {
  "use strict";
  var report = JSON.parse(document.getElementById("report-data").textContent);
  var charts = {};
  var DAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
  var COLORS = ["#2f6fed", "#1e7d3a", "#b3261e", "#8a5a00", "#7b3fd0", "#00838f", "#9aa1b1"];

  function entries(obj) { return Object.keys(obj).map(function (k) { return [k, obj[k]]; }); }

  // The report's series are hourly since the send. Two days or less: by hour, labelled
  // with the reader's clock; longer: summed by day, labelled with the date. A series
  // this short draws as bars: a line through one or two points shows nothing.
  var DAY_AFTER_HOURS = 48;

  function sentAt(r) {
    if (!r.sent_at) return null;
    var s = String(r.sent_at);
    var at = new Date(/(Z|[+-]\d\d:?\d\d)$/.test(s) ? s : s + "Z");
    return isNaN(at.getTime()) ? null : at;
  }

  function sum(values, size) {
    var out = [];
    for (var i = 0; i < values.length; i += size) {
      out.push(values.slice(i, i + size).reduce(function (a, b) { return a + b; }, 0));
    }
    return out;
  }

  // A campaign minutes old: the page adds a minute series; wider buckets past an hour.
  function overMinutes(r) {
    var t = r.over_time_minutes, n = t.minutes_since_send.length;
    var size = n > 120 ? 10 : n > 60 ? 5 : 1, start = new Date(t.started_at);
    var fmt = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });
    var labels = sum(t.minutes_since_send.map(function () { return 0; }), size).map(function (_, i) {
      return fmt.format(new Date(start.getTime() + i * size * 60e3));
    });
    var caption = document.getElementById("chart-time-caption");
    if (caption) caption.textContent = "Opens and clicks since the send, by " + (size === 1 ? "minute" : size + " minutes");
    return { type: labels.length <= 3 ? "bar" : "line", labels: labels,
      sets: [["Human opens", sum(t.human_opens, size)], ["Clicks", sum(t.clicks, size)],
             ["Machine opens", sum(t.machine_opens, size)]] };
  }

  function overTime(r) {
    if (r.over_time_minutes) return overMinutes(r);
    var t = r.over_time, hours = t.hours_since_send, sent = sentAt(r);
    var byDay = hours.length > DAY_AFTER_HOURS, size = byDay ? 24 : 1;
    var dayFmt = new Intl.DateTimeFormat(undefined, { month: "short", day: "numeric" });
    var hourFmt = new Intl.DateTimeFormat(undefined, hours.length > 24
      ? { weekday: "short", hour: "2-digit", minute: "2-digit" } : { hour: "2-digit", minute: "2-digit" });
    var labels = sum(hours.map(function () { return 0; }), size).map(function (_, i) {
      if (!sent) return byDay ? "day " + (i + 1) : "+" + i + " h";
      var at = new Date(sent.getTime() + i * size * 3600e3);
      return byDay ? dayFmt.format(at) : hourFmt.format(at);
    });
    var caption = document.getElementById("chart-time-caption");
    if (caption) caption.textContent = "Opens and clicks since the send, by " + (byDay ? "day" : "hour");
    return { type: labels.length <= 3 ? "bar" : "line", labels: labels,
      sets: [["Human opens", sum(t.human_opens, size)], ["Clicks", sum(t.clicks, size)],
             ["Machine opens", sum(t.machine_opens, size)]] };
  }

  function specs(r) {
    return {
      "chart-time": overTime(r),
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
      if (chart && chart.config.type !== spec.type) { chart.destroy(); chart = null; }
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

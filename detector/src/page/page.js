"use strict";
// The detector's live page: polls api/status (relative, so the page also works behind a
// port-forward or a path prefix) and draws it. Every text from the JSON goes in as text
// (textContent, setAttribute), never as markup: detector names come from the spec.
(function () {
  const SVG = "http://www.w3.org/2000/svg";
  const POLL_MS = 2000;
  let selected = null;
  let picked = false;
  let showIdle = false;

  function el(tag, attrs, text) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function svg(tag, attrs, title) {
    const e = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
    if (title !== undefined) e.appendChild(document.createElementNS(SVG, "title")).textContent = title;
    return e;
  }
  function clock(ms) { return new Date(ms).toISOString().slice(11, 19); }
  function stamp(ms) { return new Date(ms).toISOString().slice(0, 19).replace("T", " "); }
  function num(v) {
    if (v === null || v === undefined || Number.isNaN(v)) return "–";
    return Number.isInteger(v) || Math.abs(v) >= 100 ? v.toFixed(0) : v.toFixed(2);
  }
  function ago(ms) {
    const s = Math.max(0, Math.round(ms / 1000));
    return s < 120 ? s + " s" : Math.round(s / 60) + " min";
  }
  function points(rows, columns) {
    return rows.map((row) => Object.fromEntries(columns.map((c, i) => [c, row[i]])));
  }

  // flagged: the last interval was flagged or its episode goes on; no-data: nothing scored
  // yet, or no event in any recent interval (an idle source); normal otherwise.
  function stateOf(d) {
    if (d.points.length === 0 || d.points.every((p) => p.events === 0)) return "no-data";
    const last = d.points[d.points.length - 1];
    return last.grade > 0 || (d.episode && d.episode.open) ? "flagged" : "normal";
  }
  function episodeText(e) {
    if (!e) return "";
    const what = e.intervals + (e.intervals === 1 ? " interval" : " intervals") +
      " · peak " + num(e.peak_grade);
    return (e.open ? "since " + clock(e.start) : "ended " + clock(e.end)) + " · " + what;
  }

  // A chart of value and expected over the intervals, flagged ones marked; `big` adds axes.
  function chart(d, width, height, big) {
    const pad = big ? { l: 44, r: 8, t: 8, b: 20 } : { l: 1, r: 4, t: 3, b: 3 };
    const box = svg("svg", { width, height, viewBox: `0 0 ${width} ${height}`, role: "img",
      "aria-label": d.name + ": recent intervals" });
    const ps = d.points;
    if (ps.length === 0) {
      box.appendChild(svg("text", { x: pad.l + 2, y: height / 2 + 4 })).textContent = "no interval scored yet";
      return box;
    }
    const slots = Math.max(ps.length, big ? 2 : 30);
    const top = Math.max(1, ...ps.map((p) => Math.max(p.value, p.expected))) * 1.1;
    const x = (i) => pad.l + (width - pad.l - pad.r) * (slots - ps.length + i) / Math.max(1, slots - 1);
    const y = (v) => pad.t + (height - pad.t - pad.b) * (1 - v / top);
    if (big) {
      box.appendChild(svg("line", { x1: pad.l, y1: y(0), x2: width - pad.r, y2: y(0), class: "axis" }));
      box.appendChild(svg("text", { x: 4, y: y(top) + 10 })).textContent = num(top);
      box.appendChild(svg("text", { x: 4, y: y(0) })).textContent = "0";
      box.appendChild(svg("text", { x: x(0), y: height - 4 })).textContent = clock(ps[0].start);
      const end = svg("text", { x: width - pad.r, y: height - 4, "text-anchor": "end" });
      end.textContent = clock(ps[ps.length - 1].start) + " UTC";
      box.appendChild(end);
    }
    const step = (width - pad.l - pad.r) / Math.max(1, slots - 1);
    ps.forEach((p, i) => {
      if (p.grade > 0) {
        box.appendChild(svg("rect", { x: x(i) - step / 2, y: pad.t, width: Math.max(step, 2),
          height: height - pad.t - pad.b, class: "band" }));
      }
    });
    const line = (key, cls) => svg("polyline", { class: cls,
      points: ps.map((p, i) => x(i).toFixed(1) + "," + y(p[key]).toFixed(1)).join(" ") });
    box.appendChild(line("expected", "expected"));
    box.appendChild(line("value", "value"));
    ps.forEach((p, i) => {
      if (p.grade > 0) {
        box.appendChild(svg("circle", { cx: x(i), cy: y(p.value), r: big ? 4 : 2.5, class: "flag" },
          clock(p.start) + ": value " + num(p.value) + ", expected " + num(p.expected) +
          ", grade " + num(p.grade)));
      }
    });
    return box;
  }

  function header(s) {
    document.getElementById("instance").textContent = s.instance;
    const lease = document.getElementById("lease");
    const role = s.lease.role;
    lease.className = "badge " + role;
    lease.textContent = role === "active" ? "active · lease generation " + s.lease.generation
      : role === "standby" ? "standby · " + (s.lease.holder ? "lease held by " + s.lease.holder : "waiting for the lease")
        : "starting";
    const ready = document.getElementById("ready");
    ready.className = "badge " + (s.ready ? "ready" : "not-ready");
    ready.textContent = s.ready ? "ready" : "not ready";
    document.getElementById("checkpoint").textContent =
      s.checkpoint_age_seconds === null ? "" : "checkpoint " + ago(s.checkpoint_age_seconds * 1000) + " ago";
    document.getElementById("updated").textContent = "updated " + clock(s.now) + " UTC";
    const checks = document.getElementById("checks");
    checks.replaceChildren(...s.checks.map((c) => el("li", {}, c)));
  }

  // One row per detector: those with data in the spec's order, then those without (with many
  // preset detectors for sources that send nothing, most have none): folded behind one row
  // while any detector has data, unfolded by a click.
  function detectors(ds) {
    const body = document.querySelector("#detectors tbody");
    const row = (d, state) => {
      const last = d.points[d.points.length - 1];
      const tr = el("tr", { "data-detector": d.name, "data-state": state, tabindex: 0 });
      if (d.name === selected) tr.classList.add("selected");
      tr.appendChild(el("td", { class: "dot" })).appendChild(el("span", { title: state }));
      const name = tr.appendChild(el("td", { class: "name" }, d.name));
      if (state === "no-data") name.append(" ", el("span", { class: "tag" }, "no data"));
      tr.appendChild(el("td", { class: "muted" }, d.feature));
      tr.appendChild(el("td", { class: "num value" }, last ? num(last.value) : "–"));
      tr.appendChild(el("td", { class: "num expected" }, last ? num(last.expected) : "–"));
      tr.appendChild(el("td", { class: "num grade" }, last ? num(last.grade) : "–"));
      tr.appendChild(el("td", { class: "spark" })).appendChild(chart(d, 220, 24, false));
      tr.appendChild(el("td", { class: "episode" }, episodeText(d.episode)));
      tr.appendChild(el("td", { class: "num flagged" }, String(d.flagged_total)));
      const pick = () => { selected = d.name; picked = true; draw(); };
      tr.addEventListener("click", pick);
      tr.addEventListener("keydown", (e) => { if (e.key === "Enter") pick(); });
      return tr;
    };
    const states = ds.map((d) => [d, stateOf(d)]);
    const live = states.filter(([, st]) => st !== "no-data");
    const idle = states.filter(([, st]) => st === "no-data");
    const fold = live.length > 0 && idle.length > 0;
    const rows = live.map(([d, st]) => row(d, st));
    if (fold) {
      const tr = el("tr", { class: "fold" });
      const button = tr.appendChild(el("td", { colspan: 9 })).appendChild(el("button", {
        type: "button", id: "fold", "aria-expanded": showIdle },
      (showIdle ? "▾ hide " : "▸ show ") + idle.length +
        (idle.length === 1 ? " detector" : " detectors") + " with no data"));
      button.addEventListener("click", () => { showIdle = !showIdle; draw(); });
      rows.push(tr);
    }
    for (const [d, st] of idle) {
      const tr = row(d, st);
      tr.hidden = fold && !showIdle;
      rows.push(tr);
    }
    body.replaceChildren(...rows);
    const count = (s) => states.filter(([, st]) => st === s).length;
    document.getElementById("summary").textContent =
      ds.length + " · " + count("flagged") + " flagged · " + count("no-data") + " no data";
  }

  function detail(ds) {
    const section = document.getElementById("detail");
    const d = ds.find((x) => x.name === selected);
    section.hidden = !d;
    if (!d) return;
    document.getElementById("detail-title").textContent = d.name + " · " + d.feature + " every " +
      (d.interval_ms >= 60000 ? d.interval_ms / 60000 + " min" : d.interval_ms / 1000 + " s") +
      " · " + d.scored + " intervals scored, " + d.flagged_total + " flagged";
    const width = Math.max(400, Math.min(1100, section.clientWidth - 30));
    document.getElementById("chart").replaceChildren(chart(d, width, 200, true));
    const rows = d.flagged.slice().reverse().map((p) => {
      const tr = el("tr", { "data-start": p.start });
      tr.appendChild(el("td", {}, stamp(p.start)));
      for (const k of ["value", "expected", "grade", "confidence"]) tr.appendChild(el("td", { class: "num" }, num(p[k])));
      tr.appendChild(el("td", { class: "num" }, String(p.events)));
      return tr;
    });
    document.querySelector("#flagged tbody").replaceChildren(...rows);
    document.getElementById("no-flagged").hidden = rows.length > 0;
  }

  function alerts(list) {
    const rows = list.slice().reverse().map((a) => {
      const tr = el("tr", { "data-key": a.key, "data-channel": a.channel, "data-outcome": a.outcome });
      tr.appendChild(el("td", {}, stamp(a.at)));
      tr.appendChild(el("td", {}, a.channel));
      tr.appendChild(el("td", { class: "monitor" }, a.monitor));
      tr.appendChild(el("td", {}, a.detector));
      tr.appendChild(el("td", {}, a.kind));
      const outcome = a.outcome === "delivered"
        ? "delivered" + (a.failed_attempts ? " after " + a.failed_attempts + " failed" : "")
        : "failed ×" + a.failed_attempts + (a.error ? ": " + a.error : "") + " (retrying)";
      tr.appendChild(el("td", { class: "outcome-" + a.outcome }, outcome));
      tr.appendChild(el("td", { class: "muted", title: a.key }, a.key.slice(0, 12) + "…"));
      return tr;
    });
    document.querySelector("#alerts tbody").replaceChildren(...rows);
    document.getElementById("no-alerts").hidden = rows.length > 0;
  }

  let last = null;
  function draw() {
    if (!last) return;
    const ds = last.detectors.map((d) => Object.assign({}, d, {
      points: points(d.intervals, last.columns), flagged: points(d.flagged, last.columns) }));
    if (!picked) {
      // Until someone picks one: the detector flagged last, else the first with data.
      const latest = (d) => (d.flagged.length ? d.flagged[d.flagged.length - 1].start : -1);
      const flagged = ds.filter((d) => d.flagged.length).sort((a, b) => latest(b) - latest(a));
      const shown = flagged[0] || ds.find((d) => stateOf(d) !== "no-data");
      selected = shown ? shown.name : null;
    }
    header(last);
    detectors(ds);
    detail(ds);
    alerts(last.alerts);
  }

  async function poll() {
    const problem = document.getElementById("problem");
    try {
      const response = await fetch("api/status", { cache: "no-store" });
      if (!response.ok) throw new Error("HTTP " + response.status);
      last = await response.json();
      problem.hidden = true;
      draw();
    } catch (err) {
      problem.textContent = "Cannot reach the detector (" + err.message + "); retrying every " +
        POLL_MS / 1000 + " s. The last data stays shown.";
      problem.hidden = false;
    }
    setTimeout(poll, POLL_MS);
  }
  poll();
})();

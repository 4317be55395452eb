/* The Monitoring tab: asks this server's POST /drift (all models, or the one chosen) and
 * draws, per model, its drift status in words, each feature's reference-vs-live histogram
 * (inline SVG, drawn here: no library), the test with its score and threshold, the predicted
 * labels' shares, and live accuracy or RMSE over time from feedback. Uses app.js's helpers
 * (el, $, callApi, submit, percent); it loads when the tab is shown and on Refresh. */
"use strict";

const SVG = "http://www.w3.org/2000/svg"; // the SVG namespace's name, not a download
const MODEL_NAMES = {
  credit_health: "Credit health",
  iris: "Iris species",
  book_rating: "Book rating",
  mask_classifier: "Face mask",
};
const STATUS_TITLES = {
  ok: "No drift",
  drift: "Drift",
  collecting: "Collecting",
  no_reference: "No reference",
};
const TESTS = {
  // the test's name, and whether a lower score means more drift
  ks: ["Kolmogorov-Smirnov p-value", true],
  chi_square: ["chi-square p-value", true],
  wasserstein: ["Wasserstein distance / reference std", false],
  jensen_shannon: ["Jensen-Shannon distance", false],
  psi: ["population stability index", false],
};
const PLOT = { width: 320, height: 150, bottom: 22, left: 4 };

/** An SVG element with attributes and children. */
function svgEl(tag, attributes = {}, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, String(value));
  node.append(...children.filter((child) => child !== null && child !== undefined));
  return node;
}

function titled(node, text) {
  node.append(svgEl("title", {}, text));
  return node;
}

/** Four significant digits, as people read a score; "—" for none. */
function figure(value) {
  if (value === null || value === undefined) return "—";
  return String(Number(Number(value).toPrecision(4)));
}

function statusSentence(report) {
  const window = report.window;
  const drifting = report.features.filter((f) => f.drifted).length;
  const of = `${drifting} of ${report.features.length} features drift`;
  switch (report.status) {
    case "ok":
      return `Fewer than half of the features differ from the training data (${of}).`;
    case "drift":
      return `At least half of the features differ from the training data (${of}): check what clients send, or retrain.`;
    case "collecting":
      return `${window.filled} of ${window.min_samples} live answers so far: drift is tested once ${window.min_samples} have arrived.`;
    default:
      return "This version was stored without statistics of its training data, so drift cannot be tested; nothing is guessed.";
  }
}

/** Reference and live shares side by side per bin or category, on one scale. Binned: numeric
 * features, an image embedding's components and a numeric prediction (all carry the
 * reference's decile edges); the others are categories. */
function histogram(feature) {
  const binned = Array.isArray(feature.reference.edges);
  const names = binned
    ? feature.reference.counts.map((_, i) => `${figure(feature.reference.edges[i])} to ${figure(feature.reference.edges[i + 1])}`)
    : Object.keys(feature.live.categories);
  const sharesOf = (side) => {
    if (!binned) return names.map((name) => side.categories[name] || 0);
    const total = side.counts.reduce((a, b) => a + b, 0) || 1;
    return side.counts.map((count) => count / total);
  };
  const reference = sharesOf(feature.reference);
  const live = sharesOf(feature.live);
  const top = Math.max(1e-9, ...reference, ...live);
  const { width, height, bottom, left } = PLOT;
  const step = (width - 2 * left) / Math.max(1, names.length);
  const base = height - bottom;
  const plot = svgEl("svg", {
    viewBox: `0 0 ${width} ${height}`,
    class: "histogram",
    role: "img",
    "aria-label": `${feature.feature}: share of reference (grey) and live (blue) values per ${binned ? "reference decile" : "category"}`,
    "data-feature": feature.feature,
  });
  plot.append(svgEl("line", { x1: left, y1: base, x2: width - left, y2: base, class: "axis" }));
  names.forEach((name, i) => {
    [
      ["reference", reference[i], binned ? feature.reference.counts[i] : null],
      ["live", live[i], binned ? feature.live.counts[i] : null],
    ].forEach(([side, share, count], j) => {
      const tall = ((base - 8) * share) / top;
      const bar = svgEl("rect", {
        class: side,
        x: (left + i * step + 1 + (j * step) / 2).toFixed(1),
        y: (base - tall).toFixed(1),
        width: Math.max(1, step / 2 - 2).toFixed(1),
        height: tall.toFixed(1),
        "data-share": share,
      });
      if (count !== null) bar.setAttribute("data-count", count);
      plot.append(titled(bar, `${name}: ${side} ${percent(share)}${count !== null ? ` (${count})` : ""}`));
    });
  });
  const ticks = binned
    ? [
        [0, feature.reference.edges[0], "start"],
        [0.5, feature.reference.edges[Math.floor(names.length / 2)], "middle"],
        [1, feature.reference.edges[names.length], "end"],
      ].map(([where, edge, anchor]) => [where, figure(edge), anchor])
    : names.map((name, i) => [(i + 0.5) / names.length, name.slice(0, 12), "middle"]);
  for (const [where, text, anchor] of ticks) {
    const x = (left + where * (width - 2 * left)).toFixed(1);
    plot.append(svgEl("text", { x, y: height - 6, "text-anchor": anchor }, text));
  }
  return plot;
}

function featureCard(feature) {
  const [test, lowerDrifts] = TESTS[feature.test] || [feature.test, false];
  return el(
    "figure",
    { class: "feature", "data-feature": feature.feature, "data-drifted": String(feature.drifted) },
    histogram(feature),
    el(
      "figcaption",
      {},
      el("strong", { text: feature.feature.replaceAll("_", " ") }),
      " ",
      el("span", {
        class: `verdict-word ${feature.drifted ? "drifted" : "stable"}`,
        text: feature.drifted ? "drifted" : "stable",
      }),
      el(
        "span",
        { class: "test", "data-score": feature.score, "data-threshold": feature.threshold },
        `${test} ${figure(feature.score)}: drifts ${lowerDrifts ? "below" : "above"} ${figure(feature.threshold)}`,
      ),
    ),
  );
}

function shiftSentence(predictions) {
  return el("p", {
    class: "shift",
    text: `Prediction shift ${figure(predictions.shift)} (Jensen-Shannon distance: 0 the same shares, 1 none in common).`,
  });
}

/** A numeric prediction (the book rating): its histogram over the reference's deciles. */
function predictionHistogram(predictions) {
  const predicted = { feature: "predicted_rating", reference: predictions.reference, live: predictions.live };
  return el(
    "div",
    { class: "predictions" },
    el("figure", { class: "feature", "data-feature": "predicted_rating" }, histogram(predicted), el("figcaption", { text: "Predicted ratings" })),
    shiftSentence(predictions),
  );
}

function predictionTable(predictions) {
  if (Array.isArray(predictions.reference.edges)) return predictionHistogram(predictions);
  const labels = [...new Set([...Object.keys(predictions.reference), ...Object.keys(predictions.live)])];
  if (!labels.length) return null;
  const cell = (share) => el("td", { class: "number", text: share === undefined ? "—" : percent(share) });
  return el(
    "div",
    { class: "predictions" },
    el(
      "table",
      {},
      el("caption", { text: "Predicted labels" }),
      el("thead", {}, el("tr", {}, ...["Label", "Training data", "Live"].map((h) => el("th", { scope: "col", text: h })))),
      el(
        "tbody",
        {},
        ...labels.map((label) =>
          el(
            "tr",
            { "data-label": label },
            el("th", { scope: "row", text: label }),
            cell(predictions.reference[label]),
            cell(predictions.live[label]),
          ),
        ),
      ),
    ),
    shiftSentence(predictions),
  );
}

/** Live accuracy or RMSE after each feedback, as a line; the latest value in words. */
function feedbackView(feedback) {
  const kind = feedback.rmse !== null ? "rmse" : "accuracy";
  if (!feedback.count) {
    return el("p", {
      class: "feedback none",
      text: "No feedback yet: send the true label (or rating) of an answer to POST /feedback with its prediction_id.",
    });
  }
  const value = feedback[kind];
  const words =
    kind === "rmse"
      ? `Live RMSE ${figure(value)} (rating points) over the last ${feedback.count} feedback ratings.`
      : `Live accuracy ${percent(value)} over the last ${feedback.count} feedback labels.`;
  const points = feedback.history;
  const { width, height, bottom } = PLOT;
  const pad = 28;
  const highest = kind === "rmse" ? Math.max(1e-9, ...points.map((p) => p.value)) : 1;
  const x = (i) => pad + (i * (width - 2 * pad)) / Math.max(1, points.length - 1);
  const y = (v) => height - bottom - ((height - bottom - 10) * v) / highest;
  const label = kind === "rmse" ? "Live RMSE after each feedback rating" : "Live accuracy after each feedback label";
  const chart = svgEl("svg", { viewBox: `0 0 ${width} ${height}`, class: "history", role: "img", "aria-label": label });
  chart.append(
    svgEl("line", { x1: pad, y1: y(0), x2: width - pad, y2: y(0), class: "axis" }),
    svgEl("text", { x: 2, y: y(highest) + 4 }, kind === "rmse" ? figure(highest) : "100%"),
    svgEl("text", { x: 2, y: y(0) + 4 }, kind === "rmse" ? "0" : "0%"),
  );
  if (points.length) {
    chart.append(
      svgEl("text", { x: pad, y: height - 6 }, points[0].time.slice(11, 19)),
      svgEl("text", { x: width - pad, y: height - 6, "text-anchor": "end" }, points[points.length - 1].time.slice(11, 19)),
    );
  }
  if (points.length > 1) {
    const line = points.map((p, i) => `${x(i).toFixed(1)},${y(p.value).toFixed(1)}`).join(" ");
    chart.append(svgEl("polyline", { points: line, class: "line" }));
  }
  points.forEach((p, i) => {
    const dot = svgEl("circle", { cx: x(i).toFixed(1), cy: y(p.value).toFixed(1), r: 3, "data-value": p.value });
    chart.append(titled(dot, `${p.time}: ${kind === "rmse" ? figure(p.value) : percent(p.value)}`));
  });
  return el("div", { class: "feedback" }, el("p", { class: "feedback-value", "data-value": value, text: words }), chart);
}

function modelView(report) {
  const title = MODEL_NAMES[report.model] || report.model;
  const headingId = `monitoring-${report.model}`;
  const window = report.window;
  const logging = report.logging;
  const features = report.features.length
    ? el(
        "div",
        {},
        el(
          "p",
          { class: "key" },
          el("span", { class: "swatch reference", "aria-hidden": "true" }),
          "training data ",
          el("span", { class: "swatch live", "aria-hidden": "true" }),
          "live",
        ),
        el("div", { class: "features" }, ...report.features.map(featureCard)),
      )
    : null;
  return el(
    "article",
    { class: "monitored", "data-model": report.model, "data-status": report.status, "aria-labelledby": headingId },
    el("h3", { id: headingId, text: title }),
    el(
      "p",
      { class: "status-line" },
      el("span", { class: `badge status-${report.status}`, text: STATUS_TITLES[report.status] || report.status }),
      " ",
      el("span", { class: "status-sentence", text: statusSentence(report) }),
    ),
    el(
      "p",
      { class: "answered-by" },
      report.version ? "Version " : "No answer yet",
      report.version ? el("code", { text: report.version }) : null,
      ` · window ${window.filled} of ${window.size} answers · payloads logged ${logging.logged}, dropped ${logging.dropped} (sampling ${percent(logging.sample_rate)})`,
    ),
    features,
    predictionTable(report.predictions),
    el("h4", { text: report.model === "book_rating" ? "Live RMSE" : "Live accuracy" }),
    feedbackView(report.feedback),
  );
}

function showMonitoring(answer) {
  show($("monitoring-result"), ...answer.models.map(modelView));
}

function refreshMonitoring() {
  const form = $("monitoring-form");
  const model = form.elements.model.value;
  submit(form, () => callApi("drift", model ? { model } : {}), showMonitoring);
}

document.addEventListener("DOMContentLoaded", () => {
  const form = $("monitoring-form");
  const panel = $("panel-monitoring");
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    refreshMonitoring();
  });
  form.elements.model.addEventListener("change", refreshMonitoring);
  const whenShown = () => {
    if (!panel.hidden) refreshMonitoring();
  };
  new MutationObserver(whenShown).observe(panel, { attributes: true, attributeFilter: ["hidden"] });
  whenShown();
});

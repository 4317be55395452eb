/* Explanations on the web page: a "Why?" button under each answer that asks the model's
 * explain_* endpoint (same request as the answer's) and shows attributions as bars, the book
 * rating's largest terms as a short list, or the heat map over the photo; and each model's
 * held-out calibration. Uses app.js's helpers (el, $, callApi, numbersOf, percent, photo);
 * its only hook is this file's <script> tag: it watches the result boxes app.js fills. */
"use strict";

const EXPLAINED = {
  credit: { endpoint: "explain_credit", model: "credit_health" },
  iris: { endpoint: "explain_iris", model: "iris" },
  books: { endpoint: "explain_book_rating", model: "book_rating" },
  mask: { endpoint: "explain_mask", model: "mask_classifier" },
};

function requestOf(tab) {
  const form = $(`${tab}-form`);
  if (tab === "mask") {
    const body = new FormData();
    body.append("image", photo.blob, photo.name);
    return body;
  }
  const body = numbersOf(form);
  if (tab === "books") body.isbn = form.elements.isbn.value.trim();
  return body;
}

function attributionBars(features) {
  const largest = Math.max(1e-12, ...features.map((f) => Math.abs(f.attribution)));
  return el(
    "ul",
    { class: "bars attributions" },
    ...features.map((f) => {
      const fill = el("span", { class: `fill ${f.attribution >= 0 ? "for" : "against"}` });
      fill.style.width = `${(Math.abs(f.attribution) / largest) * 100}%`;
      return el(
        "li",
        { "data-feature": f.feature },
        el("span", { class: "bar-label", text: f.feature.replaceAll("_", " ") }),
        el("span", { class: "bar", "aria-hidden": "true" }, fill),
        el("span", { class: "bar-value", text: `${f.attribution >= 0 ? "+" : ""}${f.attribution.toFixed(2)}` }),
      );
    }),
  );
}

function explanationView(tab, explanation) {
  if (!explanation.available) {
    const why = explanation.fallback
      ? `No breakdown: ${explanation.fallback} answered (${explanation.reason.replaceAll("_", " ")}).`
      : `No explanation for this version: ${explanation.reason}`;
    return el("p", { class: "explanation-unavailable", text: why });
  }
  if (tab === "books") {
    return el(
      "div",
      {},
      el("p", { text: "What moved the rating most:" }),
      el("ol", { class: "terms" }, ...explanation.top.map((t) => el("li", { text: t.sentence }))),
    );
  }
  if (tab === "mask") {
    // A blob: URL, not data: (the page's content security policy allows blob: images).
    const bytes = Uint8Array.from(atob(explanation.overlay_png), (c) => c.charCodeAt(0));
    const src = URL.createObjectURL(new Blob([bytes], { type: "image/png" }));
    return el("img", { class: "heat-map", alt: "Where the network looked, over the photo", src });
  }
  return el(
    "div",
    {},
    el("p", { text: "Each measurement's push towards the answer (vs. a typical one):" }),
    attributionBars(explanation.features),
  );
}

async function calibrationLine(model) {
  try {
    const served = await callApi("models", {});
    const entry = served.models.find((m) => m.tag.startsWith(`${model}:`));
    const calibration = entry && entry.calibration;
    if (!calibration) return null;
    return el("p", {
      class: "calibration",
      text: `Calibration on held-out data: expected calibration error ${percent(calibration.ece)} over ${calibration.holdout_rows} examples.`,
    });
  } catch {
    return null;
  }
}

function offerExplanation(tab) {
  const box = $(`${tab}-result`);
  if (!box.firstChild || box.querySelector(".explain")) return;
  const panel = el("div", { class: "explanation", "aria-live": "polite" });
  const button = el("button", { type: "button", class: "explain", text: "Why?" });
  button.addEventListener("click", async () => {
    button.disabled = true;
    panel.replaceChildren(el("p", { text: "Explaining…" }));
    try {
      const answer = await callApi(EXPLAINED[tab].endpoint, requestOf(tab));
      const calibration = await calibrationLine(EXPLAINED[tab].model);
      panel.replaceChildren(explanationView(tab, answer.explanation), calibration);
    } catch (error) {
      panel.replaceChildren(el("p", { class: "explanation-unavailable", text: String(error.message || error) }));
    } finally {
      button.disabled = false;
    }
  });
  box.append(button, panel);
}

document.addEventListener("DOMContentLoaded", () => {
  for (const tab of Object.keys(EXPLAINED)) {
    const box = $(`${tab}-result`);
    new MutationObserver(() => offerExplanation(tab)).observe(box, { childList: true });
  }
});

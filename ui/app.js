"use strict";
/* The bundle's web page: each form calls the bundle's own API (POST /<endpoint>, one level
   above /ui/) and shows the answer, or the server's objection next to the field it names.
   Plain DOM, no framework, no build step; server data is only ever set as text. */

const KEY_STORAGE = "model_bundle.api_key";
const PLACEHOLDER_COVER = "cover-placeholder.svg";
const TABS = ["books", "mask", "credit", "iris", "monitoring"];
const SUGGESTIONS = 5;
const RECOMMENDATIONS = 10;

const $ = (id) => document.getElementById(id);

/** An element with properties, attributes (data-*, aria-*, role) and children. */
function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(props)) {
    if (name === "class") node.className = value;
    else if (name === "text") node.textContent = value;
    else if (name === "role" || name.startsWith("aria-") || name.startsWith("data-")) {
      node.setAttribute(name, value);
    } else node[name] = value;
  }
  node.append(...children.filter((child) => child !== null && child !== undefined));
  return node;
}

/* ---------------------------------------------------------------- the API key */

let apiKey = "";

function loadApiKey() {
  try {
    apiKey = sessionStorage.getItem(KEY_STORAGE) || "";
  } catch {
    apiKey = ""; // storage disabled: the key lives as long as the page
  }
  $("api-key").value = apiKey;
  $("api-key-form").addEventListener("submit", (event) => event.preventDefault());
  $("api-key").addEventListener("input", (event) => {
    apiKey = event.target.value.trim();
    clearFieldError(event.target);
    try {
      if (apiKey) sessionStorage.setItem(KEY_STORAGE, apiKey);
      else sessionStorage.removeItem(KEY_STORAGE);
    } catch {
      /* storage disabled: keep the key in memory only */
    }
  });
}

/* ---------------------------------------------------------------- calling the API */

/** A failed call: a message for people, and the fields it concerns ({name, loc, message}). */
class ApiError extends Error {
  constructor(message, fields = [], keyProblem = false) {
    super(message);
    this.fields = fields;
    this.keyProblem = keyProblem;
  }
}

const FIELD_MESSAGES = {
  missing: "Required.",
  float_type: "Enter a number.",
  int_type: "Enter a whole number.",
  finite_number: "Enter a finite number.",
  string_type: "Enter text.",
  extra_forbidden: "Not a field of this form.",
};

function sentence(text) {
  const trimmed = String(text || "Not accepted").trim();
  return /[.!?]$/.test(trimmed) ? trimmed : `${trimmed}.`;
}

function seconds(value) {
  const number = Number(value);
  return Number.isFinite(number) && number > 0 ? `${Math.ceil(number)} s` : "a moment";
}

/** What a refused call means, in words; never the raw body. */
function describeFailure(response, body) {
  const status = response.status;
  const serverText = body && typeof body.error === "string" ? body.error : "";
  if (status === 400 || status === 422) {
    const detail = body && Array.isArray(body.detail) ? body.detail : [];
    const fields = detail.map((problem) => {
      const loc = Array.isArray(problem.loc) ? problem.loc : [];
      return {
        name: loc.length ? String(loc[0]) : "",
        loc,
        message: FIELD_MESSAGES[problem.type] || sentence(problem.msg),
      };
    });
    if (fields.length) return new ApiError("Please correct the marked fields.", fields);
    return new ApiError(`The server did not accept the input: ${sentence(serverText)}`);
  }
  if (status === 401) {
    return new ApiError("API key missing or wrong: paste a valid key into the API key field.", [], true);
  }
  if (status === 403) return new ApiError("This API key may not use this model.", [], true);
  if (status === 413) return new ApiError(`The upload is too large: ${sentence(serverText)}`);
  if (status === 415) return new ApiError("The server does not accept this kind of upload.");
  if (status === 429) {
    const wait = seconds(response.headers.get("Retry-After"));
    return new ApiError(`Too many requests: please wait ${wait} and try again.`);
  }
  if (status === 503) {
    return new ApiError("The model is busy or restarting: please try again in a moment.");
  }
  if (status >= 500) {
    return new ApiError(`The server failed (HTTP ${status}). Please try again later.`);
  }
  return new ApiError(`The request failed (HTTP ${status}${serverText ? `: ${serverText}` : ""}).`);
}

/** POST a JSON object or a FormData to one of the bundle's endpoints; the parsed answer. */
async function callApi(endpoint, body) {
  const headers = {};
  if (apiKey) {
    if (!/^[\x21-\x7e]+$/.test(apiKey)) {
      throw new ApiError("An API key holds only letters, digits and punctuation.", [], true);
    }
    headers["X-API-Key"] = apiKey;
  }
  let payload = body;
  if (!(body instanceof FormData)) {
    headers["Content-Type"] = "application/json";
    payload = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(new URL(`../${endpoint}`, document.baseURI), {
      method: "POST",
      headers,
      body: payload,
    });
  } catch {
    throw new ApiError("Cannot reach the server: check the connection and try again.");
  }
  let answer = null;
  try {
    answer = await response.json();
  } catch {
    answer = null;
  }
  if (!response.ok) throw describeFailure(response, answer);
  if (answer === null) throw new ApiError("The server's answer could not be read.");
  return answer;
}

/* ---------------------------------------------------------------- forms and their errors */

function describedBy(input, id, present) {
  const ids = new Set((input.getAttribute("aria-describedby") || "").split(/\s+/).filter(Boolean));
  if (present) ids.add(id);
  else ids.delete(id);
  if (ids.size) input.setAttribute("aria-describedby", [...ids].join(" "));
  else input.removeAttribute("aria-describedby");
}

function clearFieldError(input) {
  input.removeAttribute("aria-invalid");
  const message = $(`${input.id}-error`);
  if (message) message.remove();
  describedBy(input, `${input.id}-error`, false);
}

function markField(input, message) {
  const id = `${input.id}-error`;
  let note = $(id);
  if (!note) {
    note = el("p", { class: "field-error", id });
    input.closest(".field").append(note);
  }
  note.textContent = message;
  input.setAttribute("aria-invalid", "true");
  describedBy(input, id, true);
}

function clearErrors(form) {
  for (const input of form.querySelectorAll("[aria-invalid]")) clearFieldError(input);
  clearFieldError($("api-key"));
  const summary = form.querySelector(".form-error");
  summary.hidden = true;
  summary.textContent = "";
}

/** Each problem next to its field; problems of no field of this form, and the overall
    message, in the form's alert line. The first marked field gets the focus. */
function showErrors(form, error) {
  const elsewhere = [];
  let first = null;
  for (const problem of error.fields) {
    const input = problem.name ? form.elements.namedItem(problem.name) : null;
    if (input && input.closest && input.closest(".field")) {
      markField(input, problem.message);
      first = first || input;
    } else {
      elsewhere.push(`${problem.loc.join(" › ") || "request"}: ${problem.message}`);
    }
  }
  if (error.keyProblem) {
    markField($("api-key"), error.message);
    first = first || $("api-key");
  }
  const summary = form.querySelector(".form-error");
  summary.textContent = [error.message, ...elsewhere].join(" ");
  summary.hidden = false;
  if (first) first.focus();
}

/** Number inputs as JSON numbers; empty ones left out (the server names them), text the
    browser cannot read as a number refused here. */
function numbersOf(form) {
  const body = {};
  const problems = [];
  for (const input of form.querySelectorAll('input[type="number"]')) {
    if (input.validity.badInput) {
      problems.push({ name: input.name, loc: [input.name], message: "Enter a number." });
    } else if (input.value.trim() !== "") {
      body[input.name] = Number(input.value);
    }
  }
  if (problems.length) throw new ApiError("Please correct the marked fields.", problems);
  return body;
}

/** Run one call for a form: errors cleared, busy state, a newer call wins over an older one. */
async function submit(form, call, show) {
  const ticket = (form.ticket = (form.ticket || 0) + 1);
  clearErrors(form);
  form.setAttribute("aria-busy", "true");
  try {
    const answer = await call();
    if (ticket === form.ticket) show(answer);
  } catch (error) {
    if (ticket !== form.ticket) return;
    showErrors(form, error instanceof ApiError ? error : new ApiError(`Unexpected: ${error}`));
  } finally {
    if (ticket === form.ticket) form.removeAttribute("aria-busy");
  }
}

/* ---------------------------------------------------------------- shared result pieces */

function percent(p) {
  if (p > 0 && p < 0.001) return "<0.1%";
  return `${(p * 100).toFixed(1)}%`;
}

/** Label, bar and percentage per class; the most likely one highlighted. */
function probabilityBars(probabilities, nameOf = (label) => label) {
  const entries = Object.entries(probabilities);
  const best = Math.max(...entries.map(([, p]) => p));
  return el(
    "ul",
    { class: "bars" },
    ...entries.map(([label, p]) => {
      const fill = el("span", { class: "fill" });
      fill.style.width = `${Math.max(0, Math.min(1, p)) * 100}%`;
      return el(
        "li",
        { class: p === best ? "top" : "", "data-label": label },
        el("span", { class: "bar-label", text: nameOf(label) }),
        el("span", { class: "bar", "aria-hidden": "true" }, fill),
        el("span", { class: "bar-value", text: percent(p) }),
      );
    }),
  );
}

function answeredBy(model) {
  return el("p", { class: "answered-by" }, "Answered by ", el("code", { text: model }));
}

function show(box, ...children) {
  box.replaceChildren(...children);
}

/* ---------------------------------------------------------------- books */

function isWebUrl(url) {
  if (typeof url !== "string") return false;
  try {
    return ["http:", "https:"].includes(new URL(url).protocol);
  } catch {
    return false;
  }
}

/** The placeholder until the cover has loaded; it stays when there is no http(s) URL, the
    image fails, or it is a 1-pixel stand-in. data-cover says which. */
function cover(url, title) {
  const image = el("img", {
    class: "cover",
    src: PLACEHOLDER_COVER,
    alt: title ? `Cover of ${title}` : "No cover",
    width: 80,
    height: 120,
    "data-cover": isWebUrl(url) ? "loading" : "missing",
  });
  if (isWebUrl(url)) {
    const probe = new Image();
    probe.referrerPolicy = "no-referrer";
    probe.onload = () => {
      if (probe.naturalWidth > 1) {
        image.referrerPolicy = "no-referrer";
        image.src = url;
        image.dataset.cover = "loaded";
      } else image.dataset.cover = "unavailable";
    };
    probe.onerror = () => {
      image.dataset.cover = "unavailable";
    };
    probe.src = url;
  }
  return image;
}

function stars(rating) {
  const shown = Math.round(rating * 10) / 10;
  const node = el("span", {
    class: "stars",
    role: "img",
    "aria-label": `${shown} out of 10`,
    text: "★★★★★",
  });
  node.style.setProperty("--fill", `${Math.max(0, Math.min(10, rating)) * 10}%`);
  return node;
}

function ratingLine(rating, words) {
  return el(
    "p",
    { class: "rating" },
    stars(rating),
    " ",
    el("strong", { class: "rating-value", text: rating.toFixed(1) }),
    ` / 10 ${words}`,
  );
}

const COLD_START = {
  unknown_user:
    "The model does not know this user, so this is the book's average rating, not a personal prediction.",
  unknown_book:
    "The model does not know this book, so this is the average of all ratings, not a personal prediction.",
  unknown_user_and_book:
    "The model knows neither this user nor this book, so this is the average of all ratings.",
};

/** Recommended or suggested books, each with a button that rates it for the user. */
function bookList(books) {
  return el(
    "ol",
    { class: "books" },
    ...books.map((book) =>
      el(
        "li",
        { "data-isbn": book.isbn },
        cover(book.image_url, book.title),
        el(
          "div",
          { class: "book-text" },
          el("p", { class: "book-title", text: book.title || `ISBN ${book.isbn}` }),
          el("p", { class: "byline", text: book.author || "Unknown author" }),
          ratingLine(book.predicted_rating, "predicted"),
          el("button", {
            type: "button",
            class: "link rate-this",
            text: "Rate this book",
            "data-isbn": book.isbn,
            "aria-label": `Rate ${book.title || `ISBN ${book.isbn}`} for this user`,
          }),
        ),
      ),
    ),
  );
}

function showRating(answer) {
  const book = answer.book;
  const title = book && book.title ? book.title : "A book not in the catalogue";
  const facts = book ? [book.author, book.year, book.publisher].filter(Boolean).join(" · ") : "";
  const article = el(
    "article",
    { class: "book" },
    cover(book ? book.image_url : null, book ? book.title : null),
    el(
      "div",
      { class: "book-text" },
      el("h3", { class: "book-title", text: title }),
      el("p", { class: "byline", text: facts || `ISBN ${answer.isbn}` }),
      book && book.summary ? el("p", { class: "summary", text: book.summary }) : null,
      ratingLine(answer.rating, answer.cold_start ? "(an average)" : "predicted rating"),
    ),
  );
  const parts = [article];
  if (answer.cold_start) {
    const suggestions = el("div", { class: "suggestions" }, el("p", { text: "Loading suggestions…" }));
    parts.push(
      el(
        "div",
        { class: "notice cold-start", role: "status" },
        el("p", {}, el("strong", { text: "Cold start. " }), COLD_START[answer.reason] || ""),
        el("h4", { text: "Suggested books" }),
        suggestions,
      ),
    );
    suggest(answer.user_id, suggestions);
  }
  parts.push(answeredBy(answer.model));
  show($("books-result"), ...parts);
  show($("books-recommendations"));
}

async function suggest(userId, box) {
  try {
    const answer = await callApi("recommend_books", { user_id: userId, k: SUGGESTIONS });
    show(box, bookList(answer.books));
  } catch (error) {
    show(box, el("p", { class: "field-error", text: `No suggestions: ${error.message}` }));
  }
}

function showRecommendations(answer) {
  const heading = answer.cold_start
    ? `Popular books: the model does not know user ${answer.user_id}`
    : `Top ${answer.books.length} for user ${answer.user_id}`;
  show(
    $("books-recommendations"),
    el("h3", { text: heading }),
    bookList(answer.books),
    answeredBy(answer.model),
  );
  show($("books-result"));
}

function setUpBooks() {
  const form = $("books-form");
  const pair = () => {
    const body = numbersOf(form);
    const isbn = form.elements.isbn.value.trim();
    if (isbn) body.isbn = isbn;
    return body;
  };
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    submit(form, () => callApi("rate_book", pair()), showRating);
  });
  $("books-recommend").addEventListener("click", () => {
    const forUser = () => {
      const { user_id } = numbersOf(form);
      return callApi("recommend_books", { user_id, k: RECOMMENDATIONS });
    };
    submit(form, forUser, showRecommendations);
  });
  $("panel-books").addEventListener("click", (event) => {
    const button = event.target.closest(".rate-this");
    if (!button) return;
    form.elements.isbn.value = button.dataset.isbn;
    form.requestSubmit();
    form.elements.isbn.focus();
  });
}

/* ---------------------------------------------------------------- face mask */

const MASK_WORDS = {
  mask: { title: "Mask", wear: "worn", incorrect: "worn incorrectly", not_worn: "not worn" },
  gender: { title: "Gender", male: "male", female: "female" },
  age: { title: "Age", "<30": "under 30", "30-59": "30 to 59", ">=60": "60 or over" },
};

let photo = null; // {blob, name}: what the next classification sends
let camera = null; // the live MediaStream while the camera is on

function setPhoto(blob, name) {
  photo = { blob, name };
  const preview = $("mask-preview");
  if (preview.src.startsWith("blob:")) URL.revokeObjectURL(preview.src);
  preview.src = URL.createObjectURL(blob);
  preview.hidden = false;
}

function showMask(answer) {
  const words = (attribute, label) => MASK_WORDS[attribute][label] || label;
  const summary = `Mask ${words("mask", answer.mask)}, ${words("gender", answer.gender)}, ${words("age", answer.age)}`;
  const groups = Object.keys(MASK_WORDS).map((attribute) =>
    el(
      "div",
      { class: "attribute", "data-attribute": attribute },
      el("h4", { text: MASK_WORDS[attribute].title }),
      probabilityBars(answer.marginals[attribute] || {}, (label) => words(attribute, label)),
    ),
  );
  show(
    $("mask-result"),
    el("p", { class: "verdict", text: summary }),
    el(
      "p",
      { class: "confidence" },
      "Confidence in this combination: ",
      el("strong", { text: percent(answer.confidence) }),
    ),
    ...groups,
    answeredBy(answer.model),
  );
}

function classifyPhoto() {
  const form = $("mask-form");
  submit(
    form,
    () => {
      if (!photo) {
        throw new ApiError("Choose or take a photo first.", [
          { name: "image", loc: ["image"], message: "Choose a photo." },
        ]);
      }
      const body = new FormData();
      body.append("image", photo.blob, photo.name);
      return callApi("classify_mask", body);
    },
    showMask,
  );
}

function stopCamera() {
  if (camera) for (const track of camera.getTracks()) track.stop();
  camera = null;
  const video = $("camera-video");
  video.srcObject = null;
  video.hidden = true;
  $("camera-snap").hidden = true;
  $("camera-stop").hidden = true;
  $("camera-start").hidden = false;
}

async function startCamera() {
  const form = $("mask-form");
  clearErrors(form);
  try {
    camera = await navigator.mediaDevices.getUserMedia({ video: { facingMode: "user" }, audio: false });
  } catch (error) {
    showErrors(
      form,
      new ApiError(`The camera is not available (${error.name}): allow it, or choose a photo instead.`),
    );
    return;
  }
  const video = $("camera-video");
  video.srcObject = camera;
  video.hidden = false;
  await video.play();
  $("camera-start").hidden = true;
  $("camera-snap").hidden = false;
  $("camera-stop").hidden = false;
  $("camera-snap").focus();
}

function snapPhoto() {
  const video = $("camera-video");
  const canvas = el("canvas", { width: video.videoWidth, height: video.videoHeight });
  canvas.getContext("2d").drawImage(video, 0, 0);
  stopCamera();
  canvas.toBlob(
    (blob) => {
      setPhoto(blob, "camera.jpg");
      classifyPhoto();
    },
    "image/jpeg",
    0.9,
  );
}

function setUpMask() {
  const form = $("mask-form");
  const input = form.elements.image;
  $("mask-preview").addEventListener("error", (event) => {
    event.target.hidden = true; // not an image the browser can show; the server says why
  });
  input.addEventListener("change", () => {
    if (!input.files.length) return;
    setPhoto(input.files[0], input.files[0].name);
    classifyPhoto();
  });
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    classifyPhoto();
  });
  const media = navigator.mediaDevices;
  if (window.isSecureContext && media && typeof media.getUserMedia === "function") {
    $("mask-camera").hidden = false;
    $("camera-start").addEventListener("click", startCamera);
    $("camera-snap").addEventListener("click", snapPhoto);
    $("camera-stop").addEventListener("click", stopCamera);
  }
}

/* ---------------------------------------------------------------- credit and iris */

function showCredit(answer) {
  const healthy = answer.label === "healthy";
  show(
    $("credit-result"),
    el(
      "p",
      { class: `verdict ${healthy ? "good" : "bad"}` },
      healthy ? "Healthy" : "Unhealthy",
      el("span", { class: "verdict-probability", text: ` ${percent(answer.probability)}` }),
    ),
    probabilityBars(answer.probabilities, (label) => (label === "healthy" ? "Healthy" : "Unhealthy")),
    answeredBy(answer.model),
  );
}

function showIris(answer) {
  show(
    $("iris-result"),
    el(
      "p",
      { class: "verdict" },
      `Iris ${answer.species}`,
      el("span", { class: "verdict-probability", text: ` ${percent(answer.probability)}` }),
    ),
    probabilityBars(answer.probabilities, (label) => `Iris ${label}`),
    answeredBy(answer.model),
  );
}

function setUpNumbers(formId, showAnswer) {
  const form = $(formId);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    submit(form, () => callApi(form.dataset.endpoint, numbersOf(form)), showAnswer);
  });
}

/* ---------------------------------------------------------------- tabs */

function selectTab(name, focus = false) {
  for (const tab of TABS) {
    const selected = tab === name;
    $(`tab-${tab}`).setAttribute("aria-selected", String(selected));
    $(`tab-${tab}`).tabIndex = selected ? 0 : -1;
    $(`panel-${tab}`).hidden = !selected;
  }
  if (focus) $(`tab-${name}`).focus();
  if (name !== "mask") stopCamera();
  if (location.hash !== `#${name}`) history.replaceState(null, "", `#${name}`);
}

function setUpTabs() {
  const list = document.querySelector('[role="tablist"]');
  list.addEventListener("click", (event) => {
    const tab = event.target.closest('[role="tab"]');
    if (tab) selectTab(tab.id.replace("tab-", ""));
  });
  list.addEventListener("keydown", (event) => {
    const current = TABS.indexOf(document.activeElement.id.replace("tab-", ""));
    if (current < 0) return;
    const moves = {
      ArrowRight: (current + 1) % TABS.length,
      ArrowLeft: (current + TABS.length - 1) % TABS.length,
      Home: 0,
      End: TABS.length - 1,
    };
    if (!(event.key in moves)) return;
    event.preventDefault();
    selectTab(TABS[moves[event.key]], true);
  });
  const fromHash = () => TABS.find((tab) => location.hash === `#${tab}`) || TABS[0];
  window.addEventListener("hashchange", () => selectTab(fromHash()));
  selectTab(fromHash());
}

/* ---------------------------------------------------------------- start */

function start() {
  for (const help of document.querySelectorAll(".field .help")) {
    const input = help.closest(".field").querySelector("input");
    help.id = help.id || `${input.id}-help`;
    describedBy(input, help.id, true);
  }
  loadApiKey();
  setUpTabs();
  setUpBooks();
  setUpMask();
  setUpNumbers("credit-form", showCredit);
  setUpNumbers("iris-form", showIris);
}

start();

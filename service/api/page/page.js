// The page's client of the service's public API: GET /models, each model's rollout,
// POST /classify-image and POST /sentiment (with their explanations, on request), and a loaded
// version's card files. It doubles as an example client, so it uses nothing a script of one's own
// could not (no private routes, no build step).

// The API key, when the service asks for one. Kept in this variable only (never in storage),
// so it is gone when the page is closed or reloaded.
let apiKey = null;

// What each error status means, in words a person trying a model can act on.
const STATUS_WORDS = {
  400: "Could not be read",
  401: "Needs a valid API key",
  404: "Not found",
  405: "Not allowed",
  413: "Too large",
  415: "Not accepted",
  422: "Not valid input",
  500: "The model call failed",
  503: "The service is busy or not ready",
  504: "The service took too long",
};
const MAX_TOP_K = 5;

class ApiError extends Error {
  constructor(status, message, accepted = null, retryAfter = null) {
    super(message);
    this.status = status;
    this.accepted = accepted;
    this.retryAfter = retryAfter;
  }
}

async function callApi(path, init = {}) {
  const headers = new Headers(init.headers || {});
  if (apiKey) headers.set("Authorization", `Bearer ${apiKey}`);
  let response;
  try {
    response = await fetch(path, { ...init, headers, cache: "no-store" });
  } catch (error) {
    throw new ApiError(0, `the service could not be reached (${error.message})`);
  }
  if (response.ok) return response;
  // The service's errors are {"error": {"code", "message", "accepted"}}; a proxy in front may
  // answer something else, so every part of it is optional.
  let detail = {};
  try {
    const body = await response.json();
    if (body && typeof body.error === "object" && body.error !== null) detail = body.error;
  } catch {
    // Not JSON: the status line alone has to do.
  }
  throw new ApiError(response.status, detail.message || response.statusText || "no details given",
    detail.accepted || null, response.headers.get("Retry-After"));
}

function sentence(text) {
  return /[.!?]$/.test(text) ? text : `${text}.`;
}

function describeError(error, { withAccepted = true } = {}) {
  if (!(error instanceof ApiError)) return `Something went wrong in this page: ${sentence(error.message)}`;
  if (error.status === 0) return `${sentence(error.message)} Check that it is running, then try again.`;
  const words = STATUS_WORDS[error.status] || "Refused";
  let text = `${words} (HTTP ${error.status}): ${sentence(error.message)}`;
  if (error.accepted && withAccepted) text += ` Accepted: ${sentence(error.accepted)}`;
  if (error.retryAfter) text += ` Try again in ${error.retryAfter} s.`;
  return text;
}

function element(tag, className = "", text = "") {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text) node.textContent = text;
  return node;
}

function percent(value) {
  return `${(value * 100).toFixed(1)} %`;
}

// A table with a caption and column headings, each row headed by its first cell. Cells are
// text, or a <td> built by the caller.
function table(className, caption, headings, rows) {
  const node = element("table", className);
  const head = element("tr");
  head.append(...headings.map((text) => {
    const cell = element("th", "", text);
    cell.scope = "col";
    return cell;
  }));
  const thead = element("thead");
  thead.append(head);
  const tbody = element("tbody");
  for (const [first, ...rest] of rows) {
    const row = element("tr");
    const header = element("th", "", first);
    header.scope = "row";
    row.append(header, ...rest.map((cell) => (cell instanceof Node ? cell : element("td", "", cell))));
    tbody.append(row);
  }
  node.append(element("caption", "", caption), thead, tbody);
  return node;
}

// A <dl> of [term, value] pairs; a value is text or nodes.
function definitions(className, pairs) {
  const list = element("dl", className);
  for (const [term, ...value] of pairs) {
    const definition = element("dd");
    definition.append(...value);
    list.append(element("dt", "", term), definition);
  }
  return list;
}

function setStatus(text, isError = false) {
  const status = document.getElementById("status");
  status.textContent = text;
  status.classList.toggle("error", isError);
}

// --- Probability bars ----------------------------------------------------------------------

// One row per label, highest first; the bar is decoration, the text carries the figure.
function bars(entries) {
  const list = element("ol", "bars");
  entries.sort((a, b) => b.probability - a.probability);
  entries.forEach(({ label, probability }, index) => {
    const row = element("li", index === 0 ? "bar-row top" : "bar-row");
    row.dataset.label = label;
    row.append(element("span", "bar-label", label));
    const track = element("span", "bar-track");
    track.setAttribute("aria-hidden", "true");
    const fill = element("span", "bar-fill");
    // A CSSOM property, not a style attribute: the page's CSP allows no inline styles.
    fill.style.width = percent(probability).replace(" ", "");
    track.append(fill);
    row.append(track, element("span", "bar-value", percent(probability)));
    list.append(row);
  });
  return list;
}

function answeredBy(body, milliseconds) {
  return element("p", "answered-by",
    `Answered by ${body.model} version ${body.version} in ${Math.round(milliseconds)} ms.`);
}

function showError(results, error) {
  showMessage(results, describeError(error));
}

function showMessage(results, text) {
  results.replaceChildren(element("p", "message error", text));
  results.dataset.state = "error";
}

// --- A model's rollout (GET /models/{name}/rollout) ------------------------------------------

// Each gate status as a sign and a word, so that it never rests on colour alone.
const GATE_STATUS = { pass: "✓ pass", fail: "✗ fail", unknown: "? unknown", off: "– off" };
const ratio = (value) => `${value.toFixed(2)}×`;
const psi = (value) => value.toFixed(3);
// What each gate measures, which side of its limit passes (service/rollout/gates.py), and how
// its figures read. A gate this page does not know yet is shown by its own name.
const GATES = {
  agreement: { name: "Agreement with stable", side: "at least", format: percent },
  error_rate: { name: "Error rate", side: "at most", format: percent },
  p99_ratio: { name: "p99 latency against stable's", side: "at most", format: ratio },
  drift_vs_stable: { name: "Label drift against stable (PSI)", side: "at most", format: psi },
  drift_vs_reference: { name: "Label drift against the card's reference (PSI)", side: "at most", format: psi },
};

function describeMode(policy) {
  if (policy.mode === "shadow") return `shadow: gets a copy of ${percent(policy.weight)} of unpinned requests`;
  if (policy.mode === "canary") return `canary: answers ${percent(policy.weight)} of unpinned requests`;
  return "off: takes no traffic";
}

function rollbackRecord(rollback) {
  const when = element("time", "", rollback.at);
  when.dateTime = rollback.at;
  return [`candidate ${rollback.candidate}, gate ${rollback.gate}: ${rollback.reason}; at `, when, ` by ${rollback.by}`];
}

// Four columns, the detail beside the status, so that the table fits a phone's width.
function gateTable(gates) {
  return table("rollout-table gates", "Gates, judged on the candidate's recent requests",
    ["Gate", "Status", "Value", "Limit"],
    gates.map((gate) => {
      const known = GATES[gate.gate] || { name: gate.gate, side: "", format: String };
      const status = element("td");
      status.append(element("span", `gate-status status-${gate.status}`, GATE_STATUS[gate.status] || gate.status),
        gate.detail ? `: ${gate.detail}` : "");
      return [known.name, status, gate.value === null ? "none" : known.format(gate.value),
        gate.limit === null ? "none" : `${known.side} ${known.format(gate.limit)}`.trim()];
    }));
}

// The figures are kept for the policy's versions only: stable and the candidate.
function versionTable(rollout) {
  const policy = rollout.policy;
  return table("rollout-table versions", `Live figures of process ${rollout.process} (each serving process keeps its own)`,
    ["Version", "Requests", "Errors", "p99 (ms)"],
    Object.entries(rollout.versions).map(([version, figures]) => [
      `${version} (${Number(version) === policy.stable ? "stable" : "candidate"}${figures.loaded ? "" : ", not loaded"})`,
      String(figures.requests), String(figures.errors), figures.p99_ms === null ? "none" : figures.p99_ms.toFixed(1)]));
}

function renderRollout(section, rollout) {
  const policy = rollout.policy;
  const facts = [["State", rollout.state],
    ["Serving version", rollout.serving === null ? "none loaded" : String(rollout.serving)]];
  if (policy) {
    if (policy.stable !== rollout.serving) facts.push(["Stable version", `${policy.stable} (not loaded)`]);
    facts.push(["Candidate", policy.candidate === null ? "none" : String(policy.candidate)],
      ["Mode and share", describeMode(policy)]);
    if (policy.rollback) facts.push(["Rolled back", ...rollbackRecord(policy.rollback)]);
  }
  const shadow = rollout.shadow;
  if (shadow) {
    facts.push(["Shadow agreement", shadow.agreement === null ? "no copy compared yet" :
      `${percent(shadow.agreement)} of ${shadow.compared_inputs} inputs; top-1 probabilities differ by ` +
      `${shadow.mean_top1_difference.toFixed(3)} on average`],
    ["Shadow copies", `${shadow.copies} answered, ${shadow.dropped} dropped because the shadow queue was full`]);
  }
  const parts = [definitions("rollout-facts", facts)];
  if (rollout.policy_error) {
    parts.push(element("p", "message error",
      `The policy file cannot be used, so the last good policy stays in force: ${sentence(rollout.policy_error)}`));
  }
  if (rollout.gates.length) parts.push(gateTable(rollout.gates));
  if (policy && Object.keys(rollout.versions).length) parts.push(versionTable(rollout));
  section.querySelector(".rollout-body").replaceChildren(...parts);
  section.dataset.state = rollout.state;
}

async function loadRollout(section, model) {
  try {
    const rollout = await (await callApi(`/models/${encodeURIComponent(model.name)}/rollout`)).json();
    renderRollout(section, rollout);
  } catch (error) {
    section.querySelector(".rollout-body").replaceChildren(element("p", "message error", describeError(error)));
    section.dataset.state = "error";
  }
}

// --- Explanations (docs/explanations.md) ----------------------------------------------------

// Orange for "toward the label", blue for "away from it": a pair that stays apart for the common
// colour-vision deficiencies. A word's shading is the panel's white mixed with its colour by the
// word's share of the text's largest weight; at full strength the text's colour still has over 8:1
// contrast on either, so a shaded word reads as well as the rest. The heatmap uses the saturated
// versions (over pixels, not under text), at most this opaque so the image stays visible.
const WORD_TOWARD = [246, 178, 107];
const WORD_AWAY = [142, 186, 229];
const HEAT_TOWARD = [213, 94, 0];
const HEAT_AWAY = [0, 114, 178];
const HEAT_MAX_ALPHA = 0.8;

// Weights are shown to three decimals; one that rounds to zero there is shown as no effect rather
// than as a direction it does not really have.
function direction(weight) {
  if (Math.abs(weight) < 0.0005) return "none";
  return weight > 0 ? "toward" : "away";
}

function describeWeight(weight, label) {
  const way = direction(weight);
  if (way === "none") return "weight 0.000, no effect";
  return way === "toward" ? `weight +${weight.toFixed(3)}, toward ${label}` : `weight ${weight.toFixed(3)}, away from ${label}`;
}

function largestMagnitude(weights) {
  return weights.reduce((largest, weight) => Math.max(largest, Math.abs(weight)), 0);
}

function mixWithWhite(colour, share) {
  return `rgb(${colour.map((channel) => Math.round(255 - (255 - channel) * share)).join(", ")})`;
}

// Two swatches and their meaning; the swatches repeat the words, so they are hidden from assistive tech.
function legend(label, kind) {
  const list = element("ul", `legend legend-${kind}`);
  for (const [way, words] of [["toward", `pushes toward ${label}`], ["away", `pushes away from ${label}`]]) {
    const item = element("li");
    const swatch = element("span", `swatch swatch-${kind} ${way}`);
    swatch.setAttribute("aria-hidden", "true");
    item.append(swatch, words);
    list.append(item);
  }
  return list;
}

// The service gives offsets in code points (Python's string indices); JavaScript's strings count
// UTF-16 units, in which an emoji is two. offsets[i] is where code point i starts in `text`.
function utf16Offsets(text) {
  const offsets = [0];
  for (const character of text) offsets.push(offsets[offsets.length - 1] + character.length);
  return offsets;
}

// The text as typed, each word the model saw in a <mark> shaded by its weight, with the weight in
// words after it for assistive tech (and on hover). Characters in no word (spaces, punctuation the
// model dropped) are plain text. Everything is set as text: the typed text never becomes markup.
function shadedText(text, explanation) {
  const quote = element("blockquote", "explained-text");
  const offsets = utf16Offsets(text);
  const largest = largestMagnitude(explanation.tokens.map((token) => token.weight));
  let shown = 0;
  for (const token of explanation.tokens) {
    // Nothing in the API promises that two words never share characters: a word that starts inside
    // the one before it is shaded from where that one ends (perhaps on nothing), and keeps its
    // weight in words all the same.
    const start = Math.max(offsets[token.start], shown);
    const end = Math.max(offsets[token.end], start);
    const way = direction(token.weight);
    const word = element("mark", `word ${way}`, text.slice(start, end));
    word.dataset.weight = String(token.weight);
    word.title = `${token.text}: ${describeWeight(token.weight, explanation.label)}`;
    if (way !== "none") {
      word.style.backgroundColor = mixWithWhite(way === "toward" ? WORD_TOWARD : WORD_AWAY,
        Math.abs(token.weight) / largest);
    }
    quote.append(text.slice(shown, start), word,
      element("span", "visually-hidden", ` (${describeWeight(token.weight, explanation.label)})`));
    shown = end;
  }
  quote.append(text.slice(shown));
  return quote;
}

function textExplanation(text, explanation) {
  const parts = [shadedText(text, explanation), legend(explanation.label, "word")];
  if (explanation.tokens.length === 0) {
    parts.push(element("p", "explain-note", "The model saw no words in this text, so there is nothing to shade."));
  } else if (explanation.spans !== null) {
    parts.push(element("p", "explain-note", `This text has more words than are left out one at a time: it was ` +
      `left out in ${explanation.spans} spans of neighbouring words, and the words of a span share its weight.`));
  }
  return parts;
}

// Where, in words, the support for the label is centred: the cells' centre of positive weight.
function whereSupported(saliency) {
  let total = 0;
  let rowSum = 0;
  let columnSum = 0;
  saliency.forEach((row, y) => row.forEach((weight, x) => {
    if (direction(weight) !== "toward") return;
    total += weight;
    rowSum += weight * (y + 0.5);
    columnSum += weight * (x + 0.5);
  }));
  if (total === 0) return null;
  const third = (position, words) => words[Math.min(2, Math.floor(position * 3))];
  const vertical = third(rowSum / total / saliency.length, ["top", "middle", "bottom"]);
  const horizontal = third(columnSum / total / saliency[0].length, ["left", "middle", "right"]);
  return vertical === horizontal ? "the middle" : `the ${vertical} ${horizontal}`;
}

// One canvas pixel per cell, stretched over the image (not its letterbox) with its pixels kept sharp.
function heatmap(explanation, preview, name, id) {
  const saliency = explanation.saliency;
  const canvas = element("canvas", "heatmap");
  canvas.id = id;
  canvas.width = saliency[0].length;
  canvas.height = saliency.length;
  const context = canvas.getContext("2d");
  const largest = largestMagnitude(saliency.flat());
  saliency.forEach((row, y) => row.forEach((weight, x) => {
    const way = direction(weight);
    if (way === "none") return;
    const [red, green, blue] = way === "toward" ? HEAT_TOWARD : HEAT_AWAY;
    context.fillStyle = `rgba(${red}, ${green}, ${blue}, ${(HEAT_MAX_ALPHA * Math.abs(weight) / largest).toFixed(3)})`;
    context.fillRect(x, y, 1, 1);
  }));
  const where = whereSupported(saliency);
  canvas.setAttribute("role", "img");
  canvas.setAttribute("aria-label", `Heatmap over ${name}: ` + (where ?
    `what supports ${explanation.label} is centred on ${where} of the image.` :
    `no part of the image supports ${explanation.label} more than grey would.`));
  const place = () => {
    // The preview is letterboxed (object-fit: contain); the grid covers the image as the model saw it.
    const scale = Math.min(preview.clientWidth / preview.naturalWidth, preview.clientHeight / preview.naturalHeight);
    const width = preview.naturalWidth * scale;
    const height = preview.naturalHeight * scale;
    canvas.style.width = `${width}px`;
    canvas.style.height = `${height}px`;
    canvas.style.left = `${(preview.clientWidth - width) / 2}px`;
    canvas.style.top = `${(preview.clientHeight - height) / 2}px`;
    canvas.dataset.placed = "true";
  };
  if (preview.complete && preview.naturalWidth) place();
  else preview.addEventListener("load", place, { once: true });
  return canvas;
}

function heatmapToggle(canvas, name) {
  const field = element("div", "explain-field heatmap-toggle");
  const box = element("input");
  box.type = "checkbox";
  box.id = `${canvas.id}-shown`;
  box.checked = true;
  box.setAttribute("aria-controls", canvas.id);
  const label = element("label", "", "Show the heatmap");
  label.htmlFor = box.id;
  label.append(element("span", "visually-hidden", ` over ${name}`));
  box.addEventListener("change", () => { canvas.hidden = !box.checked; });
  field.append(box, label);
  return field;
}

// The explain checkbox shows for a chosen version that can explain, and a sentence for one that cannot.
function explainControl(form, idPrefix) {
  const field = form.querySelector(".explain-field");
  const box = field.querySelector("input");
  box.id = `${idPrefix}-explain`;
  field.querySelector("label").htmlFor = box.id;
  const unavailable = form.querySelector(".explain-unavailable");
  return {
    wanted: () => !field.hidden && box.checked,
    showFor: (version) => {
      field.hidden = !version.explains;
      unavailable.hidden = version.explains;
      unavailable.textContent = version.explains ? "" : `Version ${version.version} cannot explain its answers.`;
    },
  };
}

function faithfulnessTable(card) {
  const faithfulness = card.explanations && card.explanations.faithfulness;
  if (!faithfulness || typeof faithfulness !== "object") return [];
  // The card's figures as they are, nested keys joined: the shape is the card's to choose.
  const rows = [];
  const flatten = (value, path) => {
    if (value && typeof value === "object" && !Array.isArray(value)) {
      for (const [key, inner] of Object.entries(value)) flatten(inner, [...path, key.replaceAll("_", " ")]);
    } else {
      rows.push([path.join(", "), typeof value === "number" && !Number.isInteger(value) ? value.toFixed(3) : String(value)]);
    }
  };
  flatten(faithfulness, []);
  return [table("faithfulness-table", "Explanations' faithfulness (model card)", ["Figure", "Value"], rows)];
}

// --- One model's panel -----------------------------------------------------------------------

function loadedVersions(model) {
  return model.versions.filter((v) => v.card && (v.state === "serving" || v.state === "loaded"))
    .sort((a, b) => b.version - a.version);
}

function renderFigures(panel, version) {
  const card = version.card;
  const figures = panel.querySelector(".figures");
  const evaluation = card.evaluation || {};
  const rows = [
    ["Accuracy", typeof evaluation.accuracy === "number" ? percent(evaluation.accuracy) : "not measured"],
    ["Macro F1", typeof evaluation.macro_f1 === "number" ? evaluation.macro_f1.toFixed(3) : "not measured"],
    ["Measured on", evaluation.split || "not stated"],
    ["Dataset", (card.dataset && card.dataset.name) || "not stated"],
    ["Runtime", version.runtime ? version.runtime.name : "not stated"],
  ];
  figures.replaceChildren(...rows.flatMap(([term, value]) => [element("dt", "", term), element("dd", "", value)]));
  panel.querySelector(".faithfulness").replaceChildren(...faithfulnessTable(card));

  const baselines = panel.querySelector(".baselines");
  const compared = Object.entries(evaluation.comparison_same_split || {})
    .filter(([, figuresOf]) => figuresOf && typeof figuresOf.accuracy === "number");
  if (compared.length === 0) {
    baselines.replaceChildren();
    return;
  }
  baselines.replaceChildren(table("baseline-table", "Baselines on the same split", ["Model", "Accuracy", "Macro F1"],
    compared.map(([name, figuresOf]) => [name.replaceAll("_", " "), percent(figuresOf.accuracy),
      typeof figuresOf.macro_f1 === "number" ? figuresOf.macro_f1.toFixed(3) : "–"])));
}

// The plots are fetched (with the key, which an <img src> could not send) only when opened.
async function renderPlots(panel, model, version) {
  const list = panel.querySelector(".plot-list");
  for (const url of panel.plotUrls || []) URL.revokeObjectURL(url);
  panel.plotUrls = [];
  list.replaceChildren(element("p", "", "Loading the plots…"));
  const base = `/models/${encodeURIComponent(model.name)}/versions/${version}/files`;
  try {
    const { files } = await (await callApi(base)).json();
    const pngs = files.filter((name) => name.toLowerCase().endsWith(".png"));
    if (pngs.length === 0) {
      list.replaceChildren(element("p", "", "This version's card ships no plots."));
      return;
    }
    const figures = await Promise.all(pngs.map(async (name) => {
      const blob = await (await callApi(`${base}/${encodeURIComponent(name)}`)).blob();
      const url = URL.createObjectURL(blob);
      panel.plotUrls.push(url);
      const caption = name.replace(/\.png$/i, "").replaceAll("_", " ");
      const figure = element("figure", "plot");
      const image = element("img");
      image.src = url;
      image.alt = `${caption} of ${model.name} version ${version}`;
      figure.append(image, element("figcaption", "", caption));
      return figure;
    }));
    list.replaceChildren(...figures);
  } catch (error) {
    list.replaceChildren(element("p", "message error", describeError(error)));
  }
}

function selectedVersion(panel) {
  return Number(panel.querySelector(".version-select").value);
}

function versionQuery(panel, model) {
  const version = selectedVersion(panel);
  return version === model.serving_version ? null : version;
}

// A form and its explain control, which the panel shows or hides for the chosen version.
function imageForm(panel, model, idPrefix) {
  const form = document.getElementById("image-form-template").content.firstElementChild.cloneNode(true);
  const explain = explainControl(form, idPrefix);
  const input = form.querySelector("input[type=file]");
  input.id = `${idPrefix}-files`;
  form.querySelector(".drop-zone label").htmlFor = input.id;
  const results = panel.querySelector(".results");
  let previews = [];

  const zone = form.querySelector(".drop-zone");
  zone.addEventListener("dragover", (event) => {
    event.preventDefault();
    zone.classList.add("dragging");
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("dragging"));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("dragging");
    if (event.dataTransfer && event.dataTransfer.files.length) input.files = event.dataTransfer.files;
  });

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const files = [...input.files];
    if (files.length === 0) {
      showMessage(results, "Choose at least one image first.");
      return;
    }
    previews.forEach((url) => URL.revokeObjectURL(url));
    previews = [];
    const query = new URLSearchParams({ model: model.name, top_k: String(Math.min(MAX_TOP_K, model.labels.length)) });
    const version = versionQuery(panel, model);
    if (version !== null) query.set("version", String(version));
    if (explain.wanted()) query.set("explain", "true");
    // One file goes as the raw body with the browser's own type for it, so the service itself
    // judges the type (a TIFF gets its 415); several go as multipart "file" parts.
    const init = { method: "POST" };
    if (files.length === 1) {
      init.body = files[0];
      init.headers = { "Content-Type": files[0].type || "application/octet-stream" };
    } else {
      init.body = new FormData();
      for (const file of files) init.body.append("file", file, file.name);
    }
    results.dataset.state = "busy";
    results.replaceChildren(element("p", "", `Classifying ${files.length === 1 ? "the image" : `${files.length} images`}…`));
    const started = performance.now();
    try {
      const body = await (await callApi(`/classify-image?${query}`, init)).json();
      const elapsed = performance.now() - started;
      const items = element("ul", "image-results");
      body.results.forEach((result, index) => {
        const file = files[index];
        const item = element("li", "image-result");
        const url = URL.createObjectURL(file);
        previews.push(url);
        const preview = element("img", "preview");
        preview.src = url;
        preview.alt = `Preview of ${file.name}`;
        const thumbnail = element("div", "thumbnail");
        thumbnail.append(preview);
        const text = element("div", "image-answer");
        text.append(element("h3", "", `${file.name}: ${result.label} (${percent(result.probability)})`),
          bars(result.top_k.map(({ label, probability }) => ({ label, probability }))));
        if (result.explanation) {
          const canvas = heatmap(result.explanation, preview, file.name, `${idPrefix}-heatmap-${index}`);
          thumbnail.append(canvas);
          text.append(legend(result.explanation.label, "heat"), heatmapToggle(canvas, file.name));
        }
        item.append(thumbnail, text);
        items.append(item);
      });
      results.replaceChildren(items, answeredBy(body, elapsed));
      results.dataset.state = "done";
    } catch (error) {
      showError(results, error);
    }
  });
  return { form, explain };
}

function textForm(panel, model, idPrefix) {
  const form = document.getElementById("text-form-template").content.firstElementChild.cloneNode(true);
  const explain = explainControl(form, idPrefix);
  const area = form.querySelector("textarea");
  area.id = `${idPrefix}-text`;
  form.querySelector("label").htmlFor = area.id;
  const results = panel.querySelector(".results");

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const texts = area.value.split(/\r?\n/).map((line) => line.trim()).filter((line) => line !== "");
    if (texts.length === 0) {
      showMessage(results, "Type a text first.");
      return;
    }
    const request = { texts, model: model.name };
    const version = versionQuery(panel, model);
    if (version !== null) request.version = version;
    if (explain.wanted()) request.explain = true;
    results.dataset.state = "busy";
    results.replaceChildren(element("p", "", `Analysing ${texts.length === 1 ? "the text" : `${texts.length} texts`}…`));
    const started = performance.now();
    try {
      const body = await (await callApi("/sentiment", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(request),
      })).json();
      const elapsed = performance.now() - started;
      const items = element("ul", "text-results");
      body.results.forEach((result, index) => {
        const item = element("li", "text-result");
        // A plain answer quotes the text's start; an explained text is shown whole, since its
        // weights may lie anywhere in it.
        const shown = texts[index].length > 160 ? `${texts[index].slice(0, 160)}…` : texts[index];
        item.append(...(result.explanation ? textExplanation(texts[index], result.explanation) :
          [element("blockquote", "", shown)]), element("h3", "", `${result.label}`),
          bars(Object.entries(result.probabilities).map(([label, probability]) => ({ label, probability }))));
        items.append(item);
      });
      results.replaceChildren(items, answeredBy(body, elapsed));
      results.dataset.state = "done";
    } catch (error) {
      showError(results, error);
    }
  });
  return { form, explain };
}

function modelPanel(model, index) {
  const panel = document.getElementById("model-template").content.firstElementChild.cloneNode(true);
  const idPrefix = `model-${index}`;
  panel.dataset.model = model.name;
  panel.setAttribute("aria-labelledby", `${idPrefix}-name`);
  const heading = panel.querySelector(".model-name");
  heading.id = `${idPrefix}-name`;
  heading.textContent = model.name;

  const versions = loadedVersions(model);
  const isImage = model.task === "image-classification";
  const kind = isImage ? "Image classification" : model.task === "text-classification" ? "Text classification" : model.task;
  panel.querySelector(".model-summary").textContent =
    `${kind}${model.default ? " (the default for its route)" : ""}, ${model.labels.length} labels: ${model.labels.join(", ")}.`;

  const select = panel.querySelector(".version-select");
  select.id = `${idPrefix}-version`;
  panel.querySelector(".version-field label").htmlFor = select.id;
  for (const v of versions) {
    const option = element("option", "", `${v.version}${v.state === "serving" ? " (serving)" : " (loaded)"}`);
    option.value = String(v.version);
    select.append(option);
  }
  select.value = String(model.serving_version);

  const tryArea = panel.querySelector(".try");
  const makeForm = isImage ? imageForm : model.task === "text-classification" ? textForm : null;
  const tried = makeForm ? makeForm(panel, model, idPrefix) : null;
  if (tried) tryArea.append(tried.form);
  else tryArea.append(element("p", "", "This page cannot send inputs to this kind of model yet."));

  const plots = panel.querySelector(".plots");
  const showVersion = () => {
    const chosen = versions.find((v) => v.version === selectedVersion(panel));
    renderFigures(panel, chosen);
    if (tried) tried.explain.showFor(chosen);
    if (plots.open) renderPlots(panel, model, chosen.version);
    else panel.querySelector(".plot-list").replaceChildren();
  };
  select.addEventListener("change", showVersion);
  plots.addEventListener("toggle", () => {
    if (plots.open && !panel.querySelector(".plot-list").childElementCount) {
      renderPlots(panel, model, selectedVersion(panel));
    }
  });
  showVersion();

  // Loaded with the model list, and again on request: the page does not poll.
  const rollout = panel.querySelector(".rollout");
  rollout.querySelector(".rollout-refresh").addEventListener("click", () => loadRollout(rollout, model));
  loadRollout(rollout, model);
  return panel;
}

// --- The page --------------------------------------------------------------------------------

function showKeyForm(error) {
  const section = document.getElementById("key-section");
  const message = document.getElementById("key-message");
  const wasHidden = section.hidden;
  section.hidden = false;
  // Which headers carry a key (the error's "accepted") is the page's business, not the reader's.
  const said = describeError(error, { withAccepted: false });
  message.textContent = apiKey ? `The service refused this key. ${said}` : said;
  message.classList.toggle("error", Boolean(apiKey));
  if (!wasHidden || apiKey) document.getElementById("key-input").select();
}

async function loadModels() {
  setStatus("Loading the models…");
  let models;
  try {
    ({ models } = await (await callApi("/models")).json());
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) {
      showKeyForm(error);
      setStatus("Enter an API key to see the models.");
    } else {
      setStatus(describeError(error), true);
    }
    return false;
  }
  const list = document.getElementById("models");
  list.replaceChildren(...models.map(modelPanel));
  setStatus(models.length === 0 ? "The service has no models loaded." :
    `${models.length} model${models.length === 1 ? "" : "s"} loaded.`);
  return true;
}

function start() {
  document.getElementById("key-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    apiKey = document.getElementById("key-input").value.trim() || null;
    if (await loadModels()) {
      document.getElementById("key-section").hidden = true;
      document.getElementById("models").focus();
    }
  });
  // A last resort: whatever slipped through is shown in words instead of as a console trace.
  window.addEventListener("unhandledrejection", (event) => {
    event.preventDefault();
    setStatus(describeError(event.reason instanceof Error ? event.reason : new Error(String(event.reason))), true);
  });
  loadModels();
}

start();

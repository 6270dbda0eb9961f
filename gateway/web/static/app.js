// The page's only script: send the image(s) to /classify and draw the answer. No framework, no build.
"use strict";

const results = document.getElementById("results");
const statusLine = document.getElementById("status");
const template = document.getElementById("result-template");
const dropZone = document.getElementById("drop-zone");
const fileInput = document.getElementById("file-input");
const urlForm = document.getElementById("url-form");
const urlInput = document.getElementById("url-input");

function card(previewSrc, source) {
  const node = template.content.firstElementChild.cloneNode(true);
  node.querySelector(".preview").src = previewSrc;
  node.querySelector(".source").textContent = source;
  return node;
}

function badge(text, extra) {
  const span = document.createElement("span");
  span.className = "badge" + (extra ? " " + extra : "");
  span.textContent = text;
  return span;
}

function showError(node, error) {
  const line = node.querySelector(".error");
  line.hidden = false;
  line.textContent = error.message + " (" + error.code + ")";
}

function showAnswer(node, answer, timings, requestId) {
  if (answer.error) {
    showError(node, answer.error);
    return;
  }
  const list = node.querySelector(".predictions");
  for (const p of answer.predictions) {
    const item = document.createElement("li");
    item.className = "prediction";
    const label = document.createElement("span");
    label.className = "label";
    label.textContent = p.label;
    label.title = p.label + " (class " + p.index + ")";
    const bar = document.createElement("span");
    bar.className = "bar";
    const fill = document.createElement("span");
    fill.style.width = (p.score * 100).toFixed(1) + "%";
    bar.append(fill);
    const score = document.createElement("span");
    score.className = "score";
    score.textContent = (p.score * 100).toFixed(1) + "%";
    item.append(label, bar, score);
    list.append(item);
  }
  const badges = node.querySelector(".badges");
  badges.append(badge("model: " + answer.model + (answer.model_version ? " v" + answer.model_version : ""), "badge-model"));
  if (answer.fallback) badges.append(badge("fallback: " + answer.fallback_reason, "badge-fallback"));
  if (answer.hedged) badges.append(badge("hedged"));
  if (timings) {
    node.querySelector(".timings").textContent = Object.entries(timings)
      .map(([stage, ms]) => stage + " " + ms.toFixed(1) + " ms").join(" · ") + " · request " + requestId;
  }
}

async function classify(body, headers) {
  const response = await fetch("classify", { method: "POST", body, headers });
  let payload;
  try {
    payload = await response.json();
  } catch {
    payload = { error: { code: "http_" + response.status, message: "the server answered HTTP " + response.status } };
  }
  return payload;
}

async function sendFiles(files) {
  const images = Array.from(files);
  if (!images.length) return;
  const nodes = images.map((file) => card(URL.createObjectURL(file), file.name));
  results.prepend(...nodes);  // newest request first, its images in order
  const form = new FormData();
  for (const file of images) form.append("file", file, file.name);
  statusLine.textContent = "Classifying " + images.length + (images.length > 1 ? " images…" : " image…");
  try {
    const payload = await classify(form);
    render(nodes, payload);
  } catch (failure) {
    nodes.forEach((node) => showError(node, { code: "network_error", message: String(failure) }));
  }
  statusLine.textContent = "";
}

function render(nodes, payload) {
  if (payload.results) {  // a batch: one answer per image, in order
    // model, fallback and timings are the batch's: one backend call answered every image
    payload.results.forEach((answer, i) => showAnswer(nodes[i], answer.error ? answer : { ...payload, ...answer },
                                                      i === 0 ? payload.timings_ms : null, payload.request_id));
  } else if (payload.error) {
    nodes.forEach((node) => showError(node, payload.error));
  } else {
    showAnswer(nodes[0], payload, payload.timings_ms, payload.request_id);
  }
}

urlForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  const url = urlInput.value.trim();
  const node = card(url, url);
  results.prepend(node);
  statusLine.textContent = "Fetching and classifying…";
  try {
    render([node], await classify(JSON.stringify({ url }), { "Content-Type": "application/json" }));
  } catch (failure) {
    showError(node, { code: "network_error", message: String(failure) });
  }
  statusLine.textContent = "";
});

fileInput.addEventListener("change", () => {
  sendFiles(fileInput.files);
  fileInput.value = "";
});

for (const name of ["dragenter", "dragover"]) {
  dropZone.addEventListener(name, (event) => {
    event.preventDefault();
    dropZone.classList.add("dragging");
  });
}
for (const name of ["dragleave", "drop"]) {
  dropZone.addEventListener(name, () => dropZone.classList.remove("dragging"));
}
dropZone.addEventListener("drop", (event) => {
  event.preventDefault();
  sendFiles(event.dataTransfer.files);
});

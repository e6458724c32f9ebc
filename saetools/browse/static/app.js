// saetools browse: one page, views switched by the URL fragment (#search, #feature/N,
// #families, #diff). Document and label text only ever reaches the page as text nodes; the two
// HTML fragments (feature page, diff) are escaped by the server.
"use strict";

const state = { query: "", method: "direct", features: [], steerable: false, timer: null };

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  for (const child of children) {
    if (child !== null && child !== undefined) {
      node.append(typeof child === "string" ? document.createTextNode(child) : child);
    }
  }
  return node;
}

function showError(message) {
  const box = document.getElementById("error");
  box.textContent = message || "";
  box.hidden = !message;
}

async function api(path, params, as) {
  const url = new URL(path, window.location.origin);
  for (const [key, value] of params || []) url.searchParams.append(key, value);
  const response = await fetch(url);
  if (!response.ok) {
    let message = response.statusText;
    try { message = (await response.json()).error || message; } catch (e) { /* not JSON */ }
    showError(message);
    throw new Error(message);
  }
  showError("");
  return as === "text" ? response.text() : response.json();
}

function featureLink(latent, label) {
  return el("a", { href: `#feature/${latent}`, class: "feature-link", "data-latent": latent },
    `${latent}: ${label || "(no label)"}`);
}

function rankNote(result) {
  if (result.was === result.rank) return null;
  if (result.was > 10) return el("span", { class: "new", text: `new (was ${result.was})` });
  const up = result.was > result.rank;
  return el("span", { class: up ? "moved-up" : "moved-down",
    text: `${up ? "▲" : "▼"} from ${result.was}` });
}

function renderResults(data) {
  const list = document.getElementById("results");
  list.replaceChildren();
  for (const result of data.results) {
    const snippet = el("div", { class: "snippet" });
    for (const piece of result.segments) {
      snippet.append(piece.mark ? el("mark", { text: piece.text }) : document.createTextNode(piece.text));
    }
    const feature = result.latent >= 0 ? featureLink(result.latent, result.label) : null;
    list.append(el("li", { class: "result", "data-id": result.id },
      el("span", { class: "doc-id", text: result.id }),
      el("span", { class: "score", text: result.score.toFixed(3) }),
      rankNote(result),
      feature ? el("span", { class: "meta" }, " · ", feature) : null,
      snippet));
  }
  if (!data.results.length) list.append(el("li", { text: "No document matches." }));
  const fidelity = document.getElementById("fidelity");
  fidelity.textContent = data.steers && data.steers.length && data.fidelity !== null
    ? `Steered query: cosine ${data.fidelity.toFixed(3)} to the original query.` : "";
}

function steerParams() {
  return state.features
    .filter((f) => Math.abs(f.value - f.base) > 1e-9)
    .map((f) => ["steer", `${f.latent}:${(f.value - f.base).toFixed(4)}`]);
}

async function runSearch(reset) {
  if (!state.query) return;
  const params = [["q", state.query], ["method", state.method]];
  if (!reset && state.steerable) params.push(...steerParams());
  const data = await api("/api/search", params);
  if (reset) {
    state.features = data.query_features.map((f) => ({
      latent: f.latent, label: f.label, base: f.strength, value: f.strength }));
    renderSliders();
  }
  renderResults(data);
}

function scheduleSearch() {
  clearTimeout(state.timer);
  state.timer = setTimeout(() => runSearch(false).catch(() => {}), 150);
}

function renderSliders() {
  const box = document.getElementById("sliders");
  box.replaceChildren();
  for (const feature of state.features) {
    const value = el("span", { class: "value", text: feature.value.toFixed(2) });
    if (!state.steerable) {
      box.append(el("div", { class: "slider" }, featureLink(feature.latent, feature.label)));
      continue;
    }
    const max = Math.max(2, Math.ceil(feature.base * 1.5));
    const input = el("input", { type: "range", min: "0", max: String(max), step: "0.05",
      value: String(feature.value), id: `slider-${feature.latent}`,
      "aria-label": `strength of feature ${feature.latent}` });
    input.addEventListener("input", () => {
      feature.value = Number(input.value);
      value.textContent = feature.value.toFixed(2);
      scheduleSearch();
    });
    box.append(el("div", { class: "slider", "data-latent": feature.latent },
      el("label", { for: input.id }, featureLink(feature.latent, feature.label), value), input));
  }
  if (!state.features.length) box.append(el("p", { class: "meta", text: "Search first." }));
}

async function matchLabels(text) {
  const list = document.getElementById("label-matches");
  const matches = text.trim() ? await api("/api/labels", [["q", text]]) : [];
  list.replaceChildren();
  for (const match of matches) {
    const add = el("button", { type: "button", class: "add", text: "add",
      "data-latent": match.latent });
    add.addEventListener("click", () => {
      if (!state.features.some((f) => f.latent === match.latent)) {
        state.features.push({ latent: match.latent, label: match.label, base: 0, value: 0 });
        renderSliders();
      }
    });
    list.append(el("li", {}, state.steerable ? add : null, featureLink(match.latent, match.label),
      el("span", { class: "meta", text: ` (${(100 * match.density).toFixed(1)}% of documents)` })));
  }
}

const SVG = "http://www.w3.org/2000/svg";
function svg(tag, attrs, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
  if (text !== undefined) node.textContent = text;
  return node;
}

function shorten(text, n) { return text.length > n ? text.slice(0, n - 1) + "…" : text; }

async function renderFamilies() {
  const box = document.getElementById("families");
  const data = await api("/api/families");
  box.replaceChildren();
  if (!data.parents.length) {
    box.append(el("p", { text: "No family: no latent fires mostly inside a denser one." }));
    return;
  }
  const nodes = new Map(data.nodes.map((n) => [n.latent, n]));
  const rowHeight = 26, width = 900, boxWidth = 330;
  let y = 10;
  const drawing = svg("svg", { width: String(width), class: "family-graph" });
  function node(latent, x, top) {
    const info = nodes.get(latent);
    const group = svg("g", { class: "family-node", "data-latent": String(latent) });
    group.append(svg("rect", { x, y: top, width: boxWidth, height: rowHeight - 6, rx: 4 }));
    group.append(svg("text", { x: x + 6, y: top + 14 },
      shorten(`${latent}: ${info.label || "(no label)"} · ${info.docs} docs`, 52)));
    group.addEventListener("click", () => { window.location.hash = `#feature/${latent}`; });
    drawing.append(group);
  }
  for (const parent of data.parents) {
    const children = data.edges.filter((e) => e.parent === parent);
    const top = y;
    node(parent, 10, top + ((children.length - 1) * rowHeight) / 2);
    children.forEach((edge, k) => {
      const childTop = top + k * rowHeight;
      const parentMid = top + ((children.length - 1) * rowHeight) / 2 + (rowHeight - 6) / 2;
      drawing.append(svg("line", { x1: 10 + boxWidth, y1: parentMid, x2: 480,
        y2: childTop + (rowHeight - 6) / 2, stroke: "#adb5bd" }));
      drawing.append(svg("text", { x: 10 + boxWidth + 8, y: (parentMid + childTop + 10) / 2,
        fill: "#666" }, `${Math.round(100 * edge.share)}%`));
      node(edge.child, 480, childTop);
    });
    y += Math.max(children.length, 1) * rowHeight + 14;
  }
  drawing.setAttribute("height", String(y));
  box.append(drawing);
}

async function showView() {
  const hash = window.location.hash || "#search";
  const [name, arg] = hash.slice(1).split("/");
  for (const view of document.querySelectorAll(".view")) view.hidden = true;
  for (const tab of document.querySelectorAll("header nav a")) {
    tab.classList.toggle("active", tab.id === `tab-${name}`);
  }
  showError("");
  try {
    if (name === "feature") {
      document.getElementById("view-feature").hidden = false;
      const fragment = await api(`/api/feature/${Number(arg)}`, [], "text");
      document.getElementById("feature").innerHTML = fragment;  // escaped by the server
    } else if (name === "families") {
      document.getElementById("view-families").hidden = false;
      await renderFamilies();
    } else if (name === "diff") {
      document.getElementById("view-diff").hidden = false;
      document.getElementById("diff").innerHTML = await api("/api/diff", [], "text");
    } else {
      document.getElementById("view-search").hidden = false;
    }
  } catch (e) { /* shown by api() */ }
}

async function start() {
  const info = await api("/api/info");
  state.steerable = info.steerable;
  document.getElementById("store-info").textContent =
    `${info.source || info.store}: ${info.n_docs} documents, ${info.d_sae} latents (${info.reader})`;
  document.getElementById("tab-diff").hidden = !info.compare;
  document.getElementById("method").hidden = !info.steerable;
  document.getElementById("search-note").textContent = info.steerable
    ? "Ranked by cosine similarity of document embeddings to the (steered) query."
    : "Property search by label (steering needs a store made with a document-embedding reader).";
  document.getElementById("search-form").addEventListener("submit", (event) => {
    event.preventDefault();
    state.query = document.getElementById("query").value.trim();
    runSearch(true).catch(() => {});
  });
  document.getElementById("method").addEventListener("change", (event) => {
    state.method = event.target.value;
    runSearch(false).catch(() => {});
  });
  let labelTimer = null;
  document.getElementById("label-search").addEventListener("input", (event) => {
    clearTimeout(labelTimer);
    labelTimer = setTimeout(() => matchLabels(event.target.value).catch(() => {}), 200);
  });
  window.addEventListener("hashchange", showView);
  renderSliders();
  await showView();
  document.body.dataset.ready = "1";
}

start().catch(() => {});

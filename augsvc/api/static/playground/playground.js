// The recipe playground: a draft recipe edited through forms and JSON, previewed by the
// service on every change, saved as a new version. Every URL is relative to this page,
// and the API key (when one is typed) is only ever attached to requests to this origin.

import { opForm } from "./schema-form.js";
import { readSafetensors, sampleValue } from "./safetensors.js";

const $ = (id) => document.getElementById(id);

const state = {
  doc: { ops: [] },
  from: null,         // the stored version the draft started from: {name, version, digest, recipe}
  latest: new Map(),  // name -> latest stored record, from GET /v1/recipes
  ops: new Map(),     // op name -> catalogue entry
  scope: null,        // "read" | "admin" | null (unknown key)
  image: null,        // a dropped or chosen File; null = the bundled photo
  photo: null,        // the bundled photo's bytes, fetched once for per-sample requests
  grid: null,         // what the grid shows: {seed, n, columns, gap, recipe, ref, image}
  previewSeq: 0,
  previewTimer: 0,
};

// Extension points: views of one sample (boxes, keypoints, masks, policy choices) get
// (sample, tensors) after the parameter list is shown.
export const sampleViews = [];

// --- requests ------------------------------------------------------------------------

// URLs resolve against the page's own origin and path, without any user:password the
// address bar may hold (fetch refuses those; the browser's Basic login is sent anyway).
const BASE = new URL(window.location.pathname, window.location.origin);

async function api(path, options = {}) {
  const url = new URL(path, BASE);
  const headers = new Headers(options.headers || {});
  const key = $("key").value.trim();
  if (key && url.origin === BASE.origin) headers.set("X-API-Key", key);
  return fetch(url, { ...options, headers, credentials: "same-origin" });
}

async function problemOf(response) {
  try {
    return await response.json();
  } catch {
    return { detail: `${response.status} ${response.statusText}`, errors: [] };
  }
}

// --- field errors --------------------------------------------------------------------

function clearErrors() {
  for (const el of document.querySelectorAll(".field-error, .op-error")) el.textContent = "";
  for (const el of document.querySelectorAll(".invalid")) el.classList.remove("invalid");
  $("errors").textContent = "";
}

// A 422's field paths, shown next to the field they name: the longest prefix of the
// path that has a place on the page (a field, an op card), else the general box.
function showProblem(problem) {
  clearErrors();
  const unplaced = [];
  for (const err of problem.errors || []) {
    const path = [...err.loc];
    while (path.length && (path[0] === "body" || path[0] === "recipe")) path.shift();
    let target = null;
    for (let len = path.length; len > 0 && !target; len--) {
      target = document.querySelector(`[data-loc="${CSS.escape(path.slice(0, len).join("."))}"]`);
    }
    if (target) {
      target.classList.add("invalid");
      const slot = target.querySelector(":scope > .field-error, :scope > .op-error");
      slot.textContent = slot.textContent ? `${slot.textContent}; ${err.msg}` : err.msg;
    } else {
      unplaced.push(`${err.loc.join(".")}: ${err.msg}`);
    }
  }
  if (!problem.errors || !problem.errors.length) unplaced.push(problem.detail || "request failed");
  $("errors").textContent = unplaced.join("\n");
}

// --- the draft -------------------------------------------------------------------------

function draftText() {
  return JSON.stringify(state.doc, null, 2);
}

function isUnchanged() {
  return state.from !== null && JSON.stringify(state.from.recipe) === JSON.stringify(state.doc);
}

function setDoc(doc, { forms = true, json = true } = {}) {
  state.doc = doc;
  if (forms) renderOps();
  if (json) {
    $("json").value = draftText();
    $("json-error").textContent = "";
  }
  renderOrigin();
  schedulePreview();
}

function renderOrigin() {
  const from = state.from;
  $("origin").textContent = from === null
    ? "A new draft: add ops from the catalogue."
    : `${isUnchanged() ? "Showing" : "Edited from"} ${from.name}@${from.version} (${from.digest.slice(0, 19)}…)`;
}

function moveOp(index, by) {
  const ops = [...state.doc.ops];
  const [op] = ops.splice(index, 1);
  ops.splice(index + by, 0, op);
  setDoc({ ...state.doc, ops });
}

function removeOp(index) {
  setDoc({ ...state.doc, ops: state.doc.ops.filter((_, i) => i !== index) });
}

function button(text, title, onClick, disabled = false) {
  const b = document.createElement("button");
  b.type = "button";
  b.textContent = text;
  b.title = title;
  b.disabled = disabled;
  b.addEventListener("click", onClick);
  return b;
}

function renderOps() {
  const list = $("ops");
  list.replaceChildren();
  const ops = Array.isArray(state.doc.ops) ? state.doc.ops : [];
  ops.forEach((op, index) => {
    const item = document.createElement("li");
    const entry = state.ops.get(op && op.op);
    item.className = `op ${entry ? entry.kind : "unknown"}`;
    item.dataset.loc = `ops.${index}`;
    item.dataset.op = op && op.op;
    const head = document.createElement("div");
    head.className = "op-head";
    const title = document.createElement("strong");
    title.textContent = `${index + 1}. ${op && op.op}`;
    title.title = entry ? entry.description : "not in this service's catalogue";
    head.append(
      title,
      button("↑", "move up", () => moveOp(index, -1), index === 0),
      button("↓", "move down", () => moveOp(index, 1), index === ops.length - 1),
      button("✕", "remove", () => removeOp(index)),
    );
    const error = document.createElement("div");
    error.className = "op-error field-error";
    item.append(head, error);
    if (entry) {
      item.append(opForm(entry.schema, entry.schema, op, `ops.${index}`, (name, value) => {
        const next = { ...state.doc.ops[index] };
        if (value === undefined) delete next[name]; else next[name] = value;
        const all = [...state.doc.ops];
        all[index] = next;
        setDoc({ ...state.doc, ops: all }, { forms: false });
      }));
    }
    list.append(item);
  });
}

function onJsonInput() {
  let doc;
  try {
    doc = JSON.parse($("json").value);
  } catch (err) {
    $("json-error").textContent = `Not JSON yet: ${err.message}`;
    return;
  }
  if (doc === null || typeof doc !== "object" || Array.isArray(doc)) {
    $("json-error").textContent = 'A recipe is an object: {"ops": [...]}';
    return;
  }
  $("json-error").textContent = "";
  setDoc(doc, { json: false });
}

// --- catalogue, stored recipes, keys -----------------------------------------------

async function loadCatalogue() {
  const response = await api("v1/ops");
  if (!response.ok) return showProblem(await problemOf(response));
  const { ops } = await response.json();
  state.ops = new Map(ops.map((entry) => [entry.op, entry]));
  const select = $("op-select");
  select.replaceChildren(...ops.map((entry) => new Option(`${entry.op} (${entry.kind})`, entry.op)));
  showOpHelp();
  renderOps();
}

function showOpHelp() {
  const entry = state.ops.get($("op-select").value);
  $("op-help").textContent = entry ? entry.description : "";
}

function addOp() {
  const name = $("op-select").value;
  if (!name) return;
  setDoc({ ...state.doc, ops: [...(state.doc.ops || []), { op: name }] });
}

async function loadRecipeList() {
  const response = await api("v1/recipes");
  if (!response.ok) return showProblem(await problemOf(response));
  const { recipes } = await response.json();
  state.latest = new Map(recipes.map((r) => [r.name, r]));
  const select = $("recipe-select");
  const chosen = select.value;
  select.replaceChildren(new Option("(new draft)", ""),
    ...recipes.map((r) => new Option(`${r.name} (v${r.version})`, r.name)));
  select.value = state.latest.has(chosen) ? chosen : "";
}

// A reference that cannot be opened (a 404 for a name never stored, a 422 for one that
// cannot be a name) is said beside the reference field and stays there until another
// recipe is opened: the draft the page goes on with is not the recipe that was asked for.
function showLoadError(ref, problem, status) {
  const code = problem.code ? ` ${problem.code}` : "";
  $("ref").value = ref;
  $("load-error").textContent =
    `Could not open ${ref}: ${status}${code}: ${problem.detail || "request failed"}. The draft below is not it.`;
  document.body.dataset.loadError = String(status);
}

function clearLoadError() {
  $("load-error").textContent = "";
  delete document.body.dataset.loadError;
}

async function loadRecipe(ref) {
  const response = await api(`v1/recipes/${encodeURIComponent(ref)}`);
  if (!response.ok) return showLoadError(ref, await problemOf(response), response.status);
  const record = await response.json();
  clearLoadError();
  state.from = record;
  $("ref").value = record.ref;
  $("save-name").value = record.name;
  if (state.latest.has(record.name)) $("recipe-select").value = record.name;
  clearErrors();
  setDoc(structuredClone(record.recipe));
}

async function checkKey() {
  const response = await api("v1/whoami");
  if (response.ok) {
    const who = await response.json();
    state.scope = who.scope;
    $("auth-status").textContent = who.keys_required ? `key scope: ${who.scope}` : "open service (no keys configured)";
  } else {
    state.scope = null;
    $("auth-status").textContent = (await problemOf(response)).detail;
  }
  renderSave();
}

function renderSave() {
  let reason = "";
  if (state.scope === null) reason = "Saving needs a valid API key with admin scope.";
  else if (state.scope !== "admin") reason = `This key has ${state.scope} scope: saving needs an admin key.`;
  $("save").disabled = reason !== "";
  $("save-reason").textContent = reason;
}

// --- saving ----------------------------------------------------------------------------

async function save() {
  const name = $("save-name").value.trim();
  if (!name) {
    $("save-status").textContent = "Give the recipe a name.";
    return;
  }
  const headers = { "Content-Type": "application/json" };
  // The version this draft is based on must still be the latest, or the save is refused
  // (412) instead of silently replacing someone else's newer version.
  const base = state.from && state.from.name === name ? state.from : state.latest.get(name);
  if (base) headers["If-Match"] = `"${base.digest}"`;
  const response = await api(`v1/recipes/${encodeURIComponent(name)}`, {
    method: "PUT", headers, body: JSON.stringify(state.doc),
  });
  if (!response.ok) {
    const problem = await problemOf(response);
    showProblem(problem);
    $("save-status").textContent = `Not saved: ${problem.detail}`;
    return;
  }
  const record = await response.json();
  clearLoadError();
  $("save-status").textContent = response.status === 201
    ? `Saved ${record.ref}.`
    : `Unchanged: the same recipe is ${record.ref}.`;
  await loadRecipeList();
  // The draft becomes what was stored (the canonical form the server keeps).
  state.from = record;
  $("ref").value = record.ref;
  $("recipe-select").value = record.name;
  setDoc(structuredClone(record.recipe));
}

// --- preview ---------------------------------------------------------------------------

function previewParams() {
  const seed = Math.max(0, Math.trunc(Number($("seed").value) || 0));
  const n = Math.min(64, Math.max(1, Math.trunc(Number($("count").value) || 1)));
  return { seed, n };
}

function schedulePreview() {
  clearTimeout(state.previewTimer);
  state.previewTimer = setTimeout(runPreview, 200);
}

// The stored version's own preview URL while the draft is unchanged, else the draft
// sent inline; both answer the same bytes for the same recipe and seed.
async function runPreview() {
  const seq = ++state.previewSeq;
  const { seed, n } = previewParams();
  const recipeText = JSON.stringify(state.doc);
  const ref = isUnchanged() ? state.from.ref : null;
  const query = `seed=${seed}&n=${n}`;
  let url;
  let options;
  if (ref !== null && state.image === null) {
    url = `v1/recipes/${encodeURIComponent(ref)}/preview?${query}`;
    options = {};
  } else {
    const form = new FormData();
    if (ref === null) form.append("recipe", new Blob([recipeText], { type: "application/json" }));
    if (state.image !== null) form.append("image", state.image, state.image.name || "image");
    url = ref === null ? `v1/preview?${query}` : `v1/recipes/${encodeURIComponent(ref)}/preview?${query}`;
    options = { method: "POST", body: form };
  }
  document.body.dataset.preview = "loading";
  $("preview-status").textContent = "Rendering…";
  let response;
  try {
    response = await api(url, options);
  } catch (err) {
    if (seq !== state.previewSeq) return;
    document.body.dataset.preview = "error";
    $("preview-status").textContent = `No answer from the service: ${err.message}`;
    return;
  }
  if (seq !== state.previewSeq) return;  // a newer edit has its own request in flight
  if (!response.ok) {
    const problem = await problemOf(response);
    if (seq !== state.previewSeq) return;
    showProblem(problem);
    document.body.dataset.preview = "error";
    $("preview-status").textContent = `Not rendered: ${problem.detail}`;
    return;
  }
  const blob = await response.blob();
  if (seq !== state.previewSeq) return;
  clearErrors();
  const img = $("grid");
  if (img.src.startsWith("blob:")) URL.revokeObjectURL(img.src);
  await new Promise((resolve) => {
    img.onload = resolve;
    img.onerror = resolve;
    img.src = URL.createObjectURL(blob);
  });
  state.grid = {
    seed, n, ref, recipe: recipeText, image: state.image,
    columns: Number(response.headers.get("X-Augsvc-Grid-Columns")),
    gap: Number(response.headers.get("X-Augsvc-Grid-Gap")),
  };
  const digest = response.headers.get("X-Augsvc-Recipe-Digest");
  img.dataset.seed = String(seed);
  img.dataset.n = String(n);
  img.dataset.digest = digest;
  $("tile-mark").hidden = true;
  $("preview-status").textContent =
    `${n} samples (keys 0-${n - 1}), seed ${seed}, of ${ref || "the draft"} (${digest.slice(0, 19)}…) on ${state.image ? state.image.name : "the bundled photo"}`;
  document.body.dataset.preview = "ready";
}

// --- one sample -------------------------------------------------------------------------

function tileAt(event) {
  const grid = state.grid;
  const img = $("grid");
  if (!grid || !img.naturalWidth) return null;
  const scale = img.naturalWidth / img.clientWidth;
  const x = event.offsetX * scale;
  const y = event.offsetY * scale;
  const rows = Math.ceil(grid.n / grid.columns);
  const cellW = (img.naturalWidth - (grid.columns + 1) * grid.gap) / grid.columns;
  const cellH = (img.naturalHeight - (rows + 1) * grid.gap) / rows;
  const column = Math.min(grid.columns - 1, Math.max(0, Math.floor((x - grid.gap / 2) / (cellW + grid.gap))));
  const row = Math.min(rows - 1, Math.max(0, Math.floor((y - grid.gap / 2) / (cellH + grid.gap))));
  const key = row * grid.columns + column;
  if (key >= grid.n) return null;
  return { key, column, row, cellW, cellH, scale };
}

function markTile(tile) {
  const mark = $("tile-mark");
  const { gap } = state.grid;
  mark.style.left = `${(gap + tile.column * (tile.cellW + gap)) / tile.scale}px`;
  mark.style.top = `${(gap + tile.row * (tile.cellH + gap)) / tile.scale}px`;
  mark.style.width = `${tile.cellW / tile.scale}px`;
  mark.style.height = `${tile.cellH / tile.scale}px`;
  mark.hidden = false;
}

async function photoBytes() {
  if (state.photo === null) {
    const response = await api("ui/sample.jpg");
    if (!response.ok) throw new Error((await problemOf(response)).detail);
    state.photo = await response.blob();
  }
  return state.photo;
}

// One sample's drawn parameters: the same (recipe, seed, key) sent to /v1/augment, which
// returns them beside the image; the key is the sample's offset in a batch of one.
async function showSample(event) {
  const tile = tileAt(event);
  if (tile === null) return;
  markTile(tile);
  const grid = state.grid;
  const info = $("tile-info");
  info.textContent = `key ${tile.key}: asking the service…`;
  const form = new FormData();
  let url = `v1/augment?seed=${grid.seed}&offset=${tile.key}&return_params=true`;
  if (grid.ref === null) form.append("recipe", new Blob([grid.recipe], { type: "application/json" }));
  else url += `&recipe=${encodeURIComponent(grid.ref)}`;
  try {
    const image = grid.image || (await photoBytes());
    form.append("image", image, grid.image ? grid.image.name || "image" : "sample.jpg");
  } catch (err) {
    info.textContent = `key ${tile.key}: ${err.message}`;
    return;
  }
  const response = await api(url, {
    method: "POST", body: form, headers: { Accept: "application/x-safetensors" },
  });
  if (!response.ok) {
    info.textContent = `key ${tile.key}: ${(await problemOf(response)).detail}`;
    return;
  }
  const { tensors } = readSafetensors(await response.arrayBuffer(), (name) => name !== "images");
  const sample = { key: sampleValue(tensors.keys, 0), seed: grid.seed, params: {} };
  for (const [name, tensor] of Object.entries(tensors)) {
    if (name.startsWith("params.")) sample.params[name.slice("params.".length)] = sampleValue(tensor, 0);
  }
  info.textContent = JSON.stringify(sample, null, 2);
  info.dataset.key = String(sample.key);
  for (const view of sampleViews) view(sample, tensors);
}

// --- images ---------------------------------------------------------------------------

function useImage(file) {
  state.image = file;
  schedulePreview();
}

function wireDrop() {
  const zone = $("drop");
  zone.addEventListener("dragover", (event) => { event.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("over");
    const file = [...event.dataTransfer.files].find((f) => f.type.startsWith("image/"));
    if (file) useImage(file);
  });
  $("photo").addEventListener("change", () => { if ($("photo").files[0]) useImage($("photo").files[0]); });
  $("bundled").addEventListener("click", () => { $("photo").value = ""; useImage(null); });
}

// --- start ----------------------------------------------------------------------------

async function start() {
  $("json").value = draftText();
  $("json").addEventListener("input", onJsonInput);
  $("add-op").addEventListener("click", addOp);
  $("op-select").addEventListener("change", showOpHelp);
  $("save").addEventListener("click", save);
  $("load").addEventListener("click", () => { if ($("ref").value.trim()) loadRecipe($("ref").value.trim()); });
  $("recipe-select").addEventListener("change", () => {
    const name = $("recipe-select").value;
    if (name) loadRecipe(name);
    else { clearLoadError(); state.from = null; setDoc({ ops: [] }); }
  });
  const useKey = async () => {
    await checkKey();
    await Promise.all([loadCatalogue(), loadRecipeList()]);
    schedulePreview();
  };
  $("key").addEventListener("change", useKey);
  // Enter in the key field: the form goes nowhere (the CSP allows no form target).
  $("key-form").addEventListener("submit", (event) => { event.preventDefault(); useKey(); });
  for (const id of ["seed", "count"]) $(id).addEventListener("input", schedulePreview);
  $("grid").addEventListener("click", showSample);
  wireDrop();
  renderSave();
  await Promise.all([checkKey(), loadCatalogue(), loadRecipeList()]);
  const wanted = new URLSearchParams(window.location.search).get("recipe");
  if (wanted) await loadRecipe(wanted);  // a reference that fails is said, the draft stays
  schedulePreview();
  document.body.dataset.ready = "true";
}

start();

// Forms generated from an op's JSON schema (as GET /v1/ops publishes it). Each field
// says where it sits in the recipe (data-loc="ops.2.degrees"), so a 422's field path
// finds it. Plain numbers, enums, booleans and strings get native inputs; any other
// shape (ranges, tuples, unions) is edited as JSON text, so a field accepts every form
// the server does ("30" or "[-30, 30]") and the server stays the one validator.

export function resolveRef(schema, root) {
  let s = schema || {};
  for (let hops = 0; s.$ref && hops < 8; hops++) {
    const name = s.$ref.split("/").pop();
    s = (root && root.$defs && root.$defs[name]) || {};
  }
  return s;
}

function simpleType(schema) {
  if (Array.isArray(schema.enum)) return "enum";
  if (schema.type === "number" || schema.type === "integer") return schema.type;
  if (schema.type === "boolean") return "boolean";
  if (schema.type === "string") return "string";
  return "json";
}

function widgetFor(schema, value) {
  const kind = simpleType(schema);
  if (value === undefined) return kind;
  if ((kind === "number" || kind === "integer") && typeof value !== "number") return "json";
  if (kind === "boolean" && typeof value !== "boolean") return "json";
  if (kind === "string" && typeof value !== "string") return "json";
  if (kind === "enum" && !schema.enum.includes(value)) return "json";
  return kind;
}

const show = (v) => (v === undefined ? "" : JSON.stringify(v));

// Parses an input's text: "" means "leave it out" (the server's default applies); text
// that is not JSON is sent as a string, for the server to name what is wrong with it.
export function parseJsonText(text) {
  const t = text.trim();
  if (t === "") return undefined;
  try { return JSON.parse(t); } catch { return text; }
}

function input(kind, schema, value, required) {
  let el;
  if (kind === "enum") {
    el = document.createElement("select");
    if (!required) el.append(new Option(`(default: ${show(schema.default)})`, ""));
    schema.enum.forEach((v, i) => el.append(new Option(String(v), String(i))));
    const index = schema.enum.findIndex((v) => v === value);
    el.value = index >= 0 ? String(index) : "";
    el.readValue = () => (el.value === "" ? undefined : schema.enum[Number(el.value)]);
  } else if (kind === "boolean") {
    el = document.createElement("input");
    el.type = "checkbox";
    el.checked = value === undefined ? Boolean(schema.default) : value;
    el.readValue = () => el.checked;
  } else if (kind === "number" || kind === "integer") {
    el = document.createElement("input");
    el.type = "number";
    el.step = kind === "integer" ? "1" : "any";
    if (schema.minimum !== undefined) el.min = schema.minimum;
    if (schema.maximum !== undefined) el.max = schema.maximum;
    el.value = value === undefined ? "" : String(value);
    el.placeholder = schema.default === undefined ? "" : String(schema.default);
    // A value the browser cannot read as a number goes to the server as typed.
    el.readValue = () => (el.value === "" ? (el.validity.badInput ? "" : undefined) : Number(el.value));
  } else if (kind === "string") {
    el = document.createElement("input");
    el.type = "text";
    el.value = value === undefined ? "" : value;
    el.placeholder = schema.default === undefined ? "" : String(schema.default);
    el.readValue = () => (el.value === "" ? undefined : el.value);
  } else {
    el = document.createElement("input");
    el.type = "text";
    el.spellcheck = false;
    el.value = show(value);
    el.placeholder = schema.default === undefined ? "JSON" : show(schema.default);
    el.readValue = () => parseJsonText(el.value);
  }
  return el;
}

// The form of one op: a grid of label / input / error rows. onChange(name, value) gets
// undefined for a field the user cleared.
export function opForm(schema, root, values, locPrefix, onChange) {
  const form = document.createElement("div");
  form.className = "fields";
  const required = new Set(schema.required || []);
  for (const [name, raw] of Object.entries(schema.properties || {})) {
    const field = resolveRef(raw, root);
    if (field.const !== undefined || name === "op") continue;
    const loc = `${locPrefix}.${name}`;
    const label = document.createElement("label");
    label.className = "field-name";
    label.textContent = name + (required.has(name) ? " *" : "");
    label.title = field.description || raw.description || "";
    const cell = document.createElement("div");
    cell.className = "field field-input";
    cell.dataset.loc = loc;
    const el = input(widgetFor(field, values[name]), field, values[name], required.has(name));
    el.name = name;
    el.id = `f-${loc.replaceAll(".", "-")}`;
    label.htmlFor = el.id;
    el.title = label.title;
    el.addEventListener(el.type === "checkbox" || el.tagName === "SELECT" ? "change" : "input",
      () => onChange(name, el.readValue()));
    const error = document.createElement("div");
    error.className = "field-error";
    cell.append(el, error);
    form.append(label, cell);
  }
  return form;
}

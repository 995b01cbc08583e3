// dicomlens viewer: the tree, a slice viewer that windows raw modality values on a
// canvas, and the tags of the current slice. Every text from the data goes in with
// textContent: tag values are never parsed as HTML.

const token = new URLSearchParams(location.search).get("token") || "";
const state = { series: null, part: 0, index: 0, center: 40, width: 400, frame: null,
                cache: new Map(), varying: new Set() };
const canvas = document.getElementById("image");
const context = canvas.getContext("2d");

function api(path) {
  const glue = path.includes("?") ? "&" : "?";
  return `${path}${glue}token=${encodeURIComponent(token)}`;
}

async function getJSON(path) {
  const response = await fetch(api(path));
  if (!response.ok) throw new Error((await response.json()).error || response.statusText);
  return response.json();
}

function slices(count) {
  return `${count} slice${count === 1 ? "" : "s"}`;
}

function element(tag, text, attributes = {}) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  return node;
}

async function loadTree() {
  const list = document.getElementById("patients");
  for (const patient of await getJSON("/api/tree")) {
    const item = element("li", `${patient.name || "(no name)"} — ${patient.patient_id || ""}`);
    const studies = element("ul");
    for (const study of patient.studies) {
      const studyItem = element("li", `${study.date || ""} ${study.description || ""}`);
      const seriesList = element("ul");
      for (const series of study.series) {
        const button = element("button", null, { class: "series", "data-series": series.id });
        const thumb = element("img", null, { class: "thumb", alt: "",
                                             src: api(`/api/series/${series.id}/thumbnail.png`) });
        thumb.addEventListener("error", () => thumb.replaceWith(element("span", "⚠",
          { class: "thumb", title: "cannot show this series" })));
        button.append(thumb);
        button.append(`#${series.number ?? "?"} ${series.modality || ""} ` +
                      `${series.description || ""} (${series.instances})`);
        button.addEventListener("click", () => openSeries(series.id, button));
        const entry = element("li");
        entry.append(button);
        seriesList.append(entry);
      }
      studyItem.append(seriesList);
      studies.append(studyItem);
    }
    item.append(studies);
    list.append(item);
  }
}

let opening = 0;  // the latest series asked for: an earlier answer that comes later is dropped

async function openSeries(id, button) {
  document.querySelectorAll("button.series.active").forEach((b) => b.classList.remove("active"));
  button?.classList.add("active");
  const asked = ++opening;
  const info = await getJSON(`/api/series/${id}`);
  if (asked !== opening) return;
  state.series = info;
  state.varying = new Set(info.varying);
  const preset = info.presets[0];
  if (preset) { state.center = preset.center; state.width = preset.width; }
  showPresets(info.presets);
  // A series split in parts (a localizer among axial slices, echoes…): the largest first.
  const sizes = info.parts.map((part) => part.slices.length);
  const chooser = document.getElementById("part");
  chooser.replaceChildren(...info.parts.map((part, n) => element("option",
    `part ${n + 1}: ${slices(part.slices.length)}` + (part.split ? ` (${part.split})` : ""),
    { value: n })));
  chooser.hidden = info.parts.length < 2;
  await showPart(sizes.indexOf(Math.max(...sizes)));
}

async function showPart(number) {
  const info = state.series;
  const part = info.parts[number];
  state.part = number;
  state.index = Math.floor(part.slices.length / 2);
  document.getElementById("part").value = String(number);
  document.getElementById("series-title").textContent =
    `${part.description || "series"} — ${slices(part.slices.length)}` +
    (info.parts.length > 1 ? ` (part ${number + 1} of ${info.parts.length})` : "");
  for (const side of ["top", "bottom", "left", "right"]) {
    document.getElementById(`edge-${side}`).textContent = part.orientation[side] || "";
  }
  document.getElementById("report").textContent = JSON.stringify(part.report, null, 1);
  document.getElementById("geometry").open = part.report.verdict !== "ok";
  state.frame = null;
  await showSlice(true);
}

function showPresets(presets) {
  const box = document.getElementById("presets");
  box.replaceChildren();
  for (const preset of presets) {
    const button = element("button", `${preset.name} [${preset.center}, ${preset.width}]`,
                           { "data-center": preset.center, "data-width": preset.width });
    button.addEventListener("click", () => {
      state.center = preset.center;
      state.width = preset.width;
      draw();
    });
    box.append(button);
  }
}

function currentSlice() {
  const part = state.series.parts[state.part];
  return part.slices[state.index];
}

async function fetchFrame(slice) {
  const key = `${slice.instance}/${slice.frame}`;
  if (!state.cache.has(key)) {
    state.cache.set(key, (async () => {
      const response = await fetch(api(`/api/frame/${key}`));
      if (!response.ok) throw new Error((await response.json()).error || response.statusText);
      const buffer = await response.arrayBuffer();
      const rows = Number(response.headers.get("X-Rows"));
      const columns = Number(response.headers.get("X-Columns"));
      const type = response.headers.get("X-Dtype");
      if (type === "rgb8") return { rows, columns, values: new Uint8Array(buffer), colour: true };
      const values = type === "int16" ? new Int16Array(buffer) : new Float32Array(buffer);
      return { rows, columns, values, colour: false };
    })());
  }
  return state.cache.get(key);
}

async function showSlice(withTags) {
  const slice = currentSlice();
  const part = state.series.parts[state.part];
  const position = slice.position ? slice.position.map((v) => v.toFixed(1)).join(", ") : "?";
  document.getElementById("slice-label").textContent =
    `slice ${state.index + 1} / ${part.slices.length} (instance ${slice.number ?? "?"}) ` +
    `at (${position})`;
  const tile = document.getElementById("error-tile");
  try {
    const frame = await fetchFrame(slice);
    if (slice !== currentSlice()) return;  // scrolled on meanwhile: that slice draws itself
    state.frame = frame;
    tile.hidden = true;
    draw();
  } catch (error) {
    if (slice !== currentSlice()) return;
    state.frame = null;
    context.clearRect(0, 0, canvas.width, canvas.height);
    tile.textContent = `cannot show this image: ${error.message}`;
    tile.hidden = false;
  }
  if (withTags) await showTags();
}

// DICOM linear VOI (PS3.3 C.11.2.1.2), as pydicom's apply_windowing, to 0..255.
function draw() {
  const frame = state.frame;
  if (!frame) return;
  if (canvas.width !== frame.columns || canvas.height !== frame.rows) {
    canvas.width = frame.columns;
    canvas.height = frame.rows;
  }
  const image = context.createImageData(frame.columns, frame.rows);
  const pixels = image.data, values = frame.values;
  if (frame.colour) {  // RGB as the file holds it: no window
    for (let i = 0, at = 0; i < values.length; i += 3, at += 4) {
      pixels[at] = values[i];
      pixels[at + 1] = values[i + 1];
      pixels[at + 2] = values[i + 2];
      pixels[at + 3] = 255;
    }
    context.putImageData(image, 0, 0);
    document.getElementById("window-label").textContent = "colour";
    return;
  }
  const low = state.center - 0.5, span = Math.max(state.width, 1) - 1;
  for (let i = 0; i < values.length; i++) {
    let grey = span > 0 ? ((values[i] - low) / span + 0.5) * 255 : (values[i] > low ? 255 : 0);
    grey = grey < 0 ? 0 : grey > 255 ? 255 : Math.round(grey);
    const at = i * 4;
    pixels[at] = pixels[at + 1] = pixels[at + 2] = grey;
    pixels[at + 3] = 255;
  }
  context.putImageData(image, 0, 0);
  document.getElementById("window-label").textContent =
    `window [${Math.round(state.center)}, ${Math.round(state.width)}]`;
}

async function showTags() {
  if (!state.series) return;
  const search = document.getElementById("search").value;
  const slice = currentSlice();
  const body = document.getElementById("tags");
  let rows;
  try {
    rows = await getJSON(`/api/instance/${slice.instance}/tags?q=${encodeURIComponent(search)}`);
  } catch (error) {
    rows = error;
  }
  if (slice !== currentSlice() || search !== document.getElementById("search").value) return;  // stale
  if (rows instanceof Error) {
    const line = element("tr");
    line.append(element("td", rows.message, { colspan: 4 }));
    body.replaceChildren(line);
    return;
  }
  body.replaceChildren();
  for (const row of rows) {
    const line = element("tr");
    if (!row.tag.includes(".") && state.varying.has(row.key)) line.classList.add("varying");
    for (const field of ["tag", "keyword", "vr", "value"]) line.append(element("td", row[field]));
    body.append(line);
  }
}

function step(delta, withTags = true) {
  if (!state.series) return Promise.resolve();
  const count = state.series.parts[state.part].slices.length;
  const next = Math.min(count - 1, Math.max(0, state.index + delta));
  if (next === state.index) return Promise.resolve();
  state.index = next;
  return showSlice(withTags);
}

canvas.addEventListener("wheel", (event) => {
  event.preventDefault();
  step(event.deltaY > 0 ? 1 : -1);
}, { passive: false });

document.addEventListener("keydown", (event) => {
  if (event.target.id === "search") return;
  if (event.key === "ArrowDown" || event.key === "ArrowRight" || event.key === "PageDown") step(1);
  if (event.key === "ArrowUp" || event.key === "ArrowLeft" || event.key === "PageUp") step(-1);
});

let drag = null;
canvas.addEventListener("pointerdown", (event) => {
  drag = { x: event.clientX, y: event.clientY, center: state.center, width: state.width };
  canvas.setPointerCapture(event.pointerId);
});
canvas.addEventListener("pointermove", (event) => {
  if (!drag) return;
  state.width = Math.max(1, drag.width + (event.clientX - drag.x) * 2);
  state.center = drag.center + (event.clientY - drag.y) * 2;
  draw();
});
canvas.addEventListener("pointerup", () => { drag = null; });

document.getElementById("part").addEventListener("change", (event) => {
  showPart(Number(event.target.value));
});

let searchTimer = null;
document.getElementById("search").addEventListener("input", () => {
  clearTimeout(searchTimer);
  searchTimer = setTimeout(showTags, 150);
});

window.dicomlens = { state, draw, step };  // for tests and the curious
loadTree().catch((error) => {
  document.getElementById("patients").append(element("li", `cannot load: ${error.message}`));
});

/* halo annotate: the labelling page (plain JavaScript, no build step, nothing from the network).
 *
 * The server's endpoints are described in halo/annotate/server.py, the labels in
 * halo/annotate/drafts.py: one value per queried pixel (row-major order of the query mask), a
 * class id, 255 for "unsure / ignore", or null (here NO_ANSWER = -1) while unanswered. Every
 * change is PUT as the image's draft at once (one request at a time, the newest state wins); the
 * position (image, region) is kept in localStorage. Undo reverts the actions of this session,
 * newest first, each on its own image (the page goes back to it).
 *
 * Each save names the draft revision its labels started from. When another tab (or person) saved
 * the image in between, the server refuses with the newer labels; the page merges them (this
 * tab's changes since that revision win pixel by pixel, every other pixel takes the newer answer)
 * and saves again, so neither tab loses an answer.
 */
'use strict';

(() => {
  const NO_ANSWER = -1;
  const CONTEXT = 6; // pixels of context around a region's window at zoom 100 %
  const ZOOM_SIZE = 400; // the magnified view's longest side, in canvas pixels (about)
  const OVERVIEW_SIZE = 960; // small images are drawn scaled up to about this width
  const RETRY_MS = 3000;
  let QUERY_RGB = [0, 255, 255]; // the manifest's query_color: outside the class palette
  const PIXEL_HINT = 'Click a pixel to label it with the brush; right-click or Shift+click clears it.';
  const UNSURE_RGB = [128, 128, 128];
  const ACCENT = '#ffd400';

  const $ = (id) => document.getElementById(id);
  const body = document.body;

  const state = {
    manifest: null,
    classes: [],
    colors: new Map(), // class id (and 255) -> [r, g, b]
    names: new Map(), // class id (and 255) -> name
    unsure: 255,
    image: null, // {index, id, sha, H, W, pixels, posOf, regions, codes, rgba}
    region: 0,
    brush: 0,
    view: null, // the magnified view: {r0, r1, c0, c1, s}
    history: [], // this session's actions, oldest first: {image, positions, before, region}
    pending: new Map(), // image index -> draft body not yet saved
    bases: new Map(), // image index -> {revision, codes}: the server's draft our labels start from
    saving: null, // the running save loop (a promise)
    saveFailed: false,
    finished: false,
    stroke: null, // a paint stroke in the magnified view
    hover: null,
    look: { brightness: 1, contrast: 1, zoom: 1 }, // the view controls (the image only)
    shown: null, // {image, look, rgba}: the image's pixels after brightness and contrast
  };

  // --- helpers -------------------------------------------------------------------------------

  const plural = (n, word) => `${n} ${word}${n === 1 ? '' : 's'}`;
  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
  const mix = (a, b, t) => [0, 1, 2].map((i) => Math.round(a[i] * (1 - t) + b[i] * t));
  const rgb = (c) => `rgb(${c[0]}, ${c[1]}, ${c[2]})`;

  function setStatus(kind, text) {
    const el = $('status');
    el.dataset.state = kind;
    el.textContent = text;
  }

  function message(text) {
    $('message').textContent = text || '';
  }

  async function api(method, url, data) {
    const options = { method, headers: {} };
    if (data !== undefined) {
      options.headers['Content-Type'] = 'application/json';
      options.body = JSON.stringify(data);
    }
    let response;
    try {
      response = await fetch(url, options);
    } catch (_) {
      const err = new Error('the server cannot be reached');
      err.network = true;
      throw err;
    }
    let payload = null;
    try {
      payload = await response.json();
    } catch (_) {
      payload = null;
    }
    if (!response.ok) {
      const err = new Error((payload && payload.error) || `HTTP ${response.status}`);
      err.status = response.status;
      err.payload = payload;
      throw err;
    }
    return payload;
  }

  function loadPixels(url, width, height) {
    return new Promise((resolve, reject) => {
      const picture = new Image();
      picture.onload = () => {
        const canvas = document.createElement('canvas');
        canvas.width = width;
        canvas.height = height;
        const ctx = canvas.getContext('2d');
        ctx.drawImage(picture, 0, 0, width, height);
        resolve(ctx.getImageData(0, 0, width, height).data);
      };
      picture.onerror = () => reject(new Error(`cannot load ${url}`));
      picture.src = url;
    });
  }

  const ready = () =>
    body.dataset.ready === 'true' && body.dataset.busy !== 'true' && !state.finished &&
    state.image !== null;

  // --- counts --------------------------------------------------------------------------------

  function regionLeft(img, r) {
    const members = img.regions[r].members;
    for (let k = 0; k < members.length; k++) if (img.codes[members[k]] === NO_ANSWER) return true;
    return false;
  }

  function imageLeft(img) {
    let left = 0;
    for (let r = 0; r < img.regions.length; r++) if (regionLeft(img, r)) left++;
    return left;
  }

  function totals() {
    let regions = 0;
    let images = 0;
    for (const entry of state.manifest.images) {
      regions += entry.left;
      if (entry.left > 0) images++;
    }
    return { regions, images };
  }

  // --- position ------------------------------------------------------------------------------

  const positionKey = () => `halo-annotate:${state.manifest.key}`;

  function savePosition() {
    if (!state.image) return;
    try {
      localStorage.setItem(
        positionKey(), JSON.stringify({ image: state.image.index, region: state.region }));
    } catch (_) { /* no storage: the page starts at the first region left */ }
  }

  function readPosition() {
    try {
      const saved = JSON.parse(localStorage.getItem(positionKey()) || 'null');
      if (saved && Number.isInteger(saved.image) && saved.image >= 0 &&
          saved.image < state.manifest.images.length) return saved;
    } catch (_) { /* ignored */ }
    return null;
  }

  // --- saving --------------------------------------------------------------------------------

  const toCodes = (labels, n) => {
    const codes = new Int16Array(n).fill(NO_ANSWER);
    if (labels) labels.forEach((v, k) => { codes[k] = v === null ? NO_ANSWER : v; });
    return codes;
  };
  const toLabels = (codes) => Array.from(codes, (v) => (v === NO_ANSWER ? null : v));

  function merge(index, conflict, sent) {
    // The server has a newer draft (another tab saved it): ours wins where we changed a pixel
    // since our base revision, the newer answer everywhere else; then save that.
    const base = state.bases.get(index);
    const ours = state.pending.has(index) ? state.pending.get(index) : sent;
    const mine = toCodes(ours.labels, ours.labels.length);
    const theirs = toCodes(conflict.labels, mine.length);
    const merged = theirs.slice();
    for (let k = 0; k < mine.length; k++) {
      if (!base || mine[k] !== base.codes[k]) merged[k] = mine[k];
    }
    state.bases.set(index, { revision: conflict.revision, codes: theirs });
    state.pending.set(index, { query_sha256: ours.query_sha256, labels: toLabels(merged) });
    const img = state.image;
    if (img && img.index === index) {
      img.codes.set(merged);
      state.manifest.images[index].left = imageLeft(img);
      render();
    }
    message('This image was also labelled in another tab; its answers were merged with yours.');
  }

  function scheduleSave(img) {
    state.pending.set(img.index, { query_sha256: img.sha, labels: toLabels(img.codes) });
    setStatus('saving', 'Saving…');
    if (!state.saving) {
      state.saveFailed = false;
      state.saving = runSaves().finally(() => { state.saving = null; });
    }
  }

  async function runSaves() {
    while (state.pending.size) {
      const [index, draft] = state.pending.entries().next().value;
      state.pending.delete(index);
      const base = state.bases.get(index);
      try {
        const saved = await api('PUT', `/api/images/${index}/draft`,
          base ? { ...draft, base_revision: base.revision } : draft);
        state.bases.set(index, {
          revision: saved.revision, codes: toCodes(draft.labels, draft.labels.length),
        });
      } catch (err) {
        if (err.status === 409 && err.payload && err.payload.conflict) {
          merge(index, err.payload, draft);
          continue;
        }
        if (err.network) { // keep it (unless a newer state came) and try again
          if (!state.pending.has(index)) state.pending.set(index, draft);
          setStatus('error', `Not saved: ${err.message}; retrying…`);
          await sleep(RETRY_MS);
          continue;
        }
        state.saveFailed = true;
        setStatus('error', `Not saved: ${err.message}`);
      }
    }
    if (!state.saveFailed) setStatus('saved', 'All changes saved.');
    updateText();
  }

  async function flushSaves() {
    while (state.saving) await state.saving;
    return !state.saveFailed;
  }

  // --- changes -------------------------------------------------------------------------------

  function changed(img) {
    state.manifest.images[img.index].left = imageLeft(img);
    render();
    scheduleSave(img);
  }

  function apply(img, positions, value, region) {
    const before = positions.map((p) => img.codes[p]);
    positions.forEach((p) => { img.codes[p] = value; });
    state.history.push({ image: img.index, positions, before, region });
    changed(img);
  }

  function labelRegion(value) {
    const img = state.image;
    const region = img.regions[state.region];
    if (!region) return;
    let positions = region.members.filter((p) => img.codes[p] === NO_ANSWER);
    if (!positions.length) positions = region.members.filter((p) => img.codes[p] !== value);
    if (positions.length) apply(img, positions, value, state.region);
    advance();
  }

  async function undo() {
    const action = state.history.pop();
    if (!action) {
      message('Nothing to undo.');
      return;
    }
    if (action.image !== state.image.index) await loadImage(action.image, action.region);
    const img = state.image;
    if (img.index !== action.image) { // the image could not be loaded: keep the action
      state.history.push(action);
      return;
    }
    action.positions.forEach((p, k) => { img.codes[p] = action.before[k]; });
    state.region = action.region;
    changed(img);
    savePosition();
    message('Undone.');
  }

  function choose(value, brushOnly) {
    if (!ready()) return;
    if (brushOnly) setBrush(value);
    else labelRegion(value);
  }

  function setBrush(value) {
    state.brush = value;
    $('brush').value = String(value);
    for (const button of $('palette').querySelectorAll('button')) {
      button.classList.toggle('brush-class', Number(button.dataset.class) === value);
    }
  }

  // --- navigation ----------------------------------------------------------------------------

  function gotoRegion(r) {
    state.region = r;
    render();
    savePosition();
  }

  function advance() {
    const img = state.image;
    const m = img.regions.length;
    for (let k = 1; k <= m; k++) {
      const r = (state.region + k) % m;
      if (regionLeft(img, r)) {
        gotoRegion(r);
        return;
      }
    }
    const n = state.manifest.images.length;
    for (let k = 1; k < n; k++) {
      const j = (img.index + k) % n;
      if (state.manifest.images[j].left > 0) {
        loadImage(j, 'first-left');
        return;
      }
    }
    render();
    message('All regions are labelled. Press Finish to import the labels.');
  }

  function stepRegion(step) {
    if (!ready()) return;
    const img = state.image;
    const r = state.region + step;
    if (r >= 0 && r < img.regions.length) gotoRegion(r);
    else if (r < 0 && img.index > 0) loadImage(img.index - 1, 'last');
    else if (r >= img.regions.length && img.index + 1 < state.manifest.images.length) {
      loadImage(img.index + 1, 0);
    } else message(step > 0 ? 'This is the last region.' : 'This is the first region.');
  }

  function stepImage(step) {
    if (!ready()) return;
    const j = state.image.index + step;
    if (j >= 0 && j < state.manifest.images.length) loadImage(j, 'first-left');
    else message(step > 0 ? 'This is the last image.' : 'This is the first image.');
  }

  async function loadImage(index, where) {
    body.dataset.busy = 'true';
    try {
      await flushSaves();
      const data = await api('GET', `/api/images/${index}`);
      const [H, W] = data.size;
      const rgba = await loadPixels(`/api/images/${index}/image.png`, W, H);
      const posOf = new Int32Array(H * W).fill(-1);
      data.pixels.forEach((p, k) => { posOf[p] = k; });
      const codes = toCodes(data.labels, data.pixels.length);
      state.bases.set(index, { revision: data.revision, codes: codes.slice() });
      const img = {
        index, id: data.id, sha: data.query_sha256, H, W, pixels: data.pixels, posOf,
        regions: data.regions, codes, rgba,
      };
      const m = img.regions.length;
      let region = 0;
      if (where === 'last') region = Math.max(m - 1, 0);
      else if (Number.isInteger(where)) region = Math.min(Math.max(where, 0), Math.max(m - 1, 0));
      else {
        for (let r = 0; r < m; r++) {
          if (regionLeft(img, r)) { region = r; break; }
        }
      }
      state.image = img;
      state.region = region;
      state.manifest.images[index].left = imageLeft(img);
      message(data.note || (m ? '' : 'This image has no queried regions.'));
      render();
      savePosition();
    } catch (err) {
      setStatus('error', `Cannot load image ${index + 1}: ${err.message}`);
    } finally {
      body.dataset.busy = 'false';
    }
  }

  // --- drawing -------------------------------------------------------------------------------

  function colorOf(value) {
    return state.colors.get(value) || UNSURE_RGB;
  }

  // The image's pixels as shown: contrast about mid-grey, then brightness (labels and marks
  // are drawn over them unchanged). Cached per image and setting.
  function shownPixels(img) {
    const { brightness, contrast } = state.look;
    const key = `${brightness}/${contrast}`;
    if (state.shown && state.shown.image === img && state.shown.key === key) return state.shown.rgba;
    const rgba = new Uint8ClampedArray(img.rgba);
    if (brightness !== 1 || contrast !== 1) {
      for (let o = 0; o < rgba.length; o += 4) {
        for (let c = 0; c < 3; c++) rgba[o + c] = ((img.rgba[o + c] - 128) * contrast + 128) * brightness;
      }
    }
    state.shown = { image: img, key, rgba };
    return rgba;
  }

  function drawOverview() {
    const img = state.image;
    const canvas = $('canvas-image');
    const scale = Math.max(1, Math.floor(OVERVIEW_SIZE / img.W));
    if (canvas.width !== img.W * scale || canvas.height !== img.H * scale) {
      canvas.width = img.W * scale;
      canvas.height = img.H * scale;
    }
    const composite = new ImageData(new Uint8ClampedArray(shownPixels(img)), img.W, img.H);
    const out = composite.data;
    for (let k = 0; k < img.pixels.length; k++) {
      const o = img.pixels[k] * 4;
      const value = img.codes[k];
      const base = [out[o], out[o + 1], out[o + 2]];
      const c = value === NO_ANSWER ? mix(base, QUERY_RGB, 0.6) : mix(base, colorOf(value), 0.7);
      out[o] = c[0];
      out[o + 1] = c[1];
      out[o + 2] = c[2];
    }
    const native = document.createElement('canvas');
    native.width = img.W;
    native.height = img.H;
    native.getContext('2d').putImageData(composite, 0, 0);
    const ctx = canvas.getContext('2d');
    ctx.imageSmoothingEnabled = false;
    ctx.drawImage(native, 0, 0, canvas.width, canvas.height);
    const region = img.regions[state.region];
    if (!region) return;
    const [row, col] = region.centre;
    const a = region.radius;
    const line = Math.max(2, Math.round(canvas.width / 400));
    const pad = Math.max(line, Math.round(canvas.width / 150));
    ctx.strokeStyle = ACCENT;
    ctx.lineWidth = line;
    ctx.strokeRect(
      (col - a) * scale - pad, (row - a) * scale - pad,
      (2 * a + 1) * scale + 2 * pad, (2 * a + 1) * scale + 2 * pad);
  }

  function zoomView(img) {
    const region = img.regions[state.region];
    const [row, col] = region.centre;
    const a = region.radius;
    const context = Math.max(1, Math.round(CONTEXT / state.look.zoom)); // zoom: less around
    const view = {
      r0: Math.max(0, row - a - context), r1: Math.min(img.H, row + a + 1 + context),
      c0: Math.max(0, col - a - context), c1: Math.min(img.W, col + a + 1 + context),
      w0: [Math.max(0, row - a), Math.min(img.H, row + a + 1)],
      w1: [Math.max(0, col - a), Math.min(img.W, col + a + 1)],
    };
    const longest = Math.max(view.r1 - view.r0, view.c1 - view.c0);
    view.s = Math.max(4, Math.min(60, Math.floor(ZOOM_SIZE / longest)));
    return view;
  }

  function drawZoom() {
    const img = state.image;
    const canvas = $('canvas-zoom');
    const ctx = canvas.getContext('2d');
    if (!img.regions.length) {
      canvas.width = 1;
      canvas.height = 1;
      state.view = null;
      return;
    }
    const v = zoomView(img);
    state.view = v;
    const s = v.s;
    Object.assign(canvas.dataset, { r0: String(v.r0), c0: String(v.c0), scale: String(s) });
    if (canvas.width !== (v.c1 - v.c0) * s || canvas.height !== (v.r1 - v.r0) * s) {
      canvas.width = (v.c1 - v.c0) * s;
      canvas.height = (v.r1 - v.r0) * s;
    }
    const outlines = [];
    const shown = shownPixels(img);
    for (let row = v.r0; row < v.r1; row++) {
      for (let col = v.c0; col < v.c1; col++) {
        const index = row * img.W + col;
        const base = [shown[index * 4], shown[index * 4 + 1], shown[index * 4 + 2]];
        const p = img.posOf[index];
        let color = mix(base, [0, 0, 0], 0.5); // context: dimmed
        if (p >= 0) {
          const value = img.codes[p];
          if (value === NO_ANSWER) {
            color = base;
            outlines.push([row, col, 'query']);
          } else {
            color = mix(base, colorOf(value), 0.75);
            if (value === state.unsure) outlines.push([row, col, 'unsure']);
          }
        }
        ctx.fillStyle = rgb(color);
        ctx.fillRect((col - v.c0) * s, (row - v.r0) * s, s, s);
      }
    }
    if (s >= 6) { // the pixel grid
      ctx.strokeStyle = 'rgba(0, 0, 0, 0.35)';
      ctx.lineWidth = 1;
      ctx.beginPath();
      for (let x = 0; x <= canvas.width; x += s) {
        ctx.moveTo(x + 0.5, 0);
        ctx.lineTo(x + 0.5, canvas.height);
      }
      for (let y = 0; y <= canvas.height; y += s) {
        ctx.moveTo(0, y + 0.5);
        ctx.lineTo(canvas.width, y + 0.5);
      }
      ctx.stroke();
    }
    ctx.lineWidth = Math.max(2, Math.round(s / 12));
    for (const [row, col, kind] of outlines) {
      const x = (col - v.c0) * s;
      const y = (row - v.r0) * s;
      ctx.strokeStyle = kind === 'query' ? rgb(QUERY_RGB) : 'rgb(230, 230, 230)';
      if (kind === 'query') ctx.strokeRect(x + 3, y + 3, s - 6, s - 6);
      else {
        ctx.beginPath();
        ctx.moveTo(x + 3, y + 3);
        ctx.lineTo(x + s - 3, y + s - 3);
        ctx.stroke();
      }
    }
    ctx.strokeStyle = ACCENT;
    ctx.lineWidth = 3;
    ctx.strokeRect(
      (v.w1[0] - v.c0) * s + 1.5, (v.w0[0] - v.r0) * s + 1.5,
      (v.w1[1] - v.w1[0]) * s - 3, (v.w0[1] - v.w0[0]) * s - 3);
    $('pixel-info').textContent = state.hover ? describePixel(state.hover) : PIXEL_HINT;
    if (state.hover) {
      const [row, col] = state.hover;
      if (row >= v.r0 && row < v.r1 && col >= v.c0 && col < v.c1) {
        ctx.strokeStyle = '#ffffff';
        ctx.lineWidth = 2;
        ctx.strokeRect((col - v.c0) * s + 1, (row - v.r0) * s + 1, s - 2, s - 2);
      }
    }
  }

  function updateText() {
    if (!state.manifest) return;
    const { regions, images } = totals();
    const progress = $('progress');
    progress.textContent = `${plural(regions, 'region')} left (${plural(images, 'image')})`;
    progress.dataset.left = String(regions);
    progress.dataset.images = String(images);
    const img = state.image;
    if (!img) return;
    const n = state.manifest.images.length;
    $('position').textContent = `Image ${img.index + 1} of ${n}: ${img.id}`;
    const m = img.regions.length;
    let info = 'No regions';
    if (m) {
      const members = img.regions[state.region].members;
      const open = members.filter((p) => img.codes[p] === NO_ANSWER).length;
      info = `Region ${state.region + 1} of ${m}: ` +
        (open ? `${open} of ${plural(members.length, 'pixel')} to label` : 'labelled');
    }
    $('region-info').textContent = info;
    $('undo').disabled = state.finished || !state.history.length;
    $('prev-image').disabled = state.finished || img.index === 0;
    $('next-image').disabled = state.finished || img.index + 1 >= n;
    body.dataset.image = String(img.index);
    body.dataset.region = String(state.region);
  }

  function render() {
    if (!state.image) return;
    drawOverview();
    drawZoom();
    updateText();
  }

  // --- the magnified view: single pixels -----------------------------------------------------

  function zoomPixel(event) {
    const v = state.view;
    if (!v) return null;
    const canvas = $('canvas-zoom');
    const rect = canvas.getBoundingClientRect();
    const x = (event.clientX - rect.left) * (canvas.width / rect.width);
    const y = (event.clientY - rect.top) * (canvas.height / rect.height);
    const row = v.r0 + Math.floor(y / v.s);
    const col = v.c0 + Math.floor(x / v.s);
    if (row < v.r0 || row >= v.r1 || col < v.c0 || col >= v.c1) return null;
    return [row, col];
  }

  function describePixel(pixel) {
    if (!pixel) return '';
    const img = state.image;
    const p = img.posOf[pixel[0] * img.W + pixel[1]];
    let what = 'not queried';
    if (p >= 0) {
      const value = img.codes[p];
      what = value === NO_ANSWER ? 'to label' : state.names.get(value);
    }
    return `Row ${pixel[0]}, column ${pixel[1]}: ${what}`;
  }

  function paint(event) {
    const pixel = zoomPixel(event);
    const img = state.image;
    const stroke = state.stroke;
    if (!pixel || !stroke) return;
    const p = img.posOf[pixel[0] * img.W + pixel[1]];
    if (p < 0) {
      stroke.missed = true;
      return;
    }
    if (stroke.seen.has(p) || img.codes[p] === stroke.value) return;
    stroke.seen.add(p);
    stroke.positions.push(p);
    stroke.before.push(img.codes[p]);
    img.codes[p] = stroke.value;
    drawZoom();
  }

  function endStroke() {
    const stroke = state.stroke;
    state.stroke = null;
    if (!stroke) return;
    const img = state.image;
    if (stroke.positions.length) {
      state.history.push({
        image: img.index, positions: stroke.positions, before: stroke.before,
        region: stroke.region,
      });
      changed(img);
      message('');
    } else if (stroke.missed) {
      message('Only the outlined (queried) pixels can be labelled.');
    }
  }

  function setupZoom() {
    const canvas = $('canvas-zoom');
    canvas.addEventListener('contextmenu', (event) => event.preventDefault());
    canvas.addEventListener('pointerdown', (event) => {
      if (!ready() || !state.view || (event.button !== 0 && event.button !== 2)) return;
      event.preventDefault();
      const erase = event.button === 2 || event.shiftKey;
      state.stroke = {
        value: erase ? NO_ANSWER : state.brush, region: state.region, positions: [],
        before: [], seen: new Set(), missed: false,
      };
      try { canvas.setPointerCapture(event.pointerId); } catch (_) { /* not captured */ }
      paint(event);
    });
    canvas.addEventListener('pointermove', (event) => {
      if (!state.image) return;
      state.hover = zoomPixel(event);
      if (state.stroke) paint(event);
      else drawZoom();
    });
    canvas.addEventListener('pointerleave', () => {
      state.hover = null;
      if (state.image && !state.stroke) drawZoom();
    });
    canvas.addEventListener('pointerup', endStroke);
    canvas.addEventListener('pointercancel', endStroke);
  }

  function setupView() {
    for (const name of ['brightness', 'contrast', 'zoom']) {
      $(name).addEventListener('input', () => {
        state.look[name] = Number($(name).value) / 100;
        if (state.image) render();
      });
    }
  }

  function setupOverview() {
    $('canvas-image').addEventListener('click', (event) => {
      if (!ready() || !state.image.regions.length) return;
      const canvas = $('canvas-image');
      const rect = canvas.getBoundingClientRect();
      const col = (event.clientX - rect.left) * (state.image.W / rect.width);
      const row = (event.clientY - rect.top) * (state.image.H / rect.height);
      let best = 0;
      let bestDistance = Infinity;
      state.image.regions.forEach((region, r) => {
        const d = (region.centre[0] + 0.5 - row) ** 2 + (region.centre[1] + 0.5 - col) ** 2;
        if (d < bestDistance) { best = r; bestDistance = d; }
      });
      gotoRegion(best);
    });
  }

  // --- palette and keys ----------------------------------------------------------------------

  function keyLabel(i) {
    if (i < 10) return String((i + 1) % 10);
    if (i < 20) return `⇧${(i - 9) % 10}`;
    return '';
  }

  function buildPalette() {
    const palette = $('palette');
    const brush = $('brush');
    palette.textContent = '';
    brush.textContent = '';
    const entries = state.classes.map((c, i) => [c.id, c.name, c.color, keyLabel(i)]);
    entries.push([state.unsure, 'unsure / ignore', UNSURE_RGB, 'U']);
    for (const [value, name, color, key] of entries) {
      state.colors.set(value, color);
      state.names.set(value, name);
      const button = document.createElement('button');
      button.type = 'button';
      button.dataset.class = String(value);
      button.title = `${name}: label the region's unlabelled pixels (Alt+click: brush only)`;
      const swatch = document.createElement('span');
      swatch.className = 'swatch';
      swatch.style.background = rgb(color);
      const label = document.createElement('span');
      label.className = 'name';
      label.textContent = name;
      button.append(swatch, label);
      if (key) {
        const kbd = document.createElement('kbd');
        kbd.textContent = key;
        button.append(kbd);
      }
      button.addEventListener('click', (event) => {
        button.blur();
        choose(value, event.altKey);
      });
      palette.append(button);
      const option = document.createElement('option');
      option.value = String(value);
      option.textContent = key ? `${name} (${key})` : name;
      brush.append(option);
    }
    brush.addEventListener('change', () => {
      setBrush(Number(brush.value));
      brush.blur();
    });
    setBrush(state.classes.length ? state.classes[0].id : state.unsure);
  }

  function onKey(event) {
    const tag = event.target && event.target.tagName;
    if (!ready() || tag === 'SELECT' || tag === 'INPUT' || tag === 'TEXTAREA') return;
    const ctrl = event.ctrlKey || event.metaKey;
    const key = event.key.length === 1 ? event.key.toLowerCase() : event.key;
    if ((key === 'z' || event.code === 'KeyZ') && !event.altKey) {
      event.preventDefault();
      undo();
      return;
    }
    if (ctrl) return;
    const digit = /^(Digit|Numpad)([0-9])$/.exec(event.code);
    if (digit) {
      const n = Number(digit[2]);
      const i = (n === 0 ? 9 : n - 1) + (event.shiftKey ? 10 : 0);
      if (i < state.classes.length) {
        event.preventDefault();
        choose(state.classes[i].id, event.altKey);
      }
      return;
    }
    if (key === 'u' || event.code === 'KeyU') {
      event.preventDefault();
      choose(state.unsure, event.altKey);
      return;
    }
    const moves = {
      n: () => stepRegion(1), ArrowRight: () => stepRegion(1), ArrowDown: () => stepRegion(1),
      p: () => stepRegion(-1), ArrowLeft: () => stepRegion(-1), ArrowUp: () => stepRegion(-1),
      PageDown: () => stepImage(1), PageUp: () => stepImage(-1),
    };
    if (Object.prototype.hasOwnProperty.call(moves, key)) {
      event.preventDefault();
      moves[key]();
    }
  }

  // --- finish --------------------------------------------------------------------------------

  async function finish() {
    if (state.finished || body.dataset.ready !== 'true') return;
    const button = $('finish');
    button.disabled = true;
    try {
      if (!(await flushSaves())) {
        message('Some changes are not saved (see above); nothing was imported.');
        return;
      }
      const left = totals().regions;
      if (left > 0) {
        const ok = window.confirm(
          `${plural(left, 'region')} still ${left === 1 ? 'has' : 'have'} unlabelled pixels; ` +
          'they stay unlabelled in the masks. Import the labels now?');
        if (!ok) return;
      }
      setStatus('saving', 'Importing the labels…');
      const result = await api('POST', '/api/finish', {});
      state.finished = true;
      body.dataset.finished = 'true';
      setStatus('finished',
        'Labels imported; the round is complete and the server has stopped. You can close this tab.');
      const summary = $('summary');
      summary.hidden = false;
      summary.textContent =
        `Round ${result.round}: ${result.pixels_answered} of ${result.pixels_queried} queried ` +
        `pixels labelled, ${result.pixels_unanswered} left unlabelled, in ` +
        `${plural(result.images, 'image')}.`;
      message('');
      for (const el of document.querySelectorAll('button, select')) el.disabled = true;
    } catch (err) {
      setStatus('error', `Not imported: ${err.message}`);
    } finally {
      if (!state.finished) button.disabled = false;
    }
  }

  // --- start ---------------------------------------------------------------------------------

  async function start() {
    try {
      const manifest = await api('GET', '/api/manifest');
      state.manifest = manifest;
      state.classes = manifest.classes;
      state.unsure = manifest.unsure;
      if (Array.isArray(manifest.query_color)) QUERY_RGB = manifest.query_color;
      document.documentElement.style.setProperty('--query', rgb(QUERY_RGB));
      setupView();
      $('round').textContent = manifest.round_dir;
      buildPalette();
      setupZoom();
      setupOverview();
      document.addEventListener('keydown', onKey);
      $('undo').addEventListener('click', () => { if (ready()) undo(); });
      $('finish').addEventListener('click', finish);
      $('prev-image').addEventListener('click', () => stepImage(-1));
      $('next-image').addEventListener('click', () => stepImage(1));
      $('prev-region').addEventListener('click', () => stepRegion(-1));
      $('next-region').addEventListener('click', () => stepRegion(1));
      window.addEventListener('beforeunload', (event) => {
        if (state.pending.size || state.saving) {
          event.preventDefault();
          event.returnValue = '';
        }
      });
      updateText();
      if (manifest.images.length) {
        const saved = readPosition();
        if (saved) await loadImage(saved.image, Number.isInteger(saved.region) ? saved.region : 0);
        else {
          const first = manifest.images.findIndex((entry) => entry.left > 0);
          await loadImage(Math.max(first, 0), 'first-left');
        }
      } else {
        body.dataset.busy = 'false';
        message('This round has no queried images; Finish completes it.');
      }
      if ($('status').dataset.state !== 'error') setStatus('saved', 'All changes saved.');
      body.dataset.ready = 'true';
      updateText();
    } catch (err) {
      setStatus('error', `Cannot load the round: ${err.message}`);
    }
  }

  start();
})();

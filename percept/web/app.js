// percept's browser page: the exported style networks run by onnxruntime-web (vendored in ./ort/ by
// `percept export --web`; no CDN). Modes, from the query string:
//   (none)            drop or pick an image, or start the camera
//   ?selftest         stylise the bundled test image with every exported model and compare with the
//                     reference output onnxruntime computed in Python at export time; writes
//                     "ok max_abs_diff=<value>" or "error <reason>" into #selftest
//   ?camera[&frames=N][&model=NAME]   start the camera at once; after N frames (default 30) writes
//                     "ok frames=N fps=<value> size=WxH backend=<name>" into #camera-test
//   &backend=wasm|webgpu  the runtime (default: WebGPU where the browser offers an adapter, else WebAssembly)
import * as ort from './ort/ort.min.mjs';

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const SELFTEST_TOLERANCE = 1e-2;
const state = { manifest: null, sessions: new Map(), backend: null, camera: null, busy: false, pending: false, image: null };

function status(text, error = false) {
  $('status').textContent = text;
  $('status').className = error ? 'error' : '';
}

// WebAssembly SIMD: onnxruntime-web ships only SIMD builds. A module with one v128 instruction.
function wasmSimd() {
  try {
    return WebAssembly.validate(new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0,
      10, 10, 1, 8, 0, 65, 0, 253, 15, 253, 98, 11]));
  } catch (e) {
    return false;
  }
}

async function webgpuAvailable() {
  if (!navigator.gpu) return false;
  try {
    return !!(await navigator.gpu.requestAdapter());
  } catch (e) {
    return false;
  }
}

async function chooseBackend(asked) {
  if (asked === 'webgpu') {
    if (!(await webgpuAvailable())) throw new Error('this browser offers no WebGPU adapter; choose WebAssembly');
    return 'webgpu';
  }
  if (asked === 'wasm') return 'wasm';
  return (await webgpuAvailable()) ? 'webgpu' : 'wasm';
}

function setupRuntime() {
  if (typeof WebAssembly !== 'object') throw new Error('this browser has no WebAssembly; the page cannot run');
  if (!wasmSimd()) throw new Error('this browser has no WebAssembly SIMD, which onnxruntime-web needs; use a current Chrome, Edge, Firefox or Safari');
  ort.env.wasm.wasmPaths = new URL('./ort/', location.href).href;
  // threads need a cross-origin isolated page (COOP/COEP headers: `percept serve-web` sends them)
  ort.env.wasm.numThreads = self.crossOriginIsolated ? Math.min(4, navigator.hardwareConcurrency || 1) : 1;
  ort.env.logLevel = 'error';
}

function session(name) {
  // the creation promise is cached, so calls that overlap share one session
  const key = `${name}|${state.backend}`;
  if (state.sessions.has(key)) return state.sessions.get(key);
  const entry = state.manifest.models.find((m) => m.name === name);
  if (!entry) return Promise.reject(new Error(`no model '${name}' in this export`));
  const backend = state.backend;
  const created = ort.InferenceSession.create(entry.file, { executionProviders: [backend], graphOptimizationLevel: 'all' })
    .catch((e) => {
      state.sessions.delete(key);
      throw new Error(`onnxruntime-web cannot run ${entry.file} with ${backend}: ${String(e.message || e).split('\n')[0]}`);
    });
  state.sessions.set(key, created);
  return created;
}

// RGBA uint8 (ImageData) -> float32 NCHW RGB in [0, 1]
function toTensor(img) {
  const { width: w, height: h, data } = img;
  const n = w * h;
  const f = new Float32Array(3 * n);
  for (let i = 0, j = 0; i < n; i++, j += 4) {
    f[i] = data[j] / 255;
    f[n + i] = data[j + 1] / 255;
    f[2 * n + i] = data[j + 2] / 255;
  }
  return new ort.Tensor('float32', f, [1, 3, h, w]);
}

// float32 NCHW in [0, 1] -> RGBA uint8, rounded as percept's Python side does; strength and colour
// preservation as percept.images.finish_frame (BT.601 YCbCr luma transfer, then photo*(1-s) + styled*s)
function toImageData(out, photo, strength, preserve) {
  const [, , h, w] = out.dims;
  const n = w * h;
  const src = out.data;
  const p = photo.data;
  const img = new ImageData(w, h);
  const d = img.data;
  const q = (v) => Math.min(255, Math.max(0, Math.floor(Math.min(1, Math.max(0, v)) * 255 + 0.5)));
  for (let i = 0, j = 0; i < n; i++, j += 4) {
    let r = q(src[i]);
    let g = q(src[n + i]);
    let b = q(src[2 * n + i]);
    if (preserve) {
      const y = 0.299 * r + 0.587 * g + 0.114 * b;
      const cb = -0.168736 * p[j] - 0.331264 * p[j + 1] + 0.5 * p[j + 2];
      const cr = 0.5 * p[j] - 0.418688 * p[j + 1] - 0.081312 * p[j + 2];
      r = Math.max(0, Math.min(255, Math.round(y + 1.402 * cr)));
      g = Math.max(0, Math.min(255, Math.round(y - 0.344136 * cb - 0.714136 * cr)));
      b = Math.max(0, Math.min(255, Math.round(y + 1.772 * cb)));
    }
    if (strength < 1) {
      r = Math.floor(p[j] * (1 - strength) + r * strength + 0.5);
      g = Math.floor(p[j + 1] * (1 - strength) + g * strength + 0.5);
      b = Math.floor(p[j + 2] * (1 - strength) + b * strength + 0.5);
    }
    d[j] = r; d[j + 1] = g; d[j + 2] = b; d[j + 3] = 255;
  }
  return img;
}

function fit(w, h, longSide) {
  if (!longSide || Math.max(w, h) <= longSide) return [w, h];
  const s = longSide / Math.max(w, h);
  return [Math.max(1, Math.round(w * s)), Math.max(1, Math.round(h * s))];
}

function drawInput(source, w, h) {
  const c = $('input');
  if (c.width !== w || c.height !== h) { c.width = w; c.height = h; }
  const ctx = c.getContext('2d', { willReadFrequently: true });
  ctx.drawImage(source, 0, 0, w, h);
  return ctx.getImageData(0, 0, w, h);
}

// one session.run at a time (onnxruntime-web does not take overlapping runs of one session)
let running = Promise.resolve();
function stylise(photo) {
  const next = running.then(() => styliseNow(photo));
  running = next.catch(() => {});
  return next;
}

async function styliseNow(photo) {
  const name = $('model').value;
  const entry = state.manifest.models.find((m) => m.name === name);
  if (!entry) throw new Error(`no model '${name}' in this export`);
  if (photo.width < entry.min_size || photo.height < entry.min_size) {
    throw new Error(`the image must be at least ${entry.min_size}x${entry.min_size} px for ${name}`);
  }
  const s = await session(name);
  const result = await s.run({ [s.inputNames[0]]: toTensor(photo) });
  const out = result[s.outputNames[0]];
  const img = toImageData(out, photo, Number($('strength').value), $('preserve').checked);
  if (out.dispose) out.dispose();
  const c = $('output');
  if (c.width !== img.width || c.height !== img.height) { c.width = img.width; c.height = img.height; }
  c.getContext('2d').putImageData(img, 0, 0);
  $('output-caption').textContent = `${name}, ${img.width}x${img.height}, ${state.backend}`;
}

async function styliseImage() {
  if (!state.image || state.camera) return;
  if (state.busy) { state.pending = true; return; }  // a slider drag: only the latest setting runs next
  state.busy = true;
  try {
    do {
      state.pending = false;
      await styliseImageOnce();
    } while (state.pending && !state.camera);
  } finally {
    state.busy = false;
  }
}

async function styliseImageOnce() {
  const [w, h] = fit(state.image.naturalWidth || state.image.width, state.image.naturalHeight || state.image.height,
    Number($('size').value));
  try {
    const t0 = performance.now();
    await stylise(drawInput(state.image, w, h));
    status(`stylised in ${((performance.now() - t0) / 1000).toFixed(2)} s`);
  } catch (e) {
    status(String(e.message || e), true);
  }
}

function loadImage(url) {
  return new Promise((resolve, reject) => {
    const im = new Image();
    im.onload = () => resolve(im);
    im.onerror = () => reject(new Error(`cannot read ${url} as an image`));
    im.src = url;
  });
}

async function openFile(file) {
  if (!file) return;
  if (!file.type.startsWith('image/')) { status(`${file.name}: not an image`, true); return; }
  try {
    state.image = await loadImage(URL.createObjectURL(file));
    await styliseImage();
  } catch (e) {
    status(String(e.message || e), true);
  }
}

// ---------------------------------------------------------------------------------------------- camera

async function startCamera(frames = 0) {
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    throw new Error('no camera access here: the page must be served over https or from localhost');
  }
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 480 }, audio: false });
  } catch (e) {
    const why = e && e.name === 'NotAllowedError' ? 'camera permission was refused' :
      e && e.name === 'NotFoundError' ? 'no camera was found' : `the camera could not be opened (${e.name || e})`;
    throw new Error(why);
  }
  const video = $('video');
  video.srcObject = stream;
  try {
    await video.play();
  } catch (e) {
    for (const t of stream.getTracks()) t.stop();
    throw new Error(`the camera could not be played (${e.name || e})`);
  }
  state.camera = { stream, shown: 0, times: [], stop: false };
  $('camera-button').textContent = 'stop camera';
  const cam = state.camera;
  const t0 = performance.now();
  while (!cam.stop) {
    const [w, h] = fit(video.videoWidth, video.videoHeight, Number($('size').value) || 0);
    if (!w || !h) { await new Promise((r) => setTimeout(r, 30)); continue; }
    await stylise(drawInput(video, w, h));
    const now = performance.now();
    cam.times.push(now);
    if (cam.times.length > 30) cam.times.shift();
    cam.shown++;
    if (cam.shown === 1) cam.first = now;  // FPS from the first shown frame on: the first run includes set-up
    if (cam.times.length > 1) {
      const fps = (cam.times.length - 1) / ((now - cam.times[0]) / 1000);
      $('fps').textContent = `${fps.toFixed(1)} FPS at ${w}x${h}`;
    }
    if (frames && cam.shown >= frames) {
      const fps = (cam.shown - 1) / (Math.max(1, now - cam.first) / 1000);
      $('camera-test').textContent = `ok frames=${cam.shown} fps=${fps.toFixed(2)} size=${w}x${h} backend=${state.backend}` +
        ` threads=${ort.env.wasm.numThreads}`;
      stopCamera();
    }
    await new Promise((r) => requestAnimationFrame(() => r()));
  }
  return performance.now() - t0;
}

function stopCamera() {
  if (!state.camera) return;
  state.camera.stop = true;
  for (const t of state.camera.stream.getTracks()) t.stop();
  state.camera = null;
  $('camera-button').textContent = 'start camera';
  $('fps').textContent = '';
}

// ------------------------------------------------------------------------------------------- self-test

async function fetchOk(url, kind) {
  const r = await fetch(url);
  if (!r.ok) throw new Error(`${url}: ${r.status} ${r.statusText}`);
  return kind === 'json' ? r.json() : r.arrayBuffer();
}

async function selftest() {
  const t = state.manifest.selftest;
  const photoEl = await loadImage(t.image);
  const photo = drawInput(photoEl, photoEl.naturalWidth, photoEl.naturalHeight);  // exact pixels: no resize
  let worst = 0;
  const lines = [];
  for (const m of state.manifest.models) {
    const s = await session(m.name);
    const out = (await s.run({ [s.inputNames[0]]: toTensor(photo) }))[s.outputNames[0]];
    const ref = new Float32Array(await fetchOk(m.reference, 'bin'));
    if (ref.length !== out.data.length) throw new Error(`${m.name}: output has ${out.data.length} values, the reference ${ref.length}`);
    let d = 0;
    for (let i = 0; i < ref.length; i++) {
      const v = Math.abs(out.data[i] - ref[i]);
      if (!(v <= d)) d = v;  // NaN counts as the worst
    }
    worst = Math.max(worst, d);
    lines.push(`${m.name} ${d.toExponential(2)}`);
    $('model').value = m.name;
    await stylise(photo);
  }
  const verdict = worst <= SELFTEST_TOLERANCE ? 'ok' : 'error';
  const text = verdict === 'ok' ? `ok max_abs_diff=${worst.toExponential(3)}` :
    `error max_abs_diff=${worst.toExponential(3)} exceeds ${SELFTEST_TOLERANCE}`;
  $('selftest').textContent = `${text} backend=${state.backend} models=${state.manifest.models.length}`;
  status(`self-test (${state.backend}): ${lines.join(', ')}`, verdict !== 'ok');
}

// ------------------------------------------------------------------------------------------------ main

async function main() {
  setupRuntime();
  state.manifest = await fetchOk('models.json', 'json');
  if (!state.manifest.models || !state.manifest.models.length) throw new Error('models.json lists no model');
  const pick = $('model');
  for (const m of state.manifest.models) {
    const o = document.createElement('option');
    o.value = m.name; o.textContent = `${m.name}${m.style ? ` (${m.style})` : ''}`;
    pick.appendChild(o);
  }
  if (params.get('model')) {
    const wanted = params.get('model');
    if (!state.manifest.models.some((m) => m.name === wanted)) {
      throw new Error(`no model '${wanted}' in this export (it has ${state.manifest.models.map((m) => m.name).join(', ')})`);
    }
    pick.value = wanted;
  }
  const asked = params.get('backend') || $('backend').value;
  $('backend').value = asked;
  state.backend = await chooseBackend(asked);
  status(`ready: ${state.manifest.models.length} model(s), ${state.backend}` +
    (state.backend === 'wasm' ? `, ${ort.env.wasm.numThreads} thread(s)` +
      (self.crossOriginIsolated ? '' : ' (serve with COOP/COEP headers, e.g. `percept serve-web`, for threads)') : ''));

  const refresh = () => { if (!state.camera) styliseImage(); };
  $('strength').addEventListener('input', () => { $('strength-value').textContent = Number($('strength').value).toFixed(2); refresh(); });
  $('preserve').addEventListener('change', refresh);
  $('model').addEventListener('change', refresh);
  $('size').addEventListener('change', refresh);
  $('backend').addEventListener('change', async () => {
    try { state.backend = await chooseBackend($('backend').value); status(`runtime: ${state.backend}`); refresh(); } catch (e) { status(String(e.message || e), true); }
  });
  $('file').addEventListener('change', (e) => openFile(e.target.files[0]));
  const drop = $('drop');
  drop.addEventListener('dragover', (e) => { e.preventDefault(); drop.classList.add('over'); });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', (e) => { e.preventDefault(); drop.classList.remove('over'); openFile(e.dataTransfer.files[0]); });
  $('camera-button').addEventListener('click', () => {
    if (state.camera) { stopCamera(); return; }
    startCamera().catch((e) => { stopCamera(); status(String(e.message || e), true); });
  });

  if (params.has('selftest')) {
    try { await selftest(); } catch (e) { $('selftest').textContent = `error ${String(e.message || e).split('\n')[0]}`; throw e; }
  } else if (params.has('camera')) {
    $('size').value = params.get('size') || '0';
    try {
      await startCamera(Number(params.get('frames') || 30));
    } catch (e) {
      $('camera-test').textContent = `error ${String(e.message || e).split('\n')[0]}`;
      throw e;
    }
  } else {
    state.image = await loadImage(state.manifest.selftest.image);
    await styliseImage();
  }
}

main().catch((e) => {
  status(String(e.message || e), true);
  const el = $('selftest');
  if (params.has('selftest') && !el.textContent) el.textContent = `error ${String(e.message || e).split('\n')[0]}`;
  if (params.has('camera') && !$('camera-test').textContent) $('camera-test').textContent = `error ${String(e.message || e).split('\n')[0]}`;
});

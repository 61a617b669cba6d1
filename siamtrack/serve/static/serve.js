// The siamtrack page: one WebSocket session with the server (README: the protocol), three sources
// (this browser's camera, an uploaded video, a camera or stream the server opens), boxes drawn with the
// mouse on a paused frame, and the boxes the server sends drawn over the frames.
"use strict";

// camera frames sent and not answered yet. On loopback a second one gained no fps and doubled the latency
// (it waits behind the first: tools/serve_load.py --in-flight, README); over a slow link it would hide the
// round trip at that cost
const MAX_IN_FLIGHT = 1;
const JPEG_QUALITY = 0.85;
const MIN_BOX_PX = 4;          // a drag shorter than this is a click, not a box
const LATENCY_WINDOW = 30;     // latencies the median is taken over
const FPS_WINDOW_MS = 2000;    // answers the fps is counted over
const MAX_RESULTS = 10000;     // answers kept in window.siamtrack.results
const MESSAGE_MS = 8000;       // how long an error stays on the page
const IDLE_CLOSE = 4000;       // the server closed the session after its --idle-timeout

const $ = (id) => document.getElementById(id);
const token = new URLSearchParams(location.search).get("token");
const query = token ? `?token=${encodeURIComponent(token)}` : "";

const state = {
  socket: null, session: null, hello: null,
  mode: null,           // "camera" | "upload" | "server"
  paused: false,        // a frame held for drawing
  drawMode: "init",     // what Start sends: init (new targets) or add (more targets)
  drawn: [],            // boxes dragged on the held frame, not sent yet
  drag: null,           // the box being dragged
  tracking: false,      // targets on the server
  targets: [],          // the last answer's targets
  held: null,           // the frame held while paused (a canvas or an image)
  heldNumber: null,     // server sources: that frame's number
  framesSent: 0, sentAt: new Map(), encoding: false,
  latencies: [], answerTimes: [],
  serverImage: null, serverFrame: null, pendingFrame: null,
  upload: null, uploadImage: null, playback: null,
  results: [],          // every boxes message received, with the time it came (for scripts and tests)
};
window.siamtrack = state;

const view = $("view");
const context = view.getContext("2d");
const camera = $("camera");
const grab = document.createElement("canvas");   // camera frames are encoded from here

// --- the socket

function connect() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const socket = new WebSocket(`${scheme}://${location.host}/ws${query}`);
  socket.binaryType = "blob";
  socket.onmessage = (event) => {
    if (typeof event.data === "string") onMessage(JSON.parse(event.data));
    else onImage(event.data);
  };
  socket.onclose = (event) => {
    const why = { 1013: "busy", [IDLE_CLOSE]: "closed: idle for too long; reload the page to start again" };
    setStatus(why[event.code] || "disconnected: reload the page to start a new session");
    setControls();
  };
  state.socket = socket;
}

function send(message) {
  if (state.socket && state.socket.readyState === WebSocket.OPEN) state.socket.send(message);
}

function sendJson(message) { send(JSON.stringify(message)); }

function onMessage(message) {
  const handlers = {
    hello: () => {
      state.hello = message;
      state.session = message.session;
      $("model").textContent = message.model;
      $("server-source").hidden = !message.server_sources;
      $("download-live").href = sessionUrl("live.boxes.txt");
      setStatus("starting the session…");
    },
    ready: () => setStatus("ready"),
    boxes: () => onBoxes(message),
    frame: () => { state.pendingFrame = message.frame; },
    source_opened: () => startServerSource(message),
    source_ended: () => {
      showMessage(`the server source ended: ${message.message}`);
      state.mode = null;
      setControls();
    },
    progress: () => onProgress(message),
    upload_done: () => onUploadDone(message),
    error: () => showMessage(message.message),
    busy: () => showMessage(message.message),
    idle: () => showMessage(message.message, "note", 0),
  };
  (handlers[message.type] || (() => showMessage(`unknown message from the server: ${message.type}`)))();
}

async function onImage(blob) {   // a server source's frame, announced by the `frame` message before it
  const number = state.pendingFrame;
  const image = await createImageBitmap(blob);
  if (state.mode !== "server" || state.paused) return;
  state.serverImage = image;
  state.serverFrame = number;
  fitView(image.width, image.height);
}

function onBoxes(message) {
  const now = performance.now();
  state.results.push({ ...message, received: now });
  if (state.results.length > MAX_RESULTS) state.results.shift();
  if (state.sentAt.has(message.frame)) {
    state.latencies.push(now - state.sentAt.get(message.frame));
    state.latencies = state.latencies.slice(-LATENCY_WINDOW);
  }
  for (const number of state.sentAt.keys()) {   // answers come in order: older frames were dropped
    if (number <= message.frame) state.sentAt.delete(number);
  }
  state.answerTimes = state.answerTimes.filter((t) => now - t < FPS_WINDOW_MS).concat(now);
  if (!state.tracking && message.targets.length) return;   // an answer to frames sent before Clear all
  state.targets = message.targets;
  $("fps").textContent = (1000 * (state.answerTimes.length - 1) / Math.max(now - state.answerTimes[0], 1)).toFixed(1);
  $("latency").textContent = state.latencies.length ? median(state.latencies).toFixed(0) : "–";
  $("dropped").textContent = message.dropped;
  listTargets();
}

// --- sources

async function useCamera() {
  try {
    camera.srcObject = await navigator.mediaDevices.getUserMedia({ video: true, audio: false });
  } catch (error) {
    showMessage(`no camera: ${error.message} (a browser asks for one only on 127.0.0.1, localhost or an https page)`);
    return;
  }
  await leaveMode();
  await camera.play();
  state.mode = "camera";
  fitView(camera.videoWidth, camera.videoHeight);
  setHint("Pause on a frame, drag a box around each target, then Start.");
  setControls();
  pumpCamera();
}

function pumpCamera() {   // one look per camera frame: send it when tracking and the server keeps up
  if (state.mode !== "camera") return;
  if (state.tracking && !state.paused && !state.encoding && state.sentAt.size < MAX_IN_FLIGHT) {
    copyFrame(camera, grab);
    sendFrame(grab);
  }
  if (camera.requestVideoFrameCallback) camera.requestVideoFrameCallback(pumpCamera);
  else requestAnimationFrame(pumpCamera);
}

async function sendFrame(canvas) {
  state.encoding = true;
  const blob = await new Promise((resolve) => canvas.toBlob(resolve, "image/jpeg", JPEG_QUALITY));
  state.sentAt.set(state.framesSent, performance.now());
  state.framesSent += 1;
  send(blob);
  state.encoding = false;
}

function openServerSource(event) {
  event.preventDefault();
  sendJson({ type: "source", source: $("source-text").value.trim() });
  setStatus("opening the source on the server…");
}

async function startServerSource(message) {
  await leaveMode();
  state.mode = "server";
  setStatus(`showing ${message.source}`);
  setHint("Pause on a frame, drag a box around each target, then Start.");
  setControls();
}

async function uploadVideo() {
  const file = $("upload-file").files[0];
  $("upload-file").value = "";
  if (!file || !state.session) return;
  await leaveMode();
  setStatus(`uploading ${file.name}…`);
  let answer;
  try {
    const response = await fetch(sessionUrl("upload"), { method: "POST", body: file });
    answer = await response.json();
    if (!response.ok) throw new Error(answer.error);
  } catch (error) {
    showMessage(`upload refused: ${error.message}`);
    setStatus("ready");
    return;
  }
  state.mode = "upload";
  state.upload = answer;
  state.uploadImage = await loadImage(sessionUrl("frames/0.jpg"));
  fitView(answer.width, answer.height);
  state.paused = true;
  state.held = state.uploadImage;
  const frames = answer.frames ?? "?";
  setStatus(`${file.name}: ${answer.width}x${answer.height}, ${frames} frames at ${answer.fps.toFixed(1)} fps`);
  setHint("Drag a box around each target in the first frame, then Start: the server tracks the whole video.");
  setControls();
}

function onProgress(message) {
  const bar = $("progress");
  bar.hidden = false;
  if (message.total) { bar.max = message.total; bar.value = message.done; } else bar.removeAttribute("value");
  setStatus(`tracking the video: ${message.done}${message.total ? ` of ${message.total}` : ""} frames`);
}

async function onUploadDone(message) {
  $("progress").hidden = true;
  setStatus(`tracked ${message.frames} frames at ${message.fps} fps`);
  setHint("Done: the boxes play back over the video; download them, or the annotated video, below.");
  if (message.stopped) showMessage(`the video was tracked up to frame ${message.frames}: ${message.stopped}`, "note", 0);
  $("fps").textContent = message.fps.toFixed(1);
  for (const [id, name] of [["download-boxes", "upload.boxes.txt"], ["download-video", "upload.mp4"]]) {
    $(id).href = sessionUrl(name);
    $(id).hidden = false;
  }
  $("replay").hidden = false;
  const text = await (await fetch(sessionUrl("upload.boxes.txt"))).text();
  state.upload.rows = parseRows(text);
  playBack();
}

function parseRows(text) {   // the boxes file: frame,id,x,y,w,h,score,lost per line, after one # line
  const frames = new Map();
  for (const line of text.split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const [frame, id, x, y, w, h, score, lost] = line.split(",").map(Number);
    if (!frames.has(frame)) frames.set(frame, []);
    frames.get(frame).push({ id, box: [x, y, w, h], score, lost: lost === 1 });
  }
  return frames;
}

async function playBack() {   // the tracked video, frame by frame at its rate, with its boxes
  const run = {};
  state.playback = run;
  state.paused = false;
  setControls();
  for (const [frame, targets] of state.upload.rows) {
    const started = performance.now();
    const image = await loadImage(sessionUrl(`frames/${frame}.jpg`));
    if (state.playback !== run) return;
    state.uploadImage = image;
    state.targets = targets;
    listTargets();
    await sleep(1000 / state.upload.fps - (performance.now() - started));
  }
  state.playback = null;
}

async function leaveMode() {   // before another source: stop the camera, the server source, the playback
  if (state.mode === "camera" && camera.srcObject) camera.srcObject.getTracks().forEach((t) => t.stop());
  if (state.mode === "server") sendJson({ type: "source", source: null });
  if (state.tracking) sendJson({ type: "clear" });
  Object.assign(state, { mode: null, paused: false, tracking: false, targets: [], drawn: [], playback: null });
  $("progress").hidden = true;
  listTargets();
}

// --- drawing boxes and the tracking controls

function pause() {
  if (state.paused) return resume();
  if (state.mode === "camera") state.held = copyFrame(camera, document.createElement("canvas"));
  if (state.mode === "server") {
    state.held = state.serverImage;
    state.heldNumber = state.serverFrame;
    sendJson({ type: "pause" });
  }
  state.paused = true;
  setHint(state.drawMode === "add" ? "Drag the new target's box, then Start."
                                   : "Drag a box around each target, then Start.");
  setControls();
}

function resume() {
  state.paused = false;
  state.drawn = [];
  state.drawMode = "init";
  if (state.mode === "server") sendJson({ type: "resume" });
  setControls();
}

async function start() {
  if (!state.drawn.length) return showMessage("drag a box around a target first");
  const held = state.tracking && state.drawMode === "add" ? state.targets.length : 0;
  if (held + state.drawn.length > state.hello.max_targets) {
    return showMessage(`this server tracks at most ${state.hello.max_targets} targets at once: drop some first`);
  }
  const boxes = state.drawn.map((b) => b.map((v) => Math.round(v * 100) / 100));
  if (state.mode === "upload") {
    state.drawn = [];
    sendJson({ type: "track_upload", boxes });
    $("progress").hidden = false;
    setHint("The server is tracking the video: its boxes play back here once it is done.");
    setControls();
    return;
  }
  const type = state.tracking && state.drawMode === "add" ? "add" : "init";
  if (state.mode === "server") {
    sendJson({ type, boxes, frame: state.heldNumber });
  } else {
    sendJson({ type, boxes });
    await sendFrame(state.held);
  }
  state.tracking = true;
  resume();
  setHint("Tracking. Pause to hold a frame, Add target for one more, × on a target to drop it.");
}

function addTarget() {
  state.drawMode = "add";
  if (!state.paused) pause();
  else setHint("Drag the new target's box, then Start.");
}

function clearAll() {
  sendJson({ type: "clear" });
  Object.assign(state, { tracking: false, targets: [], drawn: [] });
  listTargets();
  setControls();
}

function removeTarget(id) {
  sendJson({ type: "remove", id });
  state.targets = state.targets.filter((t) => t.id !== id);
  listTargets();
}

function imagePoint(event) {
  const rect = view.getBoundingClientRect();
  return [(event.clientX - rect.left) * view.width / rect.width,
          (event.clientY - rect.top) * view.height / rect.height];
}

function onPointerDown(event) {
  if (!state.paused || state.playback) return;
  view.setPointerCapture(event.pointerId);
  const [x, y] = imagePoint(event);
  state.drag = { x, y, box: null };
}

function onPointerMove(event) {
  if (!state.drag) return;
  const [x, y] = imagePoint(event);
  const { x: x0, y: y0 } = state.drag;
  state.drag.box = [Math.min(x, x0), Math.min(y, y0), Math.abs(x - x0), Math.abs(y - y0)];
}

function onPointerUp(event) {
  if (!state.drag) return;
  onPointerMove(event);
  const box = state.drag.box;
  state.drag = null;
  if (box && box[2] >= MIN_BOX_PX && box[3] >= MIN_BOX_PX) {
    if (state.drawMode === "add" && state.mode !== "upload") state.drawn = [box];   // add: one target
    else state.drawn.push(box);
  }
  setControls();
}

// --- what the page shows

function render() {
  const base = state.paused ? state.held : { camera, server: state.serverImage, upload: state.uploadImage }[state.mode];
  if (base) context.drawImage(base, 0, 0, view.width, view.height);
  if (!state.paused) state.targets.forEach((t) => drawBox(t.box, colour(t), String(t.id)));
  state.drawn.forEach((box) => drawBox(box, "#ffffff", "new", true));
  if (state.drag && state.drag.box) drawBox(state.drag.box, "#ffffff", "", true);
  requestAnimationFrame(render);
}

function drawBox([x, y, w, h], stroke, label, dashed = false) {
  const line = Math.max(2, view.width / 320);
  context.lineWidth = line;
  context.strokeStyle = stroke;
  context.setLineDash(dashed ? [3 * line, 2 * line] : []);
  context.strokeRect(x, y, w, h);
  if (!label) return;
  context.font = `${Math.round(7 * line)}px system-ui, sans-serif`;
  const width = context.measureText(label).width + 2 * line;
  const height = 9 * line;
  const top = y - height >= 0 ? y - height : y + h;
  context.fillStyle = "rgba(0, 0, 0, 0.7)";
  context.fillRect(x, top, width, height);
  context.fillStyle = stroke;
  context.fillText(label, x + line, top + 7 * line);
}

function colour(target) {
  if (target.lost) return state.hello.lost_colour;
  const colours = state.hello.colours;
  return colours[target.id % colours.length];
}

function listTargets() {
  const list = $("targets");
  list.replaceChildren(...state.targets.map((t) => {
    const item = document.createElement("li");
    const swatch = document.createElement("span");
    swatch.className = "swatch";
    swatch.style.background = colour(t);
    const text = document.createElement("span");
    text.textContent = `#${t.id} score ${t.score == null || Number.isNaN(t.score) ? "–" : t.score.toFixed(2)}`;
    item.append(swatch, text);
    if (t.lost) {
      const lost = document.createElement("span");
      lost.className = "lost";
      lost.textContent = "lost";
      item.append(lost);
    }
    if (state.mode !== "upload") {
      const remove = document.createElement("button");
      remove.type = "button";
      remove.title = `stop tracking #${t.id}`;
      remove.textContent = "×";
      remove.onclick = () => removeTarget(t.id);
      item.append(remove);
    }
    return item;
  }));
}

function setControls() {
  const live = state.mode === "camera" || state.mode === "server";
  const connected = state.socket && state.socket.readyState === WebSocket.OPEN;
  $("pause").disabled = !connected || !live;
  $("pause").textContent = state.paused && live ? "Resume" : "Pause";
  $("start").disabled = !connected || !state.paused || !state.drawn.length || Boolean(state.playback);
  $("add").disabled = !connected || !live || !state.tracking;
  $("clear").disabled = !connected || !live || !state.tracking;
  $("download-live").hidden = !state.session || state.mode === "upload";
}

function fitView(width, height) {   // the frame's pixels, shown as wide as the page and 70 % of its height allow
  if (view.width !== width || view.height !== height) Object.assign(view, { width, height });
  view.style.maxWidth = `calc(70vh * ${width / height})`;
}

function copyFrame(source, canvas) {
  canvas.width = source.videoWidth || source.width;
  canvas.height = source.videoHeight || source.height;
  canvas.getContext("2d").drawImage(source, 0, 0);
  return canvas;
}

function setStatus(text) { $("status").textContent = text; }
function setHint(text) { $("hint").textContent = text; }

let messageTimer = null;
function showMessage(text, kind = "error", ms = MESSAGE_MS) {   // ms 0: until the next message
  const box = $("message");
  box.textContent = text;
  box.className = kind === "note" ? "note" : "";
  box.hidden = false;
  clearTimeout(messageTimer);
  if (ms) messageTimer = setTimeout(() => { box.hidden = true; }, ms);
}

function sessionUrl(name) { return `/sessions/${state.session}/${name}${query}`; }
function median(values) { const s = [...values].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]; }
function sleep(ms) { return new Promise((resolve) => setTimeout(resolve, Math.max(0, ms))); }

function loadImage(url) {
  return new Promise((resolve, reject) => {
    const image = new Image();
    image.onload = () => resolve(image);
    image.onerror = () => reject(new Error(`cannot load ${url}`));
    image.src = url;
  });
}

// --- wiring

$("use-camera").onclick = useCamera;
$("upload-file").onchange = uploadVideo;
$("server-source").onsubmit = openServerSource;
$("pause").onclick = pause;
$("start").onclick = start;
$("add").onclick = addTarget;
$("clear").onclick = clearAll;
$("replay").onclick = playBack;
view.addEventListener("pointerdown", onPointerDown);
view.addEventListener("pointermove", onPointerMove);
view.addEventListener("pointerup", onPointerUp);
connect();
setControls();
requestAnimationFrame(render);

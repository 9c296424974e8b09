// vidmatte serve: the page. Photos go to POST /api/remove (answered at once), clips to
// POST /api/jobs (polled until done). Plain JS, no build step. GPL-3.0-or-later.
"use strict";

const $ = (id) => document.getElementById(id);
// what the server matters as a still; everything else is sent as a clip
const STILL_TYPES = new Set(["image/png", "image/jpeg", "image/webp", "image/bmp", "image/tiff"]);
const STILL_NAMES = /\.(png|jpe?g|webp|bmp|tiff?)$/i;
const PLAYABLE = new Set(["webm", "mp4"]);
const POLL_MS = 500;

let apiKey = sessionStorage.getItem("vidmatte-key") || "";
let run = null; // the current upload or job: {xhr, jobId, timer, urls}

function authHeaders() {
  return apiKey ? { Authorization: "Bearer " + apiKey } : {};
}

async function errorText(response) {
  try {
    const body = await response.json();
    if (body && body.error) return body.error;
  } catch (_) { /* not JSON */ }
  return `${response.status} ${response.statusText}`;
}

async function api(path, options = {}) {
  const response = await fetch(path, { ...options, headers: { ...authHeaders(), ...(options.headers || {}) } });
  if (response.status === 401) {
    askForKey();
    throw new Error("this server needs its API key");
  }
  if (!response.ok) throw new Error(await errorText(response));
  return response;
}

function askForKey() {
  $("key-form").hidden = false;
  $("key").focus();
}

function setState(state) {
  document.body.dataset.state = state;
}

function showError(message) {
  $("error").textContent = message;
  $("error").hidden = false;
  $("progress").hidden = true;
  setState("failed");
}

function forget() {
  if (!run) return;
  if (run.timer) clearTimeout(run.timer);
  for (const url of run.urls) URL.revokeObjectURL(url);
  run = null;
}

function progress(stage, fraction, detail) {
  $("progress").hidden = false;
  $("stage").textContent = stage;
  $("detail").textContent = detail || "";
  const bar = $("bar");
  if (fraction === null || fraction === undefined) bar.removeAttribute("value");
  else bar.value = Math.max(0, Math.min(1, fraction));
}

function isStill(file) {
  return STILL_TYPES.has(file.type) || (!file.type && STILL_NAMES.test(file.name));
}

function options(still) {
  const fields = {};
  const outputType = $("output-type").value;
  const background = $("background").value.trim();
  if (outputType) fields.output_type = outputType;
  if (background) fields.background = background;
  if (still) {
    fields.format = $("format").value;
  } else {
    fields.form = $("form").value;
    if ($("smooth").checked) fields.smooth = "true";
  }
  return fields;
}

// XMLHttpRequest, not fetch: fetch reports no upload progress
function post(path, file, fields, responseType, onProgress) {
  return new Promise((resolve, reject) => {
    const form = new FormData();
    for (const [name, value] of Object.entries(fields)) form.append(name, value);
    form.append("file", file, file.name);
    const xhr = new XMLHttpRequest();
    run.xhr = xhr;
    xhr.open("POST", path);
    for (const [name, value] of Object.entries(authHeaders())) xhr.setRequestHeader(name, value);
    xhr.responseType = responseType;
    xhr.upload.onprogress = (event) => { if (event.lengthComputable) onProgress(event.loaded / event.total); };
    xhr.upload.onload = () => onProgress(1);
    xhr.onload = () => resolve(xhr);
    xhr.onerror = () => reject(new Error("the upload failed (connection lost?)"));
    xhr.onabort = () => reject(new Error("cancelled"));
    xhr.send(form);
  });
}

async function xhrError(xhr) {
  const body = xhr.response;
  try {
    const text = body instanceof Blob ? await body.text() : JSON.stringify(body);
    const parsed = JSON.parse(text);
    if (parsed && parsed.error) return parsed.error;
  } catch (_) { /* not JSON */ }
  return `${xhr.status} ${xhr.statusText}`;
}

async function start(file) {
  forget();
  run = { urls: [] };
  $("error").hidden = true;
  $("result").hidden = true;
  setState("uploading");
  const still = isStill(file);
  const original = URL.createObjectURL(file);
  run.urls.push(original);
  const sent = (fraction) => progress(fraction < 1 ? "Uploading" : still ? "Matting the photo" : "Checking the clip",
    fraction < 1 ? fraction : null, fraction < 1 ? `${Math.round(fraction * 100)} %` : "");
  try {
    if (still) {
      const xhr = await post("/api/remove", file, options(true), "blob", sent);
      if (xhr.status === 401) { askForKey(); throw new Error("this server needs its API key"); }
      if (xhr.status !== 200) throw new Error(await xhrError(xhr));
      const url = URL.createObjectURL(xhr.response);
      run.urls.push(url);
      const name = file.name.replace(/\.[^.]*$/, "") + "_matte." + $("format").value;
      show({ kind: "image", original, url, name, playable: true, note: "" });
    } else {
      const xhr = await post("/api/jobs", file, options(false), "json", sent);
      if (xhr.status === 401) { askForKey(); throw new Error("this server needs its API key"); }
      if (xhr.status !== 202) throw new Error(await xhrError(xhr));
      run.jobId = xhr.response.id;
      run.original = original;
      setState("matting");
      refreshJobs();
      poll();
    }
  } catch (error) {
    if (error.message === "cancelled") { $("progress").hidden = true; setState("idle"); return; }
    showError(error.message);
  }
}

async function poll() {
  if (!run || !run.jobId) return;
  const mine = run;
  let job;
  try {
    job = await (await api(`/api/jobs/${mine.jobId}`)).json();
  } catch (error) {
    showError(error.message);
    return;
  }
  if (run !== mine) return; // another file was started meanwhile
  if (job.status === "queued") {
    progress("Waiting in the queue", null, job.note || "");
  } else if (job.status === "running") {
    const frames = job.frames_total ? `${job.frames_done} / ${job.frames_total} frames` : `${job.frames_done} frames`;
    const speed = job.fps ? ` · ${job.fps.toFixed(1)} frames/s` : "";
    const eta = job.eta_s !== null && job.eta_s !== undefined ? ` · ${Math.ceil(job.eta_s)} s left` : "";
    progress("Matting", job.progress, frames + speed + eta);
  } else if (job.status === "done") {
    $("progress").hidden = true;
    await showJob(job, mine.original);
    refreshJobs();
    return;
  } else if (job.status === "failed") {
    showError(job.error || "the job failed");
    refreshJobs();
    return;
  } else {
    $("progress").hidden = true;
    setState("cancelled");
    refreshJobs();
    return;
  }
  mine.timer = setTimeout(poll, POLL_MS);
}

async function resultUrl(job) {
  // with a key, media elements cannot send it: fetch the result and play it from memory
  if (!apiKey) return job.links.result;
  const blob = await (await api(job.links.result)).blob();
  const url = URL.createObjectURL(blob);
  if (run) run.urls.push(url);
  return url;
}

async function showJob(job, original) {
  const ext = { webm: "webm", mov: "mov", mp4: "mp4", "png-zip": "zip" }[job.form];
  const name = job.name.replace(/\.[^.]*$/, "") + "_matte." + ext;
  try {
    const url = await resultUrl(job);
    const playable = PLAYABLE.has(job.form);
    show({ kind: "video", original, url, name, playable,
      note: playable ? `${job.frames_done} frames` : `${job.frames_done} frames; browsers cannot preview ${ext.toUpperCase()}, download it` });
  } catch (error) {
    showError(error.message);
  }
}

function media(kind, url, id) {
  const element = document.createElement(kind === "image" ? "img" : "video");
  if (id) element.id = id;
  element.src = url;
  if (kind === "image") {
    element.alt = id ? "result" : "original";
  } else {
    element.muted = true;
    element.loop = true;
    element.playsInline = true;
    element.autoplay = true;  // no native controls: their overlay would cover the picture
  }
  return element;
}

function show(result) {
  const matte = $("matte");
  const original = $("original");
  matte.replaceChildren();
  original.replaceChildren();
  if (result.playable) {
    const shown = media(result.kind, result.url, "result-media");
    matte.append(shown);
    if (result.kind === "video") {
      shown.addEventListener("play", () => { $("play").textContent = "Pause"; });
      shown.addEventListener("pause", () => { $("play").textContent = "Play"; });
    }
    if (result.original) {
      const before = media(result.kind, result.original, null);
      original.append(before);
      if (result.kind === "video") follow(shown, before);
    }
  }
  const play = $("play");
  play.hidden = !(result.playable && result.kind === "video");
  play.textContent = "Pause";
  $("note").textContent = result.note;
  const link = $("download");
  link.href = result.url;
  link.download = result.name;
  $("progress").hidden = true;
  $("result").hidden = false;
  setView("result");
  setState("done");
}

// the original plays in step with the result (for before/after)
function follow(leader, follower) {
  const sync = () => {
    if (Math.abs(follower.currentTime - leader.currentTime) > 0.1) follower.currentTime = leader.currentTime;
  };
  leader.addEventListener("play", () => { follower.play().catch(() => {}); });
  leader.addEventListener("pause", () => follower.pause());
  leader.addEventListener("seeked", sync);
  leader.addEventListener("timeupdate", sync);
}

function setView(view) {
  $("viewer").dataset.view = view;
  for (const button of document.querySelectorAll(".views button")) {
    button.setAttribute("aria-pressed", String(button.dataset.view === view));
  }
  $("split").hidden = view !== "compare";
}

async function cancel() {
  if (!run) return;
  if (run.xhr && run.xhr.readyState !== XMLHttpRequest.DONE) run.xhr.abort();
  if (run.jobId) {
    try { await api(`/api/jobs/${run.jobId}`, { method: "DELETE" }); } catch (error) { showError(error.message); }
  }
  forget();
  $("progress").hidden = true;
  setState("cancelled");
  refreshJobs();
}

async function refreshJobs() {
  let listing;
  try {
    listing = await (await api("/api/jobs?limit=20")).json();
  } catch (_) {
    return; // the key form says why, where that is the reason
  }
  const list = $("jobs");
  list.replaceChildren();
  if (!listing.jobs.length) {
    const empty = document.createElement("li");
    empty.className = "muted";
    empty.textContent = "none yet";
    list.append(empty);
  }
  for (const job of listing.jobs) {
    const item = document.createElement("li");
    const name = document.createElement("span");
    name.className = "name";
    name.textContent = `${job.name} → ${job.form}`;
    const status = document.createElement("span");
    status.className = "status";
    status.textContent = job.status === "running" && job.progress !== null
      ? `running ${Math.round(job.progress * 100)} %` : job.status;
    item.append(name, status);
    if (job.status === "done") {
      const open = document.createElement("button");
      open.type = "button";
      open.textContent = "Show";
      open.addEventListener("click", () => { forget(); run = { urls: [] }; showJob(job, null); });
      item.append(open);
    }
    const remove = document.createElement("button");
    remove.type = "button";
    remove.textContent = job.status === "queued" || job.status === "running" ? "Cancel" : "Delete";
    remove.addEventListener("click", async () => {
      try { await api(`/api/jobs/${job.id}`, { method: "DELETE" }); } catch (error) { showError(error.message); }
      refreshJobs();
    });
    item.append(remove);
    list.append(item);
  }
  if (listing.jobs.some((job) => job.status === "queued" || job.status === "running")) {
    setTimeout(refreshJobs, 3000);
  }
}

function setup() {
  const drop = $("drop");
  const pick = $("pick");
  drop.addEventListener("click", (event) => { if (event.target !== pick) pick.click(); });
  drop.addEventListener("keydown", (event) => {
    if (event.key === "Enter" || event.key === " ") { event.preventDefault(); pick.click(); }
  });
  pick.addEventListener("change", () => { if (pick.files.length) start(pick.files[0]); pick.value = ""; });
  for (const name of ["dragenter", "dragover"]) {
    document.addEventListener(name, (event) => { event.preventDefault(); drop.classList.add("over"); });
  }
  document.addEventListener("dragleave", (event) => { if (!event.relatedTarget) drop.classList.remove("over"); });
  document.addEventListener("drop", (event) => {
    event.preventDefault();
    drop.classList.remove("over");
    if (event.dataTransfer && event.dataTransfer.files.length) start(event.dataTransfer.files[0]);
  });
  $("cancel").addEventListener("click", cancel);
  $("play").addEventListener("click", () => {
    const video = $("result-media");
    if (!video) return;
    if (video.paused) video.play().catch(() => {}); else video.pause();
  });
  $("matte").addEventListener("click", () => $("play").click());
  for (const button of document.querySelectorAll(".views button")) {
    button.addEventListener("click", () => setView(button.dataset.view));
  }
  $("split").addEventListener("input", (event) => {
    $("viewer").style.setProperty("--split", `${event.target.value}%`);
  });
  $("key-form").addEventListener("submit", (event) => {
    event.preventDefault();
    apiKey = $("key").value.trim();
    sessionStorage.setItem("vidmatte-key", apiKey);
    $("key-form").hidden = true;
    $("error").hidden = true;
    refreshJobs();
  });
  fetch("/healthz").then((response) => response.json()).then((health) => {
    if (health.auth && !apiKey) askForKey();
    else refreshJobs();
  }).catch(() => {});
}

setup();

// sealcheck pages: upload progress and waiting state, region drawing, the report's slider.
// Everything here is an enhancement: each form and page works without it.
"use strict";

function $(selector, root) { return (root || document).querySelector(selector); }

// A random key for one submission of a form (crypto.randomUUID needs HTTPS; a factory LAN
// page may be plain HTTP, where getRandomValues still works).
function newIdempotencyKey() {
  const bytes = new Uint8Array(16);
  crypto.getRandomValues(bytes);
  return Array.from(bytes, function (b) { return b.toString(16).padStart(2, "0"); }).join("");
}

// Uploads with progress: the form is sent by XHR so the phone shows how far the photos got,
// then a waiting state while the server compares. Errors keep the form (and the photos).
// Each submission carries an Idempotency-Key, the same one when the same form is sent again
// after a lost answer, so the server makes one record however often it arrives; changing
// the form makes it another submission, with a new key.
function enhanceUpload(form) {
  const status = $("[data-upload-status]", form);
  const bar = $("[data-upload-progress]", form);
  const text = $("[data-upload-text]", form);
  const waiting = $("[data-waiting]", form);
  const error = $("[data-upload-error]", form);
  const submit = $("[data-submit]", form);
  let idempotencyKey = null;
  function forgetKey() { idempotencyKey = null; }
  form.addEventListener("input", forgetKey);
  form.addEventListener("change", forgetKey);
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    if (!form.reportValidity()) return;
    if (!idempotencyKey) idempotencyKey = newIdempotencyKey();
    const xhr = new XMLHttpRequest();
    xhr.open("POST", form.action);
    xhr.setRequestHeader("Accept", "application/json");
    xhr.setRequestHeader("X-CSRF-Token", form.dataset.csrf);
    xhr.setRequestHeader("Idempotency-Key", idempotencyKey);
    error.hidden = true;
    status.hidden = false;
    waiting.hidden = true;
    bar.value = 0;
    text.textContent = "Uploading photos…";
    submit.disabled = true;
    form.setAttribute("aria-busy", "true");
    xhr.upload.addEventListener("progress", function (e) {
      if (e.lengthComputable) {
        bar.value = Math.round(100 * e.loaded / e.total);
        text.textContent = "Uploading photos… " + bar.value + "%";
      }
    });
    xhr.upload.addEventListener("load", function () {
      bar.value = 100;
      text.textContent = "Uploaded.";
      waiting.hidden = false;
    });
    function fail(message) {
      status.hidden = true;
      submit.disabled = false;
      form.removeAttribute("aria-busy");
      error.textContent = message;
      error.hidden = false;
      error.scrollIntoView({ block: "center" });
    }
    xhr.addEventListener("load", function () {
      let answer = null;
      try { answer = JSON.parse(xhr.responseText); } catch (e) { answer = null; }
      if (xhr.status < 300 && answer && answer.redirect) {
        text.textContent = "Done. Opening…";
        window.location.assign(answer.redirect);
      } else if (xhr.status === 401) {
        window.location.assign("/signin?next=" + encodeURIComponent(window.location.pathname));
      } else {
        fail((answer && answer.detail) || ("The server answered " + xhr.status + "; try again."));
      }
    });
    xhr.addEventListener("error", function () {
      fail("The upload did not get through (network). Check the connection and send again.");
    });
    xhr.send(new FormData(form));
  });
}

// Region of interest: drag on the chosen photo; the four number fields hold golden pixels
// (the photo as displayed, EXIF orientation applied, as the server reads it).
function enhanceRoi(form) {
  const source = $("[data-roi-source]", form);
  const stage = $("[data-roi-stage]", form);
  const image = $("[data-roi-image]", form);
  const box = $("[data-roi-box]", form);
  const message = $("[data-roi-message]", form);
  const fields = {};
  form.querySelectorAll("[data-roi]").forEach(function (input) { fields[input.dataset.roi] = input; });
  let start = null;

  function scale() { return image.naturalWidth / image.getBoundingClientRect().width; }
  function show() {
    const v = ["x", "y", "w", "h"].map(function (k) { return parseInt(fields[k].value, 10); });
    if (!image.naturalWidth || v.some(isNaN) || v[2] <= 0 || v[3] <= 0) { box.hidden = true; return; }
    const W = image.naturalWidth, H = image.naturalHeight;
    box.style.left = (100 * v[0] / W) + "%";
    box.style.top = (100 * v[1] / H) + "%";
    box.style.width = (100 * Math.min(v[2], W - v[0]) / W) + "%";
    box.style.height = (100 * Math.min(v[3], H - v[1]) / H) + "%";
    box.hidden = false;
  }
  function point(event) {
    const r = image.getBoundingClientRect();
    const s = scale();
    return {
      x: Math.round(Math.min(Math.max(event.clientX - r.left, 0), r.width) * s),
      y: Math.round(Math.min(Math.max(event.clientY - r.top, 0), r.height) * s),
    };
  }
  function set(a, b) {
    fields.x.value = Math.min(a.x, b.x);
    fields.y.value = Math.min(a.y, b.y);
    fields.w.value = Math.abs(b.x - a.x);
    fields.h.value = Math.abs(b.y - a.y);
    show();
    form.dispatchEvent(new Event("change"));  // another region: another submission
  }
  source.addEventListener("change", function () {
    const file = source.files && source.files[0];
    if (!file) { stage.hidden = true; return; }
    image.onload = function () { stage.hidden = false; message.hidden = true; show(); };
    image.onerror = function () {
      stage.hidden = true;
      message.textContent = "This browser cannot show this photo (HEIC?); type the region in pixels, or leave it empty.";
      message.hidden = false;
    };
    image.src = URL.createObjectURL(file);
  });
  stage.addEventListener("pointerdown", function (event) {
    event.preventDefault();
    start = point(event);
    stage.setPointerCapture(event.pointerId);
  });
  stage.addEventListener("pointermove", function (event) { if (start) set(start, point(event)); });
  stage.addEventListener("pointerup", function (event) {
    if (!start) return;
    const end = point(event);
    if (Math.abs(end.x - start.x) > 4 && Math.abs(end.y - start.y) > 4) set(start, end);
    start = null;
  });
  Object.values(fields).forEach(function (input) { input.addEventListener("input", show); });
  $("[data-roi-clear]", form).addEventListener("click", function () {
    Object.values(fields).forEach(function (input) { input.value = ""; });
    show();
    form.dispatchEvent(new Event("change"));
  });
}

function enhanceSlider() {
  const stage = $("[data-slider]");
  const input = $("[data-slider-input]");
  if (!stage || !input) return;
  function update() { stage.style.setProperty("--split", input.value + "%"); }
  input.addEventListener("input", update);
  // Swipe: dragging across the pictures moves the split too (vertical drags still scroll).
  let dragging = false;
  function follow(event) {
    const r = stage.getBoundingClientRect();
    input.value = Math.round(100 * Math.min(Math.max((event.clientX - r.left) / r.width, 0), 1));
    update();
  }
  // A drag would otherwise pick up the picture itself (the browser's image drag-and-drop).
  stage.addEventListener("dragstart", function (event) { event.preventDefault(); });
  stage.addEventListener("pointerdown", function (event) {
    dragging = true;
    stage.setPointerCapture(event.pointerId);
    follow(event);
  });
  stage.addEventListener("pointermove", function (event) { if (dragging) follow(event); });
  stage.addEventListener("pointerup", function () { dragging = false; });
  stage.addEventListener("pointercancel", function () { dragging = false; });
  update();
}

function localTimes() {
  document.querySelectorAll("time[datetime]").forEach(function (node) {
    const when = new Date(node.getAttribute("datetime"));
    if (!isNaN(when)) {
      node.title = node.textContent;
      node.textContent = when.toLocaleString([], { dateStyle: "medium", timeStyle: "short" });
    }
  });
}

// Lazy pictures below the fold would be missing from a printout: load them all first.
function loadAllImages() {
  document.querySelectorAll("img[loading=lazy]").forEach(function (img) { img.loading = "eager"; });
}

document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll("form[data-upload]").forEach(enhanceUpload);
  const seal = $("#seal-form");
  if (seal) enhanceRoi(seal);
  enhanceSlider();
  localTimes();
  window.addEventListener("beforeprint", loadAllImages);
  const printButton = $("[data-print]");
  if (printButton) {
    printButton.hidden = false;
    printButton.addEventListener("click", function () { loadAllImages(); window.print(); });
  }
});

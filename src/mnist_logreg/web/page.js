// The drawing page's behaviour, shared by `serve` (answers from its API) and the page
// `export --format web` writes (answers computed here, by recognizer.js): drawing, upload,
// the prediction, a probability bar per class, and the 28x28 image the model saw.
"use strict";
const MnistPage = (() => {
  // Ask the server (serve): a PNG of the drawing, or the uploaded file as it is.
  function api() {
    return async (source) => {
      const body = source instanceof Blob ? (() => { const f = new FormData(); f.append("image", source); return f; })()
        : JSON.stringify({ image: source.toDataURL("image/png") });
      const headers = source instanceof Blob ? {} : { "Content-Type": "application/json" };
      const resp = await fetch("api/predict", { method: "POST", body, headers });
      const data = await resp.json();
      if (!resp.ok) throw new Error(data.error || "error " + resp.status);
      return data;
    };
  }

  // Answer here, with the model inlined in the page (export --format web).
  function local(spec) {
    const model = MnistLogreg.loadModel(spec);
    const answer = (rgba, w, h) => {
      const t0 = performance.now();
      let digit;
      try { digit = MnistLogreg.toMnist(rgba, w, h); }
      catch (err) {
        if (!(err instanceof MnistLogreg.NoDigit)) throw err;
        return { label: null, reason: err.reason, probability: null, probabilities: null, classes: model.classes,
                 names: model.names, preprocessed: null, milliseconds: performance.now() - t0 };
      }
      const probabilities = Array.from(MnistLogreg.classify(model, digit));
      let best = 0;
      probabilities.forEach((p, i) => { if (p > probabilities[best]) best = i; });
      const preprocessed = [];
      for (let y = 0; y < 28; y++) preprocessed.push(Array.from(digit.slice(28 * y, 28 * y + 28)));
      return { label: model.classes[best], probability: probabilities[best], probabilities, classes: model.classes,
               names: model.names, preprocessed, milliseconds: performance.now() - t0 };
    };
    return async (source) => {
      if (source instanceof Blob) {  // an uploaded file, decoded by the browser
        const bitmap = await createImageBitmap(source);
        const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
        const c = canvas.getContext("2d");
        c.drawImage(bitmap, 0, 0);
        return answer(c.getImageData(0, 0, bitmap.width, bitmap.height).data, bitmap.width, bitmap.height);
      }
      const c = source.getContext("2d");
      return answer(c.getImageData(0, 0, source.width, source.height).data, source.width, source.height);
    };
  }

  function start(predict) {
    const pad = document.getElementById("pad");
    const ctx = pad.getContext("2d", { willReadFrequently: true });
    const answer = document.getElementById("answer");
    const bars = document.getElementById("bars");
    const errorBox = document.getElementById("error");
    let drawing = false, last = null, pending = false, queued = false;

    function reset() {
      ctx.fillStyle = "#fff";
      ctx.fillRect(0, 0, pad.width, pad.height);
      answer.textContent = "\u00a0";
      answer.dataset.label = "";
      answer.dataset.probability = "";
      bars.innerHTML = "";
      errorBox.textContent = "";
      document.getElementById("seen").getContext("2d").clearRect(0, 0, 28, 28);
    }
    function point(e) {
      const r = pad.getBoundingClientRect();
      return { x: (e.clientX - r.left) * pad.width / r.width, y: (e.clientY - r.top) * pad.height / r.height };
    }
    const pen = document.getElementById("pen");
    const penWidth = () => Number(pen ? pen.value : 18);
    function dot(p) { ctx.fillStyle = "#000"; ctx.beginPath(); ctx.arc(p.x, p.y, penWidth() / 2, 0, 2 * Math.PI); ctx.fill(); }
    pad.addEventListener("pointerdown", (e) => { drawing = true; last = point(e); pad.setPointerCapture(e.pointerId); dot(last); });
    pad.addEventListener("pointermove", (e) => {
      if (!drawing) return;
      const p = point(e);
      ctx.strokeStyle = "#000"; ctx.lineWidth = penWidth(); ctx.lineCap = "round"; ctx.lineJoin = "round";
      ctx.beginPath(); ctx.moveTo(last.x, last.y); ctx.lineTo(p.x, p.y); ctx.stroke();
      last = p;
      schedule();
    });
    const stop = () => { if (drawing) { drawing = false; schedule(); } };
    pad.addEventListener("pointerup", stop);
    pad.addEventListener("pointercancel", stop);
    pad.addEventListener("pointerleave", stop);

    // While drawing, at most one prediction per 80 ms (one of a large photo-like canvas can
    // take tens of ms, and would otherwise hold up every pointer event behind it); at most
    // one in flight; the latest drawing wins.
    let timer = null;
    function schedule() {
      if (timer) return;
      timer = setTimeout(() => { timer = null; if (pending) queued = true; else send(pad); }, 80);
    }
    async function send(source) {
      pending = true;
      try { const data = await predict(source); errorBox.textContent = ""; show(data); }
      catch (err) { errorBox.textContent = err.message || String(err); }
      finally { pending = false; if (queued) { queued = false; send(pad); } }
    }
    function show(data) {
      if (data.label === null) {  // no digit here: say so and why, show no probabilities
        answer.textContent = "\u2014";
        answer.dataset.label = "none";
        answer.dataset.reason = data.reason;
        answer.dataset.probabilities = "null";
        bars.innerHTML = "";
        errorBox.textContent = "No digit here: " + data.reason + ".";
        document.getElementById("seen").getContext("2d").clearRect(0, 0, 28, 28);
        return;
      }
      answer.dataset.reason = "";
      const name = (i) => (data.names ? data.names[i] : data.classes[i]);
      const best = data.classes.indexOf(data.label);
      answer.textContent = name(best);
      answer.dataset.label = String(data.label);
      answer.dataset.probability = String(data.probability);
      answer.dataset.probabilities = JSON.stringify(data.probabilities);
      bars.innerHTML = "";
      data.probabilities.forEach((p, i) => {
        const row = document.createElement("div");
        row.className = "bar" + (i === best ? " best" : "");
        row.innerHTML = `<span class="lab">${name(i)}</span><span class="track"><span class="fill" style="width:${(p * 100).toFixed(1)}%"></span></span><span class="pct">${(p * 100).toFixed(1)}%</span>`;
        bars.appendChild(row);
      });
      const seen = document.getElementById("seen").getContext("2d");
      const img = seen.createImageData(28, 28);
      data.preprocessed.forEach((row, y) => row.forEach((v, x) => {
        const k = 4 * (28 * y + x); img.data[k] = img.data[k + 1] = img.data[k + 2] = v; img.data[k + 3] = 255;
      }));
      seen.putImageData(img, 0, 0);
    }
    document.getElementById("clear").addEventListener("click", reset);
    document.getElementById("upload").addEventListener("change", (e) => { if (e.target.files[0]) send(e.target.files[0]); });
    reset();
    return { predict, show };
  }
  return { api, local, start };
})();

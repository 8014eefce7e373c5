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

  // Corrections ("that was a 4"): serve --collect saves each one (POST api/correct); the
  // exported page keeps them here and offers them as a zip of the same layout
  // (<label>/<n>.png), which `train --add` reads.
  function collectOnServer() {
    return {
      enabled: async () => { try { return (await (await fetch("healthz")).json()).collect === true; } catch (e) { return false; } },
      save: async (preprocessed, label) => {
        const resp = await fetch("api/correct", { method: "POST", headers: { "Content-Type": "application/json" },
                                                  body: JSON.stringify({ preprocessed, label }) });
        const data = await resp.json();
        if (!resp.ok) throw new Error(data.error || "error " + resp.status);
        return "saved on the server as " + data.saved;
      },
    };
  }
  function collectHere() {
    const kept = [];
    return {
      enabled: async () => true,
      save: async (preprocessed, label) => {
        kept.push({ preprocessed, label });
        return `kept as a ${label} (${kept.length} digit${kept.length > 1 ? "s" : ""}): download them below`;
      },
      kept,
      zip: async () => zipFiles(await Promise.all(kept.map(async ({ preprocessed, label }, i) =>
        ({ name: `${label}/${i + 1}.png`, data: await pngOf(preprocessed) })))),
    };
  }
  async function pngOf(rows) {
    const c = new OffscreenCanvas(rows[0].length, rows.length), g = c.getContext("2d");
    const img = g.createImageData(c.width, c.height);
    rows.forEach((row, y) => row.forEach((v, x) => {
      const k = 4 * (c.width * y + x); img.data[k] = img.data[k + 1] = img.data[k + 2] = v; img.data[k + 3] = 255;
    }));
    g.putImageData(img, 0, 0);
    return new Uint8Array(await (await c.convertToBlob({ type: "image/png" })).arrayBuffer());
  }
  // A zip archive, stored (PNGs are compressed already): local headers, then the central directory.
  const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  function crc32(bytes) {
    let c = 0xffffffff;
    for (const b of bytes) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  }
  function zipFiles(files) {
    const parts = [], central = [], enc = new TextEncoder();
    let offset = 0;
    for (const f of files) {
      const name = enc.encode(f.name), crc = crc32(f.data), size = f.data.length;
      const local = new DataView(new ArrayBuffer(30));
      [[0, 0x04034b50, 4], [4, 20, 2], [14, crc, 4], [18, size, 4], [22, size, 4], [26, name.length, 2]]
        .forEach(([at, v, n]) => (n === 4 ? local.setUint32(at, v, true) : local.setUint16(at, v, true)));
      const entry = new DataView(new ArrayBuffer(46));
      [[0, 0x02014b50, 4], [4, 20, 2], [6, 20, 2], [16, crc, 4], [20, size, 4], [24, size, 4], [28, name.length, 2],
       [42, offset, 4]].forEach(([at, v, n]) => (n === 4 ? entry.setUint32(at, v, true) : entry.setUint16(at, v, true)));
      parts.push(new Uint8Array(local.buffer), name, f.data);
      central.push(new Uint8Array(entry.buffer), name);
      offset += 30 + name.length + size;
    }
    const centralSize = central.reduce((n, p) => n + p.length, 0);
    const end = new DataView(new ArrayBuffer(22));
    [[0, 0x06054b50, 4], [8, files.length, 2], [10, files.length, 2], [12, centralSize, 4], [16, offset, 4]]
      .forEach(([at, v, n]) => (n === 4 ? end.setUint32(at, v, true) : end.setUint16(at, v, true)));
    return new Blob([...parts, ...central, new Uint8Array(end.buffer)], { type: "application/zip" });
  }

  // Answer here, with the model inlined in the page (export --format web): the same answer
  // as serve's API (serve._answer), a row of digits included.
  function local(spec) {
    const model = MnistLogreg.loadModel(spec);
    const rows = (digit) => digit && Array.from({ length: 28 }, (_, y) => Array.from(digit.slice(28 * y, 28 * y + 28)));
    const top = (p, k) => p.map((v, i) => [v, i]).sort((a, b) => b[0] - a[0] || a[1] - b[1]).slice(0, k)
      .map(([v, i]) => ({ label: model.classes[i], probability: v }));
    const answer = (rgba, w, h) => {
      const t0 = performance.now();
      const none = { label: null, probability: null, probabilities: null, classes: model.classes, names: model.names,
                     top: [], preprocessed: null };
      let reads;
      try { reads = MnistLogreg.readNumber(model, rgba, w, h); }
      catch (err) {
        if (!(err instanceof MnistLogreg.NoDigit)) throw err;
        return { ...none, reason: err.reason, number: null, digits: [], milliseconds: performance.now() - t0 };
      }
      const digits = reads.map((d) => ({ label: d.label, box: d.box, probability: d.probability,
                                         ...(d.reason ? { reason: d.reason } : {}),
                                         ...(d.probabilities ? { top: top(d.probabilities, 3) } : {}),
                                         preprocessed: rows(d.digit) }));
      const number = reads.map((d) => d.label).join("");
      if (reads.length > 1 || reads[0].probabilities === null)  // a number: not one digit
        return { ...none, reason: MnistLogreg.SEVERAL, number, digits, milliseconds: performance.now() - t0 };
      const probabilities = reads[0].probabilities;
      let best = 0;
      probabilities.forEach((p, i) => { if (p > probabilities[best]) best = i; });
      return { label: model.classes[best], probability: probabilities[best], probabilities, classes: model.classes,
               names: model.names, top: top(probabilities, 3), preprocessed: rows(reads[0].digit), number, digits,
               milliseconds: performance.now() - t0 };
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

  function start(predict, collector) {
    const pad = document.getElementById("pad");
    const ctx = pad.getContext("2d", { willReadFrequently: true });
    const answer = document.getElementById("answer");
    const bars = document.getElementById("bars");
    const errorBox = document.getElementById("error");
    const boxes = document.getElementById("boxes"), digitsBox = document.getElementById("digits");
    let drawing = false, last = null, pending = false, queued = false;

    function reset() {
      ctx.fillStyle = "#fff";
      ctx.fillRect(0, 0, pad.width, pad.height);
      answer.textContent = "\u00a0";
      answer.dataset.label = "";
      answer.dataset.probability = "";
      answer.dataset.number = "";
      answer.dataset.digits = "[]";
      bars.innerHTML = "";
      digitsBox.innerHTML = "";
      boxes.getContext("2d").clearRect(0, 0, boxes.width, boxes.height);
      errorBox.textContent = "";
      document.getElementById("seen").getContext("2d").clearRect(0, 0, 28, 28);
      document.getElementById("correct").hidden = true;
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
      try { const data = await predict(source); errorBox.textContent = ""; show(data, source === pad); }
      catch (err) { errorBox.textContent = err.message || String(err); }
      finally { pending = false; if (queued) { queued = false; send(pad); } }
    }
    // Corrections: a button per class under the digit the model saw, when a collector takes them.
    const correct = document.getElementById("correct"), collected = document.getElementById("collected");
    const download = document.getElementById("download");
    let seenDigit = null, collecting = false;
    if (collector) collector.enabled().then((on) => { collecting = on; });
    function offerCorrections(data) {
      seenDigit = data.preprocessed;
      correct.hidden = !(collecting && seenDigit);
      if (correct.hidden) return;
      const buttons = document.getElementById("correct-buttons");
      buttons.innerHTML = "";
      data.classes.forEach((c, i) => {
        const b = document.createElement("button");
        b.type = "button";
        b.textContent = data.names ? data.names[i] : c;
        b.dataset.label = String(c);
        b.addEventListener("click", async () => {
          try { collected.textContent = await collector.save(seenDigit, c); download.hidden = !collector.zip; }
          catch (err) { collected.textContent = err.message || String(err); }
        });
        buttons.appendChild(b);
      });
    }
    if (collector && collector.zip) {
      download.addEventListener("click", async () => {
        const a = document.createElement("a");
        a.href = URL.createObjectURL(await collector.zip());
        a.download = "my-digits.zip";
        a.click();
      });
    }
    // Each digit's box over the pad (for a drawing: the boxes are in the pad's pixels).
    function drawBoxes(digits, onPad) {
      const g = boxes.getContext("2d");
      g.clearRect(0, 0, boxes.width, boxes.height);
      if (!onPad) return;
      g.lineWidth = 2;
      g.font = "bold 20px system-ui, sans-serif";
      for (const d of digits) {
        const [x0, y0, x1, y1] = d.box;
        g.strokeStyle = g.fillStyle = d.label === "?" ? "#b00" : "#3b7dd8";
        g.strokeRect(x0 - 2, y0 - 2, x1 - x0 + 4, y1 - y0 + 4);
        g.fillText(d.label, x0, Math.max(y0 - 6, 18));
      }
    }
    // A row of digits: the number, and each digit as the model saw it, with its probability.
    function showNumber(data, onPad) {
      answer.textContent = data.number;
      answer.dataset.label = "number";
      answer.dataset.reason = "";
      answer.dataset.number = data.number;
      answer.dataset.probabilities = "null";
      answer.dataset.digits = JSON.stringify(data.digits.map((d) => ({ label: d.label, box: d.box, probability: d.probability })));
      bars.innerHTML = "";
      document.getElementById("seen").getContext("2d").clearRect(0, 0, 28, 28);
      digitsBox.innerHTML = "";
      for (const d of data.digits) {
        const cell = document.createElement("span");
        cell.className = "digit";
        const c = document.createElement("canvas");
        c.width = c.height = 28;
        if (d.preprocessed) {
          const img = c.getContext("2d").createImageData(28, 28);
          d.preprocessed.forEach((row, y) => row.forEach((v, x) => {
            const k = 4 * (28 * y + x); img.data[k] = img.data[k + 1] = img.data[k + 2] = v; img.data[k + 3] = 255;
          }));
          c.getContext("2d").putImageData(img, 0, 0);
        }
        cell.appendChild(c);
        cell.appendChild(document.createTextNode(d.probability === null ? `${d.label} ` : `${d.label} ${(d.probability * 100).toFixed(1)}%`));
        if (d.reason) cell.title = d.reason;
        digitsBox.appendChild(cell);
      }
      drawBoxes(data.digits, onPad);
    }
    function show(data, onPad) {
      offerCorrections(data);
      digitsBox.innerHTML = "";
      const number = Boolean(data.number && data.label === null);
      document.getElementById("seen-box").hidden = number;  // a number shows each digit as the model saw it
      if (number) { showNumber(data, onPad); return; }
      drawBoxes(data.digits || [], onPad);
      answer.dataset.number = data.number || "";
      answer.dataset.digits = "[]";
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
    // A number: a pad three times as wide (the boxes' canvas with it), cleared.
    const numberMode = document.getElementById("number-mode");
    if (numberMode) numberMode.addEventListener("change", () => {
      pad.width = boxes.width = numberMode.checked ? 840 : 280;
      reset();
    });
    document.getElementById("upload").addEventListener("change", (e) => { if (e.target.files[0]) send(e.target.files[0]); });
    reset();
    return { predict, show, collector };
  }
  return { api, local, start, collectOnServer, collectHere, zipFiles };
})();

// The digit recogniser in plain JavaScript: a person's image -> 28x28 MNIST-style digit
// (mnist_logreg/images.py, step for step) -> the run's own preprocessing (preprocess.py:
// deskewing, moment normalisation, gamma, standardisation) -> the linear layer -> softmax.
// Written once: the exported page (export --format web) inlines it. Numbers follow the
// Python code's order of operations, in float64 where it uses float64, so that the pages
// agree with `mnist-logreg predict` (tests/test_web.py measures how closely).
"use strict";
const MnistLogreg = (() => {
  const SIDE = 28, BOX = 20, CENTRE = 14.0, BINARY_MIN = 0.3;
  const LIGHT_SIDE = 128, SPECK = 0.02, FRAME_WIDTH = 2.0, STROKE_MIN = 0.07, STROKE_TARGET = 0.099, HYSTERESIS = 0.5;
  const MIN_CONTRAST = 0.05, SHARE = 0.1, TALL = 0.4, EDGE_RUNS = 5, SIDE_RUNS = 2;
  const MAD_SPREAD = 4.0;
  const POLARITY_TAIL = 0.002, MINORITY = 1 / 3, UNEVEN = 0.01, IMPULSE = 0.02, IMPULSE_STEP = 0.5;
  const LINE_SPAN = 0.8, LINE_COVER = 0.9, LINE_SLOPE = 0.3, LINE_WAVE = 0.125, LINE_OVERHANG = 2, LINE_REST = 0.3,
    LINE_END = 0.12;
  const PANEL_STEP = 0.5, PANEL_SHARE = 0.75, PANEL_EDGE = 1 / 3, PANEL_INK = 0.02, PANEL_ENDS = 0.1;
  // images.NoDigit: an image with no single digit in it, and why (an answer, not an error).
  class NoDigit extends Error {
    constructor(reason) { super("no digit: " + reason); this.reason = reason; }
  }
  const BLANK = "the image is blank", FAINT = "nothing stands out from the background",
    NOTHING_LEFT = "nothing is left once the background is removed",
    ALL_EDGES = "marks reach all four edges of the image (a texture or a scribble, not one digit)",
    SEVERAL = "several marks side by side (more than one digit?)",
    STRIP = 64, STRIPE = `the image is over ${STRIP} times as long as it is wide`;

  // --- statistics, as NumPy computes them ---------------------------------------------
  function sorted(values) { return Float64Array.from(values).sort(); }
  function lerp(a, b, t) {  // numpy's _lerp: exact at both ends
    const d = b - a;
    return t >= 0.5 ? b - d * (1 - t) : a + d * t;
  }
  function percentile(values, q) {  // np.percentile, method "linear"
    const s = sorted(values), pos = (q / 100) * (s.length - 1);
    const lo = Math.floor(pos), hi = Math.min(lo + 1, s.length - 1);
    return lerp(s[lo], s[hi], pos - lo);
  }
  function median(values) {
    const s = sorted(values), n = s.length, m = n >> 1;
    return n % 2 ? s[m] : (s[m - 1] + s[m]) / 2;  // np.median: the mean of the middle two
  }
  function otsu(values) {  // images.otsu_threshold
    const hist = new Float64Array(256);
    for (const v of values) hist[Math.min(Math.floor(v * 256), 255)] += 1;
    let w0 = 0, m0 = 0;
    const W0 = new Float64Array(256), M0 = new Float64Array(256);
    for (let i = 0; i < 256; i++) {
      w0 += hist[i]; m0 += hist[i] * ((i / 256 + (i + 1) / 256) / 2);
      W0[i] = w0; M0[i] = m0;
    }
    let best = -Infinity, arg = 0;
    for (let i = 0; i < 256; i++) {
      const w1 = W0[255] - W0[i];
      const mu0 = M0[i] / Math.max(W0[i], 1e-12), mu1 = (M0[255] - M0[i]) / Math.max(w1, 1e-12);
      const between = W0[i] * w1 * ((mu0 - mu1) * (mu0 - mu1));
      if (between > best) { best = between; arg = i; }
    }
    return (arg + 1) / 256;
  }

  // --- Pillow's LANCZOS resize of an 8-bit image (Resample.c), exactly -----------------
  const PRECISION_BITS = 32 - 8 - 2;
  function sinc(x) { if (x === 0) return 1; x *= Math.PI; return Math.sin(x) / x; }
  function lanczos(x) { return -3 <= x && x < 3 ? sinc(x) * sinc(x / 3) : 0; }
  function coeffs(inSize, outSize) {
    const scale = inSize / outSize, filterscale = Math.max(scale, 1), support = 3 * filterscale;
    const ksize = Math.ceil(support) * 2 + 1, out = [];
    for (let xx = 0; xx < outSize; xx++) {
      const center = (xx + 0.5) * scale, ss = 1 / filterscale;
      let xmin = Math.trunc(center - support + 0.5); if (xmin < 0) xmin = 0;
      let xmax = Math.trunc(center + support + 0.5); if (xmax > inSize) xmax = inSize;
      xmax -= xmin;
      const k = new Float64Array(ksize);
      let ww = 0;
      for (let x = 0; x < xmax; x++) { const w = lanczos((x + xmin - center + 0.5) * ss); k[x] = w; ww += w; }
      const kk = new Int32Array(ksize);
      for (let x = 0; x < xmax; x++) {
        const v = ww !== 0 ? k[x] / ww : k[x];
        kk[x] = v < 0 ? Math.trunc(-0.5 + v * (1 << PRECISION_BITS)) : Math.trunc(0.5 + v * (1 << PRECISION_BITS));
      }
      out.push({ xmin, xmax, kk });
    }
    return out;
  }
  function clip8(ss) { const v = Math.floor(ss / (1 << PRECISION_BITS)); return v < 0 ? 0 : v > 255 ? 255 : v; }
  function resize8(src, w, h, nw, nh) {  // Uint8Array w*h -> nw*nh
    let cur = src, cw = w;
    if (nw !== w) {  // horizontal pass first, as Pillow does
      const cs = coeffs(w, nw), out = new Uint8Array(nw * h);
      for (let y = 0; y < h; y++)
        for (let xx = 0; xx < nw; xx++) {
          const { xmin, xmax, kk } = cs[xx];
          let ss = 1 << (PRECISION_BITS - 1);
          for (let x = 0; x < xmax; x++) ss += cur[y * cw + x + xmin] * kk[x];
          out[y * nw + xx] = clip8(ss);
        }
      cur = out; cw = nw;
    }
    if (nh !== h) {
      const cs = coeffs(h, nh), out = new Uint8Array(cw * nh);
      for (let yy = 0; yy < nh; yy++) {
        const { xmin, xmax, kk } = cs[yy];
        for (let x = 0; x < cw; x++) {
          let ss = 1 << (PRECISION_BITS - 1);
          for (let y = 0; y < xmax; y++) ss += cur[(y + xmin) * cw + x] * kk[y];
          out[yy * cw + x] = clip8(ss);
        }
      }
      cur = out;
    }
    return cur;
  }


  // --- images.py: morphology on small images, exactly as NumPy does it ----------------
  // Minimum or maximum over windows of k (odd) along one axis, edges repeated (images._running).
  function running(src, h, w, k, axis, op) {
    // van Herk / Gil-Werman: running extremes of each block from both ends, so that any
    // window of k is one comparison whatever k is (a minimum or maximum is exact in any order).
    const r = k >> 1, f = op === "min" ? Math.min : Math.max, out = new Float64Array(h * w);
    const lines = axis === 0 ? w : h, len = axis === 0 ? h : w, stride = axis === 0 ? w : 1, step = axis === 0 ? 1 : w;
    const n = len + 2 * r, line = new Float64Array(n), fwd = new Float64Array(n), bwd = new Float64Array(n);
    for (let l = 0; l < lines; l++) {
      const base = l * step;
      for (let i = 0; i < n; i++) line[i] = src[base + Math.min(Math.max(i - r, 0), len - 1) * stride];
      for (let i = 0; i < n; i++) fwd[i] = i % k === 0 ? line[i] : f(fwd[i - 1], line[i]);
      for (let i = n - 1; i >= 0; i--) bwd[i] = i % k === k - 1 || i === n - 1 ? line[i] : f(bwd[i + 1], line[i]);
      for (let i = 0; i < len; i++) out[base + i * stride] = f(bwd[i], fwd[i + k - 1]);
    }
    return out;
  }
  function pad(src, h, w, p, edge) {  // np.pad by p on every side: "edge" or zeros
    const H = h + 2 * p, W = w + 2 * p, out = new Float64Array(H * W);
    for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) {
      const sy = y - p, sx = x - p;
      if (edge) out[y * W + x] = src[Math.min(Math.max(sy, 0), h - 1) * w + Math.min(Math.max(sx, 0), w - 1)];
      else if (sy >= 0 && sy < h && sx >= 0 && sx < w) out[y * W + x] = src[sy * w + sx];
    }
    return out;
  }
  function crop(src, W, top, left, h, w) {
    const out = new Float64Array(h * w);
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) out[y * w + x] = src[(y + top) * W + x + left];
    return out;
  }
  function morph(src, h, w, k, ops) {  // running windows on both axes, for each op in turn
    let cur = src;
    for (const op of ops) cur = running(running(cur, h, w, k, 0, op), h, w, k, 1, op);
    return cur;
  }
  function blockMeans(ink, w, h, f, hs, ws) {  // images.block_means: summed in its order, zeros beyond the edges
    const small = new Float64Array(hs * ws);
    for (let dy = 0; dy < f; dy++) for (let dx = 0; dx < f; dx++)
      for (let y = 0; y < hs; y++) for (let x = 0; x < ws; x++) {
        const yy = y * f + dy, xx = x * f + dx;
        small[y * ws + x] += yy < h && xx < w ? ink[yy * w + xx] : 0;
      }
    for (let i = 0; i < small.length; i++) small[i] /= f * f;
    return small;
  }
  function background(ink, w, h) {  // images.background
    const f = Math.ceil(Math.max(h, w) / LIGHT_SIDE), hs = Math.max(1, Math.floor(h / f)), ws = Math.max(1, Math.floor(w / f));
    const small = blockMeans(ink, w, h, f, hs, ws);
    const k = Math.floor(Math.max(hs, ws) / 4) | 1;
    const opened = crop(morph(pad(small, hs, ws, k, true), hs + 2 * k, ws + 2 * k, k, ["min", "max"]), ws + 2 * k, k, k, hs, ws);
    const out = new Float64Array(h * w), at = (y, x) => opened[y * ws + x];
    for (let y = 0; y < h; y++) {
      const ys = Math.min(Math.max((y + 0.5) / f - 0.5, 0), hs - 1), y0 = Math.min(Math.trunc(ys), hs > 1 ? hs - 2 : 0);
      const y1 = Math.min(y0 + 1, hs - 1), ty = ys - y0;
      for (let x = 0; x < w; x++) {
        const xs = Math.min(Math.max((x + 0.5) / f - 0.5, 0), ws - 1), x0 = Math.min(Math.trunc(xs), ws > 1 ? ws - 2 : 0);
        const x1 = Math.min(x0 + 1, ws - 1), tx = xs - x0;
        const top = at(y0, x0) * (1 - tx) + at(y0, x1) * tx, bottom = at(y1, x0) * (1 - tx) + at(y1, x1) * tx;
        out[y * w + x] = top * (1 - ty) + bottom * ty;
      }
    }
    return out;
  }
  function components(mask, h, w) {  // images.components: 8-connected, numbered in scan order
    const labels = new Int32Array(h * w);
    let n = 0;
    for (let i = 0; i < h * w; i++) {
      if (!mask[i] || labels[i]) continue;
      labels[i] = ++n;
      const stack = [i];
      while (stack.length) {
        const j = stack.pop(), y = Math.floor(j / w), x = j % w;
        for (let yy = Math.max(y - 1, 0); yy < Math.min(y + 2, h); yy++)
          for (let xx = Math.max(x - 1, 0); xx < Math.min(x + 2, w); xx++) {
            const q = yy * w + xx;
            if (mask[q] && !labels[q]) { labels[q] = n; stack.push(q); }
          }
      }
    }
    return { labels, n };
  }
  function regions(ink, w, h) {  // images.regions
    const f = Math.ceil(Math.max(h, w) / LIGHT_SIDE), hs = Math.ceil(h / f), ws = Math.ceil(w / f);
    const coarse = new Uint8Array(hs * ws);
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) if (ink[y * w + x] > 0) coarse[Math.floor(y / f) * ws + Math.floor(x / f)] = 1;
    const { labels: small, n } = components(coarse, hs, ws);
    const label = new Int32Array(h * w);
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++)
      if (ink[y * w + x] > 0) label[y * w + x] = small[Math.floor(y / f) * ws + Math.floor(x / f)];
    return { label, small, n, hs, ws };
  }
  function checkEdges(ink, w, h) {  // images.check_edges
    const runs = (at, n) => {  // images.edge_runs: separate runs of ink along one edge
      let count = 0, prev = false;
      for (let i = 0; i < n; i++) { const on = at(i) > 0; if (on && !prev) count++; prev = on; }
      return count;
    };
    const sides = [runs((x) => ink[x], w), runs((x) => ink[(h - 1) * w + x], w),
                   runs((y) => ink[y * w], h), runs((y) => ink[y * w + w - 1], h)];
    const touches = sides.reduce((a, b) => a + b, 0);
    if (Math.min(...sides) > 0 && (touches > EDGE_RUNS || Math.max(...sides) > SIDE_RUNS)) throw new NoDigit(ALL_EDGES);
  }
  // images.marks: the regions grouped where they overlap across, left to right, each as
  // [x0, x1, y0, y1, mass, region ids] (x1 and y1 inclusive).
  function marksOf(ink, label, n, w, h) {
    const mass = new Float64Array(n + 1), boxes = [];
    for (let i = 0; i < h * w; i++) mass[label[i]] += ink[i];
    for (let i = 1; i <= n; i++) boxes.push([Infinity, -Infinity, Infinity, -Infinity, mass[i], [i]]);
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
      const l = label[y * w + x];
      if (!l) continue;
      const b = boxes[l - 1];
      b[0] = Math.min(b[0], x); b[1] = Math.max(b[1], x); b[2] = Math.min(b[2], y); b[3] = Math.max(b[3], y);
    }
    const kept = boxes.filter((b) => b[1] >= 0);  // dropped regions have no pixels
    kept.sort((a, b) => a[0] - b[0] || a[1] - b[1] || a[2] - b[2] || a[3] - b[3] || a[5][0] - b[5][0]);
    const groups = [];
    for (const b of kept) {
      const g = groups[groups.length - 1];
      if (g && b[0] <= g[1]) groups[groups.length - 1] = [g[0], Math.max(g[1], b[1]), Math.min(g[2], b[2]), Math.max(g[3], b[3]), g[4] + b[4], g[5].concat(b[5])];
      else groups.push(b.slice());
    }
    return groups;
  }
  function partsOf(groups) {  // images.parts_of
    let total = 0;
    for (const g of groups) total += g[4];
    const parts = groups.filter((g) => g[4] >= SHARE * total);
    if (!parts.length) return { parts, height: 0, width: 0 };
    const t = Math.min(...parts.map((p) => p[2])), bt = Math.max(...parts.map((p) => p[3]));
    return { parts, height: bt - t + 1, width: parts[parts.length - 1][1] - parts[0][0] + 1 };
  }
  function several(groups) {  // images.several
    const { parts, height, width } = partsOf(groups);
    return parts.length >= 2 && parts.every((p) => p[3] - p[2] + 1 >= TALL * height) && width >= height;
  }
  function sideBySide(S, groups) {  // numbers.side_by_side: several, or two strokes alike ("11")
    if (several(groups)) return true;
    const { parts, height, width } = partsOf(groups);
    return parts.length >= 2 && width >= S.narrow * height &&
      Math.min(...parts.map((p) => p[4])) >= S.balance * Math.max(...parts.map((p) => p[4])) &&
      parts.every((p) => p[3] - p[2] + 1 >= S.narrowTall * height);
  }
  function checkSingleDigit(ink, label, n, w, h) {  // images.check_single_digit, with keepDigit's regions
    checkEdges(ink, w, h);
    if (n >= 2 && several(marksOf(ink, label, n, w, h))) throw new NoDigit(SEVERAL);
  }
  function keepDigit(ink, w, h) {  // images.keep_digit: the ink kept, and its regions (0 where dropped)
    const { label, small, n, hs, ws } = regions(ink, w, h);
    if (n <= 1) return { ink, label, n };
    const mass = new Float64Array(n + 1), area = new Float64Array(n + 1), edge = new Float64Array(n + 1);
    for (let i = 0; i < h * w; i++) { mass[label[i]] += ink[i]; area[label[i]] += 1; }
    for (let y = 0; y < h; y++) for (let x = 1; x < w; x++) {
      const a = label[y * w + x], b = label[y * w + x - 1];
      if (a !== b) { edge[a] += 1; edge[b] += 1; }
    }
    for (let y = 1; y < h; y++) for (let x = 0; x < w; x++) {
      const a = label[y * w + x], b = label[(y - 1) * w + x];
      if (a !== b) { edge[a] += 1; edge[b] += 1; }
    }
    for (let x = 0; x < w; x++) { edge[label[x]] += 1; edge[label[(h - 1) * w + x]] += 1; }
    for (let y = 0; y < h; y++) { edge[label[y * w]] += 1; edge[label[y * w + w - 1]] += 1; }
    const width = Array.from(area, (a, i) => 2 * a / Math.max(edge[i], 1));
    const atFrame = new Uint8Array(n + 1);
    for (let x = 0; x < ws; x++) { atFrame[small[x]] = 1; atFrame[small[(hs - 1) * ws + x]] = 1; }
    for (let y = 0; y < hs; y++) { atFrame[small[y * ws]] = 1; atFrame[small[y * ws + ws - 1]] = 1; }
    let heaviest = 0;
    for (let i = 1; i <= n; i++) heaviest = Math.max(heaviest, mass[i]);
    const drop = Array.from(mass, (m) => m < SPECK * heaviest);
    let ref = -1, best = -Infinity;
    for (let i = 1; i <= n; i++) if (!atFrame[i] && !drop[i] && mass[i] > best) { best = mass[i]; ref = i; }
    if (ref > 0) for (let i = 1; i <= n; i++) if (width[i] > FRAME_WIDTH * width[ref]) drop[i] = true;
    drop[0] = false;
    return { ink: ink.map((v, i) => (drop[label[i]] ? 0 : v)), label: label.map((l) => (drop[l] ? 0 : l)), n };
  }
  function strokeWidth(binary, h, w) {  // images.stroke_width
    let edges = 0, count = 0;
    const at = (y, x) => (y >= 0 && y < h && x >= 0 && x < w ? binary[y * w + x] : 0);
    for (let y = -1; y <= h; y++) for (let x = -1; x < w; x++) if (at(y, x) !== at(y, x + 1)) edges++;
    for (let y = -1; y < h; y++) for (let x = -1; x <= w; x++) if (at(y, x) !== at(y + 1, x)) edges++;
    for (const v of binary) if (v) count++;
    return 2.0 * count / Math.max(edges, 1);
  }
  function normalizeStroke(binary, h, w, grain) {  // images.close_gaps (if grain), then images.normalize_stroke
    const k = Math.max(3, Math.floor(Math.max(h, w) / 40) | 1);
    let cur = grain ? crop(morph(pad(binary, h, w, k, false), h + 2 * k, w + 2 * k, k, ["max", "min"]), w + 2 * k, k, k, h, w) : binary;
    const side = Math.max(h, w), width = strokeWidth(cur, h, w);
    if (width >= STROKE_MIN * side) return { binary: cur, h, w };
    const r = pyRound((STROKE_TARGET * side - width) / 2);
    if (r < 1) return { binary: cur, h, w };
    cur = morph(pad(cur, h, w, r, false), h + 2 * r, w + 2 * r, 2 * r + 1, ["max"]);
    return { binary: cur, h: h + 2 * r, w: w + 2 * r };
  }

  // --- images.py: grayscale -> ink map -> 28x28 -----------------------------------------
  // RGBA bytes (a canvas's ImageData) -> grayscale in [0, 1]: transparency flattened onto
  // white, then Pillow's "L" conversion (ITU-R 601-2 luma in 16-bit fixed point).
  function grayscale(rgba, w, h) {
    const gray = new Float64Array(w * h);
    for (let i = 0; i < w * h; i++) {
      let r = rgba[4 * i], g = rgba[4 * i + 1], b = rgba[4 * i + 2];
      const a = rgba[4 * i + 3];
      if (a !== 255) {  // Pillow's alpha_composite onto opaque white, in its 7-bit fixed point
        const over = (v) => {  // (checked against Pillow for every value and alpha)
          if (a === 0) return 255;
          const t = v * a * 128 + 255 * (255 - a) * 128 + (0x80 << 7);
          return (((t >> 8) + t) >> 8) >> 7;
        };
        r = over(r); g = over(g); b = over(b);
      }
      gray[i] = ((r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16) / 255;
    }
    return gray;
  }
  function borderOf(a, w, h) {  // images._border: top row, bottom row, left column, right column
    const out = [];
    for (let x = 0; x < w; x++) out.push(a[x]);
    for (let x = 0; x < w; x++) out.push(a[(h - 1) * w + x]);
    for (let y = 0; y < h; y++) out.push(a[y * w]);
    for (let y = 0; y < h; y++) out.push(a[y * w + w - 1]);
    return out;
  }
  function quantiles(values, qs) {  // images.quantiles: on a 1/1024 grid, no sort
    const cum = new Float64Array(1024);
    for (const v of values) cum[Math.min(Math.floor(v * 1024), 1023)] += 1;
    for (let i = 1; i < 1024; i++) cum[i] += cum[i - 1];
    return qs.map((q) => {
      const target = q * cum[1023];
      let i = 0;
      while (cum[i] < target) i++;  // np.searchsorted, side "left"
      return i / 1024;
    });
  }
  function unband(gray, w, h) {  // images.unband: bands of columns, then of rows
    for (const transpose of [false, true]) {
      // at(line, pos): the pixel of g (gray, or its transpose) at row `line`, column `pos`
      const lines = transpose ? w : h, side = transpose ? h : w;
      const at = transpose ? (line, pos) => pos * w + line : (line, pos) => line * w + pos;
      const cuts = [];
      for (let pos = 0; pos + 1 < side; pos++) {
        let share = 0;
        for (let line = 0; line < lines; line++)
          if (Math.abs(gray[at(line, pos + 1)] - gray[at(line, pos)]) > PANEL_STEP) share++;
        if (share >= PANEL_SHARE * lines) cuts.push(pos + 1);
      }
      if (!cuts.length) continue;
      const first = cuts[0], last = cuts[cuts.length - 1];
      const bands = first < PANEL_EDGE * side ? [[0, first]] : [];
      if (side - last < PANEL_EDGE * side && (last !== first || !bands.length)) bands.push([last, side]);
      if (!bands.length) continue;
      const a = bands[0][0] === 0 ? bands[0][1] : 0;
      const b = bands[bands.length - 1][1] === side ? bands[bands.length - 1][0] : side;
      const middle = [];
      for (let line = 0; line < lines; line++) for (let pos = a; pos < b; pos++) middle.push(gray[at(line, pos)]);
      const level = median(middle);
      let off = 0, endsOff = 0;
      for (const v of middle) if (Math.abs(v - level) > 0.5) off++;
      for (const line of [0, lines - 1])
        for (let pos = a; pos < b; pos++) if (Math.abs(gray[at(line, pos)] - level) > 0.5) endsOff++;
      if (!(PANEL_INK * middle.length <= off && off <= middle.length / 2) || endsOff / (2 * (b - a)) > PANEL_ENDS)
        continue;
      const out = Float64Array.from(gray);
      let flipped = false;
      for (const [p0, p1] of bands) {
        const band = [];
        for (let line = 0; line < lines; line++) for (let pos = p0; pos < p1; pos++) band.push(out[at(line, pos)]);
        if (Math.abs(median(band) - level) > 0.5) {
          for (let line = 0; line < lines; line++) for (let pos = p0; pos < p1; pos++) {
            const i = at(line, pos);
            out[i] = 1.0 - out[i];
          }
          flipped = true;
        }
      }
      const [lo, hi] = quantiles(out, [POLARITY_TAIL, 1 - POLARITY_TAIL]);
      const edge = borderOf(out, w, h);
      let edgeOff = 0;
      for (const v of edge) if (Math.abs(v - level) > 0.5) edgeOff++;
      if (flipped && hi - lo > 0.5 && edgeOff / edge.length <= PANEL_ENDS / 2) gray = out;
    }
    return gray;
  }
  function darkInk(gray, w, h) {  // images.dark_ink
    const paper = median(borderOf(gray, w, h));
    const [lo, hi] = quantiles(gray, [POLARITY_TAIL, 1 - POLARITY_TAIL]);
    const dark = paper - lo > hi - paper, cut = dark ? (paper + lo) / 2 : (paper + hi) / 2;
    let beyond = 0;
    for (const v of gray) if (dark ? v < cut : v > cut) beyond++;
    if (beyond > MINORITY * gray.length) return paper > 0.5;  // not a minority: the paper's brightness decides
    return dark;
  }
  function uneven(ink, w, h) {  // images.uneven
    const edge = borderOf(ink, w, h);
    return percentile(edge, 25) - percentile(edge, 1) > UNEVEN;
  }
  function median3(gray, w, h) {  // images.median3: 3x3 medians, edges repeated
    const out = new Float64Array(w * h), win = new Float64Array(9);
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
      let k = 0;
      for (let dy = -1; dy <= 1; dy++) for (let dx = -1; dx <= 1; dx++)
        win[k++] = gray[Math.min(Math.max(y + dy, 0), h - 1) * w + Math.min(Math.max(x + dx, 0), w - 1)];
      out[y * w + x] = win.sort()[4];
    }
    return out;
  }
  function despeckle(gray, w, h) {  // images.despeckle
    let islands = 0;
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
      const v = gray[y * w + x];
      let alike = 0;
      for (let dy = -1; dy <= 1; dy++) for (let dx = -1; dx <= 1; dx++) {
        if (dy === 0 && dx === 0) continue;
        const n = gray[Math.min(Math.max(y + dy, 0), h - 1) * w + Math.min(Math.max(x + dx, 0), w - 1)];
        if (Math.abs(n - v) <= IMPULSE_STEP) alike++;
      }
      if (alike <= 1) islands++;
    }
    return islands > IMPULSE * (w * h) ? median3(gray, w, h) : gray;
  }
  function linePath(on, w, h) {  // images.line_path: the row of the path through the most ink, per column
    let score = new Float64Array(h);
    for (let r = 0; r < h; r++) score[r] = on[r * w];
    const step = new Int8Array(h * w);
    for (let c = 1; c < w; c++) {
      const next = new Float64Array(h);
      for (let r = 0; r < h; r++) {
        const options = [r > 0 ? score[r - 1] : -1, score[r], r < h - 1 ? score[r + 1] : -1];
        let k = 0;
        if (options[1] > options[k]) k = 1;
        if (options[2] > options[k]) k = 2;
        step[r * w + c] = k - 1;
        next[r] = options[k] + on[r * w + c];
      }
      score = next;
    }
    const path = new Int32Array(w);
    let best = 0;
    for (let r = 1; r < h; r++) if (score[r] > score[best]) best = r;
    path[w - 1] = best;
    for (let c = w - 1; c > 0; c--) path[c - 1] = path[c] + step[path[c] * w + c];
    return path;
  }
  function strikeLine(ink, w, h) {  // images.strike_line: ink without a line across it that is not the digit's
    const on = new Uint8Array(w * h);
    let first = w, last = -1;
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++)
      if (ink[y * w + x] > BINARY_MIN) { on[y * w + x] = 1; first = Math.min(first, x); last = Math.max(last, x); }
    if (last < 0 || last - first + 1 < LINE_SPAN * w) return ink;
    const path = linePath(on, w, h);
    const hit = new Uint8Array(w);
    let lo = -1, hi = -1;
    for (let x = 0; x < w; x++) {
      const p = path[x];
      hit[x] = on[p * w + x] | on[Math.max(p - 1, 0) * w + x] | on[Math.min(p + 1, h - 1) * w + x];
      if (hit[x]) { if (lo < 0) lo = x; hi = x; }
    }
    let covered = 0;
    for (let x = lo; x <= hi; x++) covered += hit[x];
    if (hi - lo + 1 < LINE_SPAN * w || covered < LINE_COVER * (hi - lo + 1)) return ink;
    let n = 0, sc = 0, sp = 0, scc = 0, scp = 0;  // integers: exact, as in Python
    for (let c = lo; c <= hi; c++) { n++; sc += c; sp += path[c]; scc += c * c; scp += c * path[c]; }
    const slope = (n * scp - sc * sp) / (n * scc - sc * sc), base = (sp - slope * sc) / n;
    let wave = 0;
    for (let c = lo; c <= hi; c++) wave = Math.max(wave, Math.abs(path[c] - (base + slope * c)));
    if (Math.abs(slope) > LINE_SLOPE || wave > LINE_WAVE * h) return ink;
    const top = new Int32Array(w), bottom = new Int32Array(w).fill(-1), lengths = [];
    for (let c = lo; c <= hi; c++) {
      const r = [path[c], path[c] - 1, path[c] + 1].find((r) => r >= 0 && r < h && on[r * w + c]);
      if (r === undefined) continue;
      let t = r, b = r;
      while (t > 0 && on[(t - 1) * w + c]) t--;
      while (b < h - 1 && on[(b + 1) * w + c]) b++;
      top[c] = t; bottom[c] = b; lengths.push(b - t + 1);
    }
    const thick = median(lengths);
    const rest = Float64Array.from(ink);
    for (let c = lo; c <= hi; c++) {
      const len = bottom[c] - top[c] + 1;
      if (len > 0 && len <= 1.5 * thick + 1)
        for (let y = Math.max(top[c] - 1, 0); y < Math.min(bottom[c] + 2, h); y++) rest[y * w + c] = 0;
    }
    let kept0 = -1, kept1 = -1, restSum = 0, inkSum = 0;
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
      if (rest[y * w + x] > BINARY_MIN) { if (kept0 < 0 || x < kept0) kept0 = x; kept1 = Math.max(kept1, x); }
    }
    for (let i = 0; i < w * h; i++) { restSum += rest[i]; inkSum += ink[i]; }
    if (kept0 < 0 || restSum < LINE_REST * inkSum || kept0 - lo < LINE_OVERHANG || hi - kept1 < LINE_OVERHANG) return ink;
    const m = Math.max(2, Math.ceil(thick / 2), Math.floor(LINE_END * w + 0.5));
    for (const start of [lo, hi - m + 1])
      for (let c = start; c < start + m; c++)
        for (let y = 0; y < h; y++)
          if (on[y * w + c] && Math.abs(y - path[c]) > thick / 2 + 1) return ink;
    return rest;
  }
  function inkMap(gray, w, h) {  // images._ink
    if (Math.max(w, h) > STRIP * Math.min(w, h)) throw new NoDigit(STRIPE);
    if (Math.max(w, h) <= LIGHT_SIDE) gray = despeckle(gray, w, h);
    gray = unband(gray, w, h);
    const invert = darkInk(gray, w, h);
    const ink = new Float64Array(w * h);
    let lo = Infinity, hi = -Infinity;
    for (let i = 0; i < ink.length; i++) {
      ink[i] = invert ? 1.0 - gray[i] : gray[i];
      lo = Math.min(lo, ink[i]); hi = Math.max(hi, ink[i]);
    }
    if (hi - lo < 0.05) throw new NoDigit(BLANK);
    const flat = !uneven(ink, w, h);
    if (!flat) {
      const bg = background(ink, w, h);
      for (let i = 0; i < ink.length; i++) ink[i] = Math.max(ink[i] - bg[i], 0.0);
    }
    const t = otsu(ink), back = [], fore = [];
    for (const v of ink) (v <= t ? back : fore).push(v);
    const level = back.length ? median(back) : 0;
    const dev = back.map((v) => Math.abs(v - level));
    const spread = back.length ? percentile(dev, 99) : 0;
    const floor = Math.min(level + 2 * spread + 1e-6, t);
    let top = -Infinity;
    for (const v of ink) top = Math.max(top, v);
    const peak = fore.length ? percentile(fore, 90) : top;
    if (peak - level < MIN_CONTRAST) throw new NoDigit(FAINT);
    const scale = Math.max(peak - floor, 1e-6);
    let hard = ink.map((v) => Math.min(Math.max((v - floor) / scale, 0), 1));
    if (Math.max(w, h) <= LIGHT_SIDE) hard = strikeLine(hard, w, h);
    if (!flat || !back.length) return { ...keepDigit(hard, w, h), flat };
    // Even paper: the strokes keep their soft edges next to what the hard floor found (images._ink).
    const softFloor = Math.min(level + 2 * Math.min(spread, MAD_SPREAD * median(dev)) + 1e-6, t);
    const softScale = Math.max(peak - softFloor, 1e-6);
    const near = running(running(hard.map((v) => (v > 0 ? 1 : 0)), h, w, 3, 0, "max"), h, w, 3, 1, "max");
    const out = ink.map((v, i) => (near[i] ? Math.min(Math.max((v - softFloor) / softScale, 0), 1) : 0));
    return { ...keepDigit(out, w, h), flat };
  }
  function inkBox(ink, w, h) {  // images.ink_box: [x0, y0, x1, y1] (ends exclusive), or null
    let top = h, bottom = -1, left = w, right = -1;
    for (let y = 0; y < h; y++)
      for (let x = 0; x < w; x++)
        if (ink[y * w + x] > 0) { top = Math.min(top, y); bottom = Math.max(bottom, y); left = Math.min(left, x); right = Math.max(right, x); }
    return bottom < 0 ? null : [left, top, right + 1, bottom + 1];
  }
  function cropOf(ink, w, box) {  // ink[y0:y1, x0:x1]
    return crop(ink, w, box[1], box[0], box[3] - box[1], box[2] - box[0]);
  }
  const inkCut = (ink) => Math.max(otsu(ink), BINARY_MIN);  // images.ink_cut
  // One digit's ink, cropped to its box -> Uint8Array(784) (images.frame_digit); cut(): the
  // binarisation level, asked for only by a large crop.
  function frameDigit(ink, ch, cw, cut, flat) {
    const binary = Math.max(ch, cw) >= 2 * BOX, level = binary ? cut() : 0;
    let digit = new Uint8Array(ch * cw);
    for (let i = 0; i < ch * cw; i++) digit[i] = binary ? (ink[i] > level ? 1 : 0) : Math.trunc(ink[i] * 255);
    if (binary && strokeWidth(digit, ch, cw) < STROKE_TARGET * Math.max(ch, cw)) {  // images.binarize: hysteresis
      const weak = new Uint8Array(ch * cw);
      for (let i = 0; i < ch * cw; i++) weak[i] = ink[i] > HYSTERESIS * level ? 1 : 0;
      const { labels, n } = components(weak, ch, cw);
      const keep = new Uint8Array(n + 1);
      for (let i = 0; i < ch * cw; i++) if (digit[i]) keep[labels[i]] = 1;
      keep[0] = 0;
      for (let i = 0; i < ch * cw; i++) digit[i] = keep[labels[i]];
    }
    if (binary) {  // stroke-width normalisation of a large binarised crop (images.normalize_stroke)
      const out = normalizeStroke(Float64Array.from(digit), ch, cw, !flat);
      ch = out.h; cw = out.w;
      digit = Uint8Array.from(out.binary, (v) => (v ? 255 : 0));
    }
    const scale = BOX / Math.max(ch, cw);
    const nh = Math.max(1, pyRound(ch * scale)), nw = Math.max(1, pyRound(cw * scale));
    const small = resize8(digit, cw, ch, nw, nh);
    const frame = new Float64Array(SIDE * SIDE);
    const ft = (SIDE - nh) >> 1, fl = (SIDE - nw) >> 1;
    for (let y = 0; y < nh; y++) for (let x = 0; x < nw; x++) frame[(y + ft) * SIDE + x + fl] = small[y * nw + x] / 255;
    let mass = 0, my = 0, mx = 0;
    for (let y = 0; y < SIDE; y++) for (let x = 0; x < SIDE; x++) { const v = frame[y * SIDE + x]; mass += v; my += y * v; mx += x * v; }
    if (mass <= 0) throw new NoDigit(NOTHING_LEFT);  // images.frame_digit: nothing survives the reduction to 8 bits
    const dy = pyRound(CENTRE - my / mass), dx = pyRound(CENTRE - mx / mass);
    const out = new Uint8Array(SIDE * SIDE);
    for (let y = 0; y < SIDE; y++)
      for (let x = 0; x < SIDE; x++) {
        const v = frame[y * SIDE + x];  // np.roll: wraps around
        out[(((y + dy) % SIDE) + SIDE) % SIDE * SIDE + (((x + dx) % SIDE) + SIDE) % SIDE] = Math.min(Math.max(pyRound(v * 255), 0), 255);
      }
    return out;
  }
  // RGBA bytes of any size -> Uint8Array(784): MNIST's conventions (images.to_mnist).
  function toMnist(rgba, w, h) {
    const { ink, label, n, flat } = inkMap(grayscale(rgba, w, h), w, h);
    const box = inkBox(ink, w, h);
    if (!box) throw new NoDigit(NOTHING_LEFT);
    checkSingleDigit(ink, label, n, w, h);
    return frameDigit(cropOf(ink, w, box), box[3] - box[1], box[2] - box[0], () => inkCut(ink), flat);
  }
  // --- numbers.py: a row of digits -> a number ---------------------------------------------
  // The segmentation's constants come with the model (export's web_model: numbers.settings()).
  // numbers.piece_reading: [probabilities, score]; check: the piece check's, or null
  function pieceReading(S, p, width, height, check) {
    const ratio = width / Math.max(height, 1);
    let bin = 0;
    while (bin < S.aspectEdges.length && S.aspectEdges[bin] <= ratio) bin++;  // np.searchsorted, side "right"
    const total = new Float64Array(p.length);
    let best = -Infinity;
    for (let c = 0; c < p.length; c++) {
      const shape = p.length === S.shapePenalty.length ? S.shapePenalty[c][bin] : 0;
      total[c] = Math.log(Math.max(p[c], 1e-12)) + shape;
      if (check) total[c] += S.checkWeight * Math.log(Math.max(check[c], 1e-12));
      best = Math.max(best, total[c]);
    }
    if (!check) return [p, best];
    const joint = total.map((v) => Math.exp(v - best)), sum = joint.reduce((a, b) => a + b, 0);
    return [joint.map((v) => v / sum), best];
  }
  function readsDigits(model) {  // numbers.reads_digits: classes not named otherwise by the run's data
    return !model.names || model.names.every((name, i) => String(name) === String(model.classes[i]));
  }
  function isDigitModel(model) {  // numbers.is_digit_model
    return model.classes.length === 10 && model.classes.every((c, i) => String(c) === String(i)) && readsDigits(model);
  }
  // numbers.read_and_check's piece checks together (their probabilities' geometric mean): null where they do not apply
  function checkPiece(model, digit) {
    if (!isDigitModel(model)) return null;
    const each = model.numbers.checks.map((check) => classify(check, digit));
    return each[0].map((_, c) => Math.exp(each.reduce((sum, p) => sum + Math.log(Math.max(p[c], 1e-12)), 0) / each.length));
  }
  function seams(ink, h, w, cols, band, step, lo, hi) {  // numbers.seams: the cheapest cut near each column
    const n = 2 * band + 1, paths = [];
    const near = Array.from({ length: n }, (_, j) => j).sort((a, b) => Math.abs(a - band) - Math.abs(b - band) || a - b);
    for (const c of cols) {
      const at = (j) => c - band + j;
      const inkAt = (y, j) => (at(j) >= Math.max(lo, 0) && at(j) <= Math.min(hi, w - 1) ? ink[y * w + at(j)] : Infinity);
      let cost = Float64Array.from({ length: n }, (_, j) => inkAt(0, j));
      const came = new Uint8Array(h * n);
      for (let y = 1; y < h; y++) {
        const next = new Float64Array(n);
        for (let j = 0; j < n; j++) {
          let best = cost[j], from = 0;  // the first least, as np.argmin: straight on a tie
          // a step sideways pays for the pixel beside too: a 4-connected path
          const left = j > 0 ? cost[j - 1] + (inkAt(y, j - 1) + step) : Infinity;
          const right = j < n - 1 ? cost[j + 1] + (inkAt(y, j + 1) + step) : Infinity;
          if (left < best) { best = left; from = 1; }
          if (right < best) { best = right; from = 2; }
          came[y * n + j] = from;
          next[j] = best + inkAt(y, j);
        }
        cost = next;
      }
      let j = near[0];
      for (const k of near) if (cost[k] < cost[j]) j = k;
      const path = new Int32Array(h);
      for (let y = h - 1; y >= 0; y--) {
        path[y] = at(j);
        if (y) j += [0, -1, 1][came[y * n + j]];
      }
      paths.push(path);
    }
    return paths;
  }
  function crossed(ink, w, paths, step) {  // numbers.crossed: each cut's ink and steps, a row at a time
    return paths.map((path) => {
      let cost = ink[path[0]];
      for (let y = 1; y < path.length; y++) {
        cost += ink[y * w + path[y]];
        cost += step * Math.abs(path[y] - path[y - 1]);
      }
      return cost;
    });
  }
  function cutsOf(S, mark) {  // numbers.cuts_of: [columns, paths] where a cut crosses less ink than those beside it
    const h = mark.h, w = mark.w, f = Math.ceil(h / S.cutHeight), edge = Math.ceil(S.minPiece * h);
    const hs = Math.ceil(h / f), ws = Math.ceil(w / f), ink = f === 1 ? mark.own : blockMeans(mark.own, w, h, f, hs, ws);
    const lo = Math.ceil(edge / f), hi = Math.floor((w - edge) / f), cols = [];
    for (let c = Math.max(lo, 1); c < Math.min(hi, ws - 1); c++) cols.push(c);
    if (!cols.length) return [[], []];
    const paths = seams(ink, hs, ws, cols, Math.floor(S.seamBand * hs), S.seamStep, lo, hi);
    const cost = crossed(ink, ws, paths, S.seamStep), runs = [];
    for (let i = 0; i < cols.length; i++) {
      if (!((i === 0 || cost[i] <= cost[i - 1]) && (i === cols.length - 1 || cost[i] <= cost[i + 1]))) continue;
      const last = runs[runs.length - 1];
      if (last && i === last[last.length - 1] + 1) last.push(i); else runs.push([i]);
    }
    const keep = runs.map((run) => run[run.length >> 1]);  // a plateau's middle
    // a reduced column's middle, each reduced row f rows, within the columns a cut may take (f = 1: as found)
    const clamp = (x) => Math.min(Math.max(x, edge), w - edge);
    return [keep.map((i) => clamp(cols[i] * f + (f >> 1))),
            keep.map((i) => Int32Array.from({ length: h }, (_, y) => clamp(paths[i][Math.floor(y / f)] * f + (f >> 1))))];
  }
  function markOf(S, ink, label, W, g) {  // numbers._Mark: one mark's own ink as a crop
    const [x0, x1, y0, y1, , ids] = g, mh = y1 - y0 + 1, mw = x1 - x0 + 1;
    const lab = new Int32Array(mh * mw), mine = new Uint8Array(mh * mw), own = new Float64Array(mh * mw);
    const isMine = new Set(ids);
    for (let y = 0; y < mh; y++) for (let x = 0; x < mw; x++) {
      const i = y * mw + x, l = label[(y + y0) * W + x + x0];
      lab[i] = l; mine[i] = isMine.has(l) ? 1 : 0; own[i] = mine[i] ? ink[(y + y0) * W + x + x0] : 0;
    }
    const regions = [];  // narrow regions go whole to the piece holding their centre
    for (const id of ids) {
      let c0 = Infinity, c1 = -Infinity;
      for (let i = 0; i < mh * mw; i++) if (lab[i] === id) { c0 = Math.min(c0, i % mw); c1 = Math.max(c1, i % mw); }
      if (c1 >= 0 && c1 - c0 + 1 <= S.maxPiece * mh) regions.push([id, c0, c1, (c0 + c1) / 2]);
    }
    // columns [a, b), or between the cut paths left and right (a column a row, numbers.seams)
    // -> { crop, h, w, box } (box in the image), or null
    const piece = (a, b, left = null, right = null) => {
      const keep = new Uint8Array(mh * mw);
      for (let i = 0; i < mh * mw; i++) {
        const x = i % mw, y = (i - x) / mw, lo = left ? left[y] : a, hi = right ? right[y] : b;
        keep[i] = x >= lo && x < hi ? mine[i] : 0;
      }
      const slack = S.minPiece * mh;
      for (const [id, c0, c1, centre] of regions)
        if (c0 >= a - slack && c1 < b + slack) { const on = a <= centre && centre < b ? 1 : 0; for (let i = 0; i < mh * mw; i++) if (lab[i] === id) keep[i] = on; }
      const part = own.map((v, i) => (keep[i] ? v : 0));
      const box = inkBox(part, mw, mh);
      if (!box) return null;
      return { crop: cropOf(part, mw, box), h: box[3] - box[1], w: box[2] - box[0],
               box: [x0 + box[0], y0 + box[1], x0 + box[2], y0 + box[3]] };
    };
    return { own, h: mh, w: mw, piece };
  }
  // A row of digits: [{ label, box, probabilities, digit, score, reason }], left to right
  // (numbers.read_number; one digit read exactly as toMnist reads it).
  function readNumber(model, rgba, w, h) {
    const S = model.numbers;
    const { ink, label, n, flat } = inkMap(grayscale(rgba, w, h), w, h);
    const whole = inkBox(ink, w, h);
    if (!whole) throw new NoDigit(NOTHING_LEFT);
    checkEdges(ink, w, h);
    let level = null;
    const cut = () => (level === null ? (level = inkCut(ink)) : level);
    const digitOf = (digit, box, p, score) => {
      let best = 0;
      p.forEach((v, i) => { if (v > p[best]) best = i; });
      return { label: String(model.classes[best]), box, probability: p[best], probabilities: Array.from(p), digit, score };
    };
    const read = (piece) => {
      const digit = frameDigit(piece.crop, piece.h, piece.w, cut, flat);
      const [p, score] = pieceReading(S, classify(model, digit), piece.w, piece.h, checkPiece(model, digit));
      return digitOf(digit, piece.box, p, score);
    };
    const oneDigit = (piece, weigh) => {  // numbers._one_digit: the model's own probabilities
      const digit = frameDigit(piece.crop, piece.h, piece.w, cut, flat), p = classify(model, digit);
      const [, score] = pieceReading(S, p, piece.w, piece.h, weigh ? checkPiece(model, digit) : null);
      return digitOf(digit, piece.box, p, score);
    };
    if (!readsDigits(model)) {  // not digits: one item an image, as toMnist reads it, several marks refused
      checkSingleDigit(ink, label, n, w, h);
      return [oneDigit({ crop: cropOf(ink, w, whole), h: whole[3] - whole[1], w: whole[2] - whole[0], box: whole }, false)];
    }
    const mainOf = (groups) => {  // numbers._main_marks: specks left out
      let heaviest = -Infinity, digit = -Infinity, line = -Infinity;
      for (const g of groups) {
        heaviest = Math.max(heaviest, g[4]);
        digit = Math.max(digit, g[4] / Math.max(1, (g[1] - g[0] + 1) / (g[3] - g[2] + 1)));
      }
      for (const g of groups) if (g[4] >= S.markShare * heaviest) line = Math.max(line, g[3] - g[2] + 1);
      const main = groups.filter((g) => g[4] >= S.markShare * heaviest ||
                                        (g[3] - g[2] + 1 >= S.pieceTall * line && g[4] >= S.markShare * digit));
      return { main, line };
    };
    let tall = [];
    if (n >= 2) {
      const { main, line } = mainOf(marksOf(ink, label, n, w, h));
      tall = main.filter((g) => g[3] - g[2] + 1 >= S.tall * line);
    }
    let one = null;
    const [wideBy, highBy] = [whole[2] - whole[0], whole[3] - whole[1]];
    if (!(tall.length >= 2 && sideBySide(S, tall)) && wideBy <= S.widest * highBy) {  // (wider: no digit is)
      const narrow = wideBy <= S.wide * highBy;  // no piece check needed
      one = oneDigit({ crop: cropOf(ink, w, whole), h: highBy, w: wideBy, box: whole }, !narrow);
      if (narrow) return [one];
      if (one.score + S.oneBonus >= -S.splitCost) return [one];  // no reading as several can win
    }
    const mask = ink.map((v) => (v > 0 ? 1 : 0));
    const fine = components(mask, h, w);
    const groups = marksOf(ink, fine.labels, fine.n, w, h), { main: marks, line } = mainOf(groups);
    const points = pointsOf(S, ink, fine.labels, w, groups, marks, line);  // numbers.fine_marks
    const main = marks.filter((g) => !points.includes(g));
    const out = [];
    for (const g of [...main, ...points].sort((p, q) => p[0] - q[0])) {
      if (points.includes(g)) {
        out.push({ label: ".", box: [g[0], g[2], g[1] + 1, g[3] + 1], probability: null, probabilities: null,
                   digit: null, score: 0, reason: S.aPoint });
        continue;
      }
      const mark = markOf(S, ink, fine.labels, w, g);
      if (mark.h < S.tall * line) {
        out.push({ label: "?", box: [g[0], g[2], g[1] + 1, g[3] + 1], probability: null, probabilities: null,
                   digit: null, score: 0, reason: S.notADigit });
      } else if (mark.w <= S.splitWide * line) {
        out.push(read(mark.piece(0, mark.w)));
      } else {
        out.push(...split(S, model, mark, cut, flat, line).map(([digit, box, p, score]) => digitOf(digit, box, p, score)));
      }
    }
    let apart = 0;
    for (const d of out) if (!d.reason) apart += d.score - S.splitCost;
    return one !== null && one.score + S.oneBonus >= apart ? [one] : out;
  }
  // numbers.points_of: the marks that are a point between two digits (a small low dab).
  function pointsOf(S, ink, label, W, groups, main, line) {
    const digits = main.filter((g) => g[3] - g[2] + 1 >= S.pieceTall * line);
    const out = [];
    let stroke = null;
    for (const g of groups) {
      const [x0, x1, y0, y1] = g;
      const left = digits.filter((d) => d[1] < x0), right = digits.filter((d) => d[0] > x1);
      if (Math.max(x1 - x0, y1 - y0) + 1 > S.point * line || !left.length || !right.length) continue;
      const a = left.reduce((p, d) => (d[1] > p[1] ? d : p)), b = right.reduce((p, d) => (d[0] < p[0] ? d : p));
      if (groups.some((o) => o !== g && a[1] < o[0] && o[1] < b[0])) continue;  // not alone between its digits
      const top = (a[2] + b[2]) / 2, bottom = (a[3] + b[3]) / 2, middle = (y0 + y1) / 2;
      if (!(top + S.pointLow * (bottom - top + 1) <= middle && middle <= bottom + S.point * line)) continue;
      if (stroke === null) {  // the number's stroke width, where a mark may be a point
        const xl = digits[0][0], xh = digits[digits.length - 1][1] + 1;
        const yl = Math.min(...digits.map((d) => d[2])), yh = Math.max(...digits.map((d) => d[3])) + 1;
        const bin = new Uint8Array((yh - yl) * (xh - xl));
        for (let y = yl; y < yh; y++) for (let x = xl; x < xh; x++) bin[(y - yl) * (xh - xl) + x - xl] = ink[y * W + x] >= S.core ? 1 : 0;
        stroke = Math.max(1, strokeWidth(bin, yh - yl, xh - xl));
      }
      const ids = new Set(g[5]);
      let n = 0, lx = Infinity, hx = -Infinity, ly = Infinity, hy = -Infinity;
      for (let y = y0; y <= y1; y++) for (let x = x0; x <= x1; x++) {
        if (!(ink[y * W + x] >= S.core && ids.has(label[y * W + x]))) continue;
        n++; lx = Math.min(lx, x); hx = Math.max(hx, x); ly = Math.min(ly, y); hy = Math.max(hy, y);
      }
      if (!n) continue;
      const thin = Math.min(hx - lx, hy - ly) + 1, thick = Math.max(hx - lx, hy - ly) + 1;
      if (thick <= S.round * thin && n >= S.fill * thin * thick && n >= S.pointArea * stroke * stroke) out.push(g);
    }
    return out;
  }
  function split(S, model, mark, cut, flat, line) {  // numbers._split: the pieces of a wide mark that read best
    const readPiece = (piece) => {  // [digit, box, p, score], or null where nothing is left
      let digit;
      try { digit = frameDigit(piece.crop, piece.h, piece.w, cut, flat); }
      catch (err) { if (err instanceof NoDigit) return null; throw err; }
      const [p, score] = pieceReading(S, classify(model, digit), piece.w, piece.h, checkPiece(model, digit));
      return [digit, piece.box, p, score];
    };
    // Read whole first: at a score of at least -splitCost, no cut can beat it. A mark wider
    // than any digit (numbers.WIDEST) is read whole only where no cut makes a reading.
    const readWhole = () => { const piece = mark.piece(0, mark.w); return piece ? readPiece(piece) : null; };
    const widest = mark.w > S.widest * line, whole = widest ? null : readWhole();
    if (whole && whole[3] >= -S.splitCost) return [whole];
    const [cuts, cutPaths] = cutsOf(S, mark);
    const points = [0, ...cuts, mark.w], last = points.length - 1, paths = [null, ...cutPaths, null];
    const tall = mark.w > S.several * mark.h ? S.tallSeveral : S.pieceTall;  // numbers.frame_piece
    const ends = points.map((_, i) => {  // numbers.spans_of: where a piece from point i may end
      const out = [];
      for (let j = i + 1; j < points.length; j++) {
        const span = points[j] - points[i];
        if (span <= S.maxPiece * mark.h && span >= S.minPiece * mark.h && !(i === 0 && j === last)) out.push(j);
      }
      return out;
    });
    if (whole) ends[0].push(last);
    const fewest = new Array(last + 1).fill(Infinity);  // the fewest pieces from point i to the end
    fewest[last] = 0;
    for (let i = last - 1; i >= 0; i--) for (const j of ends[i]) fewest[i] = Math.min(fewest[i], 1 + fewest[j]);
    // numbers._split's best-first search: the open point whose reading could end best is
    // expanded, its pieces framed and read; it stops when the mark's end is that point.
    const best = new Map([[0, [0.0, []]]]), open = new Set([0]), done = new Set();
    while (open.size) {
      let i = -1;
      for (const k of [...open].sort((a, b) => a - b)) {
        if (i < 0 || best.get(k)[0] - S.splitCost * fewest[k] > best.get(i)[0] - S.splitCost * fewest[i]) i = k;
      }
      if (i === last) break;
      open.delete(i);
      done.add(i);
      for (const j of ends[i]) {
        let r;
        if (i === 0 && j === last) r = whole;
        else {
          const piece = mark.piece(points[i], points[j], paths[i], paths[j]);
          if (!piece || piece.h < tall * mark.h) continue;  // nothing, or a fragment, not a digit
          r = readPiece(piece);
          if (!r) continue;
        }
        const total = best.get(i)[0] + (r[3] - S.splitCost);
        if (!done.has(j) && fewest[j] < Infinity && (!best.has(j) || total > best.get(j)[0])) {
          best.set(j, [total, [...best.get(i)[1], r]]);
          open.add(j);
        }
      }
    }
    if (best.has(last)) return best.get(last)[1];
    const lastResort = widest ? readWhole() : null;
    if (!lastResort) throw new NoDigit(NOTHING_LEFT);
    return [lastResort];
  }
  function pyRound(v) {  // Python's round() and np.round: halves to even
    const f = Math.floor(v), d = v - f;
    return d > 0.5 ? f + 1 : d < 0.5 ? f : (f % 2 === 0 ? f : f + 1);
  }

  // --- the run's preprocessing and the model (preprocess.py, model.py) ------------------
  const f32 = Math.fround;
  // Bilinear sampling of a 28x28 image at normalised coordinates, as grid_sample does
  // (align_corners=False, zeros outside), in float32.
  function sample(img, h, w, gx, gy) {
    const ix = f32(f32(f32(f32(gx + 1) * w) - 1) / 2), iy = f32(f32(f32(f32(gy + 1) * h) - 1) / 2);
    const x0 = Math.floor(ix), y0 = Math.floor(iy);
    const tx = f32(ix - x0), ty = f32(iy - y0);
    const at = (y, x) => (y >= 0 && y < h && x >= 0 && x < w ? img[y * w + x] : 0);
    const nw = f32(f32(1 - tx) * f32(1 - ty)), ne = f32(tx * f32(1 - ty)), sw = f32(f32(1 - tx) * ty), se = f32(tx * ty);
    return f32(f32(f32(f32(at(y0, x0) * nw) + f32(at(y0, x0 + 1) * ne)) + f32(at(y0 + 1, x0) * sw)) + f32(at(y0 + 1, x0 + 1) * se));
  }
  function geometric(x, h, w, shear, target) {  // preprocess.geometric_normalize for one image
    // As raw_moments: row sums, column sums and x-weighted row sums first, then their moments.
    const rows = new Float64Array(h), cols = new Float64Array(w), rowX = new Float64Array(h);
    for (let y = 0; y < h; y++) for (let xx = 0; xx < w; xx++) {
      const v = x[y * w + xx]; rows[y] += v; cols[xx] += v; rowX[y] += v * xx;
    }
    let mass = 0, sy = 0, sx = 0, syy = 0, sxx = 0, sxy = 0;
    for (let y = 0; y < h; y++) { mass += rows[y]; sy += rows[y] * y; syy += rows[y] * (y * y); sxy += rowX[y] * y; }
    for (let xx = 0; xx < w; xx++) { sx += cols[xx] * xx; sxx += cols[xx] * (xx * xx); }
    const blank = mass <= 0, m = Math.max(mass, 1e-6);
    let cy = sy / m, cx = sx / m;
    const varY = Math.max(syy / m - cy * cy, 0), varX = Math.max(sxx / m - cx * cx, 0), cov = sxy / m - cx * cy;
    let alpha = shear && varY > 1e-6 ? cov / Math.max(varY, 1e-6) : 0;
    if (blank) alpha = 0;
    let scy = 1, scx = 1;
    if (target) {
      const stdY = Math.sqrt(varY);
      const stdX = shear ? Math.sqrt(Math.max(varX - cov * cov / Math.max(varY, 1e-6), 0)) : Math.sqrt(varX);
      scy = Math.min(Math.max(stdY / target[0], 0.5), 2); scx = Math.min(Math.max(stdX / target[1], 0.5), 2);
      if (blank) { scy = 1; scx = 1; }
    }
    if (blank) { cx = (w - 1) / 2; cy = (h - 1) / 2; }
    const y0 = (h - 1) / 2, x0 = (w - 1) / 2, kx = cx - scx * x0 - alpha * scy * y0;
    const gx = [f32((2 * kx + 1) / w - 1), f32(2 * scx / w), f32(2 * alpha * scy / w)];
    const gy = [f32((2 * (cy - scy * y0) + 1) / h - 1), 0, f32(2 * scy / h)];
    const out = new Float32Array(h * w);
    for (let y = 0; y < h; y++) for (let xx = 0; xx < w; xx++) {
      const px = f32(f32(gx[0] + f32(gx[1] * xx)) + f32(gx[2] * y)), py = f32(f32(gy[0] + f32(gy[1] * xx)) + f32(gy[2] * y));
      out[y * w + xx] = sample(x, h, w, px, py);
    }
    return out;
  }
  // preprocess.stroke_directions for one image: Sobel gradients split into 4 orientations,
  // each blurred and averaged over 2x2 blocks (the same [n/2, n] matrices), square roots,
  // tiled 2x2. In float64, rounded to float32 at the end (PyTorch's float32 sums differ
  // from these only in the last bits).
  const blurPools = new Map();  // built once per size, as lite.blur_pool_matrix
  function blurPool(n) {
    if (!blurPools.has(n)) blurPools.set(n, makeBlurPool(n));
    return blurPools.get(n);
  }
  function makeBlurPool(n) {
    const R = 3, g = [];
    for (let t = -R; t <= R; t++) g.push(Math.exp(-t * t / 2));
    const total = g.reduce((a, b) => a + b, 0), m = [];
    for (let i = 0; i < n / 2; i++) {
      const row = new Float64Array(n);
      for (const centre of [2 * i, 2 * i + 1])
        for (let t = -R; t <= R; t++) { const k = centre + t; if (k >= 0 && k < n) row[k] += g[t + R] / total / 2; }
      m.push(Float32Array.from(row));
    }
    return m;
  }
  function directions(x, h, w) {
    const at = (y, xx) => (y >= 0 && y < h && xx >= 0 && xx < w ? x[y * w + xx] : 0);
    const planes = [0, 1, 2, 3].map(() => new Float64Array(h * w));
    for (let y = 0; y < h; y++) for (let xx = 0; xx < w; xx++) {
      const gx = f32(f32(f32(at(y - 1, xx + 1) + f32(2 * at(y, xx + 1))) + at(y + 1, xx + 1))
                     - f32(f32(at(y - 1, xx - 1) + f32(2 * at(y, xx - 1))) + at(y + 1, xx - 1)));
      const gy = f32(f32(f32(at(y + 1, xx - 1) + f32(2 * at(y + 1, xx))) + at(y + 1, xx + 1))
                     - f32(f32(at(y - 1, xx - 1) + f32(2 * at(y - 1, xx))) + at(y - 1, xx + 1)));
      const ax = Math.abs(gx), ay = Math.abs(gy), lo = Math.min(ax, ay), hi = Math.max(ax, ay);
      const diagonal = f32(lo * f32(Math.SQRT2)), straight = f32(hi - lo), i = y * w + xx;
      if (ax >= ay) planes[0][i] = straight; else planes[2][i] = straight;
      if (gx * gy >= 0) planes[1][i] = diagonal; else planes[3][i] = diagonal;
    }
    const rows = blurPool(h), cols = blurPool(w), hh = h / 2, hw = w / 2, out = new Float32Array(h * w);
    planes.forEach((plane, k) => {
      const top = (k >> 1) * hh, left = (k & 1) * hw, across = new Float64Array(h * hw);
      for (let y = 0; y < h; y++) for (let j = 0; j < hw; j++) {
        let r = 0;
        for (let xx = 0; xx < w; xx++) r += plane[y * w + xx] * cols[j][xx];
        across[y * hw + j] = r;
      }
      for (let i = 0; i < hh; i++) for (let j = 0; j < hw; j++) {
        let s = 0;
        for (let y = 0; y < h; y++) s += rows[i][y] * across[y * hw + j];
        out[(top + i) * w + left + j] = f32(Math.sqrt(Math.max(f32(s), 0)));
      }
    });
    return out;
  }
  // digit: Uint8Array(h*w) -> class probabilities (Float64Array), as Checkpoint.predict_proba.
  function classify(model, digit) {
    const [h, w] = model.imageShape, pre = model.preprocess, n = h * w;
    let x = Float32Array.from(digit, (v) => f32(v / 255));
    if (pre.deskew || pre.moment_norm) x = geometric(x, h, w, pre.deskew, pre.moment_norm ? model.targetStd : null);
    if (pre.gamma !== 1) x = x.map((v) => f32(Math.pow(Math.max(v, 0), pre.gamma)));
    if (pre.directions) x = directions(x, h, w);
    const feats = new Float32Array(n);
    for (let i = 0; i < n; i++) feats[i] = pre.normalize !== "none" ? f32(f32(x[i] - model.mean[i]) / model.std[i]) : x[i];
    const C = model.bias.length, logits = new Float64Array(C);
    for (let c = 0; c < C; c++) {
      let s = 0;
      for (let i = 0; i < n; i++) s += model.weight[c * n + i] * feats[i];
      logits[c] = s + model.bias[c];
    }
    const top = Math.max(...logits), e = logits.map((z) => Math.exp(z - top)), sum = e.reduce((a, b) => a + b, 0);
    return e.map((v) => v / sum);
  }
  // The model as the exported page carries it: float32 tensors in base64.
  function floats(b64) {
    const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    return new Float32Array(bytes.buffer);
  }
  function loadModel(spec) {  // the numbers' piece checks (numbers.piece_checks) are models too
    const numbers = spec.numbers && { ...spec.numbers, checks: spec.numbers.pieceChecks.map(loadModel) };
    return { ...spec, weight: floats(spec.weight), bias: floats(spec.bias), mean: floats(spec.mean),
             std: floats(spec.std), targetStd: floats(spec.targetStd), numbers };
  }
  return { toMnist, readNumber, classify, loadModel, grayscale, inkMap, resize8, NoDigit, SEVERAL };
})();

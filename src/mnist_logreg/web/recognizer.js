// The digit recogniser in plain JavaScript: a person's image -> 28x28 MNIST-style digit
// (mnist_logreg/images.py, step for step) -> the run's own preprocessing (preprocess.py:
// deskewing, moment normalisation, gamma, standardisation) -> the linear layer -> softmax.
// Written once: the exported page (export --format web) inlines it. Numbers follow the
// Python code's order of operations, in float64 where it uses float64, so that the pages
// agree with `mnist-logreg predict` (tests/test_web.py measures how closely).
"use strict";
const MnistLogreg = (() => {
  const SIDE = 28, BOX = 20, CENTRE = 14.0, BINARY_MIN = 0.3;

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
  function inkMap(gray, w, h) {
    const border = [];
    for (let x = 0; x < w; x++) border.push(gray[x]);
    for (let x = 0; x < w; x++) border.push(gray[(h - 1) * w + x]);
    for (let y = 0; y < h; y++) border.push(gray[y * w]);
    for (let y = 0; y < h; y++) border.push(gray[y * w + w - 1]);
    const invert = median(border) > 0.5;
    const ink = new Float64Array(w * h);
    let lo = Infinity, hi = -Infinity;
    for (let i = 0; i < ink.length; i++) {
      ink[i] = invert ? 1.0 - gray[i] : gray[i];
      lo = Math.min(lo, ink[i]); hi = Math.max(hi, ink[i]);
    }
    if (hi - lo < 0.05) throw new Error("no digit found (the image is blank)");
    const t = otsu(ink), back = [], fore = [];
    for (const v of ink) (v <= t ? back : fore).push(v);
    const level = back.length ? median(back) : 0;
    const spread = back.length ? percentile(back.map((v) => Math.abs(v - level)), 99) : 0;
    const floor = Math.min(level + 2 * spread + 1e-6, t);
    const peak = fore.length ? percentile(fore, 90) : hi;
    const scale = Math.max(peak - floor, 1e-6);
    return ink.map((v) => Math.min(Math.max((v - floor) / scale, 0), 1));
  }
  // RGBA bytes of any size -> Uint8Array(784): MNIST's conventions (images.to_mnist).
  function toMnist(rgba, w, h) {
    const ink = inkMap(grayscale(rgba, w, h), w, h);
    let top = h, bottom = -1, left = w, right = -1;
    for (let y = 0; y < h; y++)
      for (let x = 0; x < w; x++)
        if (ink[y * w + x] > 0) { top = Math.min(top, y); bottom = Math.max(bottom, y); left = Math.min(left, x); right = Math.max(right, x); }
    if (bottom < 0) throw new Error("no digit found after removing the background");
    const ch = bottom - top + 1, cw = right - left + 1;
    const binary = Math.max(ch, cw) >= 2 * BOX, cut = binary ? Math.max(otsu(ink), BINARY_MIN) : 0;
    const crop = new Uint8Array(ch * cw);
    for (let y = 0; y < ch; y++)
      for (let x = 0; x < cw; x++) {
        const v = ink[(y + top) * w + x + left];
        crop[y * cw + x] = binary ? (v > cut ? 255 : 0) : Math.trunc(v * 255);
      }
    const scale = BOX / Math.max(ch, cw);
    const nh = Math.max(1, pyRound(ch * scale)), nw = Math.max(1, pyRound(cw * scale));
    const small = resize8(crop, cw, ch, nw, nh);
    const frame = new Float64Array(SIDE * SIDE);
    const ft = (SIDE - nh) >> 1, fl = (SIDE - nw) >> 1;
    for (let y = 0; y < nh; y++) for (let x = 0; x < nw; x++) frame[(y + ft) * SIDE + x + fl] = small[y * nw + x] / 255;
    let mass = 0, my = 0, mx = 0;
    for (let y = 0; y < SIDE; y++) for (let x = 0; x < SIDE; x++) { const v = frame[y * SIDE + x]; mass += v; my += y * v; mx += x * v; }
    const dy = pyRound(CENTRE - my / mass), dx = pyRound(CENTRE - mx / mass);
    const out = new Uint8Array(SIDE * SIDE);
    for (let y = 0; y < SIDE; y++)
      for (let x = 0; x < SIDE; x++) {
        const v = frame[y * SIDE + x];  // np.roll: wraps around
        out[(((y + dy) % SIDE) + SIDE) % SIDE * SIDE + (((x + dx) % SIDE) + SIDE) % SIDE] = Math.min(Math.max(pyRound(v * 255), 0), 255);
      }
    return out;
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
  // digit: Uint8Array(h*w) -> class probabilities (Float64Array), as Checkpoint.predict_proba.
  function classify(model, digit) {
    const [h, w] = model.imageShape, pre = model.preprocess, n = h * w;
    let x = Float32Array.from(digit, (v) => f32(v / 255));
    if (pre.deskew || pre.moment_norm) x = geometric(x, h, w, pre.deskew, pre.moment_norm ? model.targetStd : null);
    const feats = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      let v = x[i];
      if (pre.gamma !== 1) v = f32(Math.pow(Math.max(v, 0), pre.gamma));
      if (pre.normalize !== "none") v = f32(f32(v - model.mean[i]) / model.std[i]);
      feats[i] = v;
    }
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
  function loadModel(spec) {
    return { ...spec, weight: floats(spec.weight), bias: floats(spec.bias), mean: floats(spec.mean),
             std: floats(spec.std), targetStd: floats(spec.targetStd) };
  }
  return { toMnist, classify, loadModel, grayscale, inkMap, resize8 };
})();

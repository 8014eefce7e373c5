/* The kernel's body, written once and compiled once per instruction set: _kernels.c
 * includes this file after defining, for one target,
 *
 *   FN(name)        the function's name with the path's suffix (name##_avx2, ...)
 *   TARGET          the function attribute that enables the instruction set (or nothing)
 *   R, RD, G        rows per block (the gradient's pass), rows per dot-product pass (RD
 *                   divides R) and classes per pass: RD x G accumulators must fit the
 *                   vector registers, while a bigger R reads the gradient rows fewer times
 *   VW, vf          lanes per vector and the vector type
 *   VLOAD(p) VSTORE(p, v) VZERO() VSET1(x) VMUL(a, b) VHSUM(v)
 *   VFMA(a, b, c)   a * b + c (fused where the instruction set has it)
 *   VU8(p)          VW uint8 values at p as floats
 *   VDIV255(v)      v / 255 rounded exactly as IEEE division (what torch.div gives)
 *
 * Tails (d not a multiple of VW) are done one value at a time, in the same order on
 * every call: the result depends on the path and on d, never on the data's alignment or
 * the thread count. Why the kernel is shaped this way: the header of _kernels.c.
 */

/* out[r][g] = w_rows[g] . x_rows[r] for R rows (RD at a time) and G weight rows of length d. */
TARGET static inline void FN(block_dots)(const float *const *xr, const float *const *wr, int64_t d,
                                         float out[R][G], const char *const *pf, int64_t pf_bytes) {
    for (int r0 = 0; r0 < R; r0 += RD) {
        vf acc[RD][G];
        for (int r = 0; r < RD; r++)
            for (int g = 0; g < G; g++) acc[r][g] = VZERO();
        int64_t k = 0;
        for (; k + VW <= d; k += VW) {
            /* Spread over the loop: one cache line of each row of a later block per step (a
             * burst of prefetches would only queue up behind each other). */
            if (pf && r0 == 0 && (k * pf_bytes) % 64 == 0)
                for (int r = 0; r < R; r++) __builtin_prefetch(pf[r] + k * pf_bytes, 0, 2);
            vf xv[RD];
            for (int r = 0; r < RD; r++) xv[r] = VLOAD(xr[r0 + r] + k);
            for (int g = 0; g < G; g++) {
                const vf wv = VLOAD(wr[g] + k);
                for (int r = 0; r < RD; r++) acc[r][g] = VFMA(wv, xv[r], acc[r][g]);
            }
        }
        for (int r = 0; r < RD; r++)
            for (int g = 0; g < G; g++) {
                float s = VHSUM(acc[r][g]);
                for (int64_t j = k; j < d; j++) s += wr[g][j] * xr[r0 + r][j];
                out[r0 + r][g] = s;
            }
    }
}

/* gw[c] += sum_r z[r][c] x_rows[r] for every class c. */
TARGET static inline void FN(block_outer)(const float *const *xr, float z[R][MLR_MAX_CLASSES], int64_t C,
                                          int64_t d, float *gw) {
    int64_t k = 0;
    for (; k + VW <= d; k += VW) {
        vf xv[R];
        for (int r = 0; r < R; r++) xv[r] = VLOAD(xr[r] + k);
        for (int64_t c = 0; c < C; c++) {
            float *g = gw + c * d + k;
            vf a = VLOAD(g);
            for (int r = 0; r < R; r++) a = VFMA(VSET1(z[r][c]), xv[r], a);
            VSTORE(g, a);
        }
    }
    for (; k < d; k++)
        for (int64_t c = 0; c < C; c++) {
            float a = gw[c * d + k];
            for (int r = 0; r < R; r++) a += z[r][c] * xr[r][k];
            gw[c * d + k] = a;
        }
}

/* out[k] = u[k] / 255, exactly as torch.div rounds it (tests/test_kernels.py checks all
 * 256 values on every path, and kernels.py uses a path's uint8 reading only if it does). */
TARGET static inline void FN(u8_row_to_f32)(const uint8_t *u, int64_t d, float *out) {
    int64_t k = 0;
    for (; k + VW <= d; k += VW) VSTORE(out + k, VDIV255(VU8(u + k)));
    for (; k < d; k++) out[k] = (float)u[k] / 255.f;
}

TARGET static void FN(u8_to_f32)(const uint8_t *u, int64_t n, float *out) { FN(u8_row_to_f32)(u, n, out); }

/* Shared body: rows come from float rows (xf) or uint8 rows (xu, converted into buf). */
TARGET static double FN(grad_body)(const float *xf, const uint8_t *xu, const int64_t *idx, int64_t n, int64_t d,
                                   const float *w, const float *b, int64_t C, const int64_t *y, float *gw,
                                   float *gb, float *buf) {
    if (C < 1 || C > MLR_MAX_CLASSES) return MLR_BAD_CLASSES;
    memset(gw, 0, sizeof(float) * (size_t)(C * d));
    /* The bias sums stay local until the end: callers hand each thread a row of one [T, C]
     * tensor, and updating those rows in place would bounce a shared cache line. */
    float gbl[MLR_MAX_CLASSES] = {0};
    const int64_t row_bytes = xu ? d : d * 4;
    const char *base = xu ? (const char *)xu : (const char *)xf;
    double loss = 0.0;
    float z[R][MLR_MAX_CLASSES];
    for (int64_t i = 0; i < n; i += R) {
        const int64_t rows = n - i < R ? n - i : R;
        const float *xr[R];
        /* A short last block repeats its first row; its softmax is zeroed below. */
        for (int r = 0; r < R; r++) {
            const int64_t j = i + (r < rows ? r : 0);
            const int64_t row = idx ? idx[j] : j;
            if (xu) {
                FN(u8_row_to_f32)(xu + row * d, d, buf + r * d);
                xr[r] = buf + r * d;
            } else {
                xr[r] = xf + row * d;
            }
        }
        /* Rows PF_BLOCKS blocks ahead, fetched into L2 while this block computes. */
        const char *pf[R];
        const int64_t ahead = i + PF_BLOCKS * R;
        for (int r = 0; r < R; r++) {
            const int64_t j = ahead + r < n ? ahead + r : n - 1;
            pf[r] = base + (idx ? idx[j] : j) * row_bytes;
        }
        for (int64_t c0 = 0; c0 < C; c0 += G) {
            const float *wr[G];
            /* Past the last class, reuse row 0 and drop the result. */
            for (int g = 0; g < G; g++) wr[g] = w + (c0 + g < C ? c0 + g : 0) * d;
            float out[R][G];
            FN(block_dots)(xr, wr, d, out, c0 == 0 ? pf : NULL, xu ? 1 : 4);
            for (int r = 0; r < R; r++)
                for (int g = 0; g < G && c0 + g < C; g++) z[r][c0 + g] = out[r][g] + b[c0 + g];
        }
        for (int r = 0; r < rows; r++) {
            float m = z[r][0];
            for (int64_t c = 1; c < C; c++) m = z[r][c] > m ? z[r][c] : m;
            const int64_t label = y[i + r];
            const float zy = z[r][label] - m;
            float s = 0.f;
            for (int64_t c = 0; c < C; c++) {
                z[r][c] = expf(z[r][c] - m);
                s += z[r][c];
            }
            loss += (double)logf(s) - (double)zy; /* -log softmax(z)[label] */
            const float inv = 1.f / s;
            for (int64_t c = 0; c < C; c++) {
                const float g = z[r][c] * inv - (c == label ? 1.f : 0.f);
                z[r][c] = g;
                gbl[c] += g;
            }
        }
        for (int r = (int)rows; r < R; r++)
            for (int64_t c = 0; c < C; c++) z[r][c] = 0.f;
        FN(block_outer)(xr, z, C, d, gw);
    }
    memcpy(gb, gbl, sizeof(float) * (size_t)C);
    return loss;
}

TARGET static double FN(grad)(const float *x, const int64_t *idx, int64_t n, int64_t d, const float *w,
                              const float *b, int64_t C, const int64_t *y, float *gw, float *gb) {
    return FN(grad_body)(x, NULL, idx, n, d, w, b, C, y, gw, gb, NULL);
}

TARGET static double FN(grad_u8)(const uint8_t *x, const int64_t *idx, int64_t n, int64_t d, const float *w,
                                 const float *b, int64_t C, const int64_t *y, float *gw, float *gb) {
    float *buf = malloc(sizeof(float) * (size_t)(R * d));
    if (!buf) return MLR_NO_MEMORY;
    const double loss = FN(grad_body)(NULL, x, idx, n, d, w, b, C, y, gw, gb, buf);
    free(buf);
    return loss;
}

#undef FN
#undef TARGET
#undef R
#undef RD
#undef G
#undef VW
#undef vf
#undef VLOAD
#undef VSTORE
#undef VZERO
#undef VSET1
#undef VMUL
#undef VHSUM
#undef VFMA
#undef VU8
#undef VDIV255

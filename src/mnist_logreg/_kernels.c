/* The CPU hot path of softmax regression: logits, softmax and gradient in one pass.
 *
 * This header is the one place that says why the kernel exists and how it is fast (the
 * README, kernels.py and train.py point here).
 *
 * Why C: the model has only ~10 outputs, so the two matmuls of a step are [10 x d] by
 * [d x n] shapes that general BLAS libraries handle badly (they pack the big operand and
 * reach a third of the machine's rate). Here each block of R = 5 rows is read from
 * memory once, kept in L1 while its logits, its softmax and its share of the gradient
 * are computed, and the weights stay in cache throughout. A minibatch's rows are read in
 * place from the training tensor through their indices (prefetched a few blocks ahead),
 * not gathered into a copy first. Where the features are pixel / 255 (the tutorial's
 * recipe) the kernel reads the uint8 images, a quarter of the bytes, and converts them
 * exactly as torch.div does (tests/test_kernels.py checks all 256 values).
 *
 * mnist_logreg/kernels.py loads this with ctypes, which releases the GIL: full-batch
 * work (L-BFGS, the benchmark's epoch) splits the rows into 16 fixed ranges shared by
 * threads, and their sums are added in a fixed order, so results do not depend on the
 * thread count. Where the CPU lacks AVX-512, or the library was not built, or on CUDA
 * or float64, train.py runs the same maths as PyTorch ops instead; both paths are
 * checked against autograd and against each other.
 *
 * The file is also a (method-less) Python extension module so that setuptools builds it
 * and installs it next to the package.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MLR_MAX_CLASSES 64

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define MLR_X86 1
#endif

int mlr_max_classes(void) { return MLR_MAX_CLASSES; }

/* Errors are negative returns: a summed cross-entropy is >= 0, and NaN or infinity mean
 * that training diverged, which the caller reports as such. */
#define MLR_BAD_CLASSES (-1.0)
#define MLR_NO_MEMORY (-2.0)

int mlr_has_avx512(void) {
#ifdef MLR_X86
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("fma");
#else
    return 0;
#endif
}

#ifdef MLR_X86
/* Rows per block: the forward keeps R x G accumulators (25) plus R rows of x in the 32
 * vector registers; measured best among 2..6 on a Zen 4 (with G = 5). */
#define R 5
/* Classes per forward pass over a block. */
#define G 5
#ifndef PF_BLOCKS
#define PF_BLOCKS 2
#endif

#define TARGET __attribute__((target("avx512f,avx512bw,avx512vl,fma")))

/* out[r][g] = w_rows[g] . x_rows[r] for R rows and G weight rows of length d. */
TARGET static inline void block_dots(const float *const *xr, const float *const *wr, int64_t d,
                                     __mmask16 tail, float out[R][G], const char *const *pf, int64_t pf_bytes) {
    __m512 acc[R][G];
    for (int r = 0; r < R; r++)
        for (int g = 0; g < G; g++) acc[r][g] = _mm512_setzero_ps();
    int64_t k = 0;
    for (; k + 16 <= d; k += 16) {
        /* Spread over the loop: one cache line of each row of a later block per step (a
         * burst of prefetches would only queue up behind each other). */
        if (pf && (k * pf_bytes) % 64 == 0)
            for (int r = 0; r < R; r++) _mm_prefetch(pf[r] + k * pf_bytes, _MM_HINT_T1);
        __m512 xv[R];
        for (int r = 0; r < R; r++) xv[r] = _mm512_loadu_ps(xr[r] + k);
        for (int g = 0; g < G; g++) {
            __m512 wv = _mm512_loadu_ps(wr[g] + k);
            for (int r = 0; r < R; r++) acc[r][g] = _mm512_fmadd_ps(wv, xv[r], acc[r][g]);
        }
    }
    if (k < d) {
        __m512 xv[R];
        for (int r = 0; r < R; r++) xv[r] = _mm512_maskz_loadu_ps(tail, xr[r] + k);
        for (int g = 0; g < G; g++) {
            __m512 wv = _mm512_maskz_loadu_ps(tail, wr[g] + k);
            for (int r = 0; r < R; r++) acc[r][g] = _mm512_fmadd_ps(wv, xv[r], acc[r][g]);
        }
    }
    for (int r = 0; r < R; r++)
        for (int g = 0; g < G; g++) out[r][g] = _mm512_reduce_add_ps(acc[r][g]);
}

/* gw[c] += sum_r z[r][c] x_rows[r] for every class c. */
TARGET static inline void block_outer(const float *const *xr, float z[R][MLR_MAX_CLASSES], int64_t C,
                                      int64_t d, __mmask16 tail, float *gw) {
    int64_t k = 0;
    for (; k + 16 <= d; k += 16) {
        __m512 xv[R];
        for (int r = 0; r < R; r++) xv[r] = _mm512_loadu_ps(xr[r] + k);
        for (int64_t c = 0; c < C; c++) {
            float *g = gw + c * d + k;
            __m512 a = _mm512_loadu_ps(g);
            for (int r = 0; r < R; r++) a = _mm512_fmadd_ps(_mm512_set1_ps(z[r][c]), xv[r], a);
            _mm512_storeu_ps(g, a);
        }
    }
    if (k < d) {
        __m512 xv[R];
        for (int r = 0; r < R; r++) xv[r] = _mm512_maskz_loadu_ps(tail, xr[r] + k);
        for (int64_t c = 0; c < C; c++) {
            float *g = gw + c * d + k;
            __m512 a = _mm512_maskz_loadu_ps(tail, g);
            for (int r = 0; r < R; r++) a = _mm512_fmadd_ps(_mm512_set1_ps(z[r][c]), xv[r], a);
            _mm512_mask_storeu_ps(g, tail, a);
        }
    }
}

/* out[k] = u[k] / 255 rounded exactly as IEEE division would (what torch.div gives), via
 * a product and one FMA correction: cheaper than vdivps. tests/test_kernels.py checks all
 * 256 values against torch.div. */
TARGET static inline void u8_row_to_f32(const uint8_t *u, int64_t d, float *out) {
    const __m512 inv = _mm512_set1_ps(1.f / 255.f), c255 = _mm512_set1_ps(255.f);
    int64_t k = 0;
    for (; k < d; k += 16) {
        const __mmask16 m = k + 16 <= d ? (__mmask16)0xFFFF : (__mmask16)((1u << (d - k)) - 1u);
        __m512 v = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(m, u + k)));
        __m512 q = _mm512_mul_ps(v, inv);
        __m512 r = _mm512_fnmadd_ps(q, c255, v); /* v - 255 q, exactly */
        _mm512_mask_storeu_ps(out + k, m, _mm512_fmadd_ps(r, inv, q));
    }
}

TARGET void mlr_u8_to_f32(const uint8_t *u, int64_t n, float *out) { u8_row_to_f32(u, n, out); }

/* Shared body: rows come from float rows (xf) or uint8 rows (xu, converted into buf). */
TARGET static double grad_body(const float *xf, const uint8_t *xu, const int64_t *idx, int64_t n, int64_t d,
                               const float *w, const float *b, int64_t C, const int64_t *y, float *gw,
                               float *gb, float *buf) {
    if (C < 1 || C > MLR_MAX_CLASSES) return MLR_BAD_CLASSES;
    memset(gw, 0, sizeof(float) * (size_t)(C * d));
    /* The bias sums stay local until the end: callers hand each thread a row of one [T, C]
     * tensor, and updating those rows in place would bounce a shared cache line. */
    float gbl[MLR_MAX_CLASSES] = {0};
    const __mmask16 tail = (__mmask16)((1u << (d % 16)) - 1u);
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
                u8_row_to_f32(xu + row * d, d, buf + r * d);
                xr[r] = buf + r * d;
            } else {
                xr[r] = xf + row * d;
            }
        }
        /* Rows PF_BLOCKS blocks ahead, fetched into L2 while this block computes (T1 measured
         * a little better than T0 here). */
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
            block_dots(xr, wr, d, tail, out, c0 == 0 ? pf : NULL, xu ? 1 : 4);
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
        block_outer(xr, z, C, d, tail, gw);
    }
    memcpy(gb, gbl, sizeof(float) * (size_t)C);
    return loss;
}

/* Summed cross-entropy of the rows i in [0, n) (row idx[i] of x when idx is given, else
 * row i), and its gradient *sums* over those rows: gw [C x d] = sum_i (p_i - y_i) x_i^T,
 * gb [C] = sum_i (p_i - y_i), both overwritten. x is row-major [*, d]; y[i] is the label
 * of the i-th row taken. Returns MLR_BAD_CLASSES (negative, which no sum of
 * cross-entropies is) when C is out of range. */
TARGET double mlr_softmax_xent_grad(const float *x, const int64_t *idx, int64_t n, int64_t d, const float *w,
                             const float *b, int64_t C, const int64_t *y, float *gw, float *gb) {
    return grad_body(x, NULL, idx, n, d, w, b, C, y, gw, gb, NULL);
}

/* The same for uint8 rows whose features are pixel / 255 (no other preprocessing): a
 * quarter of the bytes to fetch. Each block's rows are converted into R * d floats of
 * scratch. Returns MLR_NO_MEMORY (negative) if that scratch cannot be had. */
TARGET double mlr_softmax_xent_grad_u8(const uint8_t *x, const int64_t *idx, int64_t n, int64_t d, const float *w,
                                const float *b, int64_t C, const int64_t *y, float *gw, float *gb) {
    float *buf = malloc(sizeof(float) * (size_t)(R * d));
    if (!buf) return MLR_NO_MEMORY;
    const double loss = grad_body(NULL, x, idx, n, d, w, b, C, y, gw, gb, buf);
    free(buf);
    return loss;
}
#endif

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_kernels",
                                    "C kernels loaded through ctypes by mnist_logreg.kernels.", -1,
                                    NULL, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__kernels(void) { return PyModule_Create(&module); }

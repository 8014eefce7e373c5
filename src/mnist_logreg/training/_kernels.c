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
 * thread count. Where the library was not built, or on CUDA or float64, train.py runs
 * the same maths as PyTorch ops instead; every path is checked against autograd and
 * against the others.
 *
 * Paths: one source (_kernel_body.h), compiled once per instruction set with function
 * attributes, chosen at run time by what the CPU supports (mlr_paths): AVX-512 (server
 * CPUs), AVX2 + FMA (any x86-64 since about 2013), NEON (aarch64: Apple Silicon,
 * Graviton, Raspberry Pi 4/5) and a generic path of 4-lane GCC/Clang vectors that any
 * target compiles. Each has its own rows-per-block and classes-per-pass, sized to its
 * vector registers (32 for AVX-512 and NEON, 16 for AVX2).
 *
 * The file is also a (method-less) Python extension module so that setuptools builds it
 * and installs it next to the package.
 */
#ifndef MLR_NO_PYTHON /* tests/kernel_check.c builds the kernel alone, for other CPUs */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#endif
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MLR_MAX_CLASSES 64
/* Blocks ahead whose rows are prefetched into L2 while a block computes. */
#define PF_BLOCKS 2

/* Errors are negative returns: a summed cross-entropy is >= 0, and NaN or infinity mean
 * that training diverged, which the caller reports as such. */
#define MLR_BAD_CLASSES (-1.0)
#define MLR_NO_MEMORY (-2.0)
#define MLR_NO_PATH (-3.0)

int mlr_max_classes(void) { return MLR_MAX_CLASSES; }

/* Path numbers, as kernels.py names them. */
enum { MLR_GENERIC = 0, MLR_AVX2 = 1, MLR_AVX512 = 2, MLR_NEON = 3 };

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define MLR_X86 1
#endif
#if defined(__aarch64__) && defined(__ARM_NEON)
#include <arm_neon.h>
#define MLR_NEON_OK 1
#endif

/* --- generic: 4-lane vectors of the compiler, no instruction-set attribute (SSE2 on any
 * x86-64: 16 registers, so dot products 2 rows x 5 classes at a time) ------------------- */
typedef float mlr_v4 __attribute__((vector_size(16)));
/* v / 255 for every byte, each an IEEE division: exact, and a load instead of a division
 * per pixel where the instruction set has no fused multiply-add to correct a product. */
static float mlr_div255[256];
__attribute__((constructor)) static void mlr_fill_div255(void) {
    for (int v = 0; v < 256; v++) mlr_div255[v] = (float)v / 255.f;
}
static inline mlr_v4 mlr_v4_load(const float *p) { mlr_v4 v; memcpy(&v, p, sizeof v); return v; }
static inline void mlr_v4_store(float *p, mlr_v4 v) { memcpy(p, &v, sizeof v); }
static inline float mlr_v4_hsum(mlr_v4 v) { return (v[0] + v[1]) + (v[2] + v[3]); }
static inline mlr_v4 mlr_v4_u8(const uint8_t *p) {
    mlr_v4 v = {mlr_div255[p[0]], mlr_div255[p[1]], mlr_div255[p[2]], mlr_div255[p[3]]};
    return v;
}
#define FN(name) name##_generic
#define TARGET
#define R 6
#define RD 2
#define G 5
#define VW 4
#define vf mlr_v4
#define VLOAD(p) mlr_v4_load(p)
#define VSTORE(p, v) mlr_v4_store((p), (v))
#define VZERO() ((mlr_v4){0.f, 0.f, 0.f, 0.f})
#define VSET1(x) ((mlr_v4){0.f, 0.f, 0.f, 0.f} + (x))
#define VMUL(a, b) ((a) * (b))
#define VHSUM(v) mlr_v4_hsum(v)
#define VFMA(a, b, c) ((a) * (b) + (c))
#define VU8(p) mlr_v4_u8(p) /* already divided, from the table */
#define VDIV255(v) (v)
#include "_kernel_body.h"

#ifdef MLR_X86
/* --- AVX2 + FMA: 16 vector registers: dot products 2 rows x 5 classes at a time (13
 * registers; 5 classes a pass wastes nothing for 10 classes, where 4 computed 12), the
 * gradient 4 rows at a time (it reads and writes the gradient rows once per block).
 * Measured here against 3 x 4 (6 x 4), 2 x 5 (2 x 5), 2 x 5 (6 x 5) and 2 x 5 (8 x 5):
 * the best on the tutorial recipe's small batches, within 5% on full batches. ------- */
#define MLR_AVX2_TARGET __attribute__((target("avx2,fma")))
MLR_AVX2_TARGET static inline float mlr_avx2_hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
}
/* v / 255 via a product and one FMA correction (cheaper than a division, and exact for
 * the 256 values: v - 255 q is computed exactly by the FMA). */
MLR_AVX2_TARGET static inline __m256 mlr_avx2_div255(__m256 v) {
    const __m256 inv = _mm256_set1_ps(1.f / 255.f);
    const __m256 q = _mm256_mul_ps(v, inv);
    return _mm256_fmadd_ps(_mm256_fnmadd_ps(q, _mm256_set1_ps(255.f), v), inv, q);
}
#define FN(name) name##_avx2
#define TARGET MLR_AVX2_TARGET
#define R 4
#define RD 2
#define G 5
#define VW 8
#define vf __m256
#define VLOAD(p) _mm256_loadu_ps(p)
#define VSTORE(p, v) _mm256_storeu_ps((p), (v))
#define VZERO() _mm256_setzero_ps()
#define VSET1(x) _mm256_set1_ps(x)
#define VMUL(a, b) _mm256_mul_ps((a), (b))
#define VHSUM(v) mlr_avx2_hsum(v)
#define VFMA(a, b, c) _mm256_fmadd_ps((a), (b), (c))
#define VU8(p) _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(p))))
#define VDIV255(v) mlr_avx2_div255(v)
#include "_kernel_body.h"

/* --- AVX-512: 32 vector registers; 5 x 5 measured best among 2..6 on a Zen 4 ----------- */
#define MLR_AVX512_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,fma")))
MLR_AVX512_TARGET static inline __m512 mlr_avx512_div255(__m512 v) {
    const __m512 inv = _mm512_set1_ps(1.f / 255.f);
    const __m512 q = _mm512_mul_ps(v, inv);
    return _mm512_fmadd_ps(_mm512_fnmadd_ps(q, _mm512_set1_ps(255.f), v), inv, q);
}
#define FN(name) name##_avx512
#define TARGET MLR_AVX512_TARGET
#define R 5
#define RD 5
#define G 5
#define VW 16
#define vf __m512
#define VLOAD(p) _mm512_loadu_ps(p)
#define VSTORE(p, v) _mm512_storeu_ps((p), (v))
#define VZERO() _mm512_setzero_ps()
#define VSET1(x) _mm512_set1_ps(x)
#define VMUL(a, b) _mm512_mul_ps((a), (b))
#define VHSUM(v) _mm512_reduce_add_ps(v)
#define VFMA(a, b, c) _mm512_fmadd_ps((a), (b), (c))
#define VU8(p) _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(p))))
#define VDIV255(v) mlr_avx512_div255(v)
#include "_kernel_body.h"
#endif

#ifdef MLR_NEON_OK
/* --- NEON (aarch64, where it is always present): 32 vector registers ------------------- */
static inline float32x4_t mlr_neon_u8(const uint8_t *p) {
    uint32_t four;
    memcpy(&four, p, 4); /* exactly 4 bytes: never past the row's end */
    const uint16x8_t h = vmovl_u8(vcreate_u8((uint64_t)four));
    return vcvtq_f32_u32(vmovl_u16(vget_low_u16(h)));
}
static inline float32x4_t mlr_neon_div255(float32x4_t v) {
    const float32x4_t inv = vdupq_n_f32(1.f / 255.f);
    const float32x4_t q = vmulq_f32(v, inv);
    return vfmaq_f32(q, vfmsq_f32(v, q, vdupq_n_f32(255.f)), inv);
}
#define FN(name) name##_neon
#define TARGET
#define R 5
#define RD 5
#define G 5
#define VW 4
#define vf float32x4_t
#define VLOAD(p) vld1q_f32(p)
#define VSTORE(p, v) vst1q_f32((p), (v))
#define VZERO() vdupq_n_f32(0.f)
#define VSET1(x) vdupq_n_f32(x)
#define VMUL(a, b) vmulq_f32((a), (b))
#define VHSUM(v) vaddvq_f32(v)
#define VFMA(a, b, c) vfmaq_f32((c), (a), (b))
#define VU8(p) mlr_neon_u8(p)
#define VDIV255(v) mlr_neon_div255(v)
#include "_kernel_body.h"
#endif

/* --- dispatch ---------------------------------------------------------------------------- */

/* Which paths this CPU runs, one bit per path number. */
int mlr_paths(void) {
    int paths = 1 << MLR_GENERIC;
#ifdef MLR_X86
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) paths |= 1 << MLR_AVX2;
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("fma"))
        paths |= 1 << MLR_AVX512;
#endif
#ifdef MLR_NEON_OK
    paths |= 1 << MLR_NEON;
#endif
    return paths;
}

#ifdef MLR_X86
#define MLR_X86_CASES(call)                      \
    case MLR_AVX2: return call##_avx2 MLR_ARGS;  \
    case MLR_AVX512: return call##_avx512 MLR_ARGS;
#else
#define MLR_X86_CASES(call)
#endif
#ifdef MLR_NEON_OK
#define MLR_NEON_CASES(call) case MLR_NEON: return call##_neon MLR_ARGS;
#else
#define MLR_NEON_CASES(call)
#endif
#define MLR_DISPATCH(call)                             \
    if (!(mlr_paths() >> path & 1)) return MLR_NO_PATH; \
    switch (path) {                                    \
    case MLR_GENERIC: return call##_generic MLR_ARGS;  \
    MLR_X86_CASES(call)                                \
    MLR_NEON_CASES(call)                               \
    }                                                  \
    return MLR_NO_PATH

/* Summed cross-entropy of the rows i in [0, n) (row idx[i] of x when idx is given, else
 * row i), and its gradient *sums* over those rows: gw [C x d] = sum_i (p_i - y_i) x_i^T,
 * gb [C] = sum_i (p_i - y_i), both overwritten. x is row-major [*, d]; y[i] is the label
 * of the i-th row taken. Returns MLR_BAD_CLASSES when C is out of range and MLR_NO_PATH
 * when this CPU cannot run ``path`` (negative: no sum of cross-entropies is). */
#define MLR_ARGS (x, idx, n, d, w, b, C, y, gw, gb)
double mlr_softmax_xent_grad(int path, const float *x, const int64_t *idx, int64_t n, int64_t d, const float *w,
                             const float *b, int64_t C, const int64_t *y, float *gw, float *gb) {
    MLR_DISPATCH(grad);
}

/* The same for uint8 rows whose features are pixel / 255 (no other preprocessing): a
 * quarter of the bytes to fetch. Each block's rows are converted into R * d floats of
 * scratch. Returns MLR_NO_MEMORY (negative) if that scratch cannot be had. */
double mlr_softmax_xent_grad_u8(int path, const uint8_t *x, const int64_t *idx, int64_t n, int64_t d,
                                const float *w, const float *b, int64_t C, const int64_t *y, float *gw, float *gb) {
    MLR_DISPATCH(grad_u8);
}
#undef MLR_ARGS

/* u[0..n) / 255 into out, as the path converts pixels (kernels.py checks it is exact). */
double mlr_u8_to_f32(int path, const uint8_t *u, int64_t n, float *out) {
    if (!(mlr_paths() >> path & 1)) return MLR_NO_PATH;
    switch (path) {
    case MLR_GENERIC: u8_to_f32_generic(u, n, out); return 0.0;
#ifdef MLR_X86
    case MLR_AVX2: u8_to_f32_avx2(u, n, out); return 0.0;
    case MLR_AVX512: u8_to_f32_avx512(u, n, out); return 0.0;
#endif
#ifdef MLR_NEON_OK
    case MLR_NEON: u8_to_f32_neon(u, n, out); return 0.0;
#endif
    }
    return MLR_NO_PATH;
}

#ifndef MLR_NO_PYTHON
static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_kernels",
                                    "C kernels loaded through ctypes by mnist_logreg.training.kernels.", -1,
                                    NULL, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__kernels(void) { return PyModule_Create(&module); }
#endif

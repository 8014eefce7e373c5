/* Every path this CPU runs against the generic one, without Python: for a kernel built for
 * another CPU and run under an emulator (tests/test_kernels.py builds it for aarch64 and
 * runs it with qemu, which is how the NEON path is checked on an x86 machine).
 * Prints one line per path; exits non-zero on a mismatch. */
#define MLR_NO_PYTHON 1
#include "../src/mnist_logreg/training/_kernels.c"

#include <stdio.h>

static float rnd(uint32_t *s) {
    *s = *s * 1664525u + 1013904223u;
    return (float)(*s >> 8) / 16777216.f - 0.5f;
}

int main(void) {
    enum { N = 67, D = 787, C = 10 }; /* D: not a multiple of any vector width (the tails) */
    static float x[N * D], w[C * D], b[C], gw[C * D], gb[C], gw0[C * D], gb0[C], f[256], f0[256];
    static uint8_t u[N * D], all[256];
    static int64_t y[N], idx[N];
    uint32_t s = 1;
    for (int i = 0; i < N * D; i++) { x[i] = rnd(&s); u[i] = (uint8_t)(s >> 16); }
    for (int i = 0; i < C * D; i++) w[i] = 0.1f * rnd(&s);
    for (int c = 0; c < C; c++) b[c] = rnd(&s);
    for (int i = 0; i < N; i++) { y[i] = (s >> 20) % C; rnd(&s); idx[i] = (i * 31) % N; }
    for (int v = 0; v < 256; v++) all[v] = (uint8_t)v;
    int bad = 0;
    const double loss0 = mlr_softmax_xent_grad(MLR_GENERIC, x, idx, N, D, w, b, C, y, gw0, gb0);
    mlr_u8_to_f32(MLR_GENERIC, all, 256, f0);
    for (int v = 0; v < 256; v++)
        if (f0[v] != (float)v / 255.f) { printf("generic: %d / 255 inexact\n", v); bad = 1; }
    const int paths = mlr_paths();
    for (int p = 0; p < 4; p++) {
        if (!(paths >> p & 1)) continue;
        const double loss = mlr_softmax_xent_grad(p, x, idx, N, D, w, b, C, y, gw, gb);
        float err = 0.f;
        for (int i = 0; i < C * D; i++) err = fmaxf(err, fabsf(gw[i] - gw0[i]));
        for (int c = 0; c < C; c++) err = fmaxf(err, fabsf(gb[c] - gb0[c]));
        mlr_u8_to_f32(p, all, 256, f);
        int exact = memcmp(f, f0, sizeof f) == 0;
        /* uint8 rows equal their float features, converted by the same path */
        static float xf[N * D], gwu[C * D], gbu[C], gwf[C * D], gbf[C];
        for (int i = 0; i < N * D; i++) xf[i] = f[u[i]];
        const double lu = mlr_softmax_xent_grad_u8(p, u, idx, N, D, w, b, C, y, gwu, gbu);
        const double lf = mlr_softmax_xent_grad(p, xf, idx, N, D, w, b, C, y, gwf, gbf);
        int same_u8 = lu == lf && memcmp(gwu, gwf, sizeof gwu) == 0 && memcmp(gbu, gbf, sizeof gbu) == 0;
        const int ok = fabs(loss - loss0) <= 1e-5 * fabs(loss0) && err <= 1e-4f && exact && same_u8;
        printf("path %d: loss %.6f (generic %.6f), largest gradient difference %.2e, u8 exact %d, "
               "u8 rows = float rows %d: %s\n", p, loss, loss0, (double)err, exact, same_u8, ok ? "ok" : "MISMATCH");
        bad |= !ok;
    }
    return bad;
}

/* One thread of the compiled fold (ccdm_gui/core/machines/foldc.c) on random data, for
   bench/foldc_ab.sh, which builds this file against two revisions of the kernel and runs
   them alternately. Prints the best seconds of `reps` calls and one sum (the two builds
   must agree on it).

   usage: foldc_ab D QUERIES KEYS REPS C0 C1 C2 C3 C4 C5
   (C0..C5: the exp polynomial, fused.EXP2_POLY, which foldc_ab.sh reads from the tree) */
#include "foldc.c"
#include <time.h>

/* foldc.c ends with its Python module's init function; nothing here calls it. */
PyObject *PyModule_Create2(PyModuleDef *def, int version) { (void)def; (void)version; return NULL; }

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

static float uniform(void) { return 2.0f * (float)rand() / (float)RAND_MAX - 1.0f; }

int main(int argc, char **argv)
{
    if (argc != 11) {
        fprintf(stderr, "usage: %s D QUERIES KEYS REPS C0 C1 C2 C3 C4 C5\n", argv[0]);
        return 2;
    }
    const int64_t d = atoi(argv[1]), mq = atoi(argv[2]), nk = atoi(argv[3]);
    const int reps = atoi(argv[4]);
    const int64_t mpad = (mq + LANES - 1) / LANES * LANES, cv = 1;
    srand(1);
    float *qt = malloc(sizeof(float) * mpad * d), *keys = malloc(sizeof(float) * d * nk);
    float *bias = malloc(sizeof(float) * nk), *vals = malloc(sizeof(float) * nk);
    for (int64_t i = 0; i < mpad * d; i++) qt[i] = uniform();
    for (int64_t i = 0; i < d * nk; i++) keys[i] = uniform();
    for (int64_t i = 0; i < nk; i++) { bias[i] = -0.5f * (uniform() + 1.0f); vals[i] = uniform(); }
    float *shift = calloc(mpad, sizeof(float)), *best = malloc(sizeof(float) * mpad);
    int64_t *best_j = calloc(mpad, sizeof(int64_t));
    uint8_t *changed = calloc(mpad, 1);
    double *s = calloc(mpad, sizeof(double)), *u = calloc(mpad, sizeof(double));
    double *acc = calloc(mpad * cv, sizeof(double));
    int64_t kb = 65536 / (d + 2 + cv);  /* as native.key_block */
    kb = kb < LANES ? LANES : kb - kb % LANES;
    FoldArgs A = {
        .d = d, .ks = nk, .cv = cv, .vs = nk, .mpad = mpad, .t_n = nk, .kblock = kb,
        .qt = qt, .keys = keys, .bias = bias, .vals = vals, .counts = NULL,
        .bias_scale = 1.0f, .floor_ = -80.0f, .rebase = 20.0f, .negligible = -60.0f,
        .shift = shift, .best = best, .best_j = best_j, .changed = changed,
        .s = s, .u = u, .acc = acc,
    };
    for (int i = 0; i < 6; i++) A.poly[i] = strtof(argv[5 + i], NULL);
    float *kt = malloc(sizeof(float) * kb * (d + 1));
    int isa = ccdm_fold_isa();
    double fastest = 1e30;
    for (int r = 0; r < reps; r++) {
        for (int64_t i = 0; i < mpad; i++) { best[i] = -INFINITY; shift[i] = 0.0f; s[i] = u[i] = acc[i] = 0.0; }
        double t0 = now();
        if (isa == 2) fold_avx512(&A, 0, mpad, kt);
        else if (isa == 1) fold_avx2(&A, 0, mpad, kt);
        else return 1;
        double t = now() - t0;
        if (t < fastest) fastest = t;
    }
    double total = 0.0;
    for (int64_t i = 0; i < mq; i++) total += s[i];
    printf("%.6f %.9g\n", fastest, total);
    return 0;
}

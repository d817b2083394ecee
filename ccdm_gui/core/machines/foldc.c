/* The CPU score machines' compiled library: the fold (foldc_body.h: logits product, exp and
   softmax sums of a stream of keys in one loop) and the window sums (wsum_body.h). */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAXC 8
/* Queries come in blocks of this many (the widest vector), k-th numbers together. */
#define LANES 16
/* Keys per step of the product. */
#define KS 8
/* Rows of keys copied together into a block (foldc_body.h). */
#define COPY_ROWS 4
/* Vectors of training images per block of the window-sum kernel (wsum_body.h): one
   halves every buffer the kernel walks (C harness, N = 256, 32 x 32: P = 7 0.33 s with one,
   0.38 s with two; P = 15 0.35 and 0.38 s). */
#define WSUM_NH 1
#define CAT_(a, b) a##b
#define CAT(a, b) CAT_(a, b)

/* 2^r for |r| <= 1/2: the degree-5 polynomial of fused.exp2 (relative error below 3e-7),
   in the vector operations of whichever instruction set includes it. Its coefficients
   c[0..5] (highest power first) come in FoldArgs from fused.EXP2_POLY, their one home. */
#define POLY2(r, c) FMA(FMA(FMA(FMA(FMA(c[0], r, c[1]), r, c[2]), r, c[3]), r, c[4]), r, c[5])

typedef struct {
    int64_t d, ks, cv, vs, mpad, t_n, kblock;
    const float *qt, *keys, *bias, *vals, *counts;
    float bias_scale, floor_, rebase, negligible;
    float *shift, *best;
    int64_t *best_j;
    uint8_t *changed;
    double *s, *u, *acc;
    float poly[6];
} FoldArgs;

/* Window sums (wsum_body.h): train [N, C, H, W] at strides ts (in floats; a transposed
   view works as well), of which a call takes images first..n-1, xp [B, C, hq, wq] the
   padded noisy images, rects [nrect, 9] (see windowsums.softmax_sums). The state is one
   thread's: [B, q] (acc [B, q, C]), carried from call to call. */
typedef struct {
    int64_t n, c, h, w;
    int64_t ts[4];
    const float *train;
    int64_t b, hq, wq;
    const float *xp;
    int64_t p, nrect, q;
    const int64_t *rects;
    float alpha, beta, floor_, rebase;
    float poly[6];
    double *m, *s, *u, *acc;
    float *best;
    int64_t *img, *key;
    int64_t first;
} WsumArgs;

#if defined(__GNUC__) && defined(__x86_64__)
#include <immintrin.h>

/* ---- AVX-512 ---- */
#define FN fold_avx512
#define TARGET __attribute__((target("avx512f,avx512dq,fma")))
#define VL 16
#define V __m512
#define VI __m512i
#define M __mmask16
#define SET1 _mm512_set1_ps
#define ISET1 _mm512_set1_epi32
#define ZERO _mm512_setzero_ps
#define LOAD _mm512_loadu_ps
#define STORE _mm512_storeu_ps
#define ISTORE(p, x) _mm512_storeu_si512((void *)(p), x)
#define ADD _mm512_add_ps
#define SUB _mm512_sub_ps
#define MUL _mm512_mul_ps
#define MAX _mm512_max_ps
#define FMA(a, b, c) _mm512_fmadd_ps(a, b, c)
#define CMPGT(a, b) _mm512_cmp_ps_mask(a, b, _CMP_GT_OQ)
#define CMPGE(a, b) _mm512_cmp_ps_mask(a, b, _CMP_GE_OQ)
#define ANY(m) ((m) != 0)
#define MASKSEL(m, a, b) _mm512_mask_blend_ps(m, b, a)
#define IMASKSEL(m, a, b) _mm512_mask_blend_epi32(m, b, a)
static inline TARGET __m512 exp2_512(__m512 v, const __m512 *c)
{
    __m512 n = _mm512_roundscale_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_sub_ps(v, n);
    return _mm512_scalef_ps(POLY2(r, c), n); /* 2^n by the exponent, in one instruction */
}
#define EXP2 exp2_512
#include "foldc_body.h"
#define WFN wsum_avx512
#include "wsum_body.h"
#undef WFN
#undef FN
#undef TARGET
#undef VL
#undef V
#undef VI
#undef M
#undef SET1
#undef ISET1
#undef ZERO
#undef LOAD
#undef STORE
#undef ISTORE
#undef ADD
#undef SUB
#undef MUL
#undef MAX
#undef FMA
#undef CMPGT
#undef CMPGE
#undef ANY
#undef MASKSEL
#undef IMASKSEL
#undef EXP2

/* ---- AVX2 ---- */
#define FN fold_avx2
#define TARGET __attribute__((target("avx2,fma")))
#define VL 8
#define V __m256
#define VI __m256i
#define M __m256
#define SET1 _mm256_set1_ps
#define ISET1 _mm256_set1_epi32
#define ZERO _mm256_setzero_ps
#define LOAD _mm256_loadu_ps
#define STORE _mm256_storeu_ps
#define ISTORE(p, x) _mm256_storeu_si256((__m256i *)(p), x)
#define ADD _mm256_add_ps
#define SUB _mm256_sub_ps
#define MUL _mm256_mul_ps
#define MAX _mm256_max_ps
#define FMA(a, b, c) _mm256_fmadd_ps(a, b, c)
#define CMPGT(a, b) _mm256_cmp_ps(a, b, _CMP_GT_OQ)
#define CMPGE(a, b) _mm256_cmp_ps(a, b, _CMP_GE_OQ)
#define ANY(m) (_mm256_movemask_ps(m) != 0)
#define MASKSEL(m, a, b) _mm256_blendv_ps(b, a, m)
#define IMASKSEL(m, a, b) _mm256_castps_si256(_mm256_blendv_ps(_mm256_castsi256_ps(b), _mm256_castsi256_ps(a), m))
static inline TARGET __m256 exp2_256(__m256 v, const __m256 *c)
{
    __m256 n = _mm256_round_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_sub_ps(v, n);
    __m256 p = POLY2(r, c);
    /* 2^n written into the exponent bits (n lies in [-80, 20]: the clamp and the rebase) */
    __m256i k = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(k));
}
#define EXP2 exp2_256
#include "foldc_body.h"
#define WFN wsum_avx2
#include "wsum_body.h"
#undef WFN

/* 2: AVX-512, 1: AVX2, 0: neither (the caller takes another route). */
int ccdm_fold_isa(void)
{
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq")) return 2;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return 1;
    return 0;
}

/* Returns 0, or 1 when the scratch memory could not be had. */
int ccdm_fold(const FoldArgs *A, int64_t q0, int64_t q1, int isa)
{
    float *kt = malloc(sizeof(float) * (size_t)(A->kblock * (A->d + 1)));
    if (!kt) return 1;
    if (isa == 2) fold_avx512(A, q0, q1, kt);
    else if (isa == 1) fold_avx2(A, q0, q1, kt);
    free(kt);
    return 0;
}

/* Thread t of n_threads: the blocks of ccdm_wsum_block images t, t + n_threads, ...
   Returns 0, or 1 when the scratch memory could not be had. */
int ccdm_wsum(const WsumArgs *A, int64_t t, int64_t n_threads, int isa)
{
    if (isa == 2) return wsum_avx512(A, t, n_threads);
    if (isa == 1) return wsum_avx2(A, t, n_threads);
    return 1;
}

/* Training images per block (the lanes of one call): WSUM_NH vectors. */
int ccdm_wsum_block(int isa) { return (isa == 2 ? 16 : 8) * WSUM_NH; }
#else
int ccdm_wsum(const WsumArgs *A, int64_t t, int64_t n_threads, int isa) { (void)A; (void)t; (void)n_threads; (void)isa; return 1; }
int ccdm_wsum_block(int isa) { (void)isa; return 1; }
int ccdm_fold_isa(void) { return 0; }
int ccdm_fold(const FoldArgs *A, int64_t q0, int64_t q1, int isa) { (void)A; (void)q0; (void)q1; (void)isa; return 1; }
#endif

/* An (empty) extension module, so that the library is found, built and bundled like
   any other: Python imports it by name, and ctypes then loads it from its file. */
static struct PyModuleDef foldc_module = {
    PyModuleDef_HEAD_INIT, "_foldc",
    "Compiled fold of the CPU score machines; called through ctypes (native.py).", -1, NULL,
};

PyMODINIT_FUNC PyInit__foldc(void) { return PyModule_Create(&foldc_module); }

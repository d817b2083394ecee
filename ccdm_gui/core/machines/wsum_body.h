/* Window sums of shifted products (windowsums.py), included once per instruction set by
   foldc.c with WFN (function name) and the vector operations of foldc_body.h defined.

   Lanes are training images, NBK = WSUM_NH * VL at a time, laid out [C, H + 2d, W + 2d, NBK]
   (zero padded): every load is a whole vector, whatever the rectangles' shapes. Per
   query row the softmax state of each query and lane is kept in float arrays (L1) and
   merged into the thread's float64 state when the row is done. */

#define NBK (WSUM_NH * VL)
/* G's register block: WQB columns by WDB offsets (wsum_gblock) */
#ifndef WQB
#define WQB 4
#endif
#ifndef WDB
#define WDB 4
#endif
#define WALWAYS static inline __attribute__((always_inline)) TARGET

/* A row's per-lane states (nb lanes valid) into the thread's float64 state. The row's
   state is one block per query: shift, s, u, best logit, its key, then the value sums,
   NBK lanes each (fields side by side: one query's state is a few whole cache lines). */
#define F_M 0
#define F_S 1
#define F_U 2
#define F_BEST 3
#define F_KEY 4
#define F_ACC 5
WALWAYS void CAT(WFN, _merge)(const WsumArgs *A, int64_t base, int64_t qw, int64_t n0, int64_t nb,
                               const float *rs)
{
    const int64_t c_n = A->c, fs = (F_ACC + c_n) * NBK;
    for (int64_t jj = 0; jj < qw; jj++) {
        const int64_t q = base + jj;
        const float *r = rs + jj * fs;
        for (int64_t k = 0; k < nb; k++) {
            double m1 = r[F_M * NBK + k], s1 = r[F_S * NBK + k], u1 = r[F_U * NBK + k];
            double mm = A->m[q];
            if (mm == -INFINITY) {
                A->m[q] = m1;
                A->s[q] = s1;
                A->u[q] = u1;
                for (int64_t c = 0; c < c_n; c++) A->acc[q * c_n + c] = r[(F_ACC + c) * NBK + k];
            } else {
                double top = mm > m1 ? mm : m1, sa = exp2(mm - top), sb = exp2(m1 - top);
                A->u[q] = sa * (A->u[q] + (mm - top) * A->s[q]) + sb * (u1 + (m1 - top) * s1);
                A->s[q] = sa * A->s[q] + sb * s1;
                for (int64_t c = 0; c < c_n; c++)
                    A->acc[q * c_n + c] = sa * A->acc[q * c_n + c] + sb * r[(F_ACC + c) * NBK + k];
                A->m[q] = top;
            }
            if (r[F_BEST * NBK + k] > A->best[q]) {
                A->best[q] = r[F_BEST * NBK + k];
                A->img[q] = n0 + k;
                A->key[q] = (int64_t)r[F_KEY * NBK + k];
            }
        }
    }
}

/* Squared norms of every window centred in the image, [H, W, NBK]; tb's rows are wr
   columns apart. */
WALWAYS void CAT(WFN, _norms)(const float *tb, int64_t c_n, int64_t h, int64_t w, int64_t p,
                               int64_t wr, float *kn, float *rowsq)
{
    const int64_t hp = h + p - 1;
    for (int64_t r = 0; r < hp; r++)
        for (int64_t v = 0; v < w; v++)
            for (int half = 0; half < WSUM_NH; half++) {
                V acc = ZERO();
                for (int64_t c = 0; c < c_n; c++)
                    for (int64_t b = 0; b < p; b++) {
                        V t = LOAD(tb + ((c * hp + r) * wr + v + b) * NBK + half * VL);
                        acc = FMA(t, t, acc);
                    }
                STORE(rowsq + (r * w + v) * NBK + half * VL, acc);
            }
    for (int64_t u = 0; u < h; u++)
        for (int64_t v = 0; v < w; v++)
            for (int half = 0; half < WSUM_NH; half++) {
                V acc = ZERO();
                for (int64_t a = 0; a < p; a++) acc = ADD(acc, LOAD(rowsq + ((u + a) * w + v) * NBK + half * VL));
                STORE(kn + (u * w + v) * NBK + half * VL, acc);
            }
}

/* G for WDB offsets dv0.. at once: gb[k * gs + (q - qa) * NBK] = sum over c and the
   window's rows a of x[c, i + a, q] t[c, u + a, q + dv0 + k], q = qa.. in runs of WQB
   (up to WQB - 1 past qb: x and t carry spare columns for them). A block of WQB columns
   by WDB offsets needs WQB + WDB - 1 columns of t per row, each loaded once for up to
   min(WQB, WDB) multiply-adds; one offset at a time loaded a vector per multiply-add.
   (4 x 4, 3 x 6, 2 x 8, 4 x 6 and 3 x 8 blocks, and rows taken a few at a time across
   all columns, ran within noise of each other in a C harness: a block's 16 multiply-adds
   take 25-38 cycles in the kernel against 12-17 with its data in L1.) */
WALWAYS void CAT(WFN, _gblock)(const float *xrow, int64_t xcs, int64_t xrs, const float *trow,
                                int64_t tcs, int64_t trs, int64_t c_n, int64_t p, int64_t dv0,
                                int64_t qa, int64_t qb, int64_t gs, float *gb)
{
    for (int half = 0; half < WSUM_NH; half++)
        for (int64_t q = qa; q < qb; q += WQB) {
            V acc[WQB][WDB];
            for (int z = 0; z < WQB; z++)
                for (int k = 0; k < WDB; k++) acc[z][k] = ZERO();
            for (int64_t c = 0; c < c_n; c++)
                for (int64_t a = 0; a < p; a++) {
                    const float *xr = xrow + c * xcs + a * xrs + q;
                    const float *tr = trow + c * tcs + a * trs + (q + dv0) * NBK + half * VL;
                    V tv[WQB + WDB - 1];
                    for (int z = 0; z < WQB + WDB - 1; z++) tv[z] = LOAD(tr + z * NBK);
                    for (int z = 0; z < WQB; z++) {
                        const V xv = SET1(xr[z]);
                        for (int k = 0; k < WDB; k++) acc[z][k] = FMA(xv, tv[z + k], acc[z][k]);
                    }
                }
            for (int z = 0; z < WQB; z++)
                for (int k = 0; k < WDB; k++) STORE(gb + k * gs + (q - qa + z) * NBK + half * VL, acc[z][k]);
        }
}

/* Spare columns of t on each side, for the runs of four past a block's edge. */
#define MARG (WQB + WDB)

/* One query's state over a run of candidates, in registers: shift, sums, best logit and
   its key, per half of the lanes. */
typedef struct {
    V m[WSUM_NH], s[WSUM_NH], u[WSUM_NH], best[WSUM_NH], key[WSUM_NH], acc[MAXC][WSUM_NH];
} CAT(WFN, _st);

typedef struct {
    V floor_, rebase, poly[6];
} CAT(WFN, _k);

WALWAYS void CAT(WFN, _load)(CAT(WFN, _st) *st, const float *r, const int64_t c_n)
{
    for (int h = 0; h < WSUM_NH; h++) {
        st->m[h] = LOAD(r + F_M * NBK + h * VL);
        st->s[h] = LOAD(r + F_S * NBK + h * VL);
        st->u[h] = LOAD(r + F_U * NBK + h * VL);
        st->best[h] = LOAD(r + F_BEST * NBK + h * VL);
        st->key[h] = LOAD(r + F_KEY * NBK + h * VL);
        for (int64_t c = 0; c < c_n; c++) st->acc[c][h] = LOAD(r + (F_ACC + c) * NBK + h * VL);
    }
}

WALWAYS void CAT(WFN, _save)(const CAT(WFN, _st) *st, float *r, const int64_t c_n)
{
    for (int h = 0; h < WSUM_NH; h++) {
        STORE(r + F_M * NBK + h * VL, st->m[h]);
        STORE(r + F_S * NBK + h * VL, st->s[h]);
        STORE(r + F_U * NBK + h * VL, st->u[h]);
        STORE(r + F_BEST * NBK + h * VL, st->best[h]);
        STORE(r + F_KEY * NBK + h * VL, st->key[h]);
        for (int64_t c = 0; c < c_n; c++) STORE(r + (F_ACC + c) * NBK + h * VL, st->acc[c][h]);
    }
}

/* One candidate: logits lg (both halves), its key index kid, its centre pixel's values
   at centre (channels ccs apart). */
WALWAYS void CAT(WFN, _cand)(CAT(WFN, _st) *st, const CAT(WFN, _k) *K, const float *lg, V kid,
                              const float *centre, int64_t ccs, const int64_t c_n)
{
    V l[WSUM_NH];
    M over[WSUM_NH];
    int any = 0;
    for (int h = 0; h < WSUM_NH; h++) {
        l[h] = LOAD(lg + h * VL);
        over[h] = CMPGT(SUB(l[h], st->m[h]), K->rebase);
        any |= ANY(over[h]);
    }
    if (__builtin_expect(any, 0)) {
        /* the lanes over the limit: shift moved up to this logit, sums scaled */
        for (int h = 0; h < WSUM_NH; h++) {
            V delta = MASKSEL(over[h], SUB(l[h], st->m[h]), ZERO());
            V sc = MASKSEL(over[h], EXP2(MAX(SUB(ZERO(), delta), K->floor_), K->poly), SET1(1.0f));
            st->u[h] = MUL(sc, SUB(st->u[h], MUL(delta, st->s[h])));
            st->s[h] = MUL(sc, st->s[h]);
            for (int64_t c = 0; c < c_n; c++) st->acc[c][h] = MUL(sc, st->acc[c][h]);
            st->m[h] = MASKSEL(over[h], l[h], st->m[h]);
        }
    }
    for (int h = 0; h < WSUM_NH; h++) {
        V lv = MAX(SUB(l[h], st->m[h]), K->floor_);
        V e = EXP2(lv, K->poly);
        st->s[h] = ADD(st->s[h], e);
        st->u[h] = FMA(e, lv, st->u[h]);
        M gt = CMPGT(l[h], st->best[h]);
        st->best[h] = MASKSEL(gt, l[h], st->best[h]);
        st->key[h] = MASKSEL(gt, kid, st->key[h]);
        for (int64_t c = 0; c < c_n; c++) st->acc[c][h] = FMA(e, LOAD(centre + c * ccs + h * VL), st->acc[c][h]);
    }
}

/* One row i of rectangle R for the block's images: every key against every query of
   the row, then the row's states merged into the thread's. */
WALWAYS void CAT(WFN, _row)(const WsumArgs *A, const CAT(WFN, _k) *K, const int64_t *R, int64_t i,
                             int64_t bi, int64_t n0, int64_t nb, const float *xb, const float *tb,
                             const float *kn, float *gb, int64_t gs, float *sb, int64_t ss, float *rs,
                             V alpha, V nbeta, const int64_t c_n)
{
    const int64_t w = A->w, p = A->p, d = p / 2, xrs = A->wq, xcs = A->hq * xrs;
    const int64_t wr = w + 2 * d + 2 * MARG, trs = wr * NBK, tcs = (A->h + 2 * d) * trs;
    const int64_t qi0 = R[0], qj0 = R[2], qj1 = R[3];
    const int64_t ku0 = R[4], ku1 = R[5], kv0 = R[6], kv1 = R[7];
    const int64_t qw = qj1 - qj0, kw = kv1 - kv0;
    const int64_t dv_lo = kv0 - qj1 + 1, dv_hi = kv1 - qj0; /* offsets dv_lo..dv_hi-1 */
    const int64_t fs = (F_ACC + c_n) * NBK; /* floats of one query's state */
    memset(rs, 0, sizeof(float) * (size_t)(qw * fs));
    for (int64_t jj = 0; jj < qw; jj++)
        for (int k = 0; k < NBK; k++) {
            rs[jj * fs + F_M * NBK + k] = -1e30f; /* finite: the first rebase's scale stays a number */
            rs[jj * fs + F_BEST * NBK + k] = -INFINITY;
        }
    for (int64_t u = ku0; u < ku1; u++)
        for (int64_t dv0 = dv_lo; dv0 < dv_hi; dv0 += WDB) {
            const int nk = dv_hi - dv0 < WDB ? (int)(dv_hi - dv0) : WDB;
            int64_t jl[WDB], jh[WDB];
            for (int k = 0; k < nk; k++) {
                jl[k] = qj0 > kv0 - dv0 - k ? qj0 : kv0 - dv0 - k;
                jh[k] = qj1 < kv1 - dv0 - k ? qj1 : kv1 - dv0 - k;
            }
            /* columns of x the block's offsets need: qa..qb-1 */
            const int64_t qa = jl[nk - 1], qb = jh[0] + p - 1;
            CAT(WFN, _gblock)(xb + i * xrs, xcs, xrs, tb + u * trs, tcs, trs, c_n, p, dv0, qa, qb, gs, gb);
            /* logits: S(j) = G[j] + .. + G[j + P - 1], slid along j */
            for (int k = 0; k < nk; k++) {
                const float *gk = gb + k * gs - qa * NBK; /* gk[q * NBK]: column q */
                const float *knr = kn + (u * w + dv0 + k) * NBK;
                float *lk = sb + k * ss - qj0 * NBK;
                for (int h = 0; h < WSUM_NH; h++) {
                    V s = ZERO();
                    for (int64_t b = 0; b < p; b++) s = ADD(s, LOAD(gk + (jl[k] + b) * NBK + h * VL));
                    for (int64_t j = jl[k]; j < jh[k]; j++) {
                        if (j > jl[k])
                            s = ADD(s, SUB(LOAD(gk + (j + p - 1) * NBK + h * VL), LOAD(gk + (j - 1) * NBK + h * VL)));
                        STORE(lk + j * NBK + h * VL, FMA(alpha, s, MUL(nbeta, LOAD(knr + j * NBK + h * VL))));
                    }
                }
            }
            /* each query of the row takes the block's keys with its state in registers */
            for (int64_t j = qa; j < jh[0]; j++) {
                const int64_t jj = j - qj0;
                CAT(WFN, _st) st;
                CAT(WFN, _load)(&st, rs + jj * fs, c_n);
                for (int k = 0; k < nk; k++) {
                    if (j < jl[k] || j >= jh[k]) continue;
                    const int64_t v = j + dv0 + k;
                    /* the key's index in its rectangle, exact in a float to 2^24 */
                    const V kid = SET1((float)((u - ku0) * kw + (v - kv0)));
                    CAT(WFN, _cand)(&st, K, sb + k * ss + jj * NBK, kid,
                                    tb + ((u + d) * wr + v + d) * NBK, tcs, c_n);
                }
                CAT(WFN, _save)(&st, rs + jj * fs, c_n);
            }
        }
    CAT(WFN, _merge)(A, bi * A->q + R[8] + (i - qi0) * qw, qw, n0, nb, rs);
}

static int TARGET WFN(const WsumArgs *A, int64_t t, int64_t n_threads)
{
    const int64_t c_n = A->c, h = A->h, w = A->w, p = A->p, d = p / 2;
    const int64_t hp = h + 2 * d, wr = w + 2 * d + 2 * MARG;
    int64_t qw_max = 1;
    for (int64_t r = 0; r < A->nrect; r++) {
        const int64_t qw = A->rects[r * 9 + 3] - A->rects[r * 9 + 2];
        if (qw > qw_max) qw_max = qw;
    }
    const int64_t gs = (qw_max + p + WQB) * NBK; /* floats per offset in the G block */
    /* the logits of WDB offsets, rows a little over a multiple of 4 KB apart (exactly
       such a multiple, they would all fall in the same sets of the L1 cache) */
    const int64_t ss = (qw_max + 1) * NBK;
    const size_t states = (size_t)qw_max * (F_ACC + c_n) * NBK;
    float *buf = malloc(sizeof(float) * ((size_t)(c_n * hp * wr + h * w + hp * w) * NBK
                                         + (size_t)(WDB * (gs + ss)) + states));
    if (!buf) return 1;
    float *tbuf = buf, *kn = tbuf + c_n * hp * wr * NBK, *rowsq = kn + h * w * NBK;
    float *gb = rowsq + hp * w * NBK, *sb = gb + WDB * gs, *rs = sb + WDB * ss;
    const float *tb = tbuf + MARG * NBK; /* column 0 of the padded image */
    CAT(WFN, _k) K = {.floor_ = SET1(A->floor_), .rebase = SET1(A->rebase)};
    for (int z = 0; z < 6; z++) K.poly[z] = SET1(A->poly[z]);
    const V alpha = SET1(A->alpha), nbeta = SET1(-A->beta);
    const int64_t xcs = A->hq * A->wq;
    for (int64_t n0 = A->first + t * NBK; n0 < A->n; n0 += n_threads * NBK) {
        const int64_t nb = A->n - n0 < NBK ? A->n - n0 : NBK;
        memset(tbuf, 0, sizeof(float) * c_n * hp * wr * NBK);
        for (int64_t k = 0; k < nb; k++)
            for (int64_t c = 0; c < c_n; c++)
                for (int64_t r = 0; r < h; r++) {
                    const float *src = A->train + (n0 + k) * A->ts[0] + c * A->ts[1] + r * A->ts[2];
                    float *dst = tbuf + ((c * hp + r + d) * wr + MARG + d) * NBK + k;
                    for (int64_t col = 0; col < w; col++) dst[col * NBK] = src[col * A->ts[3]];
                }
        CAT(WFN, _norms)(tb, c_n, h, w, p, wr, kn, rowsq);
        for (int64_t bi = 0; bi < A->b; bi++)
            for (int64_t ri = 0; ri < A->nrect; ri++) {
                const int64_t *R = A->rects + ri * 9;
                for (int64_t i = R[0]; i < R[1]; i++) {
#define ROW(cn) CAT(WFN, _row)(A, &K, R, i, bi, n0, nb, A->xp + bi * c_n * xcs, tb, kn, gb, gs, sb, \
                               ss, rs, alpha, nbeta, cn)
                    /* a constant channel count keeps the value sums in registers */
                    if (c_n == 1) ROW(1);
                    else if (c_n == 3) ROW(3);
                    else ROW(c_n);
#undef ROW
                }
            }
    }
    free(buf);
    return 0;
}

#undef NBK
#undef MARG
#undef WQB
#undef WDB
#undef F_M
#undef F_S
#undef F_U
#undef F_BEST
#undef F_KEY
#undef F_ACC
#undef WALWAYS

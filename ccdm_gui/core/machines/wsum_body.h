/* Window sums of shifted products (windowsums.py), included once per instruction set by
   foldc.c with WFN (function name) and the vector operations of foldc_body.h defined.

   Lanes are training images, NBK = 2 VL at a time, laid out [C, H + 2d, W + 2d, NBK]
   (zero padded): every load is a whole vector, whatever the rectangles' shapes. Per
   query row the softmax state of each query and lane is kept in float arrays (L1) and
   merged into the thread's float64 state when the row is done. */

#define NBK (2 * VL)
#define WALWAYS static inline __attribute__((always_inline)) TARGET

/* A row's per-lane states (nb lanes valid) into the thread's float64 state. */
WALWAYS void CAT(WFN, _merge)(const WsumArgs *A, int64_t base, int64_t qw, int64_t n0, int64_t nb,
                               const float *lm, const float *ls, const float *lu,
                               const float *lacc, const float *lbest, const float *lkey)
{
    const int64_t c_n = A->c;
    for (int64_t jj = 0; jj < qw; jj++) {
        const int64_t q = base + jj;
        for (int64_t k = 0; k < nb; k++) {
            const int64_t o = jj * NBK + k;
            double m1 = lm[o], mm = A->m[q];
            if (mm == -INFINITY) {
                A->m[q] = m1;
                A->s[q] = ls[o];
                A->u[q] = lu[o];
                for (int64_t c = 0; c < c_n; c++) A->acc[q * c_n + c] = lacc[(jj * c_n + c) * NBK + k];
            } else {
                double top = mm > m1 ? mm : m1, sa = exp2(mm - top), sb = exp2(m1 - top);
                A->u[q] = sa * (A->u[q] + (mm - top) * A->s[q]) + sb * (lu[o] + (m1 - top) * ls[o]);
                A->s[q] = sa * A->s[q] + sb * ls[o];
                for (int64_t c = 0; c < c_n; c++)
                    A->acc[q * c_n + c] = sa * A->acc[q * c_n + c] + sb * lacc[(jj * c_n + c) * NBK + k];
                A->m[q] = top;
            }
            if (lbest[o] > A->best[q]) {
                A->best[q] = lbest[o];
                A->img[q] = n0 + k;
                A->key[q] = (int64_t)lkey[o];
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
            for (int half = 0; half < 2; half++) {
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
            for (int half = 0; half < 2; half++) {
                V acc = ZERO();
                for (int64_t a = 0; a < p; a++) acc = ADD(acc, LOAD(rowsq + ((u + a) * w + v) * NBK + half * VL));
                STORE(kn + (u * w + v) * NBK + half * VL, acc);
            }
}

/* G for four offsets dv0..dv0+3 at once: gb[k * gs + (q - qa) * NBK] = sum over c and the
   window's rows a of x[c, i + a, q] t[c, u + a, q + dv0 + k], q = qa.. in runs of four
   (up to three past qb: x and t carry spare columns for them). A block of 4 columns by
   4 offsets needs 7 columns of t per row: 16 multiply-adds per 7 loads, from data that
   stays in L1 (one offset at a time loaded a vector per multiply-add, mostly from L2). */
WALWAYS void CAT(WFN, _gblock)(const float *xrow, int64_t xcs, int64_t xrs, const float *trow,
                                int64_t tcs, int64_t trs, int64_t c_n, int64_t p, int64_t dv0,
                                int64_t qa, int64_t qb, int64_t gs, float *gb)
{
    for (int half = 0; half < 2; half++)
        for (int64_t q = qa; q < qb; q += 4) {
            V acc[4][4];
            for (int z = 0; z < 4; z++)
                for (int k = 0; k < 4; k++) acc[z][k] = ZERO();
            for (int64_t c = 0; c < c_n; c++)
                for (int64_t a = 0; a < p; a++) {
                    const float *xr = xrow + c * xcs + a * xrs + q;
                    const float *tr = trow + c * tcs + a * trs + (q + dv0) * NBK + half * VL;
                    V tv[7];
                    for (int z = 0; z < 7; z++) tv[z] = LOAD(tr + z * NBK);
                    for (int z = 0; z < 4; z++) {
                        const V xv = SET1(xr[z]);
                        for (int k = 0; k < 4; k++) acc[z][k] = FMA(xv, tv[z + k], acc[z][k]);
                    }
                }
            for (int z = 0; z < 4; z++)
                for (int k = 0; k < 4; k++) STORE(gb + k * gs + (q - qa + z) * NBK + half * VL, acc[z][k]);
        }
}

/* Spare columns of t on each side, for the runs of four past a block's edge. */
#define MARG 8

/* One query's state over a run of candidates, in registers: shift, sums, best logit and
   its key, per half of the lanes. */
typedef struct {
    V m[2], s[2], u[2], best[2], key[2], acc[MAXC][2];
} CAT(WFN, _st);

typedef struct {
    V floor_, rebase, poly[6];
} CAT(WFN, _k);

WALWAYS void CAT(WFN, _load)(CAT(WFN, _st) *st, const float *lm, const float *ls, const float *lu,
                              const float *lbest, const float *lkey, const float *la, const int64_t c_n)
{
    for (int h = 0; h < 2; h++) {
        st->m[h] = LOAD(lm + h * VL);
        st->s[h] = LOAD(ls + h * VL);
        st->u[h] = LOAD(lu + h * VL);
        st->best[h] = LOAD(lbest + h * VL);
        st->key[h] = LOAD(lkey + h * VL);
        for (int64_t c = 0; c < c_n; c++) st->acc[c][h] = LOAD(la + c * NBK + h * VL);
    }
}

WALWAYS void CAT(WFN, _save)(const CAT(WFN, _st) *st, float *lm, float *ls, float *lu, float *lbest,
                              float *lkey, float *la, const int64_t c_n)
{
    for (int h = 0; h < 2; h++) {
        STORE(lm + h * VL, st->m[h]);
        STORE(ls + h * VL, st->s[h]);
        STORE(lu + h * VL, st->u[h]);
        STORE(lbest + h * VL, st->best[h]);
        STORE(lkey + h * VL, st->key[h]);
        for (int64_t c = 0; c < c_n; c++) STORE(la + c * NBK + h * VL, st->acc[c][h]);
    }
}

/* One candidate: logits lg (both halves), its key index kid, its centre pixel's values
   at centre (channels ccs apart). */
WALWAYS void CAT(WFN, _cand)(CAT(WFN, _st) *st, const CAT(WFN, _k) *K, const float *lg, V kid,
                              const float *centre, int64_t ccs, const int64_t c_n)
{
    V l[2] = {LOAD(lg), LOAD(lg + VL)};
    M over[2] = {CMPGT(SUB(l[0], st->m[0]), K->rebase), CMPGT(SUB(l[1], st->m[1]), K->rebase)};
    if (__builtin_expect(ANY(over[0]) || ANY(over[1]), 0)) {
        /* the lanes over the limit: shift moved up to this logit, sums scaled */
        for (int h = 0; h < 2; h++) {
            V delta = MASKSEL(over[h], SUB(l[h], st->m[h]), ZERO());
            V sc = MASKSEL(over[h], EXP2(MAX(SUB(ZERO(), delta), K->floor_), K->poly), SET1(1.0f));
            st->u[h] = MUL(sc, SUB(st->u[h], MUL(delta, st->s[h])));
            st->s[h] = MUL(sc, st->s[h]);
            for (int64_t c = 0; c < c_n; c++) st->acc[c][h] = MUL(sc, st->acc[c][h]);
            st->m[h] = MASKSEL(over[h], l[h], st->m[h]);
        }
    }
    for (int h = 0; h < 2; h++) {
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
                             const float *kn, float *gb, int64_t gs, float *sb, float *lm, float *ls,
                             float *lu, float *lbest, float *lkey, float *lacc, V alpha, V nbeta,
                             const int64_t c_n)
{
    const int64_t w = A->w, p = A->p, d = p / 2, xrs = A->wq, xcs = A->hq * xrs;
    const int64_t wr = w + 2 * d + 2 * MARG, trs = wr * NBK, tcs = (A->h + 2 * d) * trs;
    const int64_t qi0 = R[0], qj0 = R[2], qj1 = R[3];
    const int64_t ku0 = R[4], ku1 = R[5], kv0 = R[6], kv1 = R[7];
    const int64_t qw = qj1 - qj0, kw = kv1 - kv0;
    const int64_t dv_lo = kv0 - qj1 + 1, dv_hi = kv1 - qj0; /* offsets dv_lo..dv_hi-1 */
    for (int64_t z = 0; z < qw * NBK; z++) {
        lm[z] = -1e30f; /* finite: the first rebase's scale stays a number */
        lbest[z] = -INFINITY;
        ls[z] = lu[z] = lkey[z] = 0.0f;
    }
    memset(lacc, 0, sizeof(float) * (size_t)(qw * c_n * NBK));
    for (int64_t u = ku0; u < ku1; u++)
        for (int64_t dv0 = dv_lo; dv0 < dv_hi; dv0 += 4) {
            const int nk = dv_hi - dv0 < 4 ? (int)(dv_hi - dv0) : 4;
            int64_t jl[4], jh[4];
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
                float *lk = sb + k * qw * NBK - qj0 * NBK;
                for (int h = 0; h < 2; h++) {
                    V s = ZERO();
                    for (int64_t b = 0; b < p; b++) s = ADD(s, LOAD(gk + (jl[k] + b) * NBK + h * VL));
                    for (int64_t j = jl[k]; j < jh[k]; j++) {
                        if (j > jl[k])
                            s = ADD(s, SUB(LOAD(gk + (j + p - 1) * NBK + h * VL), LOAD(gk + (j - 1) * NBK + h * VL)));
                        STORE(lk + j * NBK + h * VL, FMA(alpha, s, MUL(nbeta, LOAD(knr + j * NBK + h * VL))));
                    }
                }
            }
            /* each query of the row folds the block's keys with its state in registers */
            for (int64_t j = qa; j < jh[0]; j++) {
                const int64_t jj = j - qj0;
                CAT(WFN, _st) st;
                CAT(WFN, _load)(&st, lm + jj * NBK, ls + jj * NBK, lu + jj * NBK, lbest + jj * NBK,
                                lkey + jj * NBK, lacc + jj * c_n * NBK, c_n);
                for (int k = 0; k < nk; k++) {
                    if (j < jl[k] || j >= jh[k]) continue;
                    const int64_t v = j + dv0 + k;
                    /* the key's index in its rectangle, exact in a float to 2^24 */
                    const V kid = SET1((float)((u - ku0) * kw + (v - kv0)));
                    CAT(WFN, _cand)(&st, K, sb + (k * qw + jj) * NBK, kid,
                                    tb + ((u + d) * wr + v + d) * NBK, tcs, c_n);
                }
                CAT(WFN, _save)(&st, lm + jj * NBK, ls + jj * NBK, lu + jj * NBK, lbest + jj * NBK,
                                lkey + jj * NBK, lacc + jj * c_n * NBK, c_n);
            }
        }
    CAT(WFN, _merge)(A, bi * A->q + R[8] + (i - qi0) * qw, qw, n0, nb, lm, ls, lu, lacc, lbest, lkey);
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
    const int64_t gs = (qw_max + p + 4) * NBK; /* floats per offset in the G block */
    const size_t row = (size_t)qw_max * NBK;
    float *buf = malloc(sizeof(float) * ((size_t)(c_n * hp * wr + h * w + hp * w) * NBK
                                         + (size_t)(4 * gs) + 9 * row + c_n * row));
    if (!buf) return 1;
    float *tbuf = buf, *kn = tbuf + c_n * hp * wr * NBK, *rowsq = kn + h * w * NBK;
    float *gb = rowsq + hp * w * NBK, *sb = gb + 4 * gs, *lm = sb + 4 * row;
    float *ls = lm + row, *lu = ls + row, *lbest = lu + row, *lkey = lbest + row;
    float *lacc = lkey + row; /* [qw, C, NBK] */
    const float *tb = tbuf + MARG * NBK; /* column 0 of the padded image */
    CAT(WFN, _k) K = {.floor_ = SET1(A->floor_), .rebase = SET1(A->rebase)};
    for (int z = 0; z < 6; z++) K.poly[z] = SET1(A->poly[z]);
    const V alpha = SET1(A->alpha), nbeta = SET1(-A->beta);
    const int64_t xcs = A->hq * A->wq;
    for (int64_t n0 = t * NBK; n0 < A->n; n0 += n_threads * NBK) {
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
                               lm, ls, lu, lbest, lkey, lacc, alpha, nbeta, cn)
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
#undef WALWAYS

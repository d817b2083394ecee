/* The kernel body, included once per instruction set by foldc.c with these defined:
   FN (function name), TARGET (gcc target attribute), VL (lanes), V (float vector),
   VI (int vector), M (comparison mask), and the operations below. */

/* cv, the number of values, comes in as a constant where it is 1 or 3 (grey, colour):
   the value sums then stay in registers instead of making a chain through memory. */
static inline __attribute__((always_inline)) TARGET void
CAT(FN, _body)(const FoldArgs *A, int64_t q0, int64_t q1, float *kt, const int64_t cv)
{
    const int64_t d = A->d, ks = A->ks, vs = A->vs, mp = A->mpad, dp = d + 1;
    const V floor_ = SET1(A->floor_), rebase = SET1(A->rebase), negl = SET1(A->negligible);
    for (int64_t ja = 0; ja < A->t_n; ja += A->kblock) {
        const int64_t jb = ja + A->kblock < A->t_n ? ja + A->kblock : A->t_n;
        /* The block's keys key-major (each key's patch and its scaled bias in a row), so
           a key's numbers are read in order, whatever the stride of the bank. */
        for (int64_t k = 0; k < d; k++) {
            const float *src = A->keys + k * ks;
            for (int64_t j = ja; j < jb; j++) kt[(j - ja) * dp + k] = src[j];
        }
        for (int64_t j = ja; j < jb; j++) kt[(j - ja) * dp + d] = A->bias[j] * A->bias_scale;
        for (int64_t m = q0; m < q1; m += VL) {
            /* VL queries in lanes; their state in registers for this key block */
            const float *qb = A->qt + (m / LANES) * d * LANES + m % LANES; /* k-th: qb[k * LANES] */
            float *shp = A->shift + m;
            V sh = LOAD(shp), mx = LOAD(A->best + m);
            VI ix = ISET1(-1);
            V s = ZERO(), u = ZERO(), a[MAXC];
            for (int c = 0; c < cv; c++) a[c] = ZERO();
            for (int64_t j0 = ja; j0 < jb; j0 += KS) {
                const float *kp = kt + (j0 - ja) * dp;
                const int nk = jb - j0 < KS ? (int)(jb - j0) : KS;
                /* KS keys at a time: their sums are independent chains, which keep the
                   multiply-add units busy (one chain waits on each result). */
                V lk[KS];
                for (int t = 0; t < KS; t++) lk[t] = SUB(SET1(kp[(t < nk ? t : 0) * dp + d]), sh);
                if (nk == KS) {
                    for (int64_t k = 0; k < d; k++) {
                        const V qv = LOAD(qb + k * LANES);
                        for (int t = 0; t < KS; t++) lk[t] = FMA(qv, SET1(kp[t * dp + k]), lk[t]);
                    }
                } else {
                    for (int t = 0; t < nk; t++)
                        for (int64_t k = 0; k < d; k++)
                            lk[t] = FMA(LOAD(qb + k * LANES), SET1(kp[t * dp + k]), lk[t]);
                }
                for (int t = 0; t < nk; t++) {
                    const int64_t j = j0 + t;
                    V l = lk[t];
                    M over = CMPGT(l, rebase);
                    if (__builtin_expect(ANY(over), 0)) {
                        /* move the shift of the lanes over the limit up to this logit */
                        V delta = MASKSEL(over, l, ZERO());
                        float dl[VL], sl[VL], ul[VL], al[MAXC][VL];
                        STORE(dl, delta); STORE(sl, s); STORE(ul, u);
                        for (int c = 0; c < cv; c++) STORE(al[c], a[c]);
                        for (int lane = 0; lane < VL; lane++) {
                            if (dl[lane] == 0.0f) continue;
                            int64_t r = m + lane;
                            double dd = dl[lane], sc = exp2(-dd);
                            double S = A->s[r] + sl[lane], U = A->u[r] + ul[lane];
                            A->u[r] = sc * (U - dd * S);
                            A->s[r] = sc * S;
                            sl[lane] = ul[lane] = 0.0f;
                            for (int c = 0; c < cv; c++) {
                                A->acc[c * mp + r] = sc * (A->acc[c * mp + r] + al[c][lane]);
                                al[c][lane] = 0.0f;
                            }
                        }
                        s = LOAD(sl); u = LOAD(ul);
                        for (int c = 0; c < cv; c++) a[c] = LOAD(al[c]);
                        sh = ADD(sh, delta);
                        mx = SUB(mx, delta);
                        l = SUB(l, delta);
                        for (int t2 = t + 1; t2 < nk; t2++) lk[t2] = SUB(lk[t2], delta);
                    }
                    M gt = CMPGT(l, mx);
                    mx = MASKSEL(gt, l, mx);
                    ix = IMASKSEL(gt, ISET1((int32_t)j), ix);
                    if (!ANY(CMPGE(l, negl))) continue;
                    V lv = MAX(l, floor_);
                    V e = EXP2(lv);
                    if (A->counts) e = MUL(e, SET1(A->counts[j]));
                    s = ADD(s, e);
                    u = FMA(e, lv, u);
                    for (int c = 0; c < cv; c++) a[c] = FMA(e, SET1(A->vals[c * vs + j]), a[c]);
                }
            }
            /* fold the block's float sums into the float64 state; the winners */
            float sl[VL], ul[VL], al[VL];
            int32_t il[VL];
            STORE(sl, s); STORE(ul, u); ISTORE(il, ix);
            STORE(shp, sh);
            for (int t = 0; t < VL; t++) {
                int64_t r = m + t;
                A->s[r] += sl[t];
                A->u[r] += ul[t];
                if (il[t] >= 0) { /* improved on the best within this block */
                    A->best_j[r] = il[t]; /* index in the chunk */
                    A->changed[r] = 1;
                }
            }
            STORE(A->best + m, mx);
            for (int c = 0; c < cv; c++) {
                STORE(al, a[c]);
                for (int t = 0; t < VL; t++) A->acc[c * mp + m + t] += al[t];
            }
        }
    }
}

static void TARGET FN(const FoldArgs *A, int64_t q0, int64_t q1, float *kt)
{
    if (A->cv == 1) CAT(FN, _body)(A, q0, q1, kt, 1);
    else if (A->cv == 3) CAT(FN, _body)(A, q0, q1, kt, 3);
    else CAT(FN, _body)(A, q0, q1, kt, A->cv);
}

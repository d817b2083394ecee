/* The kernel body, included once per instruction set by foldc.c with these defined:
   FN (function name), TARGET (gcc target attribute), VL (lanes), V (float vector),
   VI (int vector), M (comparison mask), and the operations below. */

/* The running state of VL queries (one lane each) over a block of keys: shift, best
   logit over it, winner, and float sums that are added to the float64 state at the
   block's end. */
typedef struct {
    V sh, mx, s, u, a[MAXC];
    VI ix;
} CAT(FN, _state);

#define ALWAYS static inline __attribute__((always_inline)) TARGET

ALWAYS void CAT(FN, _begin)(const FoldArgs *A, CAT(FN, _state) *st, int64_t m, const int64_t cv)
{
    st->sh = LOAD(A->shift + m);
    st->mx = LOAD(A->best + m);
    st->ix = ISET1(-1);
    st->s = st->u = ZERO();
    for (int c = 0; c < cv; c++) st->a[c] = ZERO();
}

/* The loop's constants, read from A once (A's fields would be read again per key: the
   stores of a rebase could alias them, as far as the compiler knows). */
typedef struct {
    V floor_, rebase, negl, poly[6];
    const float *counts, *vals;
    int64_t vs;
} CAT(FN, _consts);

/* Lanes gt of one key's logits l (over the shift) beat their best: the winners, and
   first, for lanes over the rebase limit, the shift moved up to this logit. */
ALWAYS void CAT(FN, _improve)(const FoldArgs *A, const CAT(FN, _consts) *k, CAT(FN, _state) *st,
                              V *l, M gt, int64_t j, int64_t m, const int64_t cv)
{
    M over = CMPGT(*l, k->rebase);
    if (ANY(over)) {
        /* move the shift of the lanes over the limit up to this logit */
        V delta = MASKSEL(over, *l, ZERO());
        float dl[VL], sl[VL], ul[VL], al[MAXC][VL];
        STORE(dl, delta); STORE(sl, st->s); STORE(ul, st->u);
        for (int c = 0; c < cv; c++) STORE(al[c], st->a[c]);
        for (int lane = 0; lane < VL; lane++) {
            if (dl[lane] == 0.0f) continue;
            int64_t r = m + lane;
            double dd = dl[lane], sc = exp2(-dd);
            double S = A->s[r] + sl[lane], U = A->u[r] + ul[lane];
            A->u[r] = sc * (U - dd * S);
            A->s[r] = sc * S;
            sl[lane] = ul[lane] = 0.0f;
            for (int c = 0; c < cv; c++) {
                A->acc[c * A->mpad + r] = sc * (A->acc[c * A->mpad + r] + al[c][lane]);
                al[c][lane] = 0.0f;
            }
        }
        st->s = LOAD(sl); st->u = LOAD(ul);
        for (int c = 0; c < cv; c++) st->a[c] = LOAD(al[c]);
        st->sh = ADD(st->sh, delta);
        st->mx = SUB(st->mx, delta);
        *l = SUB(*l, delta);
        gt = CMPGT(*l, st->mx);
    }
    st->mx = MASKSEL(gt, *l, st->mx);
    st->ix = IMASKSEL(gt, ISET1((int32_t)j), st->ix);
}

/* One key's logits (before the shift) into the state of queries m..m+VL-1.

   The best logit over the shift never exceeds the rebase limit (a rebase pulls it
   back under), so a logit that beats no lane's best needs neither a rebase nor the
   winner's update: after the first keys of a stream almost none does, and the common
   path is one comparison instead of two comparisons and three selects. */
ALWAYS void CAT(FN, _key)(const FoldArgs *A, const CAT(FN, _consts) *k, CAT(FN, _state) *st,
                          V l, int64_t j, int64_t m, const int64_t cv)
{
    l = SUB(l, st->sh);
    M gt = CMPGT(l, st->mx);
    if (__builtin_expect(ANY(gt), 0)) CAT(FN, _improve)(A, k, st, &l, gt, j, m, cv);
    if (!ANY(CMPGE(l, k->negl))) return;
    V lv = MAX(l, k->floor_);
    V e = EXP2(lv, k->poly);
    if (k->counts) e = MUL(e, SET1(k->counts[j]));
    st->s = ADD(st->s, e);
    st->u = FMA(e, lv, st->u);
    for (int c = 0; c < cv; c++) st->a[c] = FMA(e, SET1(k->vals[c * k->vs + j]), st->a[c]);
}

/* add the block's float sums to the float64 state; the winners */
ALWAYS void CAT(FN, _end)(const FoldArgs *A, CAT(FN, _state) *st, int64_t m, const int64_t cv)
{
    float sl[VL], ul[VL], al[VL];
    int32_t il[VL];
    STORE(sl, st->s); STORE(ul, st->u); ISTORE(il, st->ix);
    STORE(A->shift + m, st->sh);
    for (int t = 0; t < VL; t++) {
        int64_t r = m + t;
        A->s[r] += sl[t];
        A->u[r] += ul[t];
        if (il[t] >= 0) { /* improved on the best within this block */
            A->best_j[r] = il[t]; /* index in the chunk */
            A->changed[r] = 1;
        }
    }
    STORE(A->best + m, st->mx);
    for (int c = 0; c < cv; c++) {
        STORE(al, st->a[c]);
        for (int t = 0; t < VL; t++) A->acc[c * A->mpad + m + t] += al[t];
    }
}

/* nb (1 or 2, a constant) blocks of VL queries from m on against the keys ja..jb-1 of
   the copied block kt. Two blocks at a time: each key number loaded serves two
   multiply-adds, so the product is not held back by loads (a block alone loads 9
   numbers per 8 multiply-adds, and a core loads 2 a cycle). */
ALWAYS void CAT(FN, _blocks)(const FoldArgs *A, const CAT(FN, _consts) *kc, const float *kt,
                             int64_t ja, int64_t jb, int64_t m, const int nb, const int64_t cv)
{
    const int64_t d = A->d, dp = d + 1;
    const float *qb[2]; /* k-th numbers of queries m + b * VL..: qb[b][k * LANES] */
    CAT(FN, _state) st[2];
    for (int b = 0; b < nb; b++) {
        const int64_t mb = m + b * VL;
        qb[b] = A->qt + (mb / LANES) * d * LANES + mb % LANES;
        CAT(FN, _begin)(A, &st[b], mb, cv);
    }
    for (int64_t j0 = ja; j0 < jb; j0 += KS) {
        const float *kp = kt + (j0 - ja) * dp;
        const int nk = jb - j0 < KS ? (int)(jb - j0) : KS;
        /* KS keys at a time: their sums are independent chains, which keep the
           multiply-add units busy (one chain waits on each result). */
        V l[2][KS];
        for (int b = 0; b < nb; b++)
            for (int t = 0; t < KS; t++) l[b][t] = SET1(kp[d * KS + t]);
        for (int64_t k = 0; k < d; k++) {
            V qv[2];
            for (int b = 0; b < nb; b++) qv[b] = LOAD(qb[b] + k * LANES);
            const float *kk = kp + k * KS;
            for (int t = 0; t < KS; t++) {
                const V kv = SET1(kk[t]);
                for (int b = 0; b < nb; b++) l[b][t] = FMA(qv[b], kv, l[b][t]);
            }
        }
        for (int b = 0; b < nb; b++)
            for (int t = 0; t < nk; t++) CAT(FN, _key)(A, kc, &st[b], l[b][t], j0 + t, m + b * VL, cv);
    }
    for (int b = 0; b < nb; b++) CAT(FN, _end)(A, &st[b], m + b * VL, cv);
}

/* cv, the number of values, comes in as a constant where it is 1 or 3 (grey, colour):
   the value sums then stay in registers instead of making a chain through memory. */
ALWAYS void CAT(FN, _body)(const FoldArgs *A, int64_t q0, int64_t q1, float *kt, const int64_t cv)
{
    const int64_t d = A->d, ks = A->ks, dp = d + 1;
    CAT(FN, _consts) kc = {
        .floor_ = SET1(A->floor_), .rebase = SET1(A->rebase), .negl = SET1(A->negligible),
        .counts = A->counts, .vals = A->vals, .vs = A->vs,
    };
    for (int i = 0; i < 6; i++) kc.poly[i] = SET1(A->poly[i]);
    for (int64_t ja = 0; ja < A->t_n; ja += A->kblock) {
        const int64_t jb = ja + A->kblock < A->t_n ? ja + A->kblock : A->t_n;
        /* The block's keys in groups of KS: a group's k-th numbers side by side, then
           their scaled biases ([k][KS], KS * dp floats a group). The product then reads
           each number at a fixed offset from one pointer: an indexed address would cost
           the multiply-add an extra micro-op on Intel cores (unlamination). Copied a run
           of KS numbers at a time (one vector move): both threads copy every block, and
           element by element the copy took 10-13% of a thread's time at P = 5 and 7.
           COPY_ROWS source rows are walked together, so each group's numbers are written
           close together, not one number per group across the whole block at a time
           (a copy-bound call 1.2-1.7x faster at 49 and 225 numbers a patch, C harness).
           A last group short of KS keys gets zeros in the slots the product reads unused. */
        const int64_t full = (jb - ja) / KS, rest = (jb - ja) % KS;
        for (int64_t k0 = 0; k0 < dp; k0 += COPY_ROWS) {
            const int64_t k1 = k0 + COPY_ROWS < dp ? k0 + COPY_ROWS : dp;
            for (int64_t g = 0; g < full; g++)
                for (int64_t k = k0; k < k1; k++) {
                    const float *src = k < d ? A->keys + k * ks + ja : A->bias + ja;
                    memcpy(kt + k * KS + g * KS * dp, src + g * KS, KS * sizeof(float));
                }
        }
        if (rest)
            for (int64_t k = 0; k < dp; k++) {
                const float *src = k < d ? A->keys + k * ks + ja : A->bias + ja;
                for (int t = 0; t < KS; t++) kt[full * KS * dp + k * KS + t] = t < rest ? src[full * KS + t] : 0.0f;
            }
        /* the biases' scale, applied in place */
        for (int64_t g = 0; g < full + (rest > 0); g++)
            for (int t = 0; t < KS; t++) kt[g * KS * dp + d * KS + t] *= A->bias_scale;
        int64_t m = q0;
        for (; m + 2 * VL <= q1; m += 2 * VL) CAT(FN, _blocks)(A, &kc, kt, ja, jb, m, 2, cv);
        if (m < q1) CAT(FN, _blocks)(A, &kc, kt, ja, jb, m, 1, cv);
    }
}

static void TARGET FN(const FoldArgs *A, int64_t q0, int64_t q1, float *kt)
{
    if (A->cv == 1) CAT(FN, _body)(A, q0, q1, kt, 1);
    else if (A->cv == 3) CAT(FN, _body)(A, q0, q1, kt, 3);
    else CAT(FN, _body)(A, q0, q1, kt, A->cv);
}

#undef ALWAYS

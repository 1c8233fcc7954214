// Gated dilated inception on the CPU: tanh(filter(x)) * sigmoid(gate(x)), forward and backward.
//
// Built and loaded by tsattn/nn/cpu_kernel.py (see its docstring for why this exists and how
// it is compiled). Plain C ABI, float32, no torch headers.
//
// Layout. x is (B, C, N, T) contiguous. For one sample b and channel c the N series of T steps
// are one contiguous "plane" of NT = N * T rows, so a dilated tap j of every series is the plane
// shifted by j * d rows. Output row r = n * T + t of a plane reads rows r + j * d, j < K; rows
// with t >= T' = T - (K - 1) d read into the next series and are never used, which is what lets
// every pass below run over long contiguous rows.
//
// Weights. O = 2 * c_out rows, the filter rows first, then the gate rows, each of K taps over
// C channels: w[o][j][c]. Row o has kernel size K - jstart[o] and uses taps j >= jstart[o] only:
// the zero padding of the small kernels is never multiplied (the library convolution multiplies
// it, 36% of its work for the kernel set 2, 3, 6, 7).
//
// Passes (each split across threads by OpenMP, which resolves to the libgomp torch has already
// loaded, so they run on torch's own warm thread pool):
//   forward   f, g = conv(x); a = tanh f = 2 sigmoid(2 f) - 1; s = sigmoid g; h = a s
//             (filter rows arrive pre-scaled by 2); a and s are kept for the backward
//   gate      dz_f = gy s (1 - a^2), dz_g = gy a s (1 - s), written with zero rows before every
//             plane and at every unused row, plus the bias gradient
//   input     dx[c, r] = sum_o sum_{j >= jstart[o]} w[o][j][c] dz[o, r - j d]
//   weight    dw[o][j][c] = sum_b sum_r x[c, r + j d] dz[o, r]
// Every pass is a register-blocked product: a tile of accumulators stays in vector registers
// while the reduction runs over channels and taps (or rows), as in a GEMM micro-kernel.

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

#if defined(__AVX512F__)
#define VW 16
#elif defined(__AVX__)
#define VW 8
#else
#define VW 4
#endif

typedef float vf __attribute__((vector_size(VW * 4)));
typedef int32_t vi __attribute__((vector_size(VW * 4)));

static inline vf ld(const float *p) {
    vf v;
    memcpy(&v, p, sizeof v);  // an unaligned vector load
    return v;
}
static inline void st(float *p, vf v) { memcpy(p, &v, sizeof v); }

static inline vf bc(float x) {
#if VW == 16
    return (vf)_mm512_set1_ps(x);
#elif VW == 8
    return (vf)_mm256_set1_ps(x);
#else
    return (vf){x, x, x, x};
#endif
}

static inline float hsum(vf v) {
#if VW == 16
    return _mm512_reduce_add_ps((__m512)v);
#elif VW == 8
    __m128 q = _mm_add_ps(_mm256_castps256_ps128((__m256)v), _mm256_extractf128_ps((__m256)v, 1));
    q = _mm_add_ps(q, _mm_movehl_ps(q, q));
    return _mm_cvtss_f32(_mm_add_ss(q, _mm_movehdup_ps(q)));
#else
    return v[0] + v[1] + v[2] + v[3];
#endif
}

// Keep a loaded vector in a register: without it the compiler folds the load into every FMA
// that uses it, and the loads, not the FMAs, become the bottleneck.
#if defined(__x86_64__) || defined(__i386__)
#define PIN(v) __asm__("" : "+v"(v))
#elif defined(__aarch64__)
#define PIN(v) __asm__("" : "+w"(v))
#else
#define PIN(v) (void)0
#endif

// exp with Cephes' range reduction and polynomial (within 2 ulp on the clamped range); the
// clamps are written so that a NaN passes through them and comes out as NaN
static inline vf vexp(vf x) {
    x = x > bc(88.0f) ? bc(88.0f) : x;
    x = x < bc(-87.0f) ? bc(-87.0f) : x;
    const float magic = 12582912.0f;  // 1.5 * 2^23: adding it rounds to the nearest integer
    vf n = (x * 1.44269504088896341f + magic) - magic;
    vf r = x - n * 0.693359375f + n * 2.12194440e-4f;
    vf p = bc(1.9875691500e-4f);
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    vi e = (__builtin_convertvector(n, vi) + 127) << 23;  // 2^n
    return p * (vf)e;
}
static inline vf vsigmoid(vf x) { return 1.0f / (1.0f + vexp(-x)); }

// ---------------------------------------------------------------- threads

typedef void (*work_fn)(const void *ctx, int64_t begin, int64_t end, int tid);

#ifdef _OPENMP
#include <omp.h>
static void parallel_for(int threads, int64_t n, work_fn fn, const void *ctx) {
    if (threads > n) threads = (int)n;
    if (threads <= 1) {
        fn(ctx, 0, n, 0);
        return;
    }
#pragma omp parallel num_threads(threads)
    {
        int64_t tid = omp_get_thread_num(), nt = omp_get_num_threads();
        fn(ctx, n * tid / nt, n * (tid + 1) / nt, (int)tid);
    }
}
#else
#include <pthread.h>
struct job {
    work_fn fn;
    const void *ctx;
    int64_t begin, end;
    int tid;
};
static void *run_job(void *p) {
    job *j = (job *)p;
    j->fn(j->ctx, j->begin, j->end, j->tid);
    return 0;
}
static void parallel_for(int threads, int64_t n, work_fn fn, const void *ctx) {
    if (threads > n) threads = (int)n;
    if (threads > 64) threads = 64;
    if (threads <= 1) {
        fn(ctx, 0, n, 0);
        return;
    }
    job jobs[64];
    pthread_t tid[64];
    int started[64] = {0};
    for (int i = 0; i < threads; ++i) jobs[i] = {fn, ctx, n * i / threads, n * (i + 1) / threads, i};
    for (int i = 1; i < threads; ++i) started[i] = pthread_create(&tid[i], 0, run_job, &jobs[i]) == 0;
    run_job(&jobs[0]);
    for (int i = 1; i < threads; ++i) {
        if (started[i]) pthread_join(tid[i], 0);
        else run_job(&jobs[i]);
    }
}
#endif

// ---------------------------------------------------------------- geometry

struct geom {
    int64_t B, C, O, N, T, K, d;
    int64_t NT, rows, Tout;  // rows of a plane, rows the forward computes, valid steps per series
    const int32_t *jstart;   // (O,) first tap of every weight row
};

static geom make_geom(int64_t B, int64_t C, int64_t O, int64_t N, int64_t T, int64_t K,
                      int64_t d, const int32_t *jstart) {
    geom g = {B, C, O, N, T, K, d, N * T, N * T - (K - 1) * d, T - (K - 1) * d, jstart};
    return g;
}

// tiles sized to the vector registers: 32 with AVX-512, 16 with AVX2 and SSE
#if VW == 16
#define RV 6   // row vectors per tile of the forward and input passes
#define DWC 4  // channels per tile of the weight pass (times 4 weight rows)
#else
#define RV 3
#define DWC 2
#endif
#define TILE (RV * VW)  // rows per tile
#define CHUNK 1024      // rows per work item of the forward and input passes
#define DW_ROWS 2048    // rows per work item of the weight pass

// [begin, end) of chunk k of n over `rows` rows, boundaries on whole tiles
static inline void chunk_range(int64_t rows, int64_t k, int64_t n, int64_t *begin, int64_t *end) {
    *begin = rows * k / n / TILE * TILE;
    *end = k + 1 == n ? rows : rows * (k + 1) / n / TILE * TILE;
}
static inline int64_t n_chunks(int64_t rows) { return (rows + CHUNK - 1) / CHUNK; }

// ---------------------------------------------------------------- forward

struct fwd_ctx {
    geom g;
    const float *x, *w, *bias;  // w (O, K, C) and bias (O,), filter rows scaled by 2
    float *a, *s;               // (B, c_out, NT): tanh f and sigmoid g, kept for the backward
    float *h;                   // (B, c_out, N, T') contiguous: the output
    int pair;                   // filter rows per tile (2 when neighbouring rows share a kernel)
};

// P filter rows o0.. and their P gate rows, RV vectors of rows r0..
template <int P>
static inline void fwd_tile(const fwd_ctx *c, int64_t b, int64_t o0, int64_t r0) {
    const geom &g = c->g;
    const int64_t cout = g.O / 2, K = g.K, C = g.C;
    const float *wr[2 * P];
    vf acc[2 * P][RV];
    for (int t = 0; t < 2 * P; ++t) {
        int64_t o = t < P ? o0 + t : cout + o0 + t - P;
        wr[t] = c->w + o * K * C;
        for (int v = 0; v < RV; ++v) acc[t][v] = bc(c->bias[o]);
    }
    const float *xb = c->x + b * C * g.NT + r0;
    for (int64_t j = g.jstart[o0]; j < K; ++j) {
        const float *xj = xb + j * g.d;
        for (int64_t ci = 0; ci < C; ++ci) {
            const float *xc = xj + ci * g.NT;
            vf xv[RV];
            for (int v = 0; v < RV; ++v) {
                xv[v] = ld(xc + v * VW);
                PIN(xv[v]);
            }
            for (int t = 0; t < 2 * P; ++t) {
                vf wv = bc(wr[t][j * C + ci]);
                for (int v = 0; v < RV; ++v) acc[t][v] += wv * xv[v];
            }
        }
    }
    for (int t = 0; t < P; ++t) {
        const int64_t plane = (b * cout + o0 + t) * g.NT;
        float *h = c->h + (b * cout + o0 + t) * g.N * g.Tout;
        for (int v = 0; v < RV; ++v) {
            const int64_t r = r0 + v * VW;
            vf a = 2.0f * vsigmoid(acc[t][v]) - 1.0f;
            vf s = vsigmoid(acc[P + t][v]);
            vf y = a * s;
            st(c->a + plane + r, a);
            st(c->s + plane + r, s);
            const int64_t n = r / g.T, step = r - n * g.T;
            if (step + VW <= g.Tout) {
                st(h + n * g.Tout + step, y);
            } else {  // the vector crosses unused rows: keep the valid lanes
                for (int l = 0; l < VW; ++l) {
                    int64_t nl = (r + l) / g.T, tl = r + l - nl * g.T;
                    if (tl < g.Tout) h[nl * g.Tout + tl] = y[l];
                }
            }
        }
    }
}

static void fwd_work(const void *p, int64_t begin, int64_t end, int) {
    const fwd_ctx *c = (const fwd_ctx *)p;
    const geom &g = c->g;
    const int64_t nc = n_chunks(g.rows), row_tiles = g.O / 2 / c->pair;
    for (int64_t item = begin; item < end; ++item) {
        int64_t b = item / nc, cb, ce;
        chunk_range(g.rows, item % nc, nc, &cb, &ce);
        for (int64_t ot = 0; ot < row_tiles; ++ot) {
            for (int64_t r0 = cb; r0 < ce; r0 += TILE) {
                int64_t r = r0 + TILE <= ce ? r0 : ce - TILE;  // the last tile overlaps: same values
                if (c->pair == 2) fwd_tile<2>(c, b, ot * 2, r);
                else fwd_tile<1>(c, b, ot, r);
            }
        }
    }
}

// ---------------------------------------------------------------- gate backward

// dz (B, O, P + NT): P = (K - 1) d zero rows before every plane, so the input pass reads
// dz[o, r - j d] without a bounds check
struct gate_ctx {
    geom g;
    int64_t P;
    const float *gy, *a, *s;  // gy (B, c_out, N, T') contiguous
    float *dz, *db;           // db (B, O): per-sample bias gradient
};

static void gate_work(const void *p, int64_t begin, int64_t end, int) {
    const gate_ctx *c = (const gate_ctx *)p;
    const geom &g = c->g;
    const int64_t cout = g.O / 2, plane = c->P + g.NT;
    for (int64_t item = begin; item < end; ++item) {  // item = b * c_out + o
        const int64_t b = item / cout, o = item % cout;
        const float *gy = c->gy + item * g.N * g.Tout;
        const float *a = c->a + item * g.NT, *s = c->s + item * g.NT;
        float *df = c->dz + (b * g.O + o) * plane, *dg = c->dz + (b * g.O + cout + o) * plane;
        memset(df, 0, sizeof(float) * c->P);
        memset(dg, 0, sizeof(float) * c->P);
        df += c->P;
        dg += c->P;
        vf sum_f = bc(0), sum_g = bc(0);
        float tail_f = 0, tail_g = 0;
        for (int64_t n = 0; n < g.N; ++n) {
            const float *gyn = gy + n * g.Tout;
            const int64_t base = n * g.T;
            int64_t t = 0;
            for (; t + VW <= g.Tout; t += VW) {
                vf gv = ld(gyn + t), av = ld(a + base + t), sv = ld(s + base + t);
                vf gs = gv * sv;
                vf f = gs * (1.0f - av * av), q = gs * av * (1.0f - sv);
                st(df + base + t, f);
                st(dg + base + t, q);
                sum_f += f;
                sum_g += q;
            }
            for (; t < g.Tout; ++t) {
                float gs = gyn[t] * s[base + t], av = a[base + t];
                float f = gs * (1.0f - av * av), q = gs * av * (1.0f - s[base + t]);
                df[base + t] = f;
                dg[base + t] = q;
                tail_f += f;
                tail_g += q;
            }
            memset(df + base + g.Tout, 0, sizeof(float) * (g.T - g.Tout));
            memset(dg + base + g.Tout, 0, sizeof(float) * (g.T - g.Tout));
        }
        c->db[b * g.O + o] = hsum(sum_f) + tail_f;
        c->db[b * g.O + cout + o] = hsum(sum_g) + tail_g;
    }
}

// ---------------------------------------------------------------- input gradient

struct dx_ctx {
    geom g;
    int64_t P;
    const float *dz, *w;
    float *dx;  // (B, C, N, T)
};

template <int CT>
static inline void dx_tile(const dx_ctx *c, int64_t b, int64_t c0, int64_t r0) {
    const geom &g = c->g;
    const int64_t K = g.K, C = g.C, plane = c->P + g.NT;
    vf acc[CT][RV];
    for (int t = 0; t < CT; ++t)
        for (int v = 0; v < RV; ++v) acc[t][v] = bc(0);
    const float *zb = c->dz + b * g.O * plane + c->P + r0;
    for (int64_t o = 0; o < g.O; ++o) {
        const float *zo = zb + o * plane;
        const float *wo = c->w + o * K * C + c0;
        for (int64_t j = g.jstart[o]; j < K; ++j) {
            const float *zj = zo - j * g.d;
            vf zv[RV];
            for (int v = 0; v < RV; ++v) {
                zv[v] = ld(zj + v * VW);
                PIN(zv[v]);
            }
            for (int t = 0; t < CT; ++t) {
                vf wv = bc(wo[j * C + t]);
                for (int v = 0; v < RV; ++v) acc[t][v] += wv * zv[v];
            }
        }
    }
    for (int t = 0; t < CT; ++t)
        for (int v = 0; v < RV; ++v) st(c->dx + (b * C + c0 + t) * g.NT + r0 + v * VW, acc[t][v]);
}

static void dx_work(const void *p, int64_t begin, int64_t end, int) {
    const dx_ctx *c = (const dx_ctx *)p;
    const geom &g = c->g;
    const int64_t nc = n_chunks(g.NT);
    for (int64_t item = begin; item < end; ++item) {
        int64_t b = item / nc, cb, ce;
        chunk_range(g.NT, item % nc, nc, &cb, &ce);
        for (int64_t c0 = 0; c0 < g.C; c0 += 4) {
            for (int64_t r0 = cb; r0 < ce; r0 += TILE) {
                int64_t r = r0 + TILE <= ce ? r0 : ce - TILE;
                if (c0 + 4 <= g.C) dx_tile<4>(c, b, c0, r);
                else
                    for (int64_t ci = c0; ci < g.C; ++ci) dx_tile<1>(c, b, ci, r);
            }
        }
    }
}

// ---------------------------------------------------------------- weight gradient

// Work items are groups of whole planes when planes are short, pieces of one plane when they
// are long (about DW_ROWS rows each, which stay in cache while every tile and tap runs over
// them); every thread sums into its own (O, K, C) partial, added up at the end.
struct dw_ctx {
    geom g;
    int64_t P, group, pieces;
    const float *x, *dz;
    float *partial;  // (threads, O, K, C)
};

template <int CT, int OT>
static inline void dw_tile(const dw_ctx *c, int64_t c0, int64_t o0, int64_t j, int64_t b0,
                           int64_t b1, int64_t rb, int64_t re, float *out) {
    const geom &g = c->g;
    const int64_t plane = c->P + g.NT;
    const int64_t rem = (re - rb) % VW, full = re - rem;
    vf mask;  // a remainder is summed from the vector that ends at re, keeping its last lanes
    for (int l = 0; l < VW; ++l) mask[l] = l >= VW - rem ? 1.0f : 0.0f;
    vf acc[CT][OT];
    for (int t = 0; t < CT; ++t)
        for (int u = 0; u < OT; ++u) acc[t][u] = bc(0);
    for (int64_t b = b0; b < b1; ++b) {
        const float *xs[CT];
        const float *zs[OT];
        for (int t = 0; t < CT; ++t) xs[t] = c->x + (b * g.C + c0 + t) * g.NT + j * g.d;
        for (int u = 0; u < OT; ++u) zs[u] = c->dz + (b * g.O + o0 + u) * plane + c->P;
        for (int64_t r = rb; r < full; r += VW) {
            vf xv[CT], zv[OT];
            for (int t = 0; t < CT; ++t) {
                xv[t] = ld(xs[t] + r);
                PIN(xv[t]);
            }
            for (int u = 0; u < OT; ++u) {
                zv[u] = ld(zs[u] + r);
                PIN(zv[u]);
            }
            for (int t = 0; t < CT; ++t)
                for (int u = 0; u < OT; ++u) acc[t][u] += xv[t] * zv[u];
        }
        if (rem) {
            const int64_t r = re - VW;
            vf xv[CT], zv[OT];
            for (int t = 0; t < CT; ++t) xv[t] = ld(xs[t] + r);
            for (int u = 0; u < OT; ++u) zv[u] = ld(zs[u] + r) * mask;
            for (int t = 0; t < CT; ++t)
                for (int u = 0; u < OT; ++u) acc[t][u] += xv[t] * zv[u];
        }
    }
    for (int t = 0; t < CT; ++t)
        for (int u = 0; u < OT; ++u) out[((o0 + u) * g.K + j) * g.C + c0 + t] += hsum(acc[t][u]);
}

static void dw_work(const void *p, int64_t begin, int64_t end, int tid) {
    const dw_ctx *c = (const dw_ctx *)p;
    const geom &g = c->g;
    float *out = c->partial + (int64_t)tid * g.O * g.K * g.C;
    for (int64_t item = begin; item < end; ++item) {
        int64_t b0, b1, rb, re;
        if (c->pieces == 1) {
            b0 = item * c->group;
            b1 = b0 + c->group < g.B ? b0 + c->group : g.B;
            rb = 0;
            re = g.rows;
        } else {  // piece boundaries on whole vectors, so only the plane's end has a remainder
            const int64_t k = item % c->pieces;
            b0 = item / c->pieces;
            b1 = b0 + 1;
            rb = g.rows * k / c->pieces / VW * VW;
            re = k + 1 == c->pieces ? g.rows : g.rows * (k + 1) / c->pieces / VW * VW;
        }
        for (int64_t c0 = 0; c0 < g.C; c0 += DWC) {
            for (int64_t o0 = 0; o0 < g.O; o0 += 4) {
                int64_t j0 = g.K;  // taps of the tile: those of its largest kernel
                for (int64_t o = o0; o < o0 + 4 && o < g.O; ++o) j0 = g.jstart[o] < j0 ? g.jstart[o] : j0;
                for (int64_t j = j0; j < g.K; ++j) {
                    if (c0 + DWC <= g.C && o0 + 4 <= g.O) {
                        dw_tile<DWC, 4>(c, c0, o0, j, b0, b1, rb, re, out);
                    } else {
                        for (int64_t ci = c0; ci < c0 + DWC && ci < g.C; ++ci)
                            for (int64_t o = o0; o < o0 + 4 && o < g.O; ++o)
                                if (j >= g.jstart[o]) dw_tile<1, 1>(c, ci, o, j, b0, b1, rb, re, out);
                    }
                }
            }
        }
    }
}

// ---------------------------------------------------------------- entry points

extern "C" {

// rows a plane must have (N T - (K - 1) d) for the kernel to run; smaller inputs take the
// library convolution
int64_t tsattn_min_rows(void) { return TILE; }

int tsattn_vector_width(void) { return VW; }

// returns 0, or 1 when the input is too short for the kernel
int tsattn_gated_forward(int threads, int64_t B, int64_t C, int64_t O, int64_t N, int64_t T,
                         int64_t K, int64_t d, const int32_t *jstart, const float *x,
                         const float *w, const float *bias, float *a, float *s, float *h) {
    geom g = make_geom(B, C, O, N, T, K, d, jstart);
    if (g.rows < TILE || g.Tout < 1) return 1;
    const int64_t cout = O / 2;
    int pair = cout % 2 == 0 ? 2 : 1;
    for (int64_t o = 0; pair == 2 && o < cout; o += 2)
        if (jstart[o] != jstart[o + 1]) pair = 1;
    fwd_ctx c = {g, x, w, bias, a, s, h, pair};
    parallel_for(threads, B * n_chunks(g.rows), fwd_work, &c);
    return 0;
}

// gy (B, c_out, N, T') contiguous; a, s from the forward; w unscaled (O, K, C). dx (B, C, N, T),
// dw (O, K, C) and db (O,) are written when not NULL (dw entries of taps a row does not use are
// left undefined). Returns 0, 1 when the input is too short, 2 when memory runs out.
int tsattn_gated_backward(int threads, int64_t B, int64_t C, int64_t O, int64_t N, int64_t T,
                          int64_t K, int64_t d, const int32_t *jstart, const float *gy,
                          const float *a, const float *s, const float *x, const float *w,
                          float *dx, float *dw, float *db) {
    geom g = make_geom(B, C, O, N, T, K, d, jstart);
    if (g.rows < TILE || g.Tout < 1) return 1;
    const int64_t P = (K - 1) * d;
    float *dz = (float *)malloc(sizeof(float) * B * O * (P + g.NT));
    float *db_parts = (float *)malloc(sizeof(float) * B * O);
    if (!dz || !db_parts) {
        free(dz);
        free(db_parts);
        return 2;
    }
    gate_ctx gc = {g, P, gy, a, s, dz, db_parts};
    parallel_for(threads, B * (O / 2), gate_work, &gc);
    if (db) {
        for (int64_t o = 0; o < O; ++o) {
            float sum = 0;
            for (int64_t b = 0; b < B; ++b) sum += db_parts[b * O + o];
            db[o] = sum;
        }
    }
    free(db_parts);
    if (dx) {
        dx_ctx xc = {g, P, dz, w, dx};
        parallel_for(threads, B * n_chunks(g.NT), dx_work, &xc);
    }
    int status = 0;
    if (dw) {
        const int64_t size = O * K * C;
        int64_t group = g.rows >= DW_ROWS ? 1 : DW_ROWS / g.rows;
        if (group > 1) {  // whole planes per item, shared evenly by the threads
            int64_t best = 1;
            for (int64_t k = 1; k <= group; ++k)
                if (B % k == 0 && (B / k) % threads == 0) best = k;
            group = best;
        }
        const int64_t pieces = g.rows >= 2 * DW_ROWS ? g.rows / DW_ROWS : 1;
        const int64_t items = pieces > 1 ? B * pieces : (B + group - 1) / group;
        const int nt = threads < 1 ? 1 : (threads < items ? threads : (int)items);
        float *partial = (float *)calloc(nt * size, sizeof(float));
        if (partial) {
            dw_ctx wc = {g, P, group, pieces, x, dz, partial};
            parallel_for(nt, items, dw_work, &wc);
            for (int64_t i = 0; i < size; ++i) {
                float sum = 0;
                for (int t = 0; t < nt; ++t) sum += partial[t * size + i];
                dw[i] = sum;
            }
            free(partial);
        } else {
            status = 2;
        }
    }
    free(dz);
    return status;
}

}  // extern "C"

// The LIF scan and its reverse-time backward on the CPU, as single fused loops over cache-sized
// chunks of neurons (the `cpu` backend; kernels/lif/fused_cpu.py is its Python side).
//
// Neurons are cut into chunks of `chunk` neurons (a multiple of 8, fixed by the caller); each
// thread owns a contiguous range of chunks. Per chunk, the time loop runs with the recurrence
// state (the membrane after reset in the forward, dL/du(t+1) in the backward) in a small array
// that stays in L1, so every [T, N] tensor is read or written exactly once, row by row. The
// element loops are written so that the compiler vectorizes them (no reductions across
// iterations, branch-free bodies); the membrane mean uses 16 fixed lanes per chunk and a fixed
// summation order, so it is deterministic whatever the thread count.
//
// Arithmetic: compute type float for fp32/fp16/bf16 storage, double for fp64. The forward repeats
// the reference's operations in its order, in the compute type, compiled without floating-point
// contraction (-ffp-contract=off), so spikes and u are bit-equal to kernels/lif/naive.py:
//   hard: u(t) = decay * u(t-1) * (1 - o(t-1)) + x(t)  computed as decay * v + x, v = u (1 - o)
//         (multiplying by the 0/1 factor first is exact, and equal bit for bit, signed zeros and
//         non-finite values included)
//   soft: u(t) = decay * (u(t-1) - vth o(t-1)) + x(t)   computed as decay * v + x, v = u - vth o
// The backward follows kernels/lif/fused_torch.py's recurrence; 1 - tanh^2(y) is evaluated as
// 4 e / (1 + e)^2 with e = exp(-2 |y|) (no cancellation in the tails), exp by a Cody-Waite
// reduction and the Cephes polynomial (about 2 ulp) in float, libm's exp in double. Non-finite
// values follow the non-finite rule of docs/kernel.md.
//
// Saved state formats (kernels/lif/backends.py): exact = u in the compute type; compact = u
// rounded to bf16 with round-to-nearest-even (NaN -> 0x7FC0, as torch) plus the spikes as bits,
// [T, ceil(N / 8)] bytes, bit j of byte k = neuron 8k + j, unused high bits of the last byte 0.

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <new>
#include <system_error>
#include <thread>
#include <vector>

namespace {

struct f16 { uint16_t bits; };
struct bf16 { uint16_t bits; };

inline float as_float(uint32_t b) { float f; std::memcpy(&f, &b, 4); return f; }
inline uint32_t as_bits(float f) { uint32_t b; std::memcpy(&b, &f, 4); return b; }

// fp32 <-> fp16 / bf16 conversions, exact and round-to-nearest-even, branch-free enough to
// vectorize (after F. Giesen, "half_to_float_fast4" / "float_to_half_fast3_rtne").
inline float f16_to_float(uint16_t h) {
    const uint32_t shifted_exp = 0x7C00u << 13;
    uint32_t o = (uint32_t(h) & 0x7FFFu) << 13;
    uint32_t exp = shifted_exp & o;
    o += (127u - 15u) << 23;
    if (exp == shifted_exp) {
        o += (128u - 16u) << 23;  // Inf / NaN
    } else if (exp == 0) {
        o += 1u << 23;  // zero / subnormal: renormalize
        o = as_bits(as_float(o) - as_float(113u << 23));
    }
    return as_float(o | ((uint32_t(h) & 0x8000u) << 16));
}

inline uint16_t float_to_f16(float f) {
    uint32_t u = as_bits(f);
    const uint32_t sign = u & 0x80000000u;
    u ^= sign;
    uint32_t o;
    if (u >= (127u + 16u) << 23) {  // overflow to Inf, Inf, NaN -> quiet NaN
        o = u > (255u << 23) ? 0x7E00u : 0x7C00u;
    } else if (u < (113u << 23)) {  // subnormal or zero: let the FPU round
        const uint32_t magic = ((127u - 15u) + (23u - 10u) + 1u) << 23;
        o = as_bits(as_float(u) + as_float(magic)) - magic;
    } else {
        const uint32_t odd = (u >> 13) & 1u;
        u += ((15u - 127u) << 23) + 0xFFFu + odd;
        o = u >> 13;
    }
    return uint16_t(o | (sign >> 16));
}

inline float bf16_to_float(uint16_t h) { return as_float(uint32_t(h) << 16); }

inline uint16_t float_to_bf16(float f) {
    const uint32_t b = as_bits(f);
    const uint16_t r = uint16_t((b + 0x7FFFu + ((b >> 16) & 1u)) >> 16);
    return f != f ? uint16_t(0x7FC0) : r;
}

// Storage type S -> compute type, loads, stores, and the stored value of a spike.
template <class S> struct Storage;
template <> struct Storage<float> {
    using C = float;
    static float load(float v) { return v; }
    static float store(float v) { return v; }
    static float spike(bool o) { return o ? 1.0f : 0.0f; }
};
template <> struct Storage<double> {
    using C = double;
    static double load(double v) { return v; }
    static double store(double v) { return v; }
    static double spike(bool o) { return o ? 1.0 : 0.0; }
};
template <> struct Storage<f16> {
    using C = float;
    static float load(f16 v) { return f16_to_float(v.bits); }
    static f16 store(float v) { return f16{float_to_f16(v)}; }
    static f16 spike(bool o) { return f16{uint16_t(o ? 0x3C00 : 0)}; }
};
template <> struct Storage<bf16> {
    using C = float;
    static float load(bf16 v) { return bf16_to_float(v.bits); }
    static bf16 store(float v) { return bf16{float_to_bf16(v)}; }
    static bf16 spike(bool o) { return bf16{uint16_t(o ? 0x3F80 : 0)}; }
};

// e^x for x <= 0, vectorizable (Cody-Waite reduction, Cephes expf polynomial); 0 for x < -86
// (e^x < 5e-38; exactly 0 for x = -inf, as libm) and NaN for NaN (the scaling by 2^k is a
// multiplication, not an addition to the exponent bits, which would turn some NaNs into numbers).
inline float exp_nonpositive(float x) {
    const bool tiny = x < -86.0f;
    x = tiny ? -86.0f : x;
    const float shifter = 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer
    const float t = x * 1.44269504088896341f + shifter;
    const float n = t - shifter;
    const int32_t k = int32_t(as_bits(t) - as_bits(shifter));
    float r = x - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    const float y = p * r * r + r + 1.0f;
    return tiny ? 0.0f : y * as_float((uint32_t(k) + 127u) << 23);  // y 2^k: exact, and NaN stays NaN
}
inline double exp_nonpositive(double x) { return std::exp(x); }

// 1 - tanh^2(y) = 4 e / (1 + e)^2 with e = exp(-2 |y|).
template <class C> inline C sech2(C y) {
    const C e = exp_nonpositive(C(-2) * std::abs(y));
    const C d = C(1) + e;
    return C(4) * e / (d * d);
}

// The codes of kernels/lif/params.py's SURROGATE_CODES and kernels/lif/backends.py's SAVE_CODES.
enum Surrogate { TANH = 0, RECT = 1, DSPIKE = 2, ATAN = 3 };
enum Save { SAVE_NONE = 0, SAVE_EXACT = 1, SAVE_COMPACT = 2 };

template <class C> struct Params {
    C vth, decay, alpha, half_alpha, inv_alpha, two_vth, dspike_scale, atan_slope, c;
};

// G * d phi / du at u (kernels/lif/naive.py's asymptotic functions), in naive's rounding for the
// window tests: rect |u - vth| < alpha / 2, dspike 0 <= u / (2 vth) <= 1. Outside the window the
// result is selected, not multiplied (docs/kernel.md, the non-finite rule). atan: alpha / 2 over
// 1 + (pi/2 alpha (u - vth))^2, SpikingJelly's ATan.
template <int SURR, class C> inline C surrogate_grad_times(C G, C u, const Params<C>& p) {
    if (SURR == TANH) return G * (C(0.5) * p.alpha * sech2(p.alpha * (u - p.vth)));
    if (SURR == ATAN) {
        const C z = p.atan_slope * (u - p.vth);
        return G * (p.half_alpha / (C(1) + z * z));
    }
    if (SURR == RECT) return std::abs(u - p.vth) < p.half_alpha ? G * p.inv_alpha : C(0);
    const C x = u / p.two_vth;
    const C g = p.dspike_scale * sech2(p.alpha * (x - C(0.5)));
    return (x >= C(0)) & (x <= C(1)) ? G * g : C(0);
}

// Run f(first_chunk, end_chunk) on up to `threads` threads over contiguous ranges of chunks.
// Returns false if a worker ran out of memory.
template <class F> bool parallel_chunks(int64_t chunks, int threads, F f) {
    std::atomic<bool> ok{true};
    auto guarded = [&](int64_t c0, int64_t c1) {
        try {
            f(c0, c1);
        } catch (const std::bad_alloc&) {
            ok = false;
        }
    };
    const int64_t nt = std::max<int64_t>(1, std::min<int64_t>(threads, chunks));
    std::vector<std::thread> pool;
    for (int64_t k = 1; k < nt; ++k) {
        const int64_t c0 = chunks * k / nt, c1 = chunks * (k + 1) / nt;
        try {
            pool.emplace_back(guarded, c0, c1);
        } catch (const std::system_error&) {
            guarded(c0, c1);  // no thread available: do that range here
        }
    }
    guarded(0, chunks / nt);
    for (auto& th : pool) th.join();
    return ok;
}

// Sum of the first n values of buf in 16 lanes, lanes added in order (fixed summation order).
template <class C> inline double lane_sum(const C* buf, int64_t n) {
    C acc[16] = {};
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        for (int k = 0; k < 16; ++k) acc[k] += buf[i + k];
    for (int k = 0; i < n; ++i, ++k) acc[k] += buf[i];
    double s = 0;
    for (int k = 0; k < 16; ++k) s += double(acc[k]);
    return s;
}

// One time step of the forward over n neurons; v (in/out) is the membrane after reset.
template <class S, bool HARD>
inline void forward_row(const S* __restrict x, S* __restrict out, typename Storage<S>::C* __restrict u,
                        typename Storage<S>::C* __restrict v, uint8_t* __restrict o_out, int64_t n,
                        typename Storage<S>::C vth, typename Storage<S>::C decay) {
    using C = typename Storage<S>::C;
    for (int64_t i = 0; i < n; ++i) {
        const C ui = decay * v[i] + Storage<S>::load(x[i]);
        const bool o = ui >= vth;
        const C oc = o ? C(1) : C(0);
        out[i] = Storage<S>::spike(o);
        u[i] = ui;
        o_out[i] = uint8_t(o);
        v[i] = HARD ? ui * (C(1) - oc) : ui - vth * oc;
    }
}

template <class C>
inline void round_to_bf16(const C* __restrict u, uint16_t* __restrict out, int64_t n) {
    for (int64_t i = 0; i < n; ++i) out[i] = float_to_bf16(float(u[i]));
}

// 0/1 bytes -> packed bits; o must be readable (zero) up to a multiple of 8 past n.
inline void pack_bits(const uint8_t* __restrict o, uint8_t* __restrict bits, int64_t n) {
    for (int64_t k = 0; k < (n + 7) / 8; ++k) {
        const uint8_t* q = o + 8 * k;
        bits[k] = uint8_t(q[0] | q[1] << 1 | q[2] << 2 | q[3] << 3 | q[4] << 4 | q[5] << 5 | q[6] << 6 | q[7] << 7);
    }
}

template <class S, bool HARD, int SAVE>
bool forward(const S* x, S* out, void* saved, uint8_t* bits, int64_t T, int64_t N, int64_t chunk,
             int threads, double vth_d, double decay_d, double* partial) {
    using C = typename Storage<S>::C;
    const C vth = C(vth_d), decay = C(decay_d);
    const int64_t chunks = (N + chunk - 1) / chunk, NB = (N + 7) / 8;
    return parallel_chunks(chunks, threads, [=](int64_t c0, int64_t c1) {
        std::vector<C> v(chunk), ubuf(chunk);
        std::vector<uint8_t> obuf(chunk + 8);
        for (int64_t c = c0; c < c1; ++c) {
            const int64_t a = c * chunk, n = std::min(chunk, N - a);
            std::fill(v.begin(), v.end(), C(0));
            double total = 0;
            for (int64_t t = 0; t < T; ++t) {
                C* u = SAVE == SAVE_EXACT ? static_cast<C*>(saved) + t * N + a : ubuf.data();
                forward_row<S, HARD>(x + t * N + a, out + t * N + a, u, v.data(), obuf.data(), n, vth, decay);
                total += lane_sum(u, n);
                if (SAVE == SAVE_COMPACT) {
                    round_to_bf16(u, static_cast<uint16_t*>(saved) + t * N + a, n);
                    std::fill(obuf.begin() + n, obuf.begin() + n + 8, uint8_t(0));
                    pack_bits(obuf.data(), bits + t * NB + a / 8, n);
                }
            }
            partial[c] = total;
        }
    });
}

// The last time step of the backward: nothing flows back from u(t+1). SPIKE_TERM: false when
// dL/do(t) does not exist (no spike gradient): no surrogate term, rather than 0 * sg(NaN) = NaN.
// (A template parameter: a runtime flag here halves the speed of the vectorized loop.)
template <class S, int SURR, bool SPIKE_TERM>
inline void backward_last_row(const S* __restrict gs, const typename Storage<S>::C* __restrict u,
                              typename Storage<S>::C* __restrict gnext, S* __restrict dx, int64_t n,
                              const Params<typename Storage<S>::C> p) {
    using C = typename Storage<S>::C;
    for (int64_t i = 0; i < n; ++i) {
        const C g = (SPIKE_TERM ? surrogate_grad_times<SURR>(Storage<S>::load(gs[i]), u[i], p) : C(0)) + p.c;
        gnext[i] = g;
        dx[i] = Storage<S>::store(g);
    }
}

// One earlier time step: gnext (in/out) is dL/du(t+1), then dL/du(t). o: the saved spikes
// (COMPACT) or unused (recomputed as u >= vth).
template <class S, bool HARD, bool DETACH, int SURR, bool COMPACT, bool SPIKE_TERM>
inline void backward_row(const S* __restrict gs, const typename Storage<S>::C* __restrict u,
                         const typename Storage<S>::C* __restrict o, typename Storage<S>::C* __restrict gnext,
                         S* __restrict dx, int64_t n, const Params<typename Storage<S>::C> p) {
    using C = typename Storage<S>::C;
    const C neg_decay = -p.decay, neg_decay_vth = -p.decay * p.vth;
    for (int64_t i = 0; i < n; ++i) {
        const C ui = u[i], gn = gnext[i];
        const C oi = COMPACT ? o[i] : (ui >= p.vth ? C(1) : C(0));
        C G = SPIKE_TERM ? Storage<S>::load(gs[i]) : C(0);  // dL/do(t)
        if (!DETACH) G = HARD ? G + gn * (neg_decay * ui) : G + gn * neg_decay_vth;
        C g = (SPIKE_TERM ? surrogate_grad_times<SURR>(G, ui, p) : C(0)) + p.c;
        g = g + (HARD ? gn * p.decay * (C(1) - oi) : gn * p.decay);
        gnext[i] = g;
        dx[i] = Storage<S>::store(g);
    }
}

// dd (in/out) += dL/du(t+1) v(t), v(t) = du(t+1)/d decay: the membrane after reset, rounded as
// the forward rounds it. A pass of its own over the L1-resident row, so the surrogate rows are
// not instantiated twice; gnext still holds dL/du(t+1). o: the saved spikes (COMPACT) or unused.
template <class C, bool HARD, bool COMPACT>
inline void decay_grad_row(const C* __restrict u, const C* __restrict o, const C* __restrict gnext,
                           C* __restrict dd, int64_t n, C vth) {
    for (int64_t i = 0; i < n; ++i) {
        const C ui = u[i];
        const C oi = COMPACT ? o[i] : (ui >= vth ? C(1) : C(0));
        dd[i] += gnext[i] * (HARD ? ui * (C(1) - oi) : ui - vth * oi);
    }
}

template <class C>
inline void widen_bf16(const uint16_t* __restrict in, C* __restrict out, int64_t n) {
    for (int64_t i = 0; i < n; ++i) out[i] = C(bf16_to_float(in[i]));
}

template <class C>
inline void unpack_bits(const uint8_t* __restrict bits, C* __restrict o, int64_t n) {
    for (int64_t k = 0; k < (n + 7) / 8; ++k)
        for (int j = 0; j < 8; ++j) o[8 * k + j] = C((bits[k] >> j) & 1);
}

// partial: NULL, or partial[c] = chunk c's sum of dL/du(t+1) v(t) (16 lanes, fixed order), for
// dL/d decay.
template <class S, bool HARD, bool DETACH, int SURR, bool COMPACT>
bool backward(const S* gs, const void* saved, const uint8_t* bits, S* dx, int64_t T, int64_t N, int64_t chunk,
              int threads, const Params<typename Storage<S>::C> p, double* partial) {
    using C = typename Storage<S>::C;
    const int64_t chunks = (N + chunk - 1) / chunk, NB = (N + 7) / 8;
    const bool dgrad = partial != nullptr;
    return parallel_chunks(chunks, threads, [=](int64_t c0, int64_t c1) {
        std::vector<C> gnext(chunk), ubuf(COMPACT ? chunk : 0), obuf(COMPACT ? chunk + 8 : 0), dd(dgrad ? chunk : 0);
        std::vector<S> zeros(gs == nullptr ? chunk : 0, Storage<S>::spike(false));
        for (int64_t c = c0; c < c1; ++c) {
            const int64_t a = c * chunk, n = std::min(chunk, N - a);
            std::fill(dd.begin(), dd.end(), C(0));
            for (int64_t t = T - 1; t >= 0; --t) {
                const S* g = gs == nullptr ? zeros.data() : gs + t * N + a;
                if (COMPACT) {
                    widen_bf16(static_cast<const uint16_t*>(saved) + t * N + a, ubuf.data(), n);
                    unpack_bits(bits + t * NB + a / 8, obuf.data(), n);
                }
                const C* u = COMPACT ? ubuf.data() : static_cast<const C*>(saved) + t * N + a;
                // dL/do(t) exists where spikes have a gradient or a reset path leaves t
                S* d = dx + t * N + a;
                if (dgrad && t < T - 1) decay_grad_row<C, HARD, COMPACT>(u, obuf.data(), gnext.data(), dd.data(), n, p.vth);
                if (t == T - 1) {
                    if (gs != nullptr)
                        backward_last_row<S, SURR, true>(g, u, gnext.data(), d, n, p);
                    else
                        backward_last_row<S, SURR, false>(g, u, gnext.data(), d, n, p);
                } else if constexpr (DETACH) {
                    if (gs != nullptr)
                        backward_row<S, HARD, true, SURR, COMPACT, true>(g, u, obuf.data(), gnext.data(), d, n, p);
                    else
                        backward_row<S, HARD, true, SURR, COMPACT, false>(g, u, obuf.data(), gnext.data(), d, n, p);
                } else {
                    backward_row<S, HARD, false, SURR, COMPACT, true>(g, u, obuf.data(), gnext.data(), d, n, p);
                }
            }
            if (dgrad) partial[c] = lane_sum(dd.data(), n);
        }
    });
}

// Dispatch tables: runtime codes -> template instances.
enum Dtype { F32 = 0, F16 = 1, BF16 = 2, F64 = 3 };

template <class S>
bool forward_dtype(const void* x, void* out, void* saved, uint8_t* bits, int64_t T, int64_t N, int save, int hard,
                   double vth, double decay, int64_t chunk, int threads, double* partial) {
    const S* xs = static_cast<const S*>(x);
    S* os = static_cast<S*>(out);
#define LIF_FWD(H, SV) forward<S, H, SV>(xs, os, saved, bits, T, N, chunk, threads, vth, decay, partial)
    if (hard) {
        if (save == SAVE_NONE) return LIF_FWD(true, SAVE_NONE);
        if (save == SAVE_EXACT) return LIF_FWD(true, SAVE_EXACT);
        return LIF_FWD(true, SAVE_COMPACT);
    }
    if (save == SAVE_NONE) return LIF_FWD(false, SAVE_NONE);
    if (save == SAVE_EXACT) return LIF_FWD(false, SAVE_EXACT);
    return LIF_FWD(false, SAVE_COMPACT);
#undef LIF_FWD
}

template <class S, bool HARD, bool DETACH, int SURR>
bool backward_compact(const void* gs, const void* saved, const uint8_t* bits, void* dx, int64_t T, int64_t N,
                      int64_t chunk, int threads, int compact, const Params<typename Storage<S>::C>& p,
                      double* partial) {
    const S* g = static_cast<const S*>(gs);
    S* d = static_cast<S*>(dx);
    if (compact) return backward<S, HARD, DETACH, SURR, true>(g, saved, bits, d, T, N, chunk, threads, p, partial);
    return backward<S, HARD, DETACH, SURR, false>(g, saved, bits, d, T, N, chunk, threads, p, partial);
}

template <class S, bool HARD, bool DETACH>
bool backward_surrogate(const void* gs, const void* saved, const uint8_t* bits, void* dx, int64_t T, int64_t N,
                        int64_t chunk, int threads, int compact, int surrogate,
                        const Params<typename Storage<S>::C>& p, double* partial) {
#define LIF_BWD_SURR(SU) backward_compact<S, HARD, DETACH, SU>(gs, saved, bits, dx, T, N, chunk, threads, compact, p, partial)
    if (surrogate == TANH) return LIF_BWD_SURR(TANH);
    if (surrogate == RECT) return LIF_BWD_SURR(RECT);
    if (surrogate == ATAN) return LIF_BWD_SURR(ATAN);
    return LIF_BWD_SURR(DSPIKE);
#undef LIF_BWD_SURR
}

template <class S>
bool backward_dtype(const void* gs, const void* saved, const uint8_t* bits, void* dx, int64_t T, int64_t N,
                    int64_t chunk, int threads, int compact, int hard, int detach, int surrogate, double vth,
                    double decay, double alpha, double dspike_scale, double c, double* partial) {
    using C = typename Storage<S>::C;
    const Params<C> p{C(vth), C(decay), C(alpha), C(alpha / 2), C(1 / alpha), C(2 * vth), C(dspike_scale),
                      C(1.5707963267948966 * alpha), C(c)};
#define LIF_BWD(H, D) backward_surrogate<S, H, D>(gs, saved, bits, dx, T, N, chunk, threads, compact, surrogate, p, partial)
    if (hard) return detach ? LIF_BWD(true, true) : LIF_BWD(true, false);
    return detach ? LIF_BWD(false, true) : LIF_BWD(false, false);
#undef LIF_BWD
}

}  // namespace

extern "C" {

// Status codes: 0 ok, 1 bad argument, 2 out of memory.

// x, out: [T, N] contiguous in `dtype`; saved: [T, N] in the compute type (save 1) or bf16
// (save 2), unused for save 0; bits: [T, ceil(N / 8)] uint8 for save 2. Writes the spikes into
// out and the sum of all pre-reset membranes into *u_sum (fixed order).
int lif_cpu_forward(const void* x, void* out, void* saved, uint8_t* bits, int64_t T, int64_t N, int dtype, int save,
                    int hard, double vth, double decay, int64_t chunk, int threads, double* u_sum) {
    if (T < 1 || N < 1 || chunk < 8 || chunk % 8 != 0 || save < 0 || save > 2) return 1;
    const int64_t chunks = (N + chunk - 1) / chunk;
    std::vector<double> partial;
    try {
        partial.resize(chunks);
    } catch (const std::bad_alloc&) {
        return 2;
    }
    bool ok;
    switch (dtype) {
        case F32: ok = forward_dtype<float>(x, out, saved, bits, T, N, save, hard, vth, decay, chunk, threads, partial.data()); break;
        case F16: ok = forward_dtype<f16>(x, out, saved, bits, T, N, save, hard, vth, decay, chunk, threads, partial.data()); break;
        case BF16: ok = forward_dtype<bf16>(x, out, saved, bits, T, N, save, hard, vth, decay, chunk, threads, partial.data()); break;
        case F64: ok = forward_dtype<double>(x, out, saved, bits, T, N, save, hard, vth, decay, chunk, threads, partial.data()); break;
        default: return 1;
    }
    if (!ok) return 2;
    double s = 0;
    for (double v : partial) s += v;
    *u_sum = s;
    return 0;
}

// gs: [T, N] in `dtype` or NULL (no spike gradient); saved/bits as written by lif_cpu_forward
// (compact = 1: bf16 membrane and spike bits); dx: [T, N] in `dtype`. c = dL/du_mean / (T N).
// decay_grad: NULL, or where dL/d decay is written (the sum over t < T-1 and all neurons of
// dL/du(t+1) v(t), v the membrane after reset; fixed order).
int lif_cpu_backward(const void* gs, const void* saved, const uint8_t* bits, void* dx, int64_t T, int64_t N,
                     int dtype, int compact, int hard, int detach, int surrogate, double vth, double decay,
                     double alpha, double dspike_scale, double c, int64_t chunk, int threads, double* decay_grad) {
    if (T < 1 || N < 1 || chunk < 8 || chunk % 8 != 0 || surrogate < TANH || surrogate > ATAN) return 1;
    const int64_t chunks = (N + chunk - 1) / chunk;
    std::vector<double> partial;
    try {
        partial.resize(decay_grad != nullptr ? chunks : 0);
    } catch (const std::bad_alloc&) {
        return 2;
    }
    double* parts = decay_grad != nullptr ? partial.data() : nullptr;
    bool ok;
    switch (dtype) {
        case F32: ok = backward_dtype<float>(gs, saved, bits, dx, T, N, chunk, threads, compact, hard, detach, surrogate, vth, decay, alpha, dspike_scale, c, parts); break;
        case F16: ok = backward_dtype<f16>(gs, saved, bits, dx, T, N, chunk, threads, compact, hard, detach, surrogate, vth, decay, alpha, dspike_scale, c, parts); break;
        case BF16: ok = backward_dtype<bf16>(gs, saved, bits, dx, T, N, chunk, threads, compact, hard, detach, surrogate, vth, decay, alpha, dspike_scale, c, parts); break;
        case F64: ok = backward_dtype<double>(gs, saved, bits, dx, T, N, chunk, threads, compact, hard, detach, surrogate, vth, decay, alpha, dspike_scale, c, parts); break;
        default: return 1;
    }
    if (!ok) return 2;
    if (decay_grad != nullptr) {
        double s = 0;
        for (double v : partial) s += v;
        *decay_grad = s;
    }
    return 0;
}

}  // extern "C"

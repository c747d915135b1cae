// Small fixed-size matrices for the fused rules (hand-written; copied as it is into the
// generated folder).  A fused rule computes a whole derivative of one matrix in registers and
// on the stack: every size is a compile-time constant, so that the compiler unrolls and
// vectorises the loops.  Matrices are row-major values (Mat<T, rows, cols>); every function
// here is the per-matrix counterpart of a helper of the array backends' runtimes
// (templates/_runtime_shared.py), with the same conventions: vectors are columns (n x 1),
// pairwise_inv is 0 at ties, solves read one triangle.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <complex>
#include <cstdint>
#include <limits>
#include <type_traits>
#if defined(__AVX__)
#include <immintrin.h>
#endif

namespace fr {

using index = std::int64_t;

template <class T> struct real_of { using type = T; };
template <class T> struct real_of<std::complex<T>> { using type = T; };
template <class T> using real_t = typename real_of<T>::type;

template <class T> inline T conj_of(T x) { return x; }
template <class T> inline std::complex<T> conj_of(std::complex<T> x) { return std::conj(x); }
template <class T> inline T re_of(T x) { return x; }
template <class T> inline std::complex<T> re_of(std::complex<T> x) { return {x.real(), T(0)}; }
template <class T> inline T im_of(T) { return T(0); }
template <class T> inline std::complex<T> im_of(std::complex<T> x) { return {x.imag(), T(0)}; }

// Lanes<S, L>: L real numbers of L matrices at once, one per SIMD lane (a GCC/Clang vector),
// so that a rule runs on L matrices of a batch with no shuffles: every operation the rules
// use on a real number is defined on it, lane by lane.
template <class S, int L> struct Lanes {
  typedef S vector __attribute__((vector_size(sizeof(S) * L)));
  static constexpr int count = L;
  vector v;
  Lanes() = default;  // uninitialised, as a number is; Lanes{} is zero
  template <class A, class = std::enable_if_t<std::is_arithmetic_v<A>>>
  Lanes(A a) : v(vector{} + S(a)) {}
  explicit Lanes(vector x) : v(x) {}
  Lanes& operator+=(Lanes y) { v += y.v; return *this; }
  Lanes& operator-=(Lanes y) { v -= y.v; return *this; }
};
template <class S, int L> inline Lanes<S, L> operator+(Lanes<S, L> x, Lanes<S, L> y) { return Lanes<S, L>(x.v + y.v); }
template <class S, int L> inline Lanes<S, L> operator-(Lanes<S, L> x, Lanes<S, L> y) { return Lanes<S, L>(x.v - y.v); }
template <class S, int L> inline Lanes<S, L> operator*(Lanes<S, L> x, Lanes<S, L> y) { return Lanes<S, L>(x.v * y.v); }
template <class S, int L> inline Lanes<S, L> operator/(Lanes<S, L> x, Lanes<S, L> y) { return Lanes<S, L>(x.v / y.v); }
template <class S, int L> inline Lanes<S, L> operator-(Lanes<S, L> x) { return Lanes<S, L>(-x.v); }
template <class S, int L> struct real_of<Lanes<S, L>> { using type = Lanes<S, L>; };
template <class S, int L> inline Lanes<S, L> conj_of(Lanes<S, L> x) { return x; }
template <class S, int L> inline Lanes<S, L> re_of(Lanes<S, L> x) { return x; }
template <class S, int L> inline Lanes<S, L> im_of(Lanes<S, L>) { return {}; }

template <class T> struct is_complex : std::false_type {};
template <class T> struct is_complex<std::complex<T>> : std::true_type {};
template <class T> struct is_lanes : std::false_type {};
template <class S, int L> struct is_lanes<Lanes<S, L>> : std::true_type {};
// the real number type of one entry: float, double (of a complex or of lanes too)
template <class T> struct scalar_of { using type = real_t<T>; };
template <class S, int L> struct scalar_of<Lanes<S, L>> { using type = S; };
template <class T> using scalar_t = typename scalar_of<T>::type;
// the lanes of a 32-byte vector of S (8 float, 4 double)
template <class S> using Lanes32 = Lanes<S, int(32 / sizeof(S))>;

// |x|, max(x, y) and where(c, x, y) of numbers or of lanes
template <class T> inline real_t<T> magnitude(T x) { return std::abs(x); }
template <class S, int L> inline Lanes<S, L> magnitude(Lanes<S, L> x) {
  return Lanes<S, L>(x.v < 0 ? -x.v : x.v);
}
template <class T> inline T maximum(T x, T y) { return x < y ? y : x; }
template <class S, int L> inline Lanes<S, L> maximum(Lanes<S, L> x, Lanes<S, L> y) {
  return Lanes<S, L>(x.v < y.v ? y.v : x.v);
}
template <class T> inline T where_at_most(real_t<T> x, real_t<T> limit, T then, T otherwise) {
  return x <= limit ? then : otherwise;
}
template <class S, int L>
inline Lanes<S, L> where_at_most(Lanes<S, L> x, Lanes<S, L> limit, Lanes<S, L> then,
                                 Lanes<S, L> otherwise) {
  return Lanes<S, L>(x.v <= limit.v ? then.v : otherwise.v);
}

// One matrix: rows x cols entries, row-major.  A zero-size matrix holds no entry.  A function
// that leaves entries unwritten starts from Mat{} (zeros).
template <class T, index R, index C> struct Mat {
  static constexpr index rows = R, cols = C;
  std::array<T, static_cast<std::size_t>(R * C)> a;  // uninitialised; Mat{} is zero
  T& operator()(index i, index j) { return a[i * C + j]; }
  const T& operator()(index i, index j) const { return a[i * C + j]; }
};

// -- the L x L transpose of L lane vectors (r[l]: L consecutive entries of matrix l ->
// r[t]: entry t of the L matrices), where lanes are loaded from or stored to matrices whose
// entries lie together: AVX shuffles for 8 float / 4 double lanes, none elsewhere ------------
template <class S, int L> struct lane_transpose : std::false_type {};
#if defined(__AVX__)
template <> struct lane_transpose<float, 8> : std::true_type {
  using vector = Lanes<float, 8>::vector;
  static void apply(vector* r) {
    __m256 t[8], s[8];
    for (int i = 0; i < 4; ++i) {
      t[2 * i] = _mm256_unpacklo_ps(__m256(r[2 * i]), __m256(r[2 * i + 1]));
      t[2 * i + 1] = _mm256_unpackhi_ps(__m256(r[2 * i]), __m256(r[2 * i + 1]));
    }
    for (int i = 0; i < 2; ++i)
      for (int h = 0; h < 2; ++h) {
        s[4 * i + 2 * h] = _mm256_shuffle_ps(t[4 * i + h], t[4 * i + h + 2], 0x44);
        s[4 * i + 2 * h + 1] = _mm256_shuffle_ps(t[4 * i + h], t[4 * i + h + 2], 0xEE);
      }
    for (int i = 0; i < 4; ++i) {
      r[i] = vector(_mm256_permute2f128_ps(s[i], s[i + 4], 0x20));
      r[i + 4] = vector(_mm256_permute2f128_ps(s[i], s[i + 4], 0x31));
    }
  }
};
template <> struct lane_transpose<double, 4> : std::true_type {
  using vector = Lanes<double, 4>::vector;
  static void apply(vector* r) {
    const __m256d t0 = _mm256_unpacklo_pd(__m256d(r[0]), __m256d(r[1]));
    const __m256d t1 = _mm256_unpackhi_pd(__m256d(r[0]), __m256d(r[1]));
    const __m256d t2 = _mm256_unpacklo_pd(__m256d(r[2]), __m256d(r[3]));
    const __m256d t3 = _mm256_unpackhi_pd(__m256d(r[2]), __m256d(r[3]));
    r[0] = vector(_mm256_permute2f128_pd(t0, t2, 0x20));
    r[1] = vector(_mm256_permute2f128_pd(t1, t3, 0x20));
    r[2] = vector(_mm256_permute2f128_pd(t0, t2, 0x31));
    r[3] = vector(_mm256_permute2f128_pd(t1, t3, 0x31));
  }
};
#endif

// -- loading matrix b of a batch (for lanes, matrices b, ..., b + L - 1) from an array of any
// strides (in entries: between matrices, rows, columns), converted; storing into a C-contiguous
// array --------------------------------------------------------------------------------------
template <class T, index R, index C, class S>
inline Mat<T, R, C> load(const S* p, const index* stride, index b) {
  Mat<T, R, C> x;
  if constexpr (is_lanes<T>::value) {
    constexpr int L = T::count;
    if constexpr (std::is_same_v<S, scalar_t<T>> && lane_transpose<S, L>::value) {
      // each matrix's entries together (row- or column-major): L of them at a time from each
      // of the L matrices, transposed into lanes (a gather of single entries otherwise)
      const bool by_rows = stride[2] == 1 && (R == 1 || stride[1] == C);
      const bool by_cols = stride[1] == 1 && (C == 1 || stride[2] == R);
      if (by_rows || by_cols) {
        constexpr index N = R * C, whole = N / L * L;
        const S* first = p + b * stride[0];
        for (index e = 0; e < N; e += L) {
          typename T::vector r[L];
          for (int l = 0; l < L; ++l) {
            if (e < whole) {
              __builtin_memcpy(&r[l], first + l * stride[0] + e, sizeof(r[l]));
            } else {
              r[l] = typename T::vector{};
              for (index f = e; f < N; ++f) r[l][f - e] = first[l * stride[0] + f];
            }
          }
          lane_transpose<S, L>::apply(r);
          for (index f = e; f < std::min(e + L, N); ++f) {
            const index i = by_rows ? f / C : f % R, j = by_rows ? f % C : f / R;
            x(i, j).v = r[f - e];
          }
        }
        return x;
      }
    }
    for (index i = 0; i < R; ++i)
      for (index j = 0; j < C; ++j) {
        const S* entry = p + b * stride[0] + i * stride[1] + j * stride[2];
        for (int l = 0; l < T::count; ++l) x(i, j).v[l] = entry[l * stride[0]];
      }
  } else {
    for (index i = 0; i < R; ++i)
      for (index j = 0; j < C; ++j) x(i, j) = T(p[b * stride[0] + i * stride[1] + j * stride[2]]);
  }
  return x;
}
template <class S, class T, index R, index C>
inline void store(const Mat<T, R, C>& x, S* p, index b) {
  if constexpr (is_lanes<T>::value) {
    constexpr int L = T::count;
    constexpr index N = R * C;
    if constexpr (std::is_same_v<S, scalar_t<T>> && lane_transpose<S, L>::value) {
      for (index e = 0; e < N; e += L) {  // lanes of L entries -> L entries of each matrix
        typename T::vector r[L];
        for (int t = 0; t < L; ++t) r[t] = e + t < N ? x.a[e + t].v : typename T::vector{};
        lane_transpose<S, L>::apply(r);
        for (int l = 0; l < L; ++l) {
          if (e + L <= N) __builtin_memcpy(p + (b + l) * N + e, &r[l], sizeof(r[l]));
          else for (index f = e; f < N; ++f) p[(b + l) * N + f] = r[l][f - e];
        }
      }
      return;
    }
    for (int l = 0; l < L; ++l)
      for (index i = 0; i < N; ++i) p[(b + l) * N + i] = x.a[i].v[l];
  } else {
    for (index i = 0; i < R * C; ++i) {
      if constexpr (std::is_same_v<S, T>) p[b * R * C + i] = x.a[i];
      else if constexpr (std::is_same_v<S, real_t<T>>) p[b * R * C + i] = std::real(x.a[i]);
      else p[b * R * C + i] = S(x.a[i]);
    }
  }
}

// -- arithmetic: sums, Hadamard products, scalars -----------------------------------------------
template <class T, index R, index C>
inline Mat<T, R, C> operator+(const Mat<T, R, C>& x, const Mat<T, R, C>& y) {
  Mat<T, R, C> z;
  for (index i = 0; i < R * C; ++i) z.a[i] = x.a[i] + y.a[i];
  return z;
}
template <class T, index R, index C>
inline Mat<T, R, C> operator-(const Mat<T, R, C>& x, const Mat<T, R, C>& y) {
  Mat<T, R, C> z;
  for (index i = 0; i < R * C; ++i) z.a[i] = x.a[i] - y.a[i];
  return z;
}
template <class T, index R, index C> inline Mat<T, R, C> operator-(const Mat<T, R, C>& x) {
  Mat<T, R, C> z;
  for (index i = 0; i < R * C; ++i) z.a[i] = -x.a[i];
  return z;
}
template <class T, index R, index C>
inline Mat<T, R, C> operator*(const Mat<T, R, C>& x, const Mat<T, R, C>& y) {  // Hadamard
  Mat<T, R, C> z;
  for (index i = 0; i < R * C; ++i) z.a[i] = x.a[i] * y.a[i];
  return z;
}
template <class S, class T, index R, index C,
          class = std::enable_if_t<std::is_arithmetic_v<S>>>
inline Mat<T, R, C> operator*(S s, const Mat<T, R, C>& x) {
  const T c = T(real_t<T>(s));
  Mat<T, R, C> z;
  for (index i = 0; i < R * C; ++i) z.a[i] = c * x.a[i];
  return z;
}

// -- products ----------------------------------------------------------------------------------
template <class T, index R, index K, index C>
inline Mat<T, R, C> mm(const Mat<T, R, K>& x, const Mat<T, K, C>& y) {
  Mat<T, R, C> z{};
  for (index i = 0; i < R; ++i)
    for (index l = 0; l < K; ++l) {
      const T xil = x(i, l);
      for (index j = 0; j < C; ++j) z(i, j) += xil * y(l, j);
    }
  return z;
}
// diag(v) X and X diag(v) without forming diag(v)
template <class T, index R, index C>
inline Mat<T, R, C> scale_rows(const Mat<T, R, 1>& v, const Mat<T, R, C>& x) {
  Mat<T, R, C> z;
  for (index i = 0; i < R; ++i)
    for (index j = 0; j < C; ++j) z(i, j) = v(i, 0) * x(i, j);
  return z;
}
template <class T, index R, index C>
inline Mat<T, R, C> scale_cols(const Mat<T, R, C>& x, const Mat<T, C, 1>& v) {
  Mat<T, R, C> z;
  for (index i = 0; i < R; ++i)
    for (index j = 0; j < C; ++j) z(i, j) = x(i, j) * v(j, 0);
  return z;
}

// -- elementwise and index maps ----------------------------------------------------------------
template <class T, index R, index C> inline Mat<T, C, R> transpose(const Mat<T, R, C>& x) {
  Mat<T, C, R> z;
  for (index i = 0; i < R; ++i)
    for (index j = 0; j < C; ++j) z(j, i) = x(i, j);
  return z;
}
template <class T, index R, index C> inline Mat<T, C, R> adjoint(const Mat<T, R, C>& x) {
  Mat<T, C, R> z;
  for (index i = 0; i < R; ++i)
    for (index j = 0; j < C; ++j) z(j, i) = conj_of(x(i, j));
  return z;
}
// f applied to every entry
template <class F, class T, index R, index C> inline Mat<T, R, C> map(const Mat<T, R, C>& x, F f) {
  Mat<T, R, C> z;
  for (index i = 0; i < R * C; ++i) z.a[i] = f(x.a[i]);
  return z;
}
template <class T, index R, index C> inline Mat<T, R, C> conj(const Mat<T, R, C>& x) {
  return map(x, [](T v) { return conj_of(v); });
}
template <class T, index R, index C> inline Mat<T, R, C> re(const Mat<T, R, C>& x) {
  return map(x, [](T v) { return re_of(v); });
}
template <class T, index R, index C> inline Mat<T, R, C> im(const Mat<T, R, C>& x) {
  return map(x, [](T v) { return im_of(v); });
}
template <class T, index R, index C> inline Mat<T, R, C> recip(const Mat<T, R, C>& x) {
  return map(x, [](T v) { return T(1) / v; });
}
template <class T, index R, index C> inline Mat<T, R, C> flip_rows(const Mat<T, R, C>& x) {
  Mat<T, R, C> z;
  for (index i = 0; i < R; ++i)
    for (index j = 0; j < C; ++j) z(i, j) = x(R - 1 - i, j);
  return z;
}
template <class T, index R, index C> inline Mat<T, R, C> flip_cols(const Mat<T, R, C>& x) {
  Mat<T, R, C> z;
  for (index i = 0; i < R; ++i)
    for (index j = 0; j < C; ++j) z(i, j) = x(i, C - 1 - j);
  return z;
}
template <class T, index R, index C> inline Mat<T, R, C> tril(const Mat<T, R, C>& x, index k) {
  Mat<T, R, C> z;
  for (index i = 0; i < R; ++i)
    for (index j = 0; j < C; ++j) z(i, j) = j - i <= k ? x(i, j) : T(0);
  return z;
}
template <class T, index R, index C> inline Mat<T, R, C> triu(const Mat<T, R, C>& x, index k) {
  Mat<T, R, C> z;
  for (index i = 0; i < R; ++i)
    for (index j = 0; j < C; ++j) z(i, j) = j - i >= k ? x(i, j) : T(0);
  return z;
}
template <class T, index N> inline Mat<T, N, N> sym(const Mat<T, N, N>& x) {
  Mat<T, N, N> z;
  for (index i = 0; i < N; ++i)
    for (index j = 0; j < N; ++j) z(i, j) = (x(i, j) + conj_of(x(j, i))) * real_t<T>(0.5);
  return z;
}
template <class T, index N> inline Mat<T, N, N> skew(const Mat<T, N, N>& x) {
  Mat<T, N, N> z;
  for (index i = 0; i < N; ++i)
    for (index j = 0; j < N; ++j) z(i, j) = (x(i, j) - conj_of(x(j, i))) * real_t<T>(0.5);
  return z;
}
// the strictly lower triangle copied to the upper as its conjugate, the diagonal's real part
template <class T, index N> inline Mat<T, N, N> copyltu(const Mat<T, N, N>& x) {
  Mat<T, N, N> z;
  for (index i = 0; i < N; ++i) {
    z(i, i) = re_of(x(i, i));
    for (index j = 0; j < i; ++j) {
      z(i, j) = x(i, j);
      z(j, i) = conj_of(x(i, j));
    }
  }
  return z;
}
template <class T, index R, index C>
inline Mat<T, std::min(R, C), 1> diagonal(const Mat<T, R, C>& x) {
  Mat<T, std::min(R, C), 1> z;
  for (index i = 0; i < std::min(R, C); ++i) z(i, 0) = x(i, i);
  return z;
}
template <class T, index N> inline Mat<T, N, N> diag(const Mat<T, N, 1>& v) {
  Mat<T, N, N> z{};
  for (index i = 0; i < N; ++i) z(i, i) = v(i, 0);
  return z;
}
template <class T, index R, index C> inline Mat<T, R, C> eye() {
  Mat<T, R, C> z{};
  for (index i = 0; i < std::min(R, C); ++i) z(i, i) = T(1);
  return z;
}
template <class T> inline real_t<T> epsilon() {
  return real_t<T>(std::numeric_limits<scalar_t<T>>::epsilon());
}
// n eps max|v|: two values of the column v tie when they differ by at most this
template <class T, index N> inline real_t<T> tie_tolerance(const Mat<T, N, 1>& v) {
  real_t<T> largest = 0;
  for (index i = 0; i < N; ++i) largest = maximum(largest, magnitude(v(i, 0)));
  return real_t<T>(N) * epsilon<T>() * largest;
}
// F(i, j) = 1 / (v_j - v_i), 0 where |v_j - v_i| <= n eps max|v| (the diagonal included)
template <class T, index N> inline Mat<T, N, N> pairwise_inv(const Mat<T, N, 1>& v) {
  using R = real_t<T>;
  const R tol = tie_tolerance(v);
  Mat<T, N, N> z;
  for (index i = 0; i < N; ++i)
    for (index j = 0; j < N; ++j) {
      const T gap = v(j, 0) - v(i, 0);
      const R size = magnitude(gap);
      z(i, j) = where_at_most(size, tol, T(0), T(1) / where_at_most(size, tol, T(1), gap));
    }
  return z;
}

// -- blocks, stacks, padding -------------------------------------------------------------------
template <index R0, index R1, index C0, index C1, class T, index R, index C>
inline Mat<T, R1 - R0, C1 - C0> block(const Mat<T, R, C>& x) {
  static_assert(0 <= R0 && R0 <= R1 && R1 <= R && 0 <= C0 && C0 <= C1 && C1 <= C);
  Mat<T, R1 - R0, C1 - C0> z;
  for (index i = R0; i < R1; ++i)
    for (index j = C0; j < C1; ++j) z(i - R0, j - C0) = x(i, j);
  return z;
}
template <index Top, index Bottom, index Left, index Right, class T, index R, index C>
inline Mat<T, Top + R + Bottom, Left + C + Right> pad(const Mat<T, R, C>& x) {
  Mat<T, Top + R + Bottom, Left + C + Right> z{};
  for (index i = 0; i < R; ++i)
    for (index j = 0; j < C; ++j) z(Top + i, Left + j) = x(i, j);
  return z;
}
template <class T, index R, index C> inline Mat<T, R, C> hstack(const Mat<T, R, C>& x) {
  return x;
}
template <class T, index R, index C1, index C2, class... Rest>
inline auto hstack(const Mat<T, R, C1>& x, const Mat<T, R, C2>& y, const Rest&... rest) {
  Mat<T, R, C1 + C2> z;
  for (index i = 0; i < R; ++i) {
    for (index j = 0; j < C1; ++j) z(i, j) = x(i, j);
    for (index j = 0; j < C2; ++j) z(i, C1 + j) = y(i, j);
  }
  return hstack(z, rest...);
}
template <class T, index R, index C> inline Mat<T, R, C> vstack(const Mat<T, R, C>& x) {
  return x;
}
template <class T, index R1, index R2, index C, class... Rest>
inline auto vstack(const Mat<T, R1, C>& x, const Mat<T, R2, C>& y, const Rest&... rest) {
  Mat<T, R1 + R2, C> z;
  for (index i = 0; i < R1 * C; ++i) z.a[i] = x.a[i];
  for (index i = 0; i < R2 * C; ++i) z.a[R1 * C + i] = y.a[i];
  return vstack(z, rest...);
}

// -- permutations (LU's P as a 0/1 matrix) -----------------------------------------------------
template <class T, index M, index C>
inline Mat<T, M, C> permute_rows(const Mat<T, M, M>& p, const Mat<T, M, C>& x, bool transpose_p) {
  return transpose_p ? mm(transpose(p), x) : mm(p, x);
}
template <class T, index R, index N>
inline Mat<T, R, N> permute_cols(const Mat<T, N, N>& p, const Mat<T, R, N>& x, bool transpose_p) {
  return transpose_p ? mm(x, transpose(p)) : mm(x, p);
}

// -- solves ------------------------------------------------------------------------------------
// T^-1 B (left) or B T^-1 (right), T read from its upper or lower triangle, unit: 1 on its
// diagonal (not read)
template <bool Upper, bool Left, bool Unit, class T, index N, index R, index C>
inline Mat<T, R, C> solve_triangular(const Mat<T, N, N>& t, const Mat<T, R, C>& b) {
  if constexpr (!Left) {  // X T = B  <=>  T^T X^T = B^T, T^T of the other triangle
    return transpose(solve_triangular<!Upper, true, Unit>(transpose(t), transpose(b)));
  } else {
    static_assert(R == N);
    Mat<T, R, C> x = b;
    for (index s = 0; s < N; ++s) {
      const index i = Upper ? N - 1 - s : s;
      for (index j = 0; j < C; ++j) {
        T sum = x(i, j);
        if constexpr (Upper) {
          for (index l = i + 1; l < N; ++l) sum -= t(i, l) * x(l, j);
        } else {
          for (index l = 0; l < i; ++l) sum -= t(i, l) * x(l, j);
        }
        x(i, j) = Unit ? sum : sum / t(i, i);
      }
    }
    return x;
  }
}
// A^-1 B (left) or B A^-1 (right): Gaussian elimination with partial pivoting
template <bool Left, class T, index N, index R, index C>
inline Mat<T, R, C> solve(const Mat<T, N, N>& a, const Mat<T, R, C>& b) {
  if constexpr (!Left) {
    return transpose(solve<true>(transpose(a), transpose(b)));
  } else if constexpr (is_lanes<T>::value) {  // pivots differ between lanes: one at a time
    using S = scalar_t<T>;
    Mat<T, R, C> x;
    for (int l = 0; l < T::count; ++l) {
      Mat<S, N, N> al;
      Mat<S, R, C> bl;
      for (index i = 0; i < N * N; ++i) al.a[i] = a.a[i].v[l];
      for (index i = 0; i < R * C; ++i) bl.a[i] = b.a[i].v[l];
      const Mat<S, R, C> xl = solve<true>(al, bl);
      for (index i = 0; i < R * C; ++i) x.a[i].v[l] = xl.a[i];
    }
    return x;
  } else {
    static_assert(R == N);
    Mat<T, N, N> lu = a;
    Mat<T, R, C> x = b;
    for (index c = 0; c < N; ++c) {
      index p = c;
      for (index i = c + 1; i < N; ++i)
        if (std::abs(lu(i, c)) > std::abs(lu(p, c))) p = i;
      if (p != c) {
        for (index j = 0; j < N; ++j) std::swap(lu(c, j), lu(p, j));
        for (index j = 0; j < C; ++j) std::swap(x(c, j), x(p, j));
      }
      for (index i = c + 1; i < N; ++i) {
        const T f = lu(i, c) / lu(c, c);
        for (index j = c; j < N; ++j) lu(i, j) -= f * lu(c, j);
        for (index j = 0; j < C; ++j) x(i, j) -= f * x(c, j);
      }
    }
    return solve_triangular<true, true, false>(lu, x);
  }
}

// X with A X + X B = C (A: R x R, B: C x C; Hermitian in the rules, any here): the R C x R C
// system of X's row-major entries, (A X + X B)(i, j) = sum_q A(i, q) X(q, j) + X(i, q) B(q, j),
// by solve (the array backends diagonalise A and B instead)
template <class T, index R, index C>
inline Mat<T, R, C> solve_sylvester(const Mat<T, R, R>& a, const Mat<T, C, C>& b,
                                    const Mat<T, R, C>& c) {
  if constexpr (R * C == 0) {
    return c;
  } else {
    Mat<T, R * C, R * C> k{};
    for (index i = 0; i < R; ++i)
      for (index j = 0; j < C; ++j) {
        for (index q = 0; q < R; ++q) k(i * C + j, q * C + j) = k(i * C + j, q * C + j) + a(i, q);
        for (index q = 0; q < C; ++q) k(i * C + j, i * C + q) = k(i * C + j, i * C + q) + b(q, j);
      }
    Mat<T, R * C, 1> v;
    for (index i = 0; i < R * C; ++i) v.a[i] = c.a[i];
    const Mat<T, R * C, 1> x = solve<true>(k, v);
    Mat<T, R, C> out;
    for (index i = 0; i < R * C; ++i) out.a[i] = x.a[i];
    return out;
  }
}

// X with A X + X B = C in the eigenbases of A = QA diag(la) QA^H and B = QB diag(lb) QB^H
// (the rules' 'eigenbasis'): X = QA ((QA^H C QB) / (la_i + lb_j)) QB^H
template <class T, class L, index R, index C>
inline Mat<T, R, C> solve_sylvester_in_bases(const Mat<T, R, C>& c, const Mat<L, R, 1>& la,
                                             const Mat<T, R, R>& qa, const Mat<L, C, 1>& lb,
                                             const Mat<T, C, C>& qb) {
  Mat<T, R, C> inner = mm(mm(adjoint(qa), c), qb);
  for (index i = 0; i < R; ++i)
    for (index j = 0; j < C; ++j) inner(i, j) = inner(i, j) / T(la(i, 0) + lb(j, 0));
  return mm(mm(qa, inner), adjoint(qb));
}

// The strictly lower X with tril(X S - S X, -1) = tril(C, -1), S = triu(T) (Adjoint: its
// adjoint), entry by entry: column j from the first (S upper) or the last (S lower), each
// from its bottom (S upper) or its top (S lower), so that every X entry read is solved
// (templates/_runtime_shared.py's _tril_sylvester_by_columns)
template <bool Adjoint, class T, index N>
inline Mat<T, N, N> solve_tril_sylvester(const Mat<T, N, N>& t, const Mat<T, N, N>& c) {
  Mat<T, N, N> s{};
  for (index i = 0; i < N; ++i)
    for (index j = i; j < N; ++j) {
      if constexpr (Adjoint) s(j, i) = conj_of(t(i, j));
      else s(i, j) = t(i, j);
    }
  Mat<T, N, N> x{};
  for (index q = 0; q + 1 < N; ++q) {
    const index j = Adjoint ? N - 2 - q : q;
    for (index p = 0; p < N - 1 - j; ++p) {
      const index i = Adjoint ? j + 1 + p : N - 1 - p;
      T sum = c(i, j);
      for (index k = 0; k < N; ++k)
        if (k != j) sum -= x(i, k) * s(k, j);
      for (index l = j + 1; l < N; ++l)
        if (l != i) sum += s(i, l) * x(l, j);
      x(i, j) = sum / (s(j, j) - s(i, i));
    }
  }
  return x;
}

// solve_hessenberg_sylvester (templates/_runtime_shared.py's _hessenberg_sylvester_by_columns),
// entry by entry with S = triu(H, -1).  Not Adjoint: the skew-Hermitian Om = X - X^H + i phi,
// X's column j + 1 (rows j + 2:) from the columns before it, phi the running sum along the
// subdiagonal.  Adjoint: its transpose Y, the imaginary subdiagonal, then column j (rows
// j + 2:) from the columns after it.
template <class T> inline T times_i(T x) {
  if constexpr (is_complex<T>::value) return T(0, 1) * x;
  else return T(0) * x;
}
template <bool Adjoint, class T, index N>
inline Mat<T, N, N> solve_hessenberg_sylvester(const Mat<T, N, N>& h, const Mat<T, N, N>& c) {
  Mat<T, N, N> x{};
  if constexpr (!Adjoint) {
    for (index j = 0; j + 2 < N; ++j)
      for (index i = j + 2; i < N; ++i) {
        T sum = c(i, j);
        for (index k = 1; k <= j; ++k) sum -= x(i, k) * h(k, j);
        for (index k = i - 1; k < N; ++k) sum += h(i, k) * x(k, j);
        x(i, j + 1) = sum / h(j + 1, j);
      }
    Mat<T, N, N> out{};
    for (index i = 0; i < N; ++i)
      for (index j = 0; j < i; ++j) {
        out(i, j) = x(i, j);
        out(j, i) = -conj_of(x(i, j));
      }
    if constexpr (is_complex<T>::value) {
      T phi(0);
      for (index j = 0; j + 1 < N; ++j) {
        T r = c(j + 1, j);  // (C - X S + S X)[j + 1, j]
        for (index k = 1; k <= j; ++k) r -= x(j + 1, k) * h(k, j);
        for (index k = j + 1; k < N; ++k) r += h(j + 1, k) * x(k, j);
        phi += im_of(r) / re_of(h(j + 1, j));
        out(j + 1, j + 1) = times_i(phi);
      }
    }
    return out;
  } else {
    if constexpr (is_complex<T>::value) {
      T later(0);
      for (index j = N - 2; j >= 0; --j) {
        later += im_of(c(j + 1, j + 1));
        x(j + 1, j) = times_i(later / re_of(h(j + 1, j)));
      }
    }
    for (index j = N - 3; j >= 0; --j)
      for (index i = j + 2; i < N; ++i) {
        // (C - C^H)[i, j + 1] - sum_(k > j) Y[i, k] conj(S[j + 1, k]) + (S^H Y)[i, j + 1]
        T sum = c(i, j + 1) - conj_of(c(j + 1, i));
        for (index k = j + 1; k < i; ++k) sum -= x(i, k) * conj_of(h(j + 1, k));
        for (index k = j + 2; k <= std::min<index>(i + 1, N - 1); ++k)
          sum += conj_of(h(k, i)) * x(k, j + 1);
        x(i, j) = sum / conj_of(h(j + 1, j));
      }
    return x;
  }
}

// -- the checks of degenerate inputs (templates/_runtime_shared.py's _violation, per matrix) ----
template <class T> inline T square_root(T x) { return std::sqrt(x); }
template <class S, int L> inline Lanes<S, L> square_root(Lanes<S, L> x) {
  Lanes<S, L> r;
  for (int l = 0; l < L; ++l) r.v[l] = std::sqrt(x.v[l]);
  return r;
}
template <class T> inline real_t<T> minimum(real_t<T> x, real_t<T> y) { return -maximum(-x, -y); }
// the largest |entry| (0 for none)
template <class T, index R, index C> inline real_t<T> largest_abs(const Mat<T, R, C>& x) {
  real_t<T> out = 0;
  for (index i = 0; i < R * C; ++i) out = maximum(out, magnitude(x.a[i]));
  return out;
}
// the smallest |entry| (infinity for none)
template <class T, index R, index C> inline real_t<T> smallest_abs(const Mat<T, R, C>& x) {
  real_t<T> out = std::numeric_limits<scalar_t<T>>::infinity();
  for (index i = 0; i < R * C; ++i) out = minimum<T>(out, magnitude(x.a[i]));
  return out;
}
// size eps ||a||_F, size = max(m, n) of A: a is A, or holds A's norm (svd's S, the spec's
// pivots.norm); pivots at most this are zero
template <class T, index R, index C>
inline real_t<T> pivot_limit(const Mat<T, R, C>& a, index size = std::max(R, C)) {
  real_t<T> sum = 0;
  for (index i = 0; i < R * C; ++i) {
    const real_t<T> entry = magnitude(a.a[i]);
    sum += entry * entry;
  }
  return real_t<T>(size) * epsilon<T>() * square_root(sum);
}
// max(|M_ij|, |M_jj - M_ii|) over the pairs i != j whose values v_i, v_j tie (|v_j - v_i| <=
// n eps max|v|), 0 where none ties
template <class T, index N> inline real_t<T> tie_residual(const Mat<T, N, 1>& v,
                                                        const Mat<T, N, N>& m) {
  using R = real_t<T>;
  const R tol = tie_tolerance(v);
  R out = 0;
  for (index i = 0; i < N; ++i)
    for (index j = 0; j < N; ++j) {
      if (i == j) continue;
      const R off = maximum(magnitude(m(i, j)), magnitude(m(j, j) - m(i, i)));
      out = maximum(out, where_at_most(magnitude(v(j, 0) - v(i, 0)), tol, off, R(0)));
    }
  return out;
}
// the number of pairs i < j whose values tie (|v_j - v_i| <= n eps max|v|): a 'tied' check
template <class T, index N> inline real_t<T> tie_count(const Mat<T, N, 1>& v) {
  using R = real_t<T>;
  const R tol = tie_tolerance(v);
  R out = 0;
  for (index i = 0; i < N; ++i)
    for (index j = i + 1; j < N; ++j)
      out = out + where_at_most(magnitude(v(j, 0) - v(i, 0)), tol, R(1), R(0));
  return out;
}
// the largest |M_ij| in the columns j whose pivot v_j is zero (|v_j| <= limit), 0 where none
template <class T, index K, index R>
inline real_t<T> zero_residual(const Mat<T, K, 1>& v, real_t<T> limit, const Mat<T, R, K>& m) {
  using Re = real_t<T>;
  Re out = 0;
  for (index i = 0; i < R; ++i)
    for (index j = 0; j < K; ++j)
      out = maximum(out, where_at_most(magnitude(v(j, 0)), limit, magnitude(m(i, j)), Re(0)));
  return out;
}
// whether x <= limit (in some lane): a check's values need computing only then
template <class R> inline bool any_at_most(R x, R limit) { return x <= limit; }
template <class S, int L> inline bool any_at_most(Lanes<S, L> x, Lanes<S, L> limit) {
  const auto mask = x.v <= limit.v;
  for (int l = 0; l < L; ++l)
    if (mask[l]) return true;
  return false;
}
// whether two values of v tie (tie_residual's pairs), whether a pivot is zero (zero_residual's)
template <class T, index N> inline bool any_tie(const Mat<T, N, 1>& v) {
  using R = real_t<T>;
  const R tol = tie_tolerance(v);
  for (index i = 0; i < N; ++i)
    for (index j = i + 1; j < N; ++j)
      if (any_at_most(magnitude(v(j, 0) - v(i, 0)), tol)) return true;
  return false;
}
template <class T, index K> inline bool any_zero(const Mat<T, K, 1>& v, real_t<T> limit) {
  for (index j = 0; j < K; ++j)
    if (any_at_most(magnitude(v(j, 0)), limit)) return true;
  return false;
}
// check `position` of `checks` of matrix b (of b, ..., b + L - 1 for lanes): its value and limit
template <class S, class R>
inline void report(S* p, index b, index position, index checks, R value, R limit) {
  if constexpr (is_lanes<R>::value) {
    for (int l = 0; l < R::count; ++l) {
      p[((b + l) * checks + position) * 2] = value.v[l];
      p[((b + l) * checks + position) * 2 + 1] = limit.v[l];
    }
  } else {
    p[(b * checks + position) * 2] = value;
    p[(b * checks + position) * 2 + 1] = limit;
  }
}

}  // namespace fr

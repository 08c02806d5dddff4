// Training BatchNorm + LeakyReLU/ReLU fused for channels_last bf16 on the CPU: vaetui/models/bnact.py builds it once
// per machine and says what each function computes. Rows are the N*H*W pixels, C channels contiguous in each. Sums
// are taken in fp32 over fixed blocks of 1,024 rows, then the blocks' sums in double in block order: the same
// numbers whatever the number of threads (a resumed run, a forked child, another --threads compute what the
// uninterrupted run did; built with -ffp-contract=off, so that no product is fused into an add in one code path
// and not in another). bf16 <-> fp32 by bits (round to nearest even).

#include <torch/extension.h>
#include <ATen/Parallel.h>
#include <cstring>
#include <vector>

static constexpr int64_t BLOCK = 1024;

static inline float b2f(uint16_t b) { uint32_t u = ((uint32_t)b) << 16; float f; std::memcpy(&f, &u, 4); return f; }
static inline uint16_t f2b(float f) { uint32_t u; std::memcpy(&u, &f, 4); u += 0x7FFFu + ((u >> 16) & 1u); return (uint16_t)(u >> 16); }

// The elementwise passes over a run of rows, as plain functions of restrict pointers: the compiler vectorises them
// (inside a lambda that captured its pointers by reference it did not, and ran 10x slower).
static void rows_apply(const uint16_t* __restrict x, uint16_t* __restrict y, int64_t n, int64_t C,
                       const float* __restrict a, const float* __restrict b, float sl) {
  for (int64_t r = 0; r < n; ++r) {
    const uint16_t* xr = x + r * C; uint16_t* yr = y + r * C;
    #pragma omp simd
    for (int64_t c = 0; c < C; ++c) { float z = b2f(xr[c]) * a[c] + b[c]; yr[c] = f2b(z > 0.f ? z : z * sl); }
  }
}

static void rows_back_apply(const uint16_t* __restrict g, const uint16_t* __restrict x, uint16_t* __restrict d,
                            int64_t n, int64_t C, const float* __restrict a, const float* __restrict b, float sl,
                            const float* __restrict p, const float* __restrict q, const float* __restrict w) {
  for (int64_t r = 0; r < n; ++r) {
    const uint16_t* xr = x + r * C; const uint16_t* gr = g + r * C; uint16_t* dr = d + r * C;
    #pragma omp simd
    for (int64_t c = 0; c < C; ++c) {
      float xv = b2f(xr[c]); float z = xv * a[c] + b[c]; float gv = b2f(gr[c]); gv = z > 0.f ? gv : gv * sl;
      dr[c] = f2b(gv * p[c] + xv * q[c] + w[c]);
    }
  }
}

static void rows_stats(const uint16_t* __restrict x, int64_t n, int64_t C, float* __restrict fs,
                       float* __restrict fq) {
  for (int64_t r = 0; r < n; ++r) {
    const uint16_t* row = x + r * C;
    #pragma omp simd
    for (int64_t c = 0; c < C; ++c) { float v = b2f(row[c]); fs[c] += v; fq[c] += v * v; }
  }
}

static void rows_back_sums(const uint16_t* __restrict g, const uint16_t* __restrict x, int64_t n, int64_t C,
                           const float* __restrict a, const float* __restrict b, float sl, float* __restrict fs,
                           float* __restrict fq) {
  for (int64_t r = 0; r < n; ++r) {
    const uint16_t* xr = x + r * C; const uint16_t* gr = g + r * C;
    #pragma omp simd
    for (int64_t c = 0; c < C; ++c) {
      float xv = b2f(xr[c]); float z = xv * a[c] + b[c]; float gv = b2f(gr[c]); gv = z > 0.f ? gv : gv * sl;
      fs[c] += gv; fq[c] += gv * xv;
    }
  }
}

// Per-channel (sum of a, sum of b) over all rows, where block_terms(r0, r1, fa, fb) adds rows r0..r1's terms to
// fa[c], fb[c].
template <typename F>
static std::vector<torch::Tensor> blocked_sums(int64_t M, int64_t C, F block_terms) {
  const int64_t nb = (M + BLOCK - 1) / BLOCK;
  std::vector<double> part(nb * 2 * C, 0.0);
  at::parallel_for(0, nb, 1, [&](int64_t b0, int64_t b1) {
    std::vector<float> fa(C), fb(C);
    for (int64_t blk = b0; blk < b1; ++blk) {
      for (int64_t c = 0; c < C; ++c) { fa[c] = 0.f; fb[c] = 0.f; }
      block_terms(blk * BLOCK, std::min(M, (blk + 1) * BLOCK), fa.data(), fb.data());
      double* out = &part[blk * 2 * C];
      for (int64_t c = 0; c < C; ++c) { out[c] = fa[c]; out[C + c] = fb[c]; }
    }
  });
  auto A = torch::zeros({C}, torch::kFloat64), B = torch::zeros({C}, torch::kFloat64);
  double* Ap = A.data_ptr<double>(); double* Bp = B.data_ptr<double>();
  for (int64_t blk = 0; blk < nb; ++blk)
    for (int64_t c = 0; c < C; ++c) { Ap[c] += part[blk * 2 * C + c]; Bp[c] += part[blk * 2 * C + C + c]; }
  return {A, B};
}

// per-channel sum and sum of squares of x (M rows of C bf16)
std::vector<torch::Tensor> stats(torch::Tensor x2d) {
  TORCH_CHECK(x2d.is_contiguous() && x2d.scalar_type() == at::kBFloat16, "stats: contiguous bf16 rows");
  const int64_t M = x2d.size(0), C = x2d.size(1);
  const uint16_t* x = (const uint16_t*)x2d.data_ptr<at::BFloat16>();
  return blocked_sums(M, C, [=](int64_t r0, int64_t r1, float* fs, float* fq) {
    rows_stats(x + r0 * C, r1 - r0, C, fs, fq);
  });
}

// y = leaky(x * scale + shift)
torch::Tensor apply(torch::Tensor x2d, torch::Tensor scale, torch::Tensor shift, double slope) {
  TORCH_CHECK(x2d.is_contiguous() && x2d.scalar_type() == at::kBFloat16, "apply: contiguous bf16 rows");
  const int64_t M = x2d.size(0), C = x2d.size(1);
  auto y2d = torch::empty_like(x2d);
  const uint16_t* x = (const uint16_t*)x2d.data_ptr<at::BFloat16>();
  uint16_t* y = (uint16_t*)y2d.data_ptr<at::BFloat16>();
  const float* a = scale.data_ptr<float>(); const float* b = shift.data_ptr<float>();
  const float sl = (float)slope;
  at::parallel_for(0, M, BLOCK, [=](int64_t r0, int64_t r1) {
    rows_apply(x + r0 * C, y + r0 * C, r1 - r0, C, a, b, sl);
  });
  return y2d;
}

// sums of g' and g'*x, g' = g * leaky'(x * scale + shift)
std::vector<torch::Tensor> back_sums(torch::Tensor g2d, torch::Tensor x2d, torch::Tensor scale, torch::Tensor shift,
                                     double slope) {
  TORCH_CHECK(x2d.is_contiguous() && g2d.is_contiguous() && g2d.sizes() == x2d.sizes(), "back_sums: contiguous rows");
  const int64_t M = x2d.size(0), C = x2d.size(1);
  const uint16_t* x = (const uint16_t*)x2d.data_ptr<at::BFloat16>();
  const uint16_t* g = (const uint16_t*)g2d.data_ptr<at::BFloat16>();
  const float* a = scale.data_ptr<float>(); const float* b = shift.data_ptr<float>();
  const float sl = (float)slope;
  return blocked_sums(M, C, [=](int64_t r0, int64_t r1, float* fs, float* fq) {
    rows_back_sums(g + r0 * C, x + r0 * C, r1 - r0, C, a, b, sl, fs, fq);
  });
}

// dx = g' * k1 + x * k2 + k3 (per channel)
torch::Tensor back_apply(torch::Tensor g2d, torch::Tensor x2d, torch::Tensor scale, torch::Tensor shift, double slope,
                         torch::Tensor k1, torch::Tensor k2, torch::Tensor k3) {
  TORCH_CHECK(x2d.is_contiguous() && g2d.is_contiguous() && g2d.sizes() == x2d.sizes(), "back_apply: contiguous rows");
  const int64_t M = x2d.size(0), C = x2d.size(1);
  auto d2d = torch::empty_like(x2d);
  const uint16_t* x = (const uint16_t*)x2d.data_ptr<at::BFloat16>();
  const uint16_t* g = (const uint16_t*)g2d.data_ptr<at::BFloat16>();
  uint16_t* d = (uint16_t*)d2d.data_ptr<at::BFloat16>();
  const float* a = scale.data_ptr<float>(); const float* b = shift.data_ptr<float>();
  const float* p = k1.data_ptr<float>(); const float* q = k2.data_ptr<float>(); const float* w = k3.data_ptr<float>();
  const float sl = (float)slope;
  at::parallel_for(0, M, BLOCK, [=](int64_t r0, int64_t r1) {
    rows_back_apply(g + r0 * C, x + r0 * C, d + r0 * C, r1 - r0, C, a, b, sl, p, q, w);
  });
  return d2d;
}

// Training BatchNorm + LeakyReLU/ReLU fused for channels_last bf16 on the CPU: vaetui/models/bnact.py builds it once
// per machine and says what each function computes. Rows are the N*H*W pixels, C channels contiguous in each; sums
// in fp32 over blocks of 1,024 rows, then in double; bf16 <-> fp32 by bits (round to nearest even).

#include <torch/extension.h>
#include <omp.h>
#include <cstring>
#include <vector>

static inline float b2f(uint16_t b) { uint32_t u = ((uint32_t)b) << 16; float f; std::memcpy(&f, &u, 4); return f; }
static inline uint16_t f2b(float f) { uint32_t u; std::memcpy(&u, &f, 4); u += 0x7FFFu + ((u >> 16) & 1u); return (uint16_t)(u >> 16); }

// per-channel sum and sum of squares of x (M rows of C bf16), in double
std::vector<torch::Tensor> stats(torch::Tensor x2d) {
  const int64_t M = x2d.size(0), C = x2d.size(1);
  const uint16_t* x = (const uint16_t*)x2d.data_ptr<at::BFloat16>();
  int T = omp_get_max_threads();
  std::vector<double> s(T * C, 0.0), q(T * C, 0.0);
  #pragma omp parallel
  {
    int t = omp_get_thread_num();
    std::vector<float> fs(C), fq(C);
    double* ds = &s[t * C]; double* dq = &q[t * C];
    #pragma omp for schedule(static)
    for (int64_t b = 0; b < M; b += 1024) {
      int64_t e = std::min(M, b + 1024);
      for (int64_t c = 0; c < C; ++c) { fs[c] = 0.f; fq[c] = 0.f; }
      for (int64_t r = b; r < e; ++r) {
        const uint16_t* row = x + r * C;
        #pragma omp simd
        for (int64_t c = 0; c < C; ++c) { float v = b2f(row[c]); fs[c] += v; fq[c] += v * v; }
      }
      for (int64_t c = 0; c < C; ++c) { ds[c] += fs[c]; dq[c] += fq[c]; }
    }
  }
  auto S = torch::zeros({C}, torch::kFloat64), Q = torch::zeros({C}, torch::kFloat64);
  double* Sp = S.data_ptr<double>(); double* Qp = Q.data_ptr<double>();
  for (int t = 0; t < T; ++t) for (int64_t c = 0; c < C; ++c) { Sp[c] += s[t * C + c]; Qp[c] += q[t * C + c]; }
  return {S, Q};
}

// y = leaky(x * scale + shift)
torch::Tensor apply(torch::Tensor x2d, torch::Tensor scale, torch::Tensor shift, double slope) {
  const int64_t M = x2d.size(0), C = x2d.size(1);
  auto y2d = torch::empty_like(x2d);
  const uint16_t* x = (const uint16_t*)x2d.data_ptr<at::BFloat16>();
  uint16_t* y = (uint16_t*)y2d.data_ptr<at::BFloat16>();
  const float* a = scale.data_ptr<float>(); const float* b = shift.data_ptr<float>();
  const float sl = (float)slope;
  #pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < M; ++r) {
    const uint16_t* xr = x + r * C; uint16_t* yr = y + r * C;
    #pragma omp simd
    for (int64_t c = 0; c < C; ++c) { float z = b2f(xr[c]) * a[c] + b[c]; yr[c] = f2b(z > 0.f ? z : z * sl); }
  }
  return y2d;
}

// sums of g' and g'*x, g' = g * leaky'(x * scale + shift)
std::vector<torch::Tensor> back_sums(torch::Tensor g2d, torch::Tensor x2d, torch::Tensor scale, torch::Tensor shift, double slope) {
  const int64_t M = x2d.size(0), C = x2d.size(1);
  const uint16_t* x = (const uint16_t*)x2d.data_ptr<at::BFloat16>();
  const uint16_t* g = (const uint16_t*)g2d.data_ptr<at::BFloat16>();
  const float* a = scale.data_ptr<float>(); const float* b = shift.data_ptr<float>();
  const float sl = (float)slope;
  int T = omp_get_max_threads();
  std::vector<double> s(T * C, 0.0), q(T * C, 0.0);
  #pragma omp parallel
  {
    int t = omp_get_thread_num();
    std::vector<float> fs(C), fq(C);
    double* ds = &s[t * C]; double* dq = &q[t * C];
    #pragma omp for schedule(static)
    for (int64_t bl = 0; bl < M; bl += 1024) {
      int64_t e = std::min(M, bl + 1024);
      for (int64_t c = 0; c < C; ++c) { fs[c] = 0.f; fq[c] = 0.f; }
      for (int64_t r = bl; r < e; ++r) {
        const uint16_t* xr = x + r * C; const uint16_t* gr = g + r * C;
        #pragma omp simd
        for (int64_t c = 0; c < C; ++c) {
          float xv = b2f(xr[c]); float z = xv * a[c] + b[c]; float gv = b2f(gr[c]); gv = z > 0.f ? gv : gv * sl;
          fs[c] += gv; fq[c] += gv * xv;
        }
      }
      for (int64_t c = 0; c < C; ++c) { ds[c] += fs[c]; dq[c] += fq[c]; }
    }
  }
  auto S = torch::zeros({C}, torch::kFloat64), Q = torch::zeros({C}, torch::kFloat64);
  double* Sp = S.data_ptr<double>(); double* Qp = Q.data_ptr<double>();
  for (int t = 0; t < T; ++t) for (int64_t c = 0; c < C; ++c) { Sp[c] += s[t * C + c]; Qp[c] += q[t * C + c]; }
  return {S, Q};
}

// dx = g' * k1 + x * k2 + k3 (per channel)
torch::Tensor back_apply(torch::Tensor g2d, torch::Tensor x2d, torch::Tensor scale, torch::Tensor shift, double slope,
                         torch::Tensor k1, torch::Tensor k2, torch::Tensor k3) {
  const int64_t M = x2d.size(0), C = x2d.size(1);
  auto d2d = torch::empty_like(x2d);
  const uint16_t* x = (const uint16_t*)x2d.data_ptr<at::BFloat16>();
  const uint16_t* g = (const uint16_t*)g2d.data_ptr<at::BFloat16>();
  uint16_t* d = (uint16_t*)d2d.data_ptr<at::BFloat16>();
  const float* a = scale.data_ptr<float>(); const float* b = shift.data_ptr<float>();
  const float* p = k1.data_ptr<float>(); const float* q = k2.data_ptr<float>(); const float* w = k3.data_ptr<float>();
  const float sl = (float)slope;
  #pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < M; ++r) {
    const uint16_t* xr = x + r * C; const uint16_t* gr = g + r * C; uint16_t* dr = d + r * C;
    #pragma omp simd
    for (int64_t c = 0; c < C; ++c) {
      float xv = b2f(xr[c]); float z = xv * a[c] + b[c]; float gv = b2f(gr[c]); gv = z > 0.f ? gv : gv * sl;
      dr[c] = f2b(gv * p[c] + xv * q[c] + w[c]);
    }
  }
  return d2d;
}

// The sequential time loops of graphs/kernels/rnn.py in C++ (CPU, float32, contiguous).
//
// Everything that is not sequential (input projections, gate derivatives that do not depend
// on the incoming gradient, weight gradients) stays in Python as whole-sequence tensor ops;
// what is here is what must run one time step after the other: per step one matmul
// (at::addmm_, MKL) and one pass over the (B, H) gate values, instead of five dispatched
// tensor ops from Python. The buffers are preallocated by the caller and written in place.
#include <ATen/ATen.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <initializer_list>
#include <utility>
#include <vector>

namespace {

// exp without branches or library calls, so the compiler vectorizes the gate loops (libm's
// scalar expf/tanhf made them slower than PyTorch's vectorized ops; std::floor, too, blocks
// vectorization without -ffast-math, and the clamp without -fno-trapping-math: native.py's flags).
// Cephes' expf: 2^n times a degree-6 polynomial on [-ln2/2, ln2/2], about 1 ulp; inputs clamped
// to [-87, 88]. graphs/kernels/python_loops.py replays every operation of this file in order.
inline float exp_approx(float x) {
  x = std::min(std::max(x, -87.0f), 88.0f);
  const float n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;  // + 1.5 * 2^23 rounds to an integer
  const float r = x - n * 0.693359375f + n * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  union {
    int32_t bits;
    float value;
  } scale;  // 2^n from its exponent bits
  scale.bits = (static_cast<int32_t>(n) + 127) << 23;
  return (p * r * r + r + 1.0f) * scale.value;
}

inline float sigmoid(float v) { return 1.0f / (1.0f + exp_approx(-v)); }

inline float tanh_approx(float v) { return 2.0f / (1.0f + exp_approx(-2.0f * v)) - 1.0f; }

void check(std::initializer_list<std::pair<at::Tensor, const char*>> buffers) {
  for (const auto& [t, name] : buffers)
    TORCH_CHECK(t.device().is_cpu() && t.scalar_type() == at::kFloat && t.is_contiguous(), name,
                " must be a contiguous float32 CPU tensor");
}

// A forward over T steps: per step the one matmul pre[t] += h(t) W^T (w_t = W^T), then
// row_step(row, k) per batch row b, with row its pre-activations in pre (T, B, W) and
// k = (t B + b) H its offset into the (T, B, H) buffers.
template <typename RowStep>
void forward_steps(const at::Tensor& pre, const at::Tensor& hs, const at::Tensor& w_t, RowStep row_step) {
  const int64_t steps = pre.size(0), batch = pre.size(1), width = pre.size(2), hidden = hs.size(2);
  for (int64_t t = 0; t < steps; ++t) {
    at::Tensor pre_t = pre.select(0, t);
    pre_t.addmm_(hs.select(0, t), w_t);
    float* gate = pre_t.data_ptr<float>();
    for (int64_t b = 0; b < batch; ++b) row_step(gate + b * width, (t * batch + b) * hidden);
  }
}

// What a backward step passes to the previous state (d_h[t - 1], or d_h0 at t = 0): the direct
// part (GRU: d h' z; null for an LSTM) plus d_pre[t] W through the recurrent matmul.
void add_to_previous(const at::Tensor& d_h, const at::Tensor& d_h0, int64_t t, const std::vector<float>* direct,
                     const at::Tensor& d_pre, const at::Tensor& w) {
  at::Tensor prev = t ? d_h.select(0, t - 1) : d_h0;
  if (direct != nullptr) {
    float* dp = prev.data_ptr<float>();
    for (size_t k = 0; k < direct->size(); ++k) dp[k] += (*direct)[k];
  }
  prev.addmm_(d_pre.select(0, t), w);
}

// A backward over T steps, last to first: row_step(row, d_row, k, kb) per batch row b, with row and
// d_row its values in gates and d_gates (T, B, W), k = (t B + b) H its offset into the (T, B, H)
// buffers and kb = b H into the (B, H) ones; then add_to_previous(..., direct, d_gates, w).
template <typename RowStep>
void backward_steps(const at::Tensor& d_h, const at::Tensor& d_h0, const at::Tensor& gates, const at::Tensor& d_gates,
                    const at::Tensor& w, const std::vector<float>* direct, RowStep row_step) {
  const int64_t steps = d_h.size(0), batch = d_h.size(1), hidden = d_h.size(2), width = gates.size(2);
  const float* gate = gates.data_ptr<float>();
  float* d_gate = d_gates.data_ptr<float>();
  for (int64_t t = steps - 1; t >= 0; --t) {
    for (int64_t b = 0; b < batch; ++b) {
      const int64_t i = t * batch + b;
      row_step(gate + i * width, d_gate + i * width, i * hidden, b * hidden);
    }
    add_to_previous(d_h, d_h0, t, direct, d_gates, w);
  }
}

// One batch row of a GRU step: r, z = sigmoid(pre_r, pre_z) (written over them), candidate
// c = tanh(in_n + r * gh_n), h' = c + z (h - c). A function of its own with __restrict__
// arguments: that is what lets GCC vectorize the loop (the offsets into one row defeat it).
void gru_gates(float* __restrict__ r_row, float* __restrict__ z_row, const float* __restrict__ gh_n,
               const float* __restrict__ in_n, const float* __restrict__ h, float* __restrict__ cand,
               float* __restrict__ h_next, int64_t hidden) {
  for (int64_t j = 0; j < hidden; ++j) {
    const float r = sigmoid(r_row[j]), z = sigmoid(z_row[j]);
    r_row[j] = r;
    z_row[j] = z;
    const float c = tanh_approx(in_n[j] + r * gh_n[j]);
    cand[j] = c;
    h_next[j] = c + z * (h[j] - c);
  }
}

// GRU forward over T steps. g (T, B, 3H) holds [x W_ir + b_ir + b_hr, x W_iz + b_iz + b_hz, b_hn]
// and leaves as [r, z, h W_hn + b_hn]; gi_n (T, B, H) = x W_in + b_in; hs (T + 1, B, H) with
// hs[0] = h0 receives h(1..T); n (T, B, H) receives the candidate states; w_hh_t = W_hh^T (H, 3H).
void gru_forward_loop(at::Tensor g, const at::Tensor& gi_n, at::Tensor hs, const at::Tensor& w_hh_t,
                      at::Tensor n) {
  at::AutoDispatchBelowADInplaceOrView guard;  // plain buffers: skip the autograd layers of the dispatcher
  check({{g, "g"}, {gi_n, "gi_n"}, {hs, "hs"}, {n, "n"}});
  const int64_t hidden = hs.size(2), bh = g.size(1) * hidden;
  const float* in_n = gi_n.data_ptr<float>();
  float *h = hs.data_ptr<float>(), *cand = n.data_ptr<float>();
  forward_steps(g, hs, w_hh_t, [&](float* row, int64_t k) {
    gru_gates(row, row + hidden, row + 2 * hidden, in_n + k, h + k, cand + k, h + k + bh, hidden);
  });
}

// One batch row of a GRU step's backward, given d h' (dh: incoming plus recurrent):
//   a = (1 - z)(1 - c^2) = d h'/d pre_n;  d gi_n = dh a;  d gh_n = dh a r;
//   d pre_r = dh a gh_n r (1 - r);  d pre_z = dh (h - c) z (1 - z);  d h += dh z (the direct path).
void gru_gates_backward(const float* __restrict__ dh, const float* __restrict__ r, const float* __restrict__ z,
                        const float* __restrict__ gh_n, const float* __restrict__ cand, const float* __restrict__ h,
                        float* __restrict__ d_r, float* __restrict__ d_z, float* __restrict__ d_ghn,
                        float* __restrict__ d_in_n, float* __restrict__ d_h, int64_t hidden) {
  for (int64_t j = 0; j < hidden; ++j) {
    const float d_pre_n = dh[j] * (1.0f - z[j]) * (1.0f - cand[j] * cand[j]);
    d_in_n[j] = d_pre_n;
    d_ghn[j] = d_pre_n * r[j];
    d_r[j] = d_pre_n * gh_n[j] * r[j] * (1.0f - r[j]);
    d_z[j] = dh[j] * (h[j] - cand[j]) * z[j] * (1.0f - z[j]);
    d_h[j] = dh[j] * z[j];
  }
}

// GRU backward over T steps, last to first, from the forward's buffers g (T, B, 3H) = [r, z, gh_n],
// n (T, B, H) and hs (T + 1, B, H). d_h (T, B, H) holds the gradients arriving at each h(t) from
// above and receives the totals; d_gh (T, B, 3H) receives d (h W_hh^T + b_hh), d_in_n (T, B, H)
// d (x W_in + b_in), d_h0 (B, H) the gradient of h0 (zeros on entry).
void gru_backward_loop(at::Tensor d_h, const at::Tensor& g, const at::Tensor& n, const at::Tensor& hs,
                       const at::Tensor& w_hh, at::Tensor d_gh, at::Tensor d_in_n, at::Tensor d_h0) {
  at::AutoDispatchBelowADInplaceOrView guard;  // plain buffers: skip the autograd layers of the dispatcher
  check({{d_h, "d_h"}, {g, "g"}, {n, "n"}, {hs, "hs"}, {d_gh, "d_gh"},
         {d_in_n, "d_in_n"}, {d_h0, "d_h0"}});
  const int64_t hidden = d_h.size(2);
  std::vector<float> direct(d_h.size(1) * hidden);
  const float *dh = d_h.data_ptr<float>(), *cand = n.data_ptr<float>(), *h = hs.data_ptr<float>();
  float* d_inn = d_in_n.data_ptr<float>();
  backward_steps(d_h, d_h0, g, d_gh, w_hh, &direct, [&](const float* row, float* d_row, int64_t k, int64_t kb) {
    gru_gates_backward(dh + k, row, row + hidden, row + 2 * hidden, cand + k, h + k, d_row, d_row + hidden,
                       d_row + 2 * hidden, d_inn + k, direct.data() + kb, hidden);
  });
}

// GRU free running (the decoder fed its own output x̂ = A h + b): the input term is linear in h,
// so one matmul per step gives both parts, g[t] (B, 6H) = [gh_r, gh_z, gh_n, gi_r, gi_z, gi_n] =
// b_cat + h W_cat^T with W_cat = [W_hh; W_ih A] (6H, H). g arrives holding b_cat and leaves with
// [r, z, gh_n, gi_r, gi_z, gi_n]; hs (T + 1, B, H) with hs[0] = h0 receives h(1..T), n the candidates.
void gru_free_forward_loop(at::Tensor g, at::Tensor hs, const at::Tensor& w_cat_t, at::Tensor n) {
  at::AutoDispatchBelowADInplaceOrView guard;  // plain buffers: skip the autograd layers of the dispatcher
  check({{g, "g"}, {hs, "hs"}, {n, "n"}});
  const int64_t hidden = hs.size(2), bh = g.size(1) * hidden;
  float *h = hs.data_ptr<float>(), *cand = n.data_ptr<float>();
  forward_steps(g, hs, w_cat_t, [&](float* row, int64_t k) {
    for (int64_t j = 0; j < 2 * hidden; ++j) row[j] += row[3 * hidden + j];  // pre_r, pre_z
    gru_gates(row, row + hidden, row + 2 * hidden, row + 5 * hidden, h + k, cand + k, h + k + bh, hidden);
  });
}

// Backward of gru_free_forward_loop: d_h (T, B, H) holds the gradients arriving at each h(t) from
// above and receives the totals; d_g (T, B, 6H) receives d (h W_cat^T + b_cat); d_h0 (B, H) the
// gradient of h0 (zeros on entry). r and z reach both halves, so d gi_rz = d gh_rz.
void gru_free_backward_loop(at::Tensor d_h, const at::Tensor& g, const at::Tensor& n, const at::Tensor& hs,
                            const at::Tensor& w_cat, at::Tensor d_g, at::Tensor d_h0) {
  at::AutoDispatchBelowADInplaceOrView guard;
  check({{d_h, "d_h"}, {g, "g"}, {n, "n"}, {hs, "hs"}, {d_g, "d_g"}, {d_h0, "d_h0"}});
  const int64_t hidden = d_h.size(2);
  std::vector<float> direct(d_h.size(1) * hidden);
  const float *dh = d_h.data_ptr<float>(), *cand = n.data_ptr<float>(), *h = hs.data_ptr<float>();
  backward_steps(d_h, d_h0, g, d_g, w_cat, &direct, [&](const float* row, float* d_row, int64_t k, int64_t kb) {
    gru_gates_backward(dh + k, row, row + hidden, row + 2 * hidden, cand + k, h + k, d_row, d_row + hidden,
                       d_row + 2 * hidden, d_row + 5 * hidden, direct.data() + kb, hidden);
    std::copy(d_row, d_row + 2 * hidden, d_row + 3 * hidden);
  });
}

// One batch row of an LSTM step (PyTorch's gate order i, f, g, o): the activations are written
// over the pre-activations; c' = f c + i g, tanh(c') kept for the backward, h' = o tanh(c').
void lstm_gates(float* __restrict__ i, float* __restrict__ f, float* __restrict__ g, float* __restrict__ o,
                const float* __restrict__ c, float* __restrict__ c_next, float* __restrict__ tanh_c,
                float* __restrict__ h_next, int64_t hidden) {
  for (int64_t j = 0; j < hidden; ++j) {
    i[j] = sigmoid(i[j]);
    f[j] = sigmoid(f[j]);
    g[j] = tanh_approx(g[j]);
    o[j] = sigmoid(o[j]);
    const float cell = f[j] * c[j] + i[j] * g[j];
    c_next[j] = cell;
    tanh_c[j] = tanh_approx(cell);
    h_next[j] = o[j] * tanh_c[j];
  }
}

// LSTM forward over T steps. gates (T, B, 4H) holds x W_ih^T + b_ih + b_hh and leaves as the
// activations [i, f, g, o]; hs and cs (T + 1, B, H) with hs[0] = h0, cs[0] = c0 receive h(1..T)
// and c(1..T); tanh_c (T, B, H) receives tanh(c(t)); w_hh_t = W_hh^T (H, 4H).
void lstm_forward_loop(at::Tensor gates, at::Tensor hs, at::Tensor cs, at::Tensor tanh_c, const at::Tensor& w_hh_t) {
  at::AutoDispatchBelowADInplaceOrView guard;  // plain buffers: skip the autograd layers of the dispatcher
  check({{gates, "gates"}, {hs, "hs"}, {cs, "cs"}, {tanh_c, "tanh_c"}});
  const int64_t hidden = hs.size(2), bh = gates.size(1) * hidden;
  float *h = hs.data_ptr<float>(), *c = cs.data_ptr<float>(), *tc = tanh_c.data_ptr<float>();
  forward_steps(gates, hs, w_hh_t, [&](float* row, int64_t k) {
    lstm_gates(row, row + hidden, row + 2 * hidden, row + 3 * hidden, c + k, c + k + bh, tc + k, h + k + bh, hidden);
  });
}

// One batch row of an LSTM step's backward, given d h' (dh: incoming plus recurrent) and d c'
// (dc, carried from the step after; leaves as d c for the step before).
void lstm_gates_backward(const float* __restrict__ dh, float* __restrict__ dc, const float* __restrict__ i,
                         const float* __restrict__ f, const float* __restrict__ g, const float* __restrict__ o,
                         const float* __restrict__ c, const float* __restrict__ tanh_c, float* __restrict__ d_i,
                         float* __restrict__ d_f, float* __restrict__ d_g, float* __restrict__ d_o, int64_t hidden) {
  for (int64_t j = 0; j < hidden; ++j) {
    const float d_cell = dc[j] + dh[j] * o[j] * (1.0f - tanh_c[j] * tanh_c[j]);
    d_o[j] = dh[j] * tanh_c[j] * o[j] * (1.0f - o[j]);
    d_i[j] = d_cell * g[j] * i[j] * (1.0f - i[j]);
    d_g[j] = d_cell * i[j] * (1.0f - g[j] * g[j]);
    d_f[j] = d_cell * c[j] * f[j] * (1.0f - f[j]);
    dc[j] = d_cell * f[j];
  }
}

// LSTM backward over T steps, last to first, from the forward's buffers. d_h (T, B, H) holds the
// gradients arriving at each h(t) from above and receives the totals; d_c (B, H) holds the
// gradient arriving at c(T) and leaves as that of c0; d_gates (T, B, 4H) receives the gradients
// of the pre-activations; d_h0 (B, H) the gradient of h0 (zeros on entry).
void lstm_backward_loop(at::Tensor d_h, at::Tensor d_c, const at::Tensor& gates, const at::Tensor& cs,
                        const at::Tensor& tanh_c, const at::Tensor& w_hh, at::Tensor d_gates, at::Tensor d_h0) {
  at::AutoDispatchBelowADInplaceOrView guard;  // plain buffers: skip the autograd layers of the dispatcher
  check({{d_h, "d_h"}, {d_c, "d_c"}, {gates, "gates"}, {cs, "cs"},
         {tanh_c, "tanh_c"}, {d_gates, "d_gates"}, {d_h0, "d_h0"}});
  const int64_t hidden = d_h.size(2);
  const float *dh = d_h.data_ptr<float>(), *c = cs.data_ptr<float>(), *tc = tanh_c.data_ptr<float>();
  float* dc = d_c.data_ptr<float>();
  backward_steps(d_h, d_h0, gates, d_gates, w_hh, nullptr, [&](const float* row, float* d_row, int64_t k, int64_t kb) {
    lstm_gates_backward(dh + k, dc + kb, row, row + hidden, row + 2 * hidden, row + 3 * hidden, c + k, tc + k, d_row,
                        d_row + hidden, d_row + 2 * hidden, d_row + 3 * hidden, hidden);
  });
}

}  // namespace

TORCH_LIBRARY(anomaly_rnn, m) {
  m.def("gru_forward_loop(Tensor(a!) g, Tensor gi_n, Tensor(b!) hs, Tensor w_hh_t, Tensor(c!) n) -> ()",
        &gru_forward_loop);
  m.def("gru_backward_loop(Tensor(a!) d_h, Tensor g, Tensor n, Tensor hs, Tensor w_hh, Tensor(b!) d_gh, "
        "Tensor(c!) d_in_n, Tensor(d!) d_h0) -> ()",
        &gru_backward_loop);
  m.def("gru_free_forward_loop(Tensor(a!) g, Tensor(b!) hs, Tensor w_cat_t, Tensor(c!) n) -> ()",
        &gru_free_forward_loop);
  m.def("gru_free_backward_loop(Tensor(a!) d_h, Tensor g, Tensor n, Tensor hs, Tensor w_cat, Tensor(b!) d_g, "
        "Tensor(c!) d_h0) -> ()",
        &gru_free_backward_loop);
  m.def("lstm_forward_loop(Tensor(a!) gates, Tensor(b!) hs, Tensor(c!) cs, Tensor(d!) tanh_c, Tensor w_hh_t) -> ()",
        &lstm_forward_loop);
  m.def("lstm_backward_loop(Tensor(a!) d_h, Tensor(b!) d_c, Tensor gates, Tensor cs, Tensor tanh_c, Tensor w_hh, "
        "Tensor(c!) d_gates, Tensor(d!) d_h0) -> ()",
        &lstm_backward_loop);
}

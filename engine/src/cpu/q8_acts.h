// Activations quantized for the int8 kernels (qgemm.h): each row of K values (K a multiple of 32)
// becomes 8-bit codes in blocks of 32 with one fp32 scale per block,
//   d = amax / 127,  q = round_half_even(x * (1 / d))   (d = 0 and q = 0 for an all-zero block),
// stored as the unsigned bytes q + 128 (the unsigned operand of the dot-product instructions; the
// kernels take the 128 back out through the weights' sums), plus d times each block's sum of q
// (for the weights' mins). The same codes are also kept signed (q; unless the buffer is reserved
// without them) with each block's integer sum of q: the kernels that read packed weights in place
// (qgemm_direct.h) take the weights as the unsigned operand instead.
// Every ISA path rounds the same way, so the codes are identical on all of them.
#pragma once

#include <cstdint>
#include <vector>

namespace dg {

class ThreadPool;

constexpr int64_t kActBlock = 32;

struct QuantActs {
  const uint8_t* q = nullptr;   // [n_rows, ldq] codes q + 128 (ldq >= K, a multiple of 64)
  const float* d = nullptr;     // [n_rows, ldb] block scales, ldb >= K / 32
  const float* ds = nullptr;    // [n_rows, ldb] d * (sum of the block's 32 codes)
  const int8_t* qs = nullptr;   // [n_rows, ldq] the codes q, signed (null: a buffer without them)
  const int32_t* qsum = nullptr;  // [n_rows, ldb] sum of the block's 32 codes q
  int64_t n_rows = 0, K = 0, ldq = 0, ldb = 0;
  const uint64_t* live = nullptr;  // the buffer's current generation
  uint64_t gen = 0;                // the generation these codes belong to

  // False once the buffer has been reused for another matrix (or for an empty view).
  bool valid() const { return live != nullptr && *live == gen && n_rows > 0; }
  const uint8_t* row(int64_t r) const { return q + r * ldq; }
  // Rows [first, first + n) as their own view (an expert's slice of the gathered rows).
  QuantActs rows(int64_t first, int64_t n) const {
    QuantActs v = *this;
    v.q += first * ldq;
    v.d += first * ldb;
    v.ds += first * ldb;
    v.qs += first * ldq;
    v.qsum += first * ldb;
    v.n_rows = n;
    return v;
  }
};

struct ActRow;

// Owns the storage for up to max_rows rows of up to max_k values (sized once per context).
class QuantActsBuffer {
 public:
  // signed_codes = false: no signed copy (views have qs = null), for inputs only the staged
  // kernels read (the soft embedding's probabilities: 67 MB fewer to write and hold).
  void reserve(int64_t max_rows, int64_t max_k, bool signed_codes = true);
  int64_t max_rows() const { return max_rows_; }
  int64_t max_k() const { return max_k_; }

  // Quantizes x [n_rows, ldx] (K values per row) into this buffer, rows split over the pool.
  // Views from earlier calls become invalid (QuantActs::valid).
  QuantActs quantize(ThreadPool& pool, const float* x, int64_t ldx, int64_t n_rows, int64_t K);

  // Filling by parts (the experts' rows, from several threads): begin() starts a new matrix of
  // n_rows x K (invalidating earlier views); quantize_rows() then fills rows [r0, r1),
  // single-threaded, disjoint ranges from different threads.
  void begin(int64_t n_rows, int64_t K);
  QuantActs quantize_rows(const float* x, int64_t ldx, int64_t r0, int64_t r1);
  // Row r of the current matrix from x[0..K) (a row computed in a per-thread buffer).
  void quantize_row(const float* x, int64_t r);
  QuantActs current() const { return view(cur_rows_, cur_k_); }  // the matrix begin() started

  // Row r of the result = row rows[r] of src (another buffer's valid view), r < n_rows: the
  // experts' inputs gathered by expert without quantizing each token's row k times.
  QuantActs gather(ThreadPool& pool, const QuantActs& src, const int32_t* rows, int64_t n_rows);

 private:
  QuantActs view(int64_t n_rows, int64_t K) const;
  ActRow act_row(const QuantActs& a, int64_t r);  // row r's storage
  int64_t max_rows_ = 0, max_k_ = 0, ldq_ = 0, ldb_ = 0;
  int64_t cur_rows_ = 0, cur_k_ = 0;
  bool signed_ = true;
  uint64_t gen_ = 0;
  std::vector<uint8_t> q_;
  std::vector<float> d_, ds_;
  std::vector<int8_t> qs_;
  std::vector<int32_t> qsum_;
};

// One row's quantized form: codes q + 128 and q, K of each; per block of 32: d, ds and the sum of q.
struct ActRow {
  uint8_t* q;       // [K] q + 128
  int8_t* qs;       // [K] q, or null (not kept)
  float* d;         // [K / 32]
  float* ds;        // [K / 32]
  int32_t* qsum;    // [K / 32]
};

// Quantizes x[0..K) into r. The ISA path is the active one (cpu_features.h); all paths give the
// same bytes.
void quantize_act_row(const float* x, int64_t K, const ActRow& r);

}  // namespace dg

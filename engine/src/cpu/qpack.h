// Packed panels: a quantized matrix rewritten, once at load time, in the order the int8 kernels
// (qgemm.h) read it, so that a pass reads the codes in place (AVX512-VNNI, qgemm_direct.h) or
// only widens them (the other ISA paths) instead of gathering 32 rows and transposing them
// (qpanel.h). Made for the experts' weights, whose panels serve only ~16 activation rows each and
// whose decoding cost as much as their products.
//
// The packed matrix has the original's size: panel P (rows 32P..32P+31) occupies the same bytes
// the 32 rows did, 32 * row_bytes, as one chunk per storage block of the format (its 32 rows'
// blocks, 32 * block_bytes bytes), so WeightView::row() still finds a panel when the row is a
// multiple of 32. Chunk layouts (o = output 0..31 of the panel, step j = 4 values, i = 0..3):
//   Q8_0  (32 values, 1088 B):  d[32] fp16 | codes[8][32][4] int8 (as stored)
//   Q4_0  (32 values,  576 B):  d[32] fp16 | nib[8][16][4]
//   Q5_0  (32 values,  704 B):  d[32] fp16 | hi[8][2] u64 | nib[8][16][4]
//   Q4_K (256 values, 4608 B):  d[32] fp16 | dmin[32] fp16 | slo[16][16] | shi[16] u64 | nib[64][16][4]
// nib byte (j, o % 16, i): low nibble = 4-bit code of output o < 16, high nibble = that of o + 16;
// hi[j][o / 16] bit 4 (o % 16) + i: the fifth bit of Q5_0's code (j, o, i). Q4_K's sixteen 6-bit
// scales of output o (s = 0..7: sc[s], 8..15: m[s - 8]) are split the same way, for lanes: low 4
// bits in the nibble (o / 16) of slo[s][o % 16], high 2 bits at bit 2o of shi[s].
// The kernels' panels made from a packed matrix are byte-identical to those decoded from the
// original, so results do not depend on packing.
#pragma once

#include <cstdint>
#include <vector>

#include "cpu/qpanel.h"
#include "cpu/weight_view.h"

namespace dg {

// Whether type t has a packed layout.
bool qpack_supported(GGMLType t);

// Whether matrix w (unpacked) can be packed: a supported type and whole panels.
bool qpack_applies(const WeightView& w);

// Writes panels [p0, p1) of w (unpacked) into dst, at the offsets they have in w
// (dst + P * 32 * w.row_bytes). Single-threaded; callers split the panels.
void qpack_panels(const WeightView& w, int64_t p0, int64_t p1, uint8_t* dst);

// The original rows of a packed view (w.packed; w.n_out a multiple of 32, its first row too)
// into dst[w.n_out][w.row_bytes].
void qunpack_rows(const WeightView& w, uint8_t* dst);

// w itself, or for a packed view its rows restored into buf (grown as needed, then reused) and
// a view of them: what the float kernels, which read rows, take.
WeightView restored_rows(const WeightView& w, std::vector<uint8_t>& buf);

// The kernels' panel of rows [c0, c0 + 32) (c0 a multiple of 32) and values [k0, k0 + kc) of a
// packed view: what decode_qpanel() makes of the original. The ISA path is the active one.
void unpack_qpanel(const WeightView& w, int64_t c0, int64_t k0, int64_t kc, const QPanel& p);

// Only p.S (and p.M) of that panel: for the kernels that read the codes in place (qgemm_direct.h).
void unpack_qscales(const WeightView& w, int64_t c0, int64_t k0, int64_t kc, const QPanel& p);

// Where the parts of a packed chunk start (bytes from the chunk; the layouts above).
struct QPackLayout {
  int block = 32;        // values per chunk
  int block_bytes = 34;  // bytes per original block (chunk = 32 of them)
  int head = 2;          // header bytes per output of the legacy formats (fp16 d); Q4_K: 0 (its own head)
  int hi = 0;            // offset of Q5_0's fifth bits, or 0
  int codes = 64;        // offset of the codes: nib[block / 4][16][4] or Q8_0's [block / 4][32][4]
  bool nibbles = true;
  int zero = 0;          // the format's zero point Z (c = u - Z; Q8_0: the stored bytes are u - 128)
};
QPackLayout qpack_layout(GGMLType t);  // t: qpack_supported

}  // namespace dg

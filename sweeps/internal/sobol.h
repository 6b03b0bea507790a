// Scrambled Sobol' sequences: the low-discrepancy points behind `method:
// sobol`.
//
// Direction numbers are Joe and Kuo's (new-joe-kuo-6.21201, search criterion
// D(6): good two-dimensional projections) for the first kSobolDimensions
// dimensions. Points come in Gray-code order, so the first 2^m points of any
// scrambling are a (t, m, s)-net: in dimensions 1 and 2 (t = 0 there), every
// box [a/2^i, (a+1)/2^i) x [b/2^j, (b+1)/2^j) with i + j = m holds exactly one
// point. Scrambling is Matousek's linear matrix scramble plus a digital shift
// (as scipy.stats.qmc.Sobol does), which keeps that property and makes the
// points of different seeds independent.
//
// Thread safety: pure functions.
#ifndef SWEEP_SWEEPS_INTERNAL_SOBOL_H_
#define SWEEP_SWEEPS_INTERNAL_SOBOL_H_

#include <cstdint>
#include <optional>
#include <vector>

namespace sweep::spec::internal {

inline constexpr int kSobolDimensions = 128;
inline constexpr uint64_t kSobolPoints = uint64_t{1} << 32;

// Returns point `index` of the Sobol' sequence in `dimensions` dimensions.
// Preconditions: index < kSobolPoints, 1 <= dimensions <= kSobolDimensions.
// Unscrambled (`scramble_seed` nullopt) the coordinates are k / 2^32 and point
// 0 is the origin; scrambled with a seed they are (k + 1/2) / 2^32, strictly
// inside (0, 1), and a pure function of (index, dimensions, seed).
std::vector<double> SobolPoint(uint64_t index, int dimensions,
                               std::optional<uint64_t> scramble_seed);

}  // namespace sweep::spec::internal

#endif  // SWEEP_SWEEPS_INTERNAL_SOBOL_H_

// Deterministic initial values of parameters. Element `index` of the row of
// `key` in table `table` is a pure function of (config, table, key, index):
// a counter-based generator (splitmix64 over Mix64-chained seeds), with no
// state and no dependence on which server holds the key, in which order keys
// arrive, or how a row or dense range is split. A key pulled before it was
// ever pushed therefore gets the same value on every server, and a row that
// was evicted comes back with the same initial value.
//
// Lives in common/ because servers (EmbeddingTable, DenseShard) and the
// models library (scoring a saved model: keys it does not hold get their
// initial value) must compute the same values.
//
// Thread safety: thread-safe (pure functions).
#ifndef TESSERA_COMMON_INITIALIZER_H_
#define TESSERA_COMMON_INITIALIZER_H_

#include <cstdint>
#include <span>

#include "common/table_config.h"
#include "common/types.h"

namespace tessera {

// Fills `out` with elements [0, out.size()) of the initial row of `key`:
//   kZeros:   0
//   kUniform: uniform in [-scale, scale)
//   kNormal:  normal with mean 0 and stddev `scale` (Box-Muller: elements
//             2j and 2j+1 are the cosine and sine outputs of one pair)
//
// Example:
//   std::vector<float> row(dim);
//   InitializeRow(config.initializer, config.id, key, row);
void InitializeRow(const InitializerConfig& config, TableId table, Key key,
                   std::span<float> out);

// The value a key without a row reads as in table `config`: zeros when the
// table admits keys and says so (AdmissionConfig::unadmitted_zeros), else
// its initial row. Servers and saved-model readers both use it, so serving
// matches training.
void MissingRowValue(const TableConfig& config, Key key, std::span<float> out);

// Fills `out` with elements [first_index, first_index + out.size()) of the
// same conceptual row. InitializeRow(c, t, k, out) is
// InitializeSlice(c, t, k, 0, out). Dense tables use it with a fixed key and
// the element index, so any split of a dense table into ranges yields the
// same values.
void InitializeSlice(const InitializerConfig& config, TableId table, Key key,
                     uint64_t first_index, std::span<float> out);

}  // namespace tessera

#endif  // TESSERA_COMMON_INITIALIZER_H_

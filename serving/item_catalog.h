// The item catalogue of `tessera serve --catalog items.tsv`: what fills the
// other fields of a recommend candidate given as a bare item id.
//
// The file holds rows of the training TSV format (label, then the schema's
// fields; the label is ignored), one per item, keyed by the catalogue's key
// field (CatalogKeyField). Each row becomes a JSON instance
// (serving/instance_encoder.h) of its non-empty columns. A catalogue is
// best written with only the item columns filled: a candidate's fields come
// from the candidate first, then the request's context, then the catalogue
// (so a user column left in a row never overrides the request's user).
//
// Thread-safe after loading (immutable).
#ifndef TESSERA_SERVING_ITEM_CATALOG_H_
#define TESSERA_SERVING_ITEM_CATALOG_H_

#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "absl/container/flat_hash_map.h"
#include "common/status.h"
#include "models/schema.h"

namespace tessera::serving {

// The field a bare candidate id names: `item_id` if it is a categorical
// field, else the first categorical field sharing the table of the first
// sequence field (the target a history attends to, e.g. `item` for
// `hist_items`). NotFound if neither exists.
StatusOr<std::string> CatalogKeyField(const models::Schema& schema);

class ItemCatalog {
 public:
  // Reads `path` (rows parsed and checked like training data). NotFound if
  // it cannot be read; InvalidArgument naming the line for a bad row, a row
  // without a key or a key seen twice.
  static StatusOr<ItemCatalog> Load(const std::string& path, const models::Schema& schema,
                                    const std::string& key_field);

  // The instance of item `id`, or null.
  const nlohmann::json* Find(std::string_view id) const;
  size_t size() const { return items_.size(); }

 private:
  absl::flat_hash_map<std::string, nlohmann::json> items_;
};

}  // namespace tessera::serving

#endif  // TESSERA_SERVING_ITEM_CATALOG_H_

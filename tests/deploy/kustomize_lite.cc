#include "tests/deploy/kustomize_lite.h"

#include <filesystem>
#include <map>
#include <set>

namespace tessera::deploy {
namespace {

namespace fs = std::filesystem;

// The lists strategic merge merges by key instead of replacing, by the
// name of the list: container ports merge by containerPort, the rest by name.
const char* MergeKey(const std::string& list) {
  static const std::map<std::string, const char*> kKeys = {
      {"containers", "name"}, {"initContainers", "name"}, {"env", "name"},
      {"volumes", "name"},    {"volumeMounts", "mountPath"}, {"ports", "containerPort"}};
  auto it = kKeys.find(list);
  return it == kKeys.end() ? nullptr : it->second;
}

std::string Scalar(const YAML::Node& node) {
  return node && node.IsScalar() ? node.Scalar() : std::string();
}

// Reads go through a const node: yaml-cpp's non-const operator[] would add
// the missing keys it is asked about.
const YAML::Node& Read(const YAML::Node& node) { return node; }

// node[key] if node is a map holding key, else a null node (yaml-cpp throws
// on a lookup in a missing node).
YAML::Node Child(const YAML::Node& node, const char* key) {
  return node.IsMap() && node[key] ? node[key] : YAML::Node();
}

void MergeList(YAML::Node target, const YAML::Node& patch, const char* key) {
  for (const YAML::Node& item : patch) {
    bool merged = false;
    for (YAML::Node existing : target) {
      if (item.IsMap() && existing.IsMap() && Scalar(Read(existing)[key]) == Scalar(item[key])) {
        StrategicMerge(existing, item);
        merged = true;
        break;
      }
    }
    if (!merged) target.push_back(YAML::Clone(item));
  }
}

Status ApplyImages(const YAML::Node& images, std::vector<YAML::Node>* objects) {
  for (const YAML::Node& image : images) {
    const std::string name = Scalar(image["name"]);
    const std::string new_name = image["newName"] ? Scalar(image["newName"]) : name;
    const std::string tag = Scalar(image["newTag"]);
    for (YAML::Node& object : *objects) {
      YAML::Node spec = Child(Child(Child(object, "spec"), "template"), "spec");
      if (!spec.IsMap()) continue;
      std::vector<YAML::Node> containers;
      for (YAML::Node c : Read(spec)["initContainers"]) containers.push_back(c);
      for (YAML::Node c : Read(spec)["containers"]) containers.push_back(c);
      for (YAML::Node container : containers) {
        const std::string current = Scalar(container["image"]);
        if (current == name || current.rfind(name + ":", 0) == 0) {
          container["image"] = tag.empty() ? new_name : new_name + ":" + tag;
        }
      }
    }
  }
  return OkStatus();
}

Status ApplyReplicas(const YAML::Node& replicas, std::vector<YAML::Node>* objects) {
  for (const YAML::Node& entry : replicas) {
    const std::string name = Scalar(entry["name"]);
    bool found = false;
    for (YAML::Node& object : *objects) {
      const std::string kind = Scalar(Read(object)["kind"]);
      if ((kind == "Deployment" || kind == "StatefulSet") &&
          Scalar(Read(object)["metadata"]["name"]) == name) {
        object["spec"]["replicas"] = entry["count"].as<int>();
        found = true;
      }
    }
    if (!found) return InvalidArgumentError("replicas: no Deployment or StatefulSet " + name);
  }
  return OkStatus();
}

Status ApplyPatch(const std::string& path, std::vector<YAML::Node>* objects) {
  TESSERA_ASSIGN_OR_RETURN(std::vector<YAML::Node> patches, LoadDocuments(path));
  for (const YAML::Node& patch : patches) {
    bool found = false;
    for (YAML::Node& object : *objects) {
      if (ObjectId(object) == ObjectId(patch)) {
        StrategicMerge(object, patch);
        found = true;
      }
    }
    if (!found) return InvalidArgumentError(path + ": no resource " + ObjectId(patch) + " to patch");
  }
  return OkStatus();
}

StatusOr<std::vector<YAML::Node>> BuildOrThrow(const fs::path& dir) {
  TESSERA_ASSIGN_OR_RETURN(std::vector<YAML::Node> docs,
                           LoadDocuments((dir / "kustomization.yaml").string()));
  if (docs.size() != 1 || !docs[0].IsMap()) {
    return InvalidArgumentError(dir.string() + "/kustomization.yaml: expected one map");
  }
  const YAML::Node& k = docs[0];
  static const std::set<std::string> kSupported = {"apiVersion", "kind",   "resources", "namespace",
                                                   "patches",    "images", "replicas"};
  for (const auto& entry : k) {
    if (kSupported.count(entry.first.Scalar()) == 0) {
      return InvalidArgumentError(dir.string() + "/kustomization.yaml: '" + entry.first.Scalar() +
                                  "' is outside the kustomize subset the tests implement");
    }
  }
  std::vector<YAML::Node> objects;
  for (const YAML::Node& resource : k["resources"]) {
    const fs::path path = dir / resource.Scalar();
    if (!fs::exists(path)) return NotFoundError("resource " + path.string() + " not found");
    StatusOr<std::vector<YAML::Node>> loaded =
        fs::is_directory(path) ? Build(path.string()) : LoadDocuments(path.string());
    if (!loaded.ok()) return loaded.status();
    objects.insert(objects.end(), loaded->begin(), loaded->end());
  }
  for (const YAML::Node& patch : k["patches"]) {
    if (!patch["path"]) return InvalidArgumentError("patches: only `path:` entries are supported");
    TESSERA_RETURN_IF_ERROR(ApplyPatch((dir / patch["path"].Scalar()).string(), &objects));
  }
  TESSERA_RETURN_IF_ERROR(ApplyImages(k["images"], &objects));
  TESSERA_RETURN_IF_ERROR(ApplyReplicas(k["replicas"], &objects));
  if (k["namespace"]) {
    for (YAML::Node& object : objects) {
      if (Scalar(Read(object)["kind"]) != "Namespace") {
        object["metadata"]["namespace"] = k["namespace"].Scalar();
      }
    }
  }
  return objects;
}

}  // namespace

std::string ObjectId(const YAML::Node& object) {
  return Scalar(object["kind"]) + "/" + Scalar(object["metadata"]["name"]);
}

StatusOr<std::vector<YAML::Node>> LoadDocuments(const std::string& path) {
  try {
    std::vector<YAML::Node> docs;
    for (const YAML::Node& doc : YAML::LoadAllFromFile(path)) {
      if (doc && !doc.IsNull()) docs.push_back(doc);
    }
    return docs;
  } catch (const YAML::Exception& e) {
    return InvalidArgumentError(path + ": " + e.what());
  }
}

StatusOr<std::vector<YAML::Node>> Build(const std::string& dir) {
  try {
    return BuildOrThrow(dir);
  } catch (const YAML::Exception& e) {  // a value of the wrong type
    return InvalidArgumentError(dir + ": " + e.what());
  }
}

void StrategicMerge(YAML::Node target, const YAML::Node& patch) {
  for (const auto& entry : patch) {
    const std::string key = entry.first.Scalar();
    const YAML::Node& value = entry.second;
    if (value.IsNull()) {
      target.remove(key);
    } else if (value.IsMap() && Read(target)[key].IsMap()) {
      StrategicMerge(Read(target)[key], value);
    } else if (value.IsSequence() && Read(target)[key].IsSequence() && MergeKey(key) != nullptr) {
      MergeList(Read(target)[key], value, MergeKey(key));
    } else {
      target[key] = YAML::Clone(value);
    }
  }
}

}  // namespace tessera::deploy

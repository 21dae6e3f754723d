// The subset of kustomize that deploy/k8s uses, so the manifests can be
// built and checked on a machine without kubectl or kustomize:
//   resources (files of one or more YAML documents, or directories holding
//   a kustomization.yaml), namespace, patches (strategic-merge files, each
//   document matched to a resource by kind and metadata.name), images
//   (name -> newName/newTag) and replicas (Deployment, StatefulSet).
// Any other kustomization key is refused, so a manifest using more than this
// subset fails the test instead of being checked wrongly.
//
// Strategic merge follows Kubernetes' merge keys for the lists deploy/k8s
// patches (containers, env, ports, volumes, volumeMounts by name;
// container ports by containerPort); other lists are replaced, maps merge
// recursively and a null value deletes a key.
//
// Thread-compatible; YAML::Node values are deep copies owned by the caller.
#ifndef TESSERA_TESTS_DEPLOY_KUSTOMIZE_LITE_H_
#define TESSERA_TESTS_DEPLOY_KUSTOMIZE_LITE_H_

#include <yaml-cpp/yaml.h>

#include <string>
#include <vector>

#include "common/status.h"

namespace tessera::deploy {

// Every document of a YAML file (empty documents skipped). InvalidArgument
// naming the file if it does not parse.
StatusOr<std::vector<YAML::Node>> LoadDocuments(const std::string& path);

// `kustomize build DIR` for the subset above. NotFound for a missing
// resource; InvalidArgument for an unsupported key or a patch or replicas
// entry that matches no resource.
StatusOr<std::vector<YAML::Node>> Build(const std::string& dir);

// Merges `patch` into `target` (strategic merge, see above).
void StrategicMerge(YAML::Node target, const YAML::Node& patch);

// "Kind/name" of an object.
std::string ObjectId(const YAML::Node& object);

}  // namespace tessera::deploy

#endif  // TESSERA_TESTS_DEPLOY_KUSTOMIZE_LITE_H_

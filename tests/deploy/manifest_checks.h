// Checks of built Kubernetes manifests (deploy/k8s) against what the
// `tessera` binary accepts and serves. Each check returns the problems it
// found as lines "Kind/name: what is wrong"; an empty list passes.
//
// What is checked:
//  - every object has apiVersion, kind, metadata.name (and, built, a
//    namespace unless it is the Namespace); the fields each kind needs
//    (selectors matching the pod template, containers with images, an
//    Indexed Job with completions == parallelism and restartPolicy Never,
//    Services whose selector picks a pod template and whose named
//    targetPorts exist, an HPA whose target exists, a ReadWriteMany PVC, a
//    PodMonitor whose ports exist and whose every endpoint relabels job to
//    "tessera" and role from the pod's app.kubernetes.io/component, as
//    deploy/prometheus/alerts.yml expects, and every pod it scrapes has a
//    component that is a role: scheduler, server, worker or serving);
//  - volumes: each volumeMount has its volume, each ConfigMap and PVC
//    volume its object;
//  - containers running `tessera SUBCOMMAND`: every --flag is in
//    `tessera SUBCOMMAND --help`; every $(VAR) is defined in env; the
//    metrics port (--metrics-port, or --port for serve) is a containerPort,
//    the port of the liveness probe (/healthz) and readiness probe
//    (/readyz) and of the prometheus.io/port annotation (path /metrics);
//    the --bind port is a containerPort; TESSERA_SCHEDULER names a Service
//    port of the scheduler;
//  - the job file of the ConfigMap passes models::LoadJobConfig, its
//    cluster.servers and cluster.workers equal the servers StatefulSet's
//    replicas and the workers Job's completions, --job is a key of it under
//    its mountPath, and a scheduler with --resume has publish.model_dir.
#ifndef TESSERA_TESTS_DEPLOY_MANIFEST_CHECKS_H_
#define TESSERA_TESTS_DEPLOY_MANIFEST_CHECKS_H_

#include <yaml-cpp/yaml.h>

#include <functional>
#include <set>
#include <string>
#include <vector>

namespace tessera::deploy {

// The long flags `tessera SUBCOMMAND --help` lists; empty for an unknown
// subcommand.
using HelpFlags = std::function<std::set<std::string>(const std::string& subcommand)>;

// `built`: whether the objects are a kustomize build (namespaces set).
std::vector<std::string> CheckManifests(const std::vector<YAML::Node>& objects, bool built,
                                        const HelpFlags& help_flags);

// The long flags (--name) in a --help text.
std::set<std::string> ParseHelpFlags(const std::string& help);

}  // namespace tessera::deploy

#endif  // TESSERA_TESTS_DEPLOY_MANIFEST_CHECKS_H_

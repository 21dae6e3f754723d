// CurveZMQ keys of a cluster, and the files that hold them.
//
// Tessera's Curve design is one cluster keypair, shared by every node (like
// the cluster token): every bound socket is a Curve server with the
// cluster's secret key, every connecting socket is a Curve client that
// expects the cluster's public key and presents the cluster keypair, and a
// ZAP handler admits only clients whose long-term key is the cluster's
// public key. CurveZMQ makes a client prove it holds the secret key of the
// public key it presents (the vouch box of INITIATE), so a peer without
// curve.key is refused at the handshake. See common/zmq_transport.h.
//
// Key directory (written by `tessera keygen --out DIR`):
//   DIR/curve.pub  the public key, Z85 (40 characters), mode 0644
//   DIR/curve.key  the secret key, Z85 (40 characters), mode 0600
// Each file holds the key on one line; lines starting with '#' are comments.
//
// Thread safety: free functions, thread-safe.
#ifndef TESSERA_COMMON_CURVE_KEYS_H_
#define TESSERA_COMMON_CURVE_KEYS_H_

#include <string>
#include <string_view>

#include "common/status.h"

namespace tessera {

inline constexpr char kCurvePublicKeyFile[] = "curve.pub";
inline constexpr char kCurveSecretKeyFile[] = "curve.key";
inline constexpr size_t kCurveKeyZ85Chars = 40;

// A Curve keypair in Z85 text. Both empty: Curve is off.
struct CurveKeys {
  std::string public_key;
  std::string secret_key;

  bool enabled() const { return !secret_key.empty(); }
};

// OK if this libzmq was built with CURVE (libsodium); FailedPrecondition,
// with a message saying what to install, otherwise.
Status CurveAvailable();

// A fresh keypair (zmq_curve_keypair). FailedPrecondition without CURVE.
StatusOr<CurveKeys> GenerateCurveKeys();

// OK if `keys` is a valid pair: both 40 Z85 characters and the public key is
// the one derived from the secret key. InvalidArgument otherwise.
Status ValidateCurveKeys(const CurveKeys& keys);

// Writes curve.pub (0644) and curve.key (0600) into `dir`, creating it
// (0700) if needed. AlreadyExists if either file exists and !overwrite.
Status WriteCurveKeys(const CurveKeys& keys, const std::string& dir, bool overwrite);

// Reads and validates the keypair of `dir`. NotFound if a file is missing;
// FailedPrecondition if curve.key is readable by group or others (as ssh
// refuses such identity files); InvalidArgument for a malformed or
// mismatched pair.
StatusOr<CurveKeys> ReadCurveKeys(const std::string& dir);

}  // namespace tessera

#endif  // TESSERA_COMMON_CURVE_KEYS_H_

// Is an address this machine's? Used to decide whether this launcher hosts
// the rendezvous server (is_host) when rdzv_conf does not say.
// Invariant: an address counts as local iff a socket can be bound to it
// (every 127.x address and every address of a local interface).
#pragma once

#include <string>

#include "absl/status/statusor.h"

namespace anvil::launcher {

// Resolves `host` (name or literal) and reports whether any of its addresses
// is bindable here. NOT_FOUND when the name does not resolve.
absl::StatusOr<bool> IsLocalAddress(const std::string& host);

// True when `a` and `b` resolve to a common address.
bool SameAddress(const std::string& a, const std::string& b);

// The fully qualified name of this machine (the hostname when it has none).
std::string LocalHostName();
// gethostname(), as shown in log prefixes.
std::string ShortHostName();

}  // namespace anvil::launcher

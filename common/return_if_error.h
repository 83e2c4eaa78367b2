#pragma once
// The one early return on a failed absl::Status, shared by every module that chains fallible
// steps (the store, the policy compiler). Kept apart from common/status.h so that code which
// never meets gRPC does not pull in its headers.

#include "absl/status/status.h"

// Returns early from the enclosing function with the status of a failed expression.
#define APIM_RETURN_IF_ERROR(expr)                     \
  do {                                                 \
    if (absl::Status _s = (expr); !_s.ok()) return _s; \
  } while (0)

#pragma once
// Descriptor limits for processes that hold a socket (or two) per connection.

#include <sys/resource.h>

namespace apim {

// Raises the soft open-file limit to `wanted` (0: as far as the hard limit allows), then grows
// the process's descriptor table to that size at once. The kernel otherwise grows the table by
// doubling it as descriptors are opened, and in a process with several threads every growth
// waits for an RCU grace period, stalling the thread that opens the descriptor for 10-30 ms (seen
// as connections left in the accept queue at the 128th, 256th, 512th... connection). Returns the
// soft limit in force.
rlim_t PrepareDescriptors(rlim_t wanted = 0);

}  // namespace apim

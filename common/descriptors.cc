#include "common/descriptors.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>

namespace apim {

rlim_t PrepareDescriptors(rlim_t wanted) {
  rlimit files{};
  if (getrlimit(RLIMIT_NOFILE, &files) != 0) return 0;
  const rlim_t target = wanted == 0 ? files.rlim_max : std::min(wanted, files.rlim_max);
  if (files.rlim_cur < target) {
    files.rlim_cur = target;
    if (setrlimit(RLIMIT_NOFILE, &files) != 0) getrlimit(RLIMIT_NOFILE, &files);
  }
  // A placeholder at the highest descriptor number grows the table; closing it keeps the table.
  // Capped: a table costs kernel memory (8 bytes a slot), and past this size growths are rare.
  constexpr rlim_t kMostReserved = 65536;
  const rlim_t highest = std::min(files.rlim_cur, kMostReserved) - 1;
  const int placeholder = fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, static_cast<int>(highest));
  if (placeholder >= 0) close(placeholder);
  return files.rlim_cur;
}

}  // namespace apim

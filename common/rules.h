#pragma once
// Which generation of rules a document is checked against. Rules only ever get stricter, and a
// stricter rule must not strand what is already stored: a document written under the older rules
// is still served (kServe, what workers and snapshots check) and reported as a warning, while
// every new write must pass them all (kWrite). The README's "Stricter rules" section lists the
// rules kServe leaves out.

namespace apim {

enum class Rules {
  kWrite,  // Every rule: a document about to be stored.
  kServe,  // Without the rules added after documents were first stored.
};

}  // namespace apim

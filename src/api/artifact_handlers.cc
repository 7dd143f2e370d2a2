// Artifact routes: filled in by the artifact work (issue 5).
#include "api/api.h"

namespace lathe::api {

void Api::RegisterArtifactRoutes() {}

uint64_t Api::SpoolLimit(const http::Request&) const { return 0; }

}  // namespace lathe::api

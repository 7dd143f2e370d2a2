// Model registry routes: filled in by the registry work (issue 5).
#include "api/api.h"

namespace lathe::api {

void Api::RegisterRegistryRoutes() {}

}  // namespace lathe::api

#include "tracking/registry.h"

#include "tracking/artifacts.h"

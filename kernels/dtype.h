// Forwarding header for branches written before DType moved to common/dtype.h;
// new code includes common/dtype.h. Removed once no branch needs it.
#pragma once

#include "common/dtype.h"

#include "config.h"
#include "store/query.h"

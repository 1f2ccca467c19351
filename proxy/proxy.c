#include "config.h"
#include "proxy/proxy.h"
int proxy_version_major(void) { return 0; }

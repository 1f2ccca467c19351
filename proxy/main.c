#include "config.h"
#include "proxy/proxy.h"
#include <stdio.h>
int main(void) { printf("%s %d\n", PACKAGE_STRING, proxy_version_major()); return 0; }

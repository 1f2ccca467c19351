/* proxy/: placeholder */
#ifndef VP_PROXY_H
#define VP_PROXY_H
int proxy_version_major(void);
#endif

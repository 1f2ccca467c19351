/* proxy/: the reverse proxy runtime. One call runs it until SIGINT/SIGTERM. */
#ifndef VP_PROXY_H
#define VP_PROXY_H

struct store;
struct vp_options;

/* Resolves the upstream, binds the listener, starts o->workers event-loop threads and serves
 * until SIGINT/SIGTERM, then stops accepting and lets in-flight exchanges finish within
 * o->grace_ms. Start-up problems print one line on stderr. o is borrowed and must outlive the
 * call. st (borrowed, may be NULL) receives a timing record per forwarded exchange and the
 * beacons; the caller frees it after this returns (that commits the queue). Returns the process exit status: 0 after a clean shutdown, 2 for a start-up/config
 * error (address in use, unresolvable upstream), 1 for a runtime failure. */
int proxy_run(const struct vp_options *o, struct store *st);

#endif

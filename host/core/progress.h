/* progress.h — the one way a slow step of starting or stopping a sandbox
 * (installing a release, launching an instance, pulling an image) tells its
 * caller what it is doing: a formatted line handed to an optional callback.
 * Used by the k8s and EC2 sandboxes (and any backend that has slow steps). */
#ifndef SBX_PROGRESS_H
#define SBX_PROGRESS_H

/* Called with each step as it starts; `what` lives only for the call. */
typedef void (*sbx_progress_fn)(void *ud, const char *what);

/* Format a step and hand it to fn (nothing when fn is NULL). Lines longer
 * than 511 bytes are cut. */
void sbx_announce(sbx_progress_fn fn, void *ud, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif

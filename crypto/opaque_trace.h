/*
 * Conformance tracing of OPAQUE intermediates (RFC 9807 Appendix C "intermediates").
 * Only a copy of crypto/opaque.c compiled with -DOPAQUE_TRACE calls this, and only the conformance
 * runner links that copy and defines the function. The library built by `make` has no tracing.
 */
#ifndef SV_CRYPTO_OPAQUE_TRACE_H
#define SV_CRYPTO_OPAQUE_TRACE_H

#include <stddef.h>
#include <stdint.h>

/* name is the JSON field name of the intermediate (e.g. "handshake_secret"). */
void opaque_trace_record(const char *name, const uint8_t *value, size_t len);

#endif

/*
 * `sealvault-admin expect`: prints the expected-values file a provider publishes and users give
 * to `sealvault verify --expect` (format in docs/attestation.md, encoder in client/expect.c).
 * The binaries are hashed exactly as the enclave hashes them for the statement
 * (common/attest_stmt.h) and the policy hash is policy_vault_hash() of the effective policy.
 */
#ifndef SV_ADMIN_EXPECT_H
#define SV_ADMIN_EXPECT_H

#include "common/attest_stmt.h"

/* The three binaries the statement hashes: DIR/{sealvaultd,sealvault-enclave,sealvault-broker};
 * without bindir, next to this program when the enclave is there (a build tree), else
 * sealvaultd next to this program and the other two in the libexec directory. The same rule
 * sealvaultd uses for the enclave's paths. */
void admin_binary_paths(const char *bindir, char paths[ATTEST_NBINARIES][4096]);

/* argv[0] is "expect". Returns the process exit code (0, 1 failure, 2 usage). */
int admin_expect_main(int argc, char **argv);

#endif

/*
 * `sealvault-admin expect`: prints the expected-values file a provider publishes and users give
 * to `sealvault verify --expect` (format in docs/attestation.md, encoder in client/expect.c).
 * The binaries are hashed exactly as the enclave hashes them for the statement
 * (common/attest_stmt.h) and the policy hash is policy_vault_hash() of the effective policy.
 */
#ifndef SV_ADMIN_EXPECT_H
#define SV_ADMIN_EXPECT_H

/* argv[0] is "expect". Returns the process exit code (0, 1 failure, 2 usage). */
int admin_expect_main(int argc, char **argv);

#endif

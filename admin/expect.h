/*
 * `sealvault-admin expect`: prints the expected-values file a provider publishes and users give
 * to `sealvault verify --expect` (format in docs/attestation.md, encoder in client/expect.c).
 * The binaries are hashed exactly as the enclave hashes them for the statement
 * (common/attest_stmt.h) and the policy hash is policy_vault_hash_tenants() of the effective
 * policy and, with auth = tokens, the tenants the vault would load (docs/tokens.md).
 */
#ifndef SV_ADMIN_EXPECT_H
#define SV_ADMIN_EXPECT_H

#include <stdint.h>

#include "common/attest_stmt.h"

/* The three binaries the statement hashes: DIR/{sealvaultd,sealvault-enclave,sealvault-broker};
 * without bindir, next to this program when the enclave is there (a build tree), else
 * sealvaultd next to this program and the other two in the libexec directory. The same rule
 * sealvaultd uses for the enclave's paths. */
void admin_binary_paths(const char *bindir, char paths[ATTEST_NBINARIES][4096]);

struct sv_vault_policy;

/* The policy hash a vault with policy pol signs: with auth = tokens, over the tenants of
 * tenants_dir (enclave/tenant.h; NULL: TENANT_DIR_DEFAULT) as the enclave loads them. 0, or -1
 * after a message naming the tenant file that does not load. */
int admin_policy_hash(const struct sv_vault_policy *pol, const char *tenants_dir, uint8_t out[32]);

/* argv[0] is "expect". Returns the process exit code (0, 1 failure, 2 usage). */
int admin_expect_main(int argc, char **argv);

#endif

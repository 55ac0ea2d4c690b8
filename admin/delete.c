/*
 * `sealvault-admin delete`: destroys one user's record for good and commits the change, through
 * the running vault's admin socket or offline (admin/online.h says which). It never shows a
 * record or resets a guess counter.
 */
#include <stdio.h>
#include <string.h>

#include "admin/admin.h"
#include "admin/online.h"
#include "common/err.h"
#include "common/msg.h"
#include "common/recordkey.h"
#include "enclave/store.h"
#include "enclave/tpm.h"

static void usage(FILE *f)
{
	fprintf(
	    f,
	    "usage: %s delete [--config FILE] [--admin-socket PATH] [--tenant NAME] [--realm] "
	    "--user ID\n"
	    "       %s delete --state-dir DIR --tpm TCTI [--tenant NAME] [--realm] --user ID\n"
	    "  Removes the record of ID for good and commits the change. The first form asks\n"
	    "  the running vault through sealvaultd's admin socket (root or group\n"
	    "  sealvault-admin), or works offline when the vault is stopped; the second always\n"
	    "  works offline and needs the vault stopped. The record is never shown and guess\n"
	    "  counters are never reset. With --tenant (auth = tokens), ID is the user (a token's\n"
	    "  sub) of tenant NAME; without it, an identifier registered in open mode. With\n"
	    "  --realm: the user's threshold-realm record (/v2/realm/) instead of the /v1 one.\n",
	    ADMIN_PROG, ADMIN_PROG);
}

static int delete_user(struct store *st, const uint8_t *key, size_t key_len, const char *user,
                       char *why, size_t why_len)
{
	int r = store_delete_user(st, key, key_len);
	if (r == SV_ERR_NOTFOUND || r == SV_ERR_RANGE) {
		snprintf(why, why_len, "no user %s in this vault", user);
		return SV_ERR_NOTFOUND;
	}
	if (r != SV_OK)
		return r;
	if ((r = store_commit(st)) != SV_OK) {
		snprintf(why, why_len,
		         "the deletion could not be committed (%s); it is not durable, run the "
		         "command again",
		         sv_strerror(r));
		return r;
	}
	printf("deleted user %s\n", user);
	return SV_OK;
}

/* The running vault's answer, reported as offline. */
static int online(const char *user, enum adminmsg_code code, const uint8_t *text, size_t len)
{
	if (code == ADMINMSG_NOTFOUND) {
		fprintf(stderr, "%s: no user %s in this vault\n", ADMIN_PROG, user);
		return ADMIN_EX_EXISTS;
	}
	if (code != ADMINMSG_OK)
		return admin_online_refused(code, text, len);
	printf("deleted user %s\n", user);
	return ADMIN_EX_OK;
}

int admin_delete_main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"state-dir", required_argument, NULL, 'd'},
	    {"tpm", required_argument, NULL, 't'},
	    {"user", required_argument, NULL, 'u'},
	    {"tenant", required_argument, NULL, 'T'},
	    {"realm", no_argument, NULL, 'R'},
	    {"config", required_argument, NULL, 'c'},
	    {"admin-socket", required_argument, NULL, 'a'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *user = NULL, *tenant = NULL;
	uint8_t key[STORE_ID_MAX];
	size_t key_len = 0;
	char label[480];
	struct admin_target t = {0};
	struct tpm *tpm = NULL;
	struct store *st = NULL;
	char why[512] = "";
	int r, c, other = 0, realm = 0;
	while ((c = admin_getopt(argc, argv, opts, &other)) != -1) {
		switch (c) {
		case 'R': realm = 1; break;
		case 'd': t.dir = optarg; break;
		case 't': t.tcti = optarg; break;
		case 'c': t.config = optarg; break;
		case 'a': t.sock = optarg; break;
		case 'u': user = optarg; break;
		case 'T': tenant = optarg; break;
		case 'h': usage(stdout); return ADMIN_EX_OK;
		default: usage(stderr); return ADMIN_EX_USAGE;
		}
	}
	if (optind != argc || other || user == NULL)
		return admin_bad_args("delete", usage);
	/* the record key: the bare identifier (open mode), or tenant and sub (tokens mode) */
	if (tenant == NULL) {
		snprintf(label, sizeof(label), "'%s'", user);
		key_len = strlen(user);
		if (key_len <= sizeof(key))
			memcpy(key, user, key_len);
	} else {
		snprintf(label, sizeof(label), "'%s' of tenant '%s'", user, tenant);
		if (*tenant == '\0' ||
		    record_key_tenant(tenant, (const uint8_t *)user, strlen(user), key, sizeof(key),
		                      &key_len) != 0)
			key_len = 0;
	}
	/* a threshold realm's record: 0x01 | the record key (common/recordkey.h) */
	if (realm && key_len > 0) {
		uint8_t v1[STORE_ID_MAX];
		size_t v1_len = key_len <= sizeof(v1) ? key_len : 0;
		memcpy(v1, key, v1_len);
		if (v1_len == 0 || record_key_realm(v1, v1_len, key, sizeof(key), &key_len) != 0)
			key_len = 0;
		snprintf(label + strlen(label), sizeof(label) - strlen(label), " (realm record)");
	}
	if (*user == '\0' || key_len == 0 || key_len > ADMINMSG_ID_MAX) {
		fprintf(stderr, "%s: no user %s in this vault\n", ADMIN_PROG, label);
		return ADMIN_EX_EXISTS;
	}
	enum adminmsg_code code;
	const uint8_t *body;
	size_t len;
	r = admin_online(&t, SV_MSG_ADMIN_DELETE, key, key_len, &code, &body, &len);
	if (r == ADMIN_ONLINE_ANSWERED)
		r = online(label, code, body, len);
	if (r != ADMIN_ONLINE_OFFLINE || (r = admin_start(t.dir, t.tcti, 1, &tpm)) != ADMIN_EX_OK) {
		admin_target_free(&t);
		return r;
	}
	/* Lazy: the counter is taken over (one NV write) only when there is a deletion to commit.
	 */
	r = store_open_lazy(&st, t.dir, tpm, NULL, why, sizeof(why));
	if (r == SV_OK)
		r = delete_user(st, key, key_len, label, why, sizeof(why));
	int rc = admin_finish(r, why);
	store_close(st);
	tpm_close(tpm);
	admin_target_free(&t);
	return rc;
}

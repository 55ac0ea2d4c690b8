/*
 * sealvault register|recover|delete --realms FILE: threshold realms (docs/realms.md) over
 * libsealvault's sv_realms_* calls. Messages and exit codes are the ones docs/realms.md and
 * sealvault(1) give: 0 success, 2 wrong password, 3 every usable realm destroyed the
 * registration, 4 a missing realm failed attestation, 5 a missing realm refused its access token,
 * 1 anything else (not enough realms, a bad realm list).
 */
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "client/cli.h"
#include "client/sealvault.h"

/* The checks of the commands with --realms (the rest of the options as for one vault). */
int cli_realms_check(const struct opts *o)
{
	int reg = strcmp(o->cmd, "register") == 0, rec = strcmp(o->cmd, "recover") == 0;
	if (!reg && !rec && strcmp(o->cmd, "delete") != 0) {
		fprintf(stderr,
		        "sealvault: --realms works with register, recover and delete, not "
		        "'%s'\n",
		        o->cmd);
		return -1;
	}
	const char *clash = o->server       ? "--server"
	                    : o->cacert     ? "--cacert"
	                    : o->token_file ? "--token"
	                    : o->expect     ? "--expect"
	                    : o->context    ? "--context"
	                                    : NULL;
	if (clash != NULL) {
		fprintf(stderr,
		        "sealvault: %s does not go with --realms: each realm's URL, CA file, token "
		        "and expect file are in the realm list\n",
		        clash);
		return -1;
	}
	const char *missing = o->user == NULL                 ? "--user ID"
	                      : reg && o->secret_file == NULL ? "--secret-file FILE"
	                      : rec && o->out == NULL         ? "--out FILE"
	                                                      : NULL;
	if (missing != NULL) {
		fprintf(stderr, "sealvault: %s needs %s\n", o->cmd, missing);
		return -1;
	}
	if (!reg && (o->min_realms || o->max_attempts || o->generate_code)) {
		fprintf(stderr, "sealvault: --min-realms, --max-attempts and --generate-code are "
		                "options of register\n");
		return -1;
	}
	if (!reg && !rec && o->password_file != NULL) {
		fprintf(stderr, "sealvault: delete --realms needs no password: drop "
		                "--password-file\n");
		return -1;
	}
	if (o->generate_code && o->password_file != NULL) {
		fprintf(stderr,
		        "sealvault: --generate-code makes the password; drop --password-file\n");
		return -1;
	}
	if (o->evidence != NULL || o->nonce != NULL || o->new_password_file != NULL) {
		fprintf(stderr, "sealvault: --evidence, --nonce and --new-password-file do not go "
		                "with --realms\n");
		return -1;
	}
	return 0;
}

static void on_warn(void *arg, const char *message)
{
	(void)arg;
	fprintf(stderr, "sealvault: warning: %s\n", message);
}

static int exit_code(enum sv_result res)
{
	switch (res) {
	case SV_RESULT_OK: return 0;
	case SV_RESULT_WRONG_PASSWORD: return EXIT_WRONG;
	case SV_RESULT_LOCKED: return EXIT_LOCKED;
	case SV_RESULT_UNVERIFIED: return EXIT_UNVERIFIED;
	case SV_RESULT_TOKEN_REFUSED: return EXIT_TOKEN;
	case SV_RESULT_BUSY:
	case SV_RESULT_EXISTS:
	case SV_RESULT_FULL:
	case SV_RESULT_ERROR: break;
	}
	return 1;
}

static int do_register(const struct opts *o, struct sv_realms *r)
{
	struct secret pw = {0}, sec = {0};
	char code[SV_CODE_LEN + 1] = "";
	unsigned g = 0, bound = 0, got = 0, n = sv_realms_count(r), t = sv_realms_threshold(r);
	int rc = 1;
	if (t == 0) {
		fprintf(stderr, "sealvault: registering needs a threshold: --threshold T or "
		                "\"threshold\" in the realm list\n");
		return 1;
	}
	if (o->min_realms && ((unsigned)o->min_realms < t || (unsigned)o->min_realms > n)) {
		fprintf(stderr,
		        "sealvault: --min-realms must be %u to %u (at least the threshold, at most "
		        "the number of realms)\n",
		        t, n);
		return 1;
	}
	if (sv_realms_guess_limit(r, (unsigned)o->max_attempts, &g, &bound) != 0) {
		fprintf(stderr,
		        "sealvault: --max-attempts %ld cannot be met with %u realms and threshold "
		        "%u: each realm allows at least one guess, so the total is at least %u\n",
		        o->max_attempts, n, t, (n + t - 1) / t);
		return 1;
	}
	if (cli_read_secret_file(o->secret_file, &sec) != 0)
		goto out;
	if (sec.len > SV_REALMS_SECRET_MAX_LEN) {
		fprintf(
		    stderr,
		    "sealvault: %s is larger than %d bytes, the most realms store; store a key, "
		    "not a file\n",
		    o->secret_file, SV_REALMS_SECRET_MAX_LEN);
		goto out;
	}
	if (cli_get_new_password(o, o->password_file, &pw, code) != 0)
		goto out;
	fprintf(stderr,
	        "sealvault: each realm allows %u guesses; in all at most %u (%u realms, "
	        "threshold %u)\n",
	        g, bound, n, t);
	enum sv_result res =
	    sv_realms_register(r, o->user, pw.p, pw.len, sec.p, sec.len, (unsigned)o->max_attempts,
	                       (unsigned)o->min_realms, &got);
	rc = exit_code(res);
	if (rc == 0) {
		fprintf(stderr, "sealvault: registered at %u of %u realms\n", got, n);
		if (o->generate_code)
			cli_show_code(code);
	} else {
		fprintf(stderr, "sealvault: %s\n", sv_realms_error(r));
	}
out:
	sodium_memzero(code, sizeof(code));
	cli_secret_free(&pw);
	cli_secret_free(&sec);
	return rc;
}

static int do_recover(const struct opts *o, struct sv_realms *r)
{
	struct secret pw = {0};
	uint8_t *out = NULL;
	size_t out_len = 0;
	int left = -1, rc = 1;
	if (cli_get_password(o->password_file, "Password: ", &pw) != 0)
		return 1;
	enum sv_result res = sv_realms_recover(r, o->user, pw.p, pw.len, &out, &out_len, &left);
	cli_secret_free(&pw);
	rc = exit_code(res);
	switch (res) {
	case SV_RESULT_OK:
		if (cli_write_out(o->out, out, out_len) != 0)
			rc = 1;
		break;
	case SV_RESULT_WRONG_PASSWORD:
		fprintf(stderr, "sealvault: wrong password; attempts left: %d\n", left);
		break;
	case SV_RESULT_LOCKED:
		fprintf(stderr, "sealvault: %s\n", sv_realms_error(r));
		fprintf(stderr, "sealvault: the stored secret cannot be recovered by anyone; "
		                "register again with a new secret\n");
		break;
	default: fprintf(stderr, "sealvault: %s\n", sv_realms_error(r)); break;
	}
	sv_secret_free(out, out_len);
	return rc;
}

static int do_delete(const struct opts *o, struct sv_realms *r)
{
	unsigned got = 0;
	enum sv_result res = sv_realms_delete(r, o->user, &got);
	int rc = exit_code(res);
	if (rc == 0)
		fprintf(stderr, "sealvault: deleted '%s' at all %u realms\n", o->user,
		        sv_realms_count(r));
	else
		fprintf(stderr, "sealvault: %s\n", sv_realms_error(r));
	return rc;
}

int cli_realms(const struct opts *o)
{
	struct sv_realms *r = NULL;
	int rc = 1;
	if (sv_realms_new(&r) != 0) {
		fprintf(stderr, "sealvault: out of memory\n");
		return 1;
	}
	sv_realms_set_warn(r, on_warn, NULL);
	if (sv_realms_load(r, o->realms) != 0) {
		fprintf(stderr, "sealvault: %s\n", sv_realms_error(r));
		goto out;
	}
	if (o->threshold && sv_realms_set_threshold(r, (unsigned)o->threshold) != 0) {
		fprintf(stderr, "sealvault: --threshold: %s\n", sv_realms_error(r));
		goto out;
	}
	if ((o->ksf_t || o->ksf_m) &&
	    sv_realms_set_ksf(r, o->ksf_t ? (uint32_t)o->ksf_t : SV_KSF_DEFAULT_T,
	                      o->ksf_m ? (uint32_t)o->ksf_m : SV_KSF_DEFAULT_M_KIB) != 0) {
		fprintf(stderr, "sealvault: --ksf-t/--ksf-m out of range\n");
		goto out;
	}
	if (o->timeout)
		sv_realms_set_timeout(r, (unsigned)o->timeout);
	if (o->tpm_ca != NULL && sv_realms_set_tpm_ca(r, o->tpm_ca) != 0) {
		fprintf(stderr, "sealvault: out of memory\n");
		goto out;
	}
	if (strcmp(o->cmd, "register") == 0)
		rc = do_register(o, r);
	else if (strcmp(o->cmd, "recover") == 0)
		rc = do_recover(o, r);
	else
		rc = do_delete(o, r);
out:
	sv_realms_free(r);
	return rc;
}

/*
 * The audit records as sealvaultd writes them (daemon/audit.h). The enclave is the only writer on
 * the pair: the broker never holds either end, so it can neither forge nor drop a record. A frame
 * that does not decode is reported and dropped (sealvaultd keeps supervising: the enclave that
 * sent it is the vault's own process, and stopping the service would hide nothing).
 */
#include "daemon/audit.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <syslog.h>
#include <unistd.h>

#include <sodium.h>
/* no CODE_FILE/CODE_LINE fields: a record says what the vault did, not where sealvaultd was */
#define SD_JOURNAL_SUPPRESS_LOCATION
#include <systemd/sd-journal.h>

#include "common/err.h"
#include "common/frame.h"
#include "common/msg.h"

static struct {
	int fd;
	const char *key_file;
	int journal;
	int at_exit; /* daemon_audit_readable runs at exit */
	uint64_t records, bad;
} D = {.fd = -1};

int daemon_audit_is_journal(const char *journal_stream, int fd)
{
	unsigned long long dev, ino;
	int end = 0;
	struct stat st;
	if (journal_stream == NULL ||
	    sscanf(journal_stream, "%llu:%llu%n", &dev, &ino, &end) != 2 ||
	    journal_stream[end] != '\0' || fstat(fd, &st) != 0)
		return 0;
	return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

void daemon_audit_open(int fd, const char *key_file)
{
	D.fd = fd;
	D.key_file = key_file;
	D.journal = daemon_audit_is_journal(getenv("JOURNAL_STREAM"), STDERR_FILENO);
	/* what the enclave wrote before it stopped, when sealvaultd exits (children never run
	 * this: they exec or _exit) */
	if (fd >= 0 && !D.at_exit)
		D.at_exit = atexit(daemon_audit_readable) == 0;
}

/* The key, as 64 hex digits and a newline, replacing the file atomically (mode 0600). */
static void store_key(const struct audit_record *r)
{
	char hex[2 * AUDIT_KEY_LEN + 2], tmp[4096];
	if (D.key_file == NULL)
		return;
	sodium_bin2hex(hex, sizeof(hex), r->key, AUDIT_KEY_LEN);
	hex[2 * AUDIT_KEY_LEN] = '\n';
	snprintf(tmp, sizeof(tmp), "%s.tmp", D.key_file);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	int ok = fd >= 0 && fchmod(fd, 0600) == 0 &&
	         write(fd, hex, 2 * AUDIT_KEY_LEN + 1) == 2 * AUDIT_KEY_LEN + 1 && fsync(fd) == 0;
	int e = errno;
	if (fd >= 0)
		close(fd);
	if (ok && rename(tmp, D.key_file) != 0) {
		e = errno;
		ok = 0;
	}
	sodium_memzero(hex, sizeof(hex));
	if (!ok) {
		unlink(tmp);
		fprintf(
		    stderr,
		    "sealvaultd: warning: cannot write the audit key to %s (%s); "
		    "`sealvault-admin audit-id` needs it: set audit-key-file (sealvault.conf(5)) "
		    "to a root-only path\n",
		    D.key_file, strerror(e));
	}
}

void daemon_audit_write(const struct audit_record *r)
{
	struct audit_fields f;
	if (D.journal && audit_fields(r, &f) > 0) {
		struct iovec iov[AUDIT_FIELDS_MAX + 1];
		size_t n = 0;
		for (; n < f.n; n++)
			iov[n] = (struct iovec){f.text[n], strlen(f.text[n])};
		iov[n++] = (struct iovec){(char *)"SYSLOG_IDENTIFIER=sealvaultd", 28};
		int e = sd_journal_sendv(iov, (int)n);
		if (e >= 0)
			return;
		fprintf(stderr, "sealvaultd: cannot write an audit record to the journal (%s)\n",
		        strerror(-e));
	}
	char line[AUDIT_LINE_MAX];
	if (audit_line(r, line) == SV_OK)
		fprintf(stderr, "sealvaultd: %s\n", line);
}

void daemon_audit_readable(void)
{
	static uint8_t buf[SV_FRAME_BUF_LEN];
	if (D.fd < 0)
		return;
	for (;;) {
		struct sv_frame fr;
		struct audit_record r;
		int e = frame_recv(D.fd, buf, &fr);
		if (e == SV_ERR_BUSY || (e == SV_ERR_IO && errno == 0))
			return;
		if (e == SV_OK && fr.type == SV_MSG_AUDIT && fr.req_id == 0)
			e = audit_decode(fr.payload, fr.len, &r);
		else if (e == SV_OK)
			e = SV_ERR_PROTOCOL;
		if (e == SV_ERR_IO) {
			fprintf(stderr, "sealvaultd: reading the audit link failed: %s\n",
			        strerror(errno));
			return;
		}
		sodium_memzero(buf, SV_FRAME_HDR_LEN + AUDIT_PAYLOAD_MAX); /* a key record */
		if (e != SV_OK) {
			D.bad++;
			fprintf(stderr,
			        "sealvaultd: error: a malformed audit record from the enclave (%s) "
			        "was dropped (%llu so far)\n",
			        sv_strerror(e), (unsigned long long)D.bad);
			continue;
		}
		if (r.kind == AUDIT_KEY)
			store_key(&r);
		else
			daemon_audit_write(&r);
		D.records++;
		sodium_memzero(&r, sizeof(r));
	}
}

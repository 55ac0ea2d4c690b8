/*
 * The vault's capacity limit (capacity.h): max-users, or a limit derived from free memory at
 * start. Reads /proc/meminfo and the cgroup v2 memory files (or, where /proc/meminfo is hidden,
 * as systemd's ProcSubset=pid does, sysinfo(2)); no allocation beyond the stack.
 */
#include "enclave/capacity.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysinfo.h>
#include <unistd.h>

#include "common/err.h"

#define TEXT_MAX 8192 /* /proc/meminfo is about 1.5 KiB */

const char *capacity_source_name(enum capacity_source s)
{
	switch (s) {
	case CAPACITY_CONFIGURED: return "configured";
	case CAPACITY_MEMAVAILABLE: return "memavailable";
	case CAPACITY_CGROUP: return "cgroup";
	case CAPACITY_SYSINFO: return "sysinfo";
	}
	return "unknown";
}

/* A decimal number without sign or junk, at most max. */
static int parse_u64(const char *s, uint64_t max, uint64_t *out)
{
	if (s[0] < '0' || s[0] > '9')
		return SV_ERR_INVALID;
	errno = 0;
	char *end = NULL;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0' || v > max)
		return SV_ERR_INVALID;
	*out = v;
	return SV_OK;
}

int capacity_parse(const char *value, uint64_t *out)
{
	uint64_t v = 0;
	if (strcmp(value, "auto") == 0) {
		*out = 0;
		return SV_OK;
	}
	if (parse_u64(value, CAPACITY_MAX_USERS, &v) != SV_OK || v == 0)
		return SV_ERR_CONFIG;
	*out = v;
	return SV_OK;
}

int capacity_meminfo_available(const char *text, uint64_t *out)
{
	static const char key[] = "MemAvailable:";
	for (const char *line = text; line != NULL && *line != '\0';) {
		if (strncmp(line, key, sizeof(key) - 1) == 0) {
			char *end = NULL;
			errno = 0;
			unsigned long long kib = strtoull(line + sizeof(key) - 1, &end, 10);
			if (errno != 0 || end == line + sizeof(key) - 1 ||
			    strncmp(end, " kB", 3) != 0 || kib > UINT64_MAX / 1024)
				return SV_ERR_INVALID;
			*out = (uint64_t)kib * 1024;
			return SV_OK;
		}
		line = strchr(line, '\n');
		if (line != NULL)
			line++;
	}
	return SV_ERR_INVALID;
}

uint64_t capacity_derive(uint64_t records, uint64_t memory)
{
	uint64_t n = memory / CAPACITY_BYTES_PER_USER;
	if (records > CAPACITY_MAX_USERS || n > CAPACITY_MAX_USERS - records)
		return CAPACITY_MAX_USERS;
	return records + n > 0 ? records + n : 1;
}

/* Reads root/path (a small text file) into buf, NUL-terminated, with trailing newlines cut. */
static int read_text(const char *root, const char *path, char *buf, size_t n)
{
	char full[4096];
	if ((size_t)snprintf(full, sizeof(full), "%s%s", root, path) >= sizeof(full))
		return SV_ERR_RANGE;
	int fd = open(full, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return SV_ERR_IO;
	size_t len = 0;
	while (len < n - 1) {
		ssize_t r = read(fd, buf + len, n - 1 - len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		len += (size_t)r;
	}
	close(fd);
	buf[len] = '\0';
	while (len > 0 && buf[len - 1] == '\n')
		buf[--len] = '\0';
	return SV_OK;
}

/* The least room (memory.max - memory.current) of the cgroup at rel and its ancestors, in
 * *room; *limited 0 when none of them has a limit. rel is cut down to "" on the way. */
static void cgroup_room(const char *root, char *rel, uint64_t *room, int *limited)
{
	char path[4096], max[64], cur[64];
	*limited = 0;
	for (;;) {
		uint64_t m = 0, c = 0;
		snprintf(path, sizeof(path), "/sys/fs/cgroup%s/memory.max", rel);
		if (read_text(root, path, max, sizeof(max)) == SV_OK && strcmp(max, "max") != 0 &&
		    parse_u64(max, UINT64_MAX, &m) == SV_OK) {
			snprintf(path, sizeof(path), "/sys/fs/cgroup%s/memory.current", rel);
			if (read_text(root, path, cur, sizeof(cur)) != SV_OK ||
			    parse_u64(cur, UINT64_MAX, &c) != SV_OK)
				c = 0;
			uint64_t r = m > c ? m - c : 0;
			if (!*limited || r < *room)
				*room = r;
			*limited = 1;
		}
		char *slash = strrchr(rel, '/');
		if (slash == NULL || rel[0] == '\0')
			break;
		*slash = '\0'; /* the parent; "" is the root cgroup, which has no memory.max */
	}
}

int capacity_probe(struct capacity *out, uint64_t configured, uint64_t records, const char *root,
                   char *why, size_t why_len)
{
	char text[TEXT_MAX];
	uint64_t avail = 0, room = 0;
	int limited = 0;

	memset(out, 0, sizeof(*out));
	if (configured != 0) {
		out->max_users = configured;
		out->source = CAPACITY_CONFIGURED;
		return SV_OK;
	}
	out->source = CAPACITY_MEMAVAILABLE;
	if (read_text(root, "/proc/meminfo", text, sizeof(text)) != SV_OK ||
	    capacity_meminfo_available(text, &avail) != SV_OK) {
		/* The packaged unit's ProcSubset=pid hides /proc/meminfo: the kernel's free and
		 * buffer memory instead (less than MemAvailable, which also counts the page cache
		 * that can be dropped: the limit comes out lower, never higher). Only for the real
		 * root, so that tests with a fake tree see the failure. */
		struct sysinfo si;
		if (root[0] != '\0' || sysinfo(&si) != 0 || si.mem_unit == 0) {
			snprintf(
			    why, why_len,
			    "cannot read MemAvailable from %s/proc/meminfo to derive max-users; "
			    "set max-users in sealvault.conf(5)",
			    root);
			return SV_ERR_IO;
		}
		avail = ((uint64_t)si.freeram + si.bufferram) * si.mem_unit;
		out->source = CAPACITY_SYSINFO;
	}
	out->memory_bytes = avail;
	/* cgroup v2: the one line "0::/path" of /proc/self/cgroup */
	if (read_text(root, "/proc/self/cgroup", text, sizeof(text)) == SV_OK &&
	    strncmp(text, "0::", 3) == 0 && strchr(text, '\n') == NULL) {
		char *rel = text + 3;
		size_t l = strlen(rel);
		if (l > 0 && rel[l - 1] == '/')
			rel[l - 1] = '\0'; /* "0::/" is the root cgroup */
		cgroup_room(root, rel, &room, &limited);
		if (limited && room < avail) {
			out->source = CAPACITY_CGROUP;
			out->memory_bytes = room;
		}
	}
	out->max_users = capacity_derive(records, out->memory_bytes);
	return SV_OK;
}

void capacity_report(const struct capacity *c, uint64_t records)
{
	if (c->source == CAPACITY_CONFIGURED)
		fprintf(stderr,
		        "sealvault-enclave: max-users %llu (configured); %llu records held\n",
		        (unsigned long long)c->max_users, (unsigned long long)records);
	else
		fprintf(
		    stderr,
		    "sealvault-enclave: max-users %llu (derived from %s: %llu MiB free at start, "
		    "%u bytes per user); %llu records held; set max-users to fix it\n",
		    (unsigned long long)c->max_users, capacity_source_name(c->source),
		    (unsigned long long)(c->memory_bytes >> 20), CAPACITY_BYTES_PER_USER,
		    (unsigned long long)records);
	if (records >= c->max_users)
		fprintf(stderr,
		        "sealvault-enclave: warning: the vault is full (%llu records, max-users "
		        "%llu): registrations of new users are refused (507) until users are "
		        "deleted or max-users is raised (docs/operations.md \"Capacity\")\n",
		        (unsigned long long)records, (unsigned long long)c->max_users);
}

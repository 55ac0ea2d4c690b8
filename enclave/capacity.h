/*
 * How many records (active users and tombstones) the vault may hold: the max-users setting, or,
 * without one, a limit derived at start from the memory this process may still use. Beyond it a
 * registration of a new identifier is refused (SV_STATUS_FULL, HTTP 507) and changes nothing;
 * everything else keeps working (docs/operations.md "Capacity"). The limit is fixed for the life
 * of the process; the probe reads /proc and /sys, so it runs before the sandbox.
 */
#ifndef SV_ENCLAVE_CAPACITY_H
#define SV_ENCLAVE_CAPACITY_H

#include <stddef.h>
#include <stdint.h>

/* Memory budgeted per record when deriving the limit: the store's table entry and record
 * (measured at 284 bytes per user by `make bench-scale` at 10 M users), the copies of users
 * changed while a snapshot is written, and a safety factor of about two. */
#define CAPACITY_BYTES_PER_USER 1024u

/* Highest max-users accepted (a 2^32-entry table would not fit any machine this runs on). */
#define CAPACITY_MAX_USERS 4000000000ull

enum capacity_source {
	CAPACITY_CONFIGURED,   /* max-users was set */
	CAPACITY_MEMAVAILABLE, /* derived from MemAvailable in /proc/meminfo */
	CAPACITY_CGROUP,       /* derived from the memory cgroup's limit (memory.max) */
	CAPACITY_SYSINFO,      /* derived from sysinfo(2)'s free and buffer memory, where
	                          /proc/meminfo is hidden (systemd's ProcSubset=pid) */
};

struct capacity {
	uint64_t max_users;
	enum capacity_source source;
	uint64_t memory_bytes; /* derived: the memory the limit was derived from; else 0 */
};

/* "configured", "memavailable", "cgroup" or "sysinfo": the source label of /metrics and the start
 * line. */
const char *capacity_source_name(enum capacity_source s);

/* Parses a max-users value: a decimal number 1..CAPACITY_MAX_USERS, or "auto" (*out = 0).
 * SV_ERR_CONFIG otherwise. */
int capacity_parse(const char *value, uint64_t *out) __attribute__((warn_unused_result));

/* The bytes of MemAvailable in the text of /proc/meminfo; SV_ERR_INVALID without that line. */
int capacity_meminfo_available(const char *text, uint64_t *out) __attribute__((warn_unused_result));

/* The limit derived from `memory` bytes still free while `records` are held:
 * records + memory / CAPACITY_BYTES_PER_USER, at least 1, at most CAPACITY_MAX_USERS. */
uint64_t capacity_derive(uint64_t records, uint64_t memory);

/* Fills *out: configured (non-zero) wins; otherwise reads MemAvailable and the memory cgroup
 * (cgroup v2: memory.max - memory.current of this process's cgroup and each ancestor, the least
 * of them) under root ("" for the real /proc and /sys/fs/cgroup; tests pass a directory with
 * proc/meminfo, proc/self/cgroup and sys/fs/cgroup/...) and derives the limit from the lesser.
 * SV_ERR_IO with why when MemAvailable cannot be read. */
int capacity_probe(struct capacity *out, uint64_t configured, uint64_t records, const char *root,
                   char *why, size_t why_len) __attribute__((warn_unused_result));

/* The start line on stderr: the limit, where it comes from, how many records are held (and a
 * warning when they already reach it). */
void capacity_report(const struct capacity *c, uint64_t records);

#endif

/*
 * sealvault.conf(5): one `key = value` per line; blank lines and lines whose first non-blank
 * character is '#' are ignored. Spaces around key and value are dropped; the value may be empty
 * (`context =` sets the empty OPAQUE context). Every key is also a command-line flag --key; the
 * caller's set callback decides which keys exist and rejects unknown ones.
 */
#ifndef SV_COMMON_CONFIG_H
#define SV_COMMON_CONFIG_H

#include <stddef.h>
#include <stdio.h>

#define CONFIG_LINE_MAX 4096

/* Called for every key/value pair; returns 0 or a negative SV_ERR_* with a reason in why. */
typedef int (*config_set_fn)(void *arg, const char *key, const char *value, char *why,
                             size_t why_len);

/* Parses one line (without its newline; modified in place). 0 for a setting, blank line or
 * comment; SV_ERR_INVALID for a malformed line, or whatever set returned. */
int config_parse_line(char *line, config_set_fn set, void *arg, char *why, size_t why_len)
    __attribute__((warn_unused_result));

/* Parses a whole stream; errors name the line number. Lines longer than CONFIG_LINE_MAX bytes and
 * NUL bytes are errors. */
int config_parse_stream(FILE *f, const char *name, config_set_fn set, void *arg, char *why,
                        size_t why_len) __attribute__((warn_unused_result));

#endif

#include "common/config.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "common/err.h"

static char *trim(char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	size_t n = strlen(s);
	while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
		s[--n] = '\0';
	return s;
}

int config_parse_line(char *line, config_set_fn set, void *arg, char *why, size_t why_len)
{
	char *s = trim(line);
	if (*s == '\0' || *s == '#')
		return SV_OK;
	for (const char *p = s; *p != '\0'; p++)
		if (iscntrl((unsigned char)*p) && *p != '\t') {
			snprintf(why, why_len, "control character in line");
			return SV_ERR_INVALID;
		}
	char *eq = strchr(s, '=');
	if (eq == NULL) {
		snprintf(why, why_len, "expected 'key = value', got '%.60s'", s);
		return SV_ERR_INVALID;
	}
	*eq = '\0';
	char *key = trim(s);
	char *value = trim(eq + 1);
	if (*key == '\0') {
		snprintf(why, why_len, "missing key before '='");
		return SV_ERR_INVALID;
	}
	for (const char *p = key; *p != '\0'; p++)
		if (!islower((unsigned char)*p) && !isdigit((unsigned char)*p) && *p != '-') {
			snprintf(why, why_len, "bad key '%.60s' (lower-case letters, digits, '-')",
			         key);
			return SV_ERR_INVALID;
		}
	return set(arg, key, value, why, why_len);
}

int config_parse_stream(FILE *f, const char *name, config_set_fn set, void *arg, char *why,
                        size_t why_len)
{
	char line[CONFIG_LINE_MAX + 2];
	char inner[256];
	unsigned lineno = 0;
	for (;;) {
		size_t n = 0;
		int c;
		while ((c = getc(f)) != EOF && c != '\n') {
			if (c == '\0' || n >= CONFIG_LINE_MAX) {
				snprintf(why, why_len, "%s:%u: %s", name, lineno + 1,
				         c == '\0' ? "NUL byte" : "line too long");
				return SV_ERR_INVALID;
			}
			line[n++] = (char)c;
		}
		if (c == EOF && n == 0) {
			if (ferror(f)) {
				snprintf(why, why_len, "%s: read error", name);
				return SV_ERR_IO;
			}
			return SV_OK;
		}
		lineno++;
		line[n] = '\0';
		int r = config_parse_line(line, set, arg, inner, sizeof(inner));
		if (r != 0) {
			snprintf(why, why_len, "%s:%u: %s", name, lineno, inner);
			return r;
		}
		if (c == EOF)
			return SV_OK;
	}
}

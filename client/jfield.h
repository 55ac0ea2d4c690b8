/*
 * Typed, bounded access to members of json-c objects, shared by the evidence and expect-file
 * decoders. Every getter fails (SV_ERR_INVALID, with "member NAME: reason" in why) on a missing
 * member, a wrong type or a value out of bounds; optional getters return 1 when absent.
 */
#ifndef SV_CLIENT_JFIELD_H
#define SV_CLIENT_JFIELD_H

#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#define CLIENT_JFIELD_WUR  __attribute__((warn_unused_result))
#define CLIENT_JFIELD_PCRS 24

/* Parses exactly len bytes as one JSON object (trailing non-space is an error). */
CLIENT_JFIELD_WUR int client_jfield_parse(json_object **out, const char *text, size_t len,
                                          size_t max_depth, char *why, size_t why_len);
/* The member as an object / string (required). */
CLIENT_JFIELD_WUR int client_jfield_obj(json_object *o, const char *name, json_object **out,
                                        char *why, size_t why_len);
CLIENT_JFIELD_WUR int client_jfield_str(json_object *o, const char *name, const char **s,
                                        size_t *len, char *why, size_t why_len);
/* An integer member equal to want. */
CLIENT_JFIELD_WUR int client_jfield_version(json_object *o, int want, char *why, size_t why_len);
/* Hex of exactly n bytes (n_min..n_max when n_min < n_max: *got says how many). */
CLIENT_JFIELD_WUR int client_jfield_hex(json_object *o, const char *name, uint8_t *out,
                                        size_t n_min, size_t n_max, size_t *got, char *why,
                                        size_t why_len);
/* Standard base64 (with padding) of 1..max bytes into out. */
CLIENT_JFIELD_WUR int client_jfield_b64(json_object *o, const char *name, uint8_t *out, size_t max,
                                        size_t *got, char *why, size_t why_len);
/* The same into a malloc'd buffer of up to max bytes (caller frees). */
CLIENT_JFIELD_WUR int client_jfield_b64_alloc(json_object *o, const char *name, uint8_t **out,
                                              size_t max, size_t *got, char *why, size_t why_len);
/* An array of distinct PCR numbers 0..23 in increasing order, at least one, into a mask. */
CLIENT_JFIELD_WUR int client_jfield_pcr_list(json_object *o, const char *name, uint32_t *mask,
                                             char *why, size_t why_len);
/* An object {"<pcr>": "<hex sha256>", ...} (keys decimal without leading zeros) into a mask and
 * values by PCR number. */
CLIENT_JFIELD_WUR int client_jfield_pcr_map(json_object *o, const char *name, uint32_t *mask,
                                            uint8_t values[CLIENT_JFIELD_PCRS][32], char *why,
                                            size_t why_len);
/* 1 when the member is absent (or JSON null), 0 otherwise. */
int client_jfield_absent(json_object *o, const char *name);

#endif

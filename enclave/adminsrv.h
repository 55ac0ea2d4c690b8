/*
 * The enclave's end of sealvault-admin's online commands (status, delete): requests come from
 * sealvaultd on the admin pair, the enclave's fd 5 (SANDBOX_ADMIN_FD), never from the broker
 * (common/msgtable.h, MSG_F_ADMIN). sealvaultd has already checked who asks (daemon/adminsock.c).
 *
 * The serve loop (enclave/serve.c) polls the admin end while it waits for work with nothing
 * staged and no anchor running, and calls adminsrv_serve when it is readable; when a request
 * comes while an anchor runs, it stops reading the broker's link until then, so that it gets
 * there within two anchors under any load. A status is
 * answered from the state the vault serves. A delete is staged, written as its own journal frame
 * and anchored (store_write, store_anchor: the two halves of every commit, on the loop's thread,
 * the TPM thread being idle) before its reply leaves, exactly as the batch commits do: nothing
 * is answered before it is durable and anchored.
 */
#ifndef SV_ENCLAVE_ADMINSRV_H
#define SV_ENCLAVE_ADMINSRV_H

#include <stdint.h>

#include "common/adminmsg.h"

struct adminsrv;
struct budget;
struct store;

/* fd: the admin end (non-blocking), or -1 for none (then adminsrv_fd says -1 and nothing is
 * read). Allocates everything it uses now, before the sandbox. dir: the state directory as given,
 * for the status. */
int adminsrv_new(struct adminsrv **out, int fd, struct store *s, struct budget *bud,
                 const char *dir) __attribute__((warn_unused_result));
void adminsrv_free(struct adminsrv *a);

/* The descriptor to poll: -1 when there is none or sealvaultd closed its end. a may be NULL. */
int adminsrv_fd(const struct adminsrv *a);

/* 1 for the frame types the admin end takes (the admin requests), 0 for every other, including
 * every request of the broker's link. */
int adminsrv_permitted(uint16_t type);

/* The figures of `sealvault-admin status` from the state s serves (or, offline, was opened). */
void adminsrv_status(const struct store *s, const char *dir, struct adminmsg_status *out);

/* Answers the admin requests that are ready. SV_OK, or SV_ERR_BUSY when a deletion's NV
 * increment is owed (the TPM throttles NV writes; store.h): its reply said so, and the caller
 * must retry the increment before anything else is committed (enclave/serve.c). A malformed or
 * unexpected frame ends the process (a protocol violation by sealvaultd). */
int adminsrv_serve(struct adminsrv *a) __attribute__((warn_unused_result));

#endif

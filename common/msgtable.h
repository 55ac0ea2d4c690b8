/*
 * Every IPC message, once (after OpenSSH's mon_table and its MON_AUTH flags). The enum of
 * common/msg.h, frame_type_known() (common/frame.c), the broker's routes (broker/http.c), its
 * metric endpoint labels (broker/metrics.[ch]), the enclave's dispatch table (enclave/dispatch.c),
 * msg_flags() and the client's paths (msg_path(), client/libsealvault.c) are all expanded from
 * SV_MSG_TABLE. Adding a request is one ROUTE line here plus its handler in the enclave; nothing
 * else keeps a list of message types.
 *
 * Two kinds of row; an expansion defines a macro for each and passes both:
 *
 *   ROUTE(NAME, NUMBER, METHOD, PATH, ENDPOINT, HANDLER, FLAGS)
 *       A client request: the broker takes it on HTTP METHOD (GET or POST) PATH, forwards it to
 *       the enclave as a frame of type SV_MSG_NAME = NUMBER, and counts it in /metrics under
 *       endpoint="ENDPOINT". The enclave answers it with its handle_HANDLER (enclave/dispatch.c:
 *       vault, realm, attest, info, stats or health) and one SV_MSG_REPLY; all are MSG_F_REQUEST.
 *   FRAME(NAME, NUMBER, FLAGS)
 *       A frame with no route: the reply, the restart control frames, the reload frames
 *       between sealvaultd and the broker (on their own socketpair, never on the enclave's link;
 *       request id = sealvaultd's reload count) and the enclave's audit records to sealvaultd
 *       (on a socketpair of their own). The enclave refuses to be sent one (only ROUTE rows are
 *       in its dispatch table), except SV_MSG_DRAIN_ENCLAVE, which its serve loop
 *       takes before the table (enclave/drain.h).
 *
 * MSG_F_ADMIN frames (sealvault-admin's online status and delete, common/adminmsg.h) travel on
 * the admin socket (sealvault-admin -> sealvaultd) and on their own socketpair (sealvaultd ->
 * the enclave's fd 5), never on the broker's link: the enclave's dispatch table has no row for
 * them, so one sent by the broker is a protocol violation, and enclave/adminsrv.c takes only
 * them, only on fd 5.
 *
 * The numbers, paths and endpoint names are the wire and monitoring contract: never change or
 * reuse one (tests/unit/test_msg.c pins them). Numbers: 1..31 client requests, 32..63 the
 * broker's housekeeping requests and control frames towards the enclave's end (40..47: admin
 * requests towards the enclave's admin end), 64.. frames from an enclave's end (72..75: admin
 * replies). The rows' order is the order /metrics lists the endpoints in (so /healthz comes
 * before /metrics, as it always did).
 */
#ifndef SV_COMMON_MSGTABLE_H
#define SV_COMMON_MSGTABLE_H

/* Flags (msg_flags() in common/msg.h). */
#define MSG_F_REQUEST      0x01u /* a ROUTE row: the broker may send it to the enclave */
#define MSG_F_VAULT        0x02u /* an account request for vault_handle */
#define MSG_F_READONLY     0x04u /* changes no vault state: answered even while the TPM throttles */
#define MSG_F_HOUSEKEEPING 0x08u /* the broker's probes: empty payload, not rate-limited */
#define MSG_F_CONTROL      0x10u /* restart control frame: empty payload, request id 0 */
#define MSG_F_RELOAD       0x20u /* only on sealvaultd's control pair: reloads, readiness */
#define MSG_F_PRIVATE      0x40u /* metrics listener only; 404 on the public port */
#define MSG_F_ADMIN        0x80u /* only on the admin pair (sealvaultd <-> enclave fd 5) */
#define MSG_F_DRAIN        0x100u /* a drain frame on the enclave's link: common/drain.h, id 0 */
#define MSG_F_AUDIT        0x200u /* only on the enclave's audit pair (its fd 4) to sealvaultd */
#define MSG_F_TOKEN        0x400u /* payload = u16 token length | token | body: msg_token_split() */

/* clang-format off */
#define SV_MSG_TABLE(ROUTE, FRAME)                                                                 \
	ROUTE(REGISTER_START,   1, POST, "/v1/register/start",         "register_start",           \
	      vault,  MSG_F_VAULT | MSG_F_TOKEN)                                                   \
	ROUTE(REGISTER_FINISH,  2, POST, "/v1/register/finish",        "register_finish",          \
	      vault,  MSG_F_VAULT | MSG_F_TOKEN)                                                   \
	ROUTE(LOGIN_START,      3, POST, "/v1/login/start",            "login_start",              \
	      vault,  MSG_F_VAULT | MSG_F_TOKEN)                                                   \
	ROUTE(LOGIN_FINISH,     4, POST, "/v1/login/finish",           "login_finish",             \
	      vault,  MSG_F_VAULT | MSG_F_TOKEN)                                                   \
	ROUTE(CHANGE_FINISH,    5, POST, "/v1/change-password/finish", "change_password_finish",   \
	      vault,  MSG_F_VAULT | MSG_F_TOKEN)                                                   \
	/* payload: the nonce bytes of ?nonce=HEX */                                               \
	ROUTE(ATTESTATION,      6, GET,  "/v1/attestation",            "attestation",              \
	      attest, MSG_F_READONLY)                                                              \
	ROUTE(ACTIVATE,         7, POST, "/v1/attestation/activate",   "attestation_activate",     \
	      attest, MSG_F_READONLY)                                                              \
	/* empty payload; reply body: the JSON of common/info.h (public, cacheable) */             \
	ROUTE(INFO,             8, GET,  "/v1/info",                   "info",                     \
	      info,   MSG_F_READONLY)                                                              \
	/* threshold realms (docs/realms.md): bodies of crypto/realm_wire.h, token as /v1 */      \
	ROUTE(REALM_REGISTER,   9, POST, "/v2/realm/register",         "realm_register",           \
	      realm,  MSG_F_TOKEN)                                                                 \
	ROUTE(REALM_RECOVER1,  10, POST, "/v2/realm/recover1",         "realm_recover1",           \
	      realm,  MSG_F_TOKEN | MSG_F_READONLY)                                                \
	ROUTE(REALM_RECOVER2,  11, POST, "/v2/realm/recover2",         "realm_recover2",           \
	      realm,  MSG_F_TOKEN)                                                                 \
	ROUTE(REALM_RECOVER3,  12, POST, "/v2/realm/recover3",         "realm_recover3",           \
	      realm,  MSG_F_TOKEN)                                                                 \
	ROUTE(REALM_DELETE,    13, POST, "/v2/realm/delete",           "realm_delete",             \
	      realm,  MSG_F_TOKEN)                                                                 \
	ROUTE(REALM_STATUS,    14, POST, "/v2/realm/status",           "realm_status",             \
	      realm,  MSG_F_TOKEN | MSG_F_READONLY)                                                \
	ROUTE(HEALTH,          33, GET,  "/healthz",                   "healthz",                  \
	      health, MSG_F_READONLY | MSG_F_HOUSEKEEPING)                                         \
	/* reply body: the enclave's Prometheus text; on the metrics listener only */              \
	ROUTE(STATS,           32, GET,  "/metrics",                   "metrics",                  \
	      stats,  MSG_F_READONLY | MSG_F_HOUSEKEEPING | MSG_F_PRIVATE)                         \
	FRAME(GONE_SEEN,       34, MSG_F_CONTROL) /* broker -> sealvaultd */                       \
	/* broker -> sealvaultd on the control pair: u8 0 applied / 1 refused, a one-line text */  \
	FRAME(RELOADED,        35, MSG_F_RELOAD)                                                   \
	/* broker -> sealvaultd on the control pair, empty: the enclave said READY (sd_notify) */  \
	FRAME(SERVING,         36, MSG_F_RELOAD)                                                   \
	/* broker -> enclave on its link: sealvaultd's SV_MSG_DRAIN passed on (common/drain.h) */  \
	FRAME(DRAIN_ENCLAVE,   37, MSG_F_DRAIN)                                                    \
	/* broker -> sealvaultd on the control pair: the enclave's SV_MSG_DRAIN_STATUS passed on */\
	FRAME(DRAIN_REPORT,    38, MSG_F_RELOAD)                                                   \
	/* sealvault-admin -> sealvaultd -> enclave fd 5 (common/adminmsg.h): empty payload */     \
	FRAME(ADMIN_STATUS,    40, MSG_F_ADMIN)                                                    \
	/* ... payload: the identifier to delete, 1..255 bytes */                                  \
	FRAME(ADMIN_DELETE,    41, MSG_F_ADMIN)                                                    \
	FRAME(REPLY,           64, 0)             /* enclave -> broker: u8 enum sv_status, body */ \
	FRAME(ENCLAVE_GONE,    65, MSG_F_CONTROL) /* sealvaultd -> broker, on the enclave's end */ \
	FRAME(READY,           66, MSG_F_CONTROL) /* enclave -> broker, once at every start */    \
	/* sealvaultd -> broker on the control pair (broker fd 5), payload common/reload.h */      \
	FRAME(RELOAD,          67, MSG_F_RELOAD)                                                   \
	/* sealvaultd -> broker on the control pair, on SIGTERM: payload common/drain.h */         \
	FRAME(DRAIN,           68, MSG_F_RELOAD)                                                   \
	/* enclave -> broker on its link: the drain has begun / is over (common/drain.h) */        \
	FRAME(DRAIN_STATUS,    69, MSG_F_DRAIN)                                                    \
	/* enclave fd 5 -> sealvaultd -> sealvault-admin: u8 enum adminmsg_code, body */           \
	FRAME(ADMIN_REPLY,     72, MSG_F_ADMIN)                                                           \
	/* enclave -> sealvaultd on the audit pair (enclave fd 4), payload common/audit.h; the  */ \
	/* broker never sees it. Request id 0. */                                                  \
	FRAME(AUDIT,           70, MSG_F_AUDIT)
/* clang-format on */

#endif

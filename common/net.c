#include "common/net.h"

#include "common/err.h"

#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

int net_listen(const char *spec, char *why, size_t why_len)
{
	char host[256];
	const char *colon = strrchr(spec, ':');
	if (colon == NULL || colon == spec || (size_t)(colon - spec) >= sizeof(host) ||
	    colon[1] == '\0') {
		snprintf(why, why_len, "the listen address must be HOST:PORT, not '%s'", spec);
		return -1;
	}
	const char *h = spec;
	size_t hl = (size_t)(colon - spec);
	if (hl >= 2 && spec[0] == '[' && spec[hl - 1] == ']')
		h++, hl -= 2;
	memcpy(host, h, hl);
	host[hl] = '\0';

	struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE};
	struct addrinfo *res = NULL;
	int e = getaddrinfo(host, colon + 1, &hints, &res);
	if (e != 0) {
		snprintf(why, why_len, "cannot resolve the listen address %s: %s", spec,
		         gai_strerror(e));
		return -1;
	}
	int fd = -1;
	for (struct addrinfo *ai = res; ai != NULL && fd < 0; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
		if (fd < 0)
			continue;
		int one = 1;
		if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
		    bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, 1024) != 0) {
			e = errno;
			close(fd);
			fd = -1;
			errno = e;
		}
	}
	if (fd < 0)
		snprintf(why, why_len, "cannot listen on %s: %s", spec, strerror(errno));
	freeaddrinfo(res);
	return fd;
}

int net_listen_unix(const char *path, char *why, size_t why_len)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct stat st;
	if (*path != '/' || strlen(path) >= sizeof(sa.sun_path)) {
		snprintf(why, why_len,
		         "the unix socket path must be absolute and shorter than %zu bytes, not "
		         "'%s'",
		         sizeof(sa.sun_path), path);
		return -1;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	/* a socket left by an earlier run: nothing listens on it any more (two sealvaultd on one
	 * path would be a configuration error either way) */
	if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode))
		(void)unlink(path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(why, why_len, "cannot listen on unix:%s: %s", path, strerror(errno));
		return -1;
	}
	/* mode before listen(2): nobody connects while it is still wider than 0660 */
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || chmod(path, 0660) != 0 ||
	    listen(fd, 128) != 0) {
		int e = errno;
		snprintf(why, why_len, "cannot listen on unix:%s: %s", path, strerror(e));
		close(fd);
		return -1;
	}
	return fd;
}

int net_write_port_file(const char *path, int fd)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char port[NI_MAXSERV], tmp[PATH_MAX];
	if (getsockname(fd, (struct sockaddr *)&ss, &sl) != 0 ||
	    getnameinfo((struct sockaddr *)&ss, sl, NULL, 0, port, sizeof(port), NI_NUMERICSERV) !=
	        0)
		return SV_ERR_IO;
	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
		return SV_ERR_RANGE;
	FILE *f = fopen(tmp, "we");
	if (f == NULL)
		return SV_ERR_IO;
	int bad = fprintf(f, "%s\n", port) < 0;
	bad |= fclose(f) != 0;
	if (bad || rename(tmp, path) != 0) {
		int e = errno;
		unlink(tmp);
		errno = e;
		return SV_ERR_IO;
	}
	return SV_OK;
}

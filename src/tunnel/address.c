/* host:port addresses of the tunnels' configuration. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "vrcloud/err.h"
#include "vrcloud/tunnel.h"

int vr_tunnel_split_address(char *host, size_t host_size, unsigned *port_out, const char *address)
{
	if (!address || !address[0])
		return VR_EINVAL;
	const char *host_start = address, *host_end, *port;
	if (address[0] == '[') {
		host_start = address + 1;
		host_end = strchr(host_start, ']');
		if (!host_end || host_end[1] != ':')
			return VR_EINVAL;
		port = host_end + 2;
	} else {
		host_end = strrchr(address, ':');
		if (!host_end || memchr(address, ':', (size_t)(host_end - address)))
			return VR_EINVAL;
		port = host_end + 1;
	}
	size_t len = (size_t)(host_end - host_start);
	if (len == 0 || len >= host_size)
		return VR_EINVAL;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)host_start[i];
		if (!isalnum(c) && c != '.' && c != '-' && c != ':' && c != '_' && c != '%')
			return VR_EINVAL;
	}
	char *end;
	if (!isdigit((unsigned char)port[0]))
		return VR_EINVAL;
	unsigned long p = strtoul(port, &end, 10);
	if (*end || p > 65535)
		return VR_EINVAL;
	memcpy(host, host_start, len);
	host[len] = '\0';
	*port_out = (unsigned)p;
	return 0;
}

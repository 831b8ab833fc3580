/* The proxy's preamble line of a data connection (docs/tunnels.md). */
#include <string.h>

#include "transfer/wire.h"

static const struct {
	const char *key;
	size_t off;
} fields[] = {
	{"peer", offsetof(struct vr_tx_preamble, peer)},
	{"org", offsetof(struct vr_tx_preamble, org)},
	{"vdc", offsetof(struct vr_tx_preamble, vdc)},
	{"site", offsetof(struct vr_tx_preamble, site)},
	{"replication", offsetof(struct vr_tx_preamble, replication)},
	{"proxy", offsetof(struct vr_tx_preamble, proxy)},
};

/* One " key=value" at line[*at]: the value copied into dst. */
static int field(const uint8_t *line, size_t len, size_t *at, const char *key, char *dst)
{
	size_t kl = strlen(key), i = *at;
	if (len - i < kl + 3 || line[i] != ' ' || memcmp(line + i + 1, key, kl) ||
	    line[i + 1 + kl] != '=')
		return VR_TX_EHEADER;
	i += kl + 2;
	size_t start = i;
	while (i < len && line[i] != ' ') {
		if (line[i] < 0x21 || line[i] > 0x7e || i - start >= VR_TX_FIELD_MAX)
			return VR_TX_EHEADER;
		i++;
	}
	if (i == start)
		return VR_TX_EHEADER;
	memcpy(dst, line + start, i - start);
	dst[i - start] = '\0';
	*at = i;
	return VR_TX_OK;
}

int vr_tx_preamble_parse(const uint8_t *p, size_t n, size_t *used, struct vr_tx_preamble *out)
{
	static const char magic[] = "VRCLOUD-DATA ";
	const size_t ml = sizeof magic - 1;
	*used = 0;
	if (n == 0)
		return VR_TX_ETRUNCATED;
	if (memcmp(p, magic, n < ml ? n : ml))
		return VR_TX_EMAGIC;
	size_t scan = n < VR_TX_PREAMBLE_MAX ? n : VR_TX_PREAMBLE_MAX;
	const uint8_t *nl = memchr(p, '\n', scan);
	if (!nl)
		return n < VR_TX_PREAMBLE_MAX ? VR_TX_ETRUNCATED : VR_TX_EHEADER;
	size_t len = (size_t)(nl - p);
	if (len < ml + 1 || p[ml] != '1' || (len > ml + 1 && p[ml + 1] != ' '))
		return VR_TX_EVERSION;
	memset(out, 0, sizeof *out);
	size_t at = ml + 1;
	for (size_t f = 0; f < sizeof fields / sizeof fields[0]; f++) {
		int err = field(p, len, &at, fields[f].key, (char *)out + fields[f].off);
		if (err)
			return err;
	}
	if (at != len || vr_tx_id_parse(out->replication_id, out->replication))
		return VR_TX_EHEADER;
	*used = len + 1;
	return VR_TX_OK;
}

/* The replication port's listener: one thread accepts the proxies' data
 * connections and hands each to a thread of its own, at most
 * max_transfers at once (a few more are only told to come back later).
 * An address in use is retried, so that a worker whose port is taken
 * still runs its jobs. At shutdown it stops accepting, lets transfers
 * finish until the deadline and then cuts them; a cut transfer commits
 * nothing. */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "vrcloud/alloc.h"
#include "vrcloud/err.h"
#include "vrcloud/log.h"
#include "vrcloud/tunnel.h"
#include "worker/receiver.h"

#define ACCEPT_POLL_MS 250
#define BIND_RETRY_MS  3000

static int resolve(struct sockaddr_storage *out, socklen_t *len_out, const char *address,
		   char **error_out)
{
	char host[256], port[8];
	unsigned port_number;
	if (vr_tunnel_split_address(host, sizeof host, &port_number, address)) {
		*error_out = vr_asprintf("[worker] traffic_listen: '%s' is not host:port", address);
		return VR_ECONFIG;
	}
	snprintf(port, sizeof port, "%u", port_number);
	struct addrinfo hints, *res = NULL;
	memset(&hints, 0, sizeof hints);
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV | AI_PASSIVE;
	bool any = host[0] == '\0' || strcmp(host, "*") == 0;
	int rc = getaddrinfo(any ? NULL : host, port, &hints, &res);
	if (rc != 0 || !res) {
		*error_out = vr_asprintf("[worker] traffic_listen: cannot resolve %s: %s", address,
					 gai_strerror(rc));
		return VR_ECONFIG;
	}
	memcpy(out, res->ai_addr, res->ai_addrlen);
	*len_out = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

/* 0 with rx->listen_fd, or errno. */
static int try_listen(struct vr_receiver *rx, const struct sockaddr_storage *addr, socklen_t len)
{
	int fd = socket(addr->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return errno;
	int on = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
	if (bind(fd, (const struct sockaddr *)addr, len) != 0 || listen(fd, 128) != 0) {
		int err = errno;
		close(fd);
		return err;
	}
	rx->listen_fd = fd;
	return 0;
}

static void slot_reap(struct vr_receiver *rx, bool wait_all)
{
	for (unsigned i = 0; i < rx->nslots; i++) {
		struct vr_receiver_slot *s = &rx->slots[i];
		if (!s->used || (!wait_all && !atomic_load(&s->done)))
			continue;
		pthread_join(s->thread, NULL);
		pthread_mutex_lock(&rx->lock);
		s->used = false;
		rx->active--;
		pthread_mutex_unlock(&rx->lock);
	}
}

static void *slot_main(void *arg)
{
	struct vr_receiver_slot *s = arg;
	struct vr_receiver *rx = s->rx;
	vr_receive_serve(s);
	pthread_mutex_lock(&rx->lock);
	atomic_store(&s->done, true);
	pthread_cond_broadcast(&rx->changed);
	pthread_mutex_unlock(&rx->lock);
	return NULL;
}

static void client_text(char *out, size_t size, const struct sockaddr_storage *a)
{
	char host[INET6_ADDRSTRLEN + 1] = "?", port[8] = "?";
	getnameinfo((const struct sockaddr *)a, sizeof *a, host, sizeof host, port, sizeof port,
		    NI_NUMERICHOST | NI_NUMERICSERV);
	snprintf(out, size, "%s:%s", host, port);
}

/* Give fd to a free slot: a transfer slot while fewer than max_transfers
 * run, else a refusing one; with none free it is closed. */
static void dispatch(struct vr_receiver *rx, int fd, const struct sockaddr_storage *from)
{
	unsigned transfers = 0;
	struct vr_receiver_slot *free_slot = NULL;
	for (unsigned i = 0; i < rx->nslots; i++) {
		struct vr_receiver_slot *s = &rx->slots[i];
		if (s->used && !s->refuse)
			transfers++;
		else if (!s->used && !free_slot)
			free_slot = s;
	}
	char client[64];
	client_text(client, sizeof client, from);
	if (!free_slot) {
		vr_log_warn("transfer_dropped", "client", client, "reason",
			    "too many connections at once");
		close(fd);
		return;
	}
	free_slot->rx = rx;
	free_slot->fd = fd;
	free_slot->refuse = transfers >= rx->config->max_transfers;
	atomic_store(&free_slot->done, false);
	snprintf(free_slot->client, sizeof free_slot->client, "%s", client);
	pthread_mutex_lock(&rx->lock);
	free_slot->used = true;
	rx->active++;
	pthread_mutex_unlock(&rx->lock);
	int err = pthread_create(&free_slot->thread, NULL, slot_main, free_slot);
	if (err) {
		vr_log_error("transfer_thread_failed", "client", client, "error", strerror(err));
		close(fd);
		pthread_mutex_lock(&rx->lock);
		free_slot->used = false;
		rx->active--;
		pthread_mutex_unlock(&rx->lock);
	}
}

static void accept_ready(struct vr_receiver *rx)
{
	for (;;) {
		struct sockaddr_storage from;
		socklen_t len = sizeof from;
		int fd = accept4(rx->listen_fd, (struct sockaddr *)&from, &len,
				 SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
			    errno != ECONNABORTED)
				vr_log_warn("accept_failed", "error", strerror(errno));
			return;
		}
		dispatch(rx, fd, &from);
	}
}

/* Sleep up to ms in short steps; true when stopping. */
static bool pause_ms(struct vr_receiver *rx, unsigned ms)
{
	for (unsigned waited = 0; waited < ms; waited += ACCEPT_POLL_MS) {
		if (atomic_load(&rx->stopping))
			return true;
		poll(NULL, 0, ACCEPT_POLL_MS);
	}
	return atomic_load(&rx->stopping);
}

static void *accept_main(void *arg)
{
	struct vr_receiver *rx = arg;
	struct sockaddr_storage addr;
	socklen_t len = 0;
	char *error = NULL;
	if (resolve(&addr, &len, rx->listen_address, &error)) {
		vr_log_error("replication_port_failed", "address", rx->listen_address, "error",
			     error);
		free(error);
		return NULL;
	}
	int last_err = 0;
	while (rx->listen_fd < 0) {
		int err = try_listen(rx, &addr, len);
		if (err == 0)
			break;
		if (err != last_err)
			vr_log_warn("replication_port_unavailable", "address", rx->listen_address,
				    "error", strerror(err), "action", "retrying every 3 s");
		last_err = err;
		if (pause_ms(rx, BIND_RETRY_MS))
			return NULL;
	}
	char max[16];
	snprintf(max, sizeof max, "%u", rx->config->max_transfers);
	vr_log_info("replication_port_listening", "address", rx->listen_address, "max_transfers",
		    max, "store_dir", rx->config->store_dir);
	struct pollfd pfd = {.fd = rx->listen_fd, .events = POLLIN};
	while (!atomic_load(&rx->stopping)) {
		slot_reap(rx, false);
		int n = poll(&pfd, 1, ACCEPT_POLL_MS);
		if (n > 0 && !atomic_load(&rx->stopping))
			accept_ready(rx);
	}
	close(rx->listen_fd);
	rx->listen_fd = -1;
	return NULL;
}

int vr_receiver_start(struct vr_receiver **out, struct vr_worker *worker, char **error_out)
{
	*out = NULL;
	const struct vr_worker_config *c = worker->config;
	const char *address = c->traffic_listen ? c->traffic_listen : c->traffic_address;
	if (strcmp(address, "off") == 0) {
		vr_log_info("replication_port_off");
		return 0;
	}
	char host[256];
	unsigned port;
	if (vr_tunnel_split_address(host, sizeof host, &port, address) || port == 0) {
		if (error_out)
			*error_out = vr_asprintf("[worker] traffic_listen: '%s' is not host:port",
						 address);
		return VR_ECONFIG;
	}
	struct vr_receiver *rx = vr_calloc(1, sizeof *rx);
	rx->worker = worker;
	rx->config = c;
	rx->listen_address = vr_strdup(address);
	rx->listen_fd = -1;
	rx->nslots = c->max_transfers + VR_RECEIVER_REFUSERS;
	rx->slots = vr_calloc(rx->nslots, sizeof *rx->slots);
	pthread_mutex_init(&rx->lock, NULL);
	pthread_condattr_t attr;
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&rx->changed, &attr);
	pthread_condattr_destroy(&attr);
	int err = pthread_create(&rx->thread, NULL, accept_main, rx);
	if (err) {
		if (error_out)
			*error_out = vr_asprintf("cannot start a thread: %s", strerror(err));
		pthread_cond_destroy(&rx->changed);
		pthread_mutex_destroy(&rx->lock);
		free(rx->slots);
		free(rx->listen_address);
		free(rx);
		return VR_EIO;
	}
	rx->started = true;
	*out = rx;
	return 0;
}

bool vr_receiver_counts(struct vr_receiver *rx, struct vr_receiver_counts *out)
{
	if (!rx)
		return false;
	out->bytes_in = atomic_load(&rx->bytes_in);
	out->bytes_out = atomic_load(&rx->bytes_out);
	out->errors = atomic_load(&rx->failed);
	return true;
}

void vr_receiver_quiesce(struct vr_receiver *rx)
{
	if (!rx || !rx->started)
		return;
	atomic_store(&rx->stopping, true);
	pthread_join(rx->thread, NULL);
	rx->started = false;
}

void vr_receiver_stop(struct vr_receiver *rx, const struct timespec *deadline)
{
	if (!rx)
		return;
	vr_receiver_quiesce(rx);
	pthread_mutex_lock(&rx->lock);
	bool timed_out = false;
	while (!timed_out) {
		unsigned running = 0;
		for (unsigned i = 0; i < rx->nslots; i++)
			running += rx->slots[i].used && !atomic_load(&rx->slots[i].done);
		if (!running)
			break;
		timed_out = pthread_cond_timedwait(&rx->changed, &rx->lock, deadline) == ETIMEDOUT;
	}
	unsigned left = rx->active;
	pthread_mutex_unlock(&rx->lock);
	if (timed_out && left) {
		char n[16];
		snprintf(n, sizeof n, "%u", left);
		vr_log_warn("transfers_cut", "transfers", n, "reason",
			    "the shutdown timeout passed; nothing of them is committed");
	}
	atomic_store(&rx->cut, true);
	slot_reap(rx, true);
	char bytes[24], committed[24], failed[24];
	snprintf(bytes, sizeof bytes, "%llu", (unsigned long long)atomic_load(&rx->bytes_in));
	snprintf(committed, sizeof committed, "%llu",
		 (unsigned long long)atomic_load(&rx->committed));
	snprintf(failed, sizeof failed, "%llu", (unsigned long long)atomic_load(&rx->failed));
	vr_log_info("replication_port_closed", "bytes_in", bytes, "committed", committed, "failed",
		    failed);
}

void vr_receiver_free(struct vr_receiver *rx)
{
	if (!rx)
		return;
	vr_receiver_quiesce(rx);
	pthread_cond_destroy(&rx->changed);
	pthread_mutex_destroy(&rx->lock);
	free(rx->slots);
	free(rx->listen_address);
	free(rx);
}

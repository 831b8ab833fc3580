/* The epoll event loop of vrcloud-proxy: level-triggered fd watches and a
 * binary heap of one-shot timers. Each registration carries a generation,
 * so that an event fetched for an fd that was closed and reused within the
 * same batch is dropped instead of reaching the new owner. */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include "vrcloud/alloc.h"
#include "vrcloud/err.h"
#include "vrcloud/log.h"
#include "vrcloud/loop.h"

#define MAX_EVENTS 256

struct watch {
	vr_loop_fd_fn fn;
	void *arg;
	unsigned events;
	uint32_t gen;
	bool active;
};

struct timer {
	uint64_t when;
	uint64_t id;
	vr_loop_timer_fn fn;
	void *arg;
};

struct vr_loop {
	int epfd;
	struct watch *watches; /* indexed by fd */
	size_t nwatches;
	uint32_t next_gen;
	struct timer *timers; /* a min-heap on (when, id) */
	size_t ntimers, timers_cap;
	uint64_t next_timer_id;
	bool stopping;
};

uint64_t vr_loop_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

int vr_loop_new(struct vr_loop **out)
{
	*out = NULL;
	int epfd = epoll_create1(EPOLL_CLOEXEC);
	if (epfd < 0)
		return VR_EIO;
	struct vr_loop *loop = vr_calloc(1, sizeof *loop);
	loop->epfd = epfd;
	loop->next_gen = 1;
	loop->next_timer_id = 1;
	*out = loop;
	return 0;
}

void vr_loop_free(struct vr_loop *loop)
{
	if (!loop)
		return;
	close(loop->epfd);
	free(loop->watches);
	free(loop->timers);
	free(loop);
}

static uint32_t epoll_bits(unsigned events)
{
	uint32_t bits = 0;
	if (events & VR_LOOP_READ)
		bits |= EPOLLIN | EPOLLRDHUP;
	if (events & VR_LOOP_WRITE)
		bits |= EPOLLOUT;
	return bits;
}

static int apply(struct vr_loop *loop, int fd, int op)
{
	struct watch *w = &loop->watches[fd];
	struct epoll_event ev;
	memset(&ev, 0, sizeof ev);
	ev.events = epoll_bits(w->events);
	ev.data.u64 = (uint64_t)w->gen << 32 | (uint32_t)fd;
	return epoll_ctl(loop->epfd, op, fd, &ev) == 0 ? 0 : VR_EIO;
}

int vr_loop_watch(struct vr_loop *loop, int fd, unsigned events, vr_loop_fd_fn fn, void *arg)
{
	if (fd < 0)
		return VR_EIO;
	if ((size_t)fd >= loop->nwatches) {
		size_t n = loop->nwatches ? loop->nwatches : 64;
		while (n <= (size_t)fd)
			n *= 2;
		loop->watches = vr_realloc(loop->watches, n * sizeof *loop->watches);
		memset(loop->watches + loop->nwatches, 0,
		       (n - loop->nwatches) * sizeof *loop->watches);
		loop->nwatches = n;
	}
	struct watch *w = &loop->watches[fd];
	bool was_active = w->active;
	w->fn = fn;
	w->arg = arg;
	w->events = events;
	if (!was_active) {
		w->gen = loop->next_gen++;
		if (loop->next_gen == 0)
			loop->next_gen = 1;
	}
	w->active = true;
	int rc = apply(loop, fd, was_active ? EPOLL_CTL_MOD : EPOLL_CTL_ADD);
	if (rc)
		w->active = was_active;
	return rc;
}

int vr_loop_events(struct vr_loop *loop, int fd, unsigned events)
{
	if (fd < 0 || (size_t)fd >= loop->nwatches || !loop->watches[fd].active)
		return VR_EIO;
	if (loop->watches[fd].events == events)
		return 0;
	loop->watches[fd].events = events;
	return apply(loop, fd, EPOLL_CTL_MOD);
}

void vr_loop_unwatch(struct vr_loop *loop, int fd)
{
	if (fd < 0 || (size_t)fd >= loop->nwatches || !loop->watches[fd].active)
		return;
	epoll_ctl(loop->epfd, EPOLL_CTL_DEL, fd, NULL);
	loop->watches[fd].active = false;
	loop->watches[fd].fn = NULL;
	loop->watches[fd].arg = NULL;
}

/* --- timers: a binary min-heap ------------------------------------------ */

static bool before(const struct timer *a, const struct timer *b)
{
	return a->when < b->when || (a->when == b->when && a->id < b->id);
}

static void swap_timers(struct timer *a, struct timer *b)
{
	struct timer t = *a;
	*a = *b;
	*b = t;
}

static void sift_up(struct vr_loop *loop, size_t i)
{
	while (i > 0) {
		size_t parent = (i - 1) / 2;
		if (!before(&loop->timers[i], &loop->timers[parent]))
			break;
		swap_timers(&loop->timers[i], &loop->timers[parent]);
		i = parent;
	}
}

static void sift_down(struct vr_loop *loop, size_t i)
{
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, min = i;
		if (l < loop->ntimers && before(&loop->timers[l], &loop->timers[min]))
			min = l;
		if (r < loop->ntimers && before(&loop->timers[r], &loop->timers[min]))
			min = r;
		if (min == i)
			return;
		swap_timers(&loop->timers[i], &loop->timers[min]);
		i = min;
	}
}

static void remove_timer_at(struct vr_loop *loop, size_t i)
{
	loop->ntimers--;
	if (i == loop->ntimers)
		return;
	loop->timers[i] = loop->timers[loop->ntimers];
	sift_down(loop, i);
	sift_up(loop, i);
}

uint64_t vr_loop_timer(struct vr_loop *loop, uint64_t ms, vr_loop_timer_fn fn, void *arg)
{
	if (loop->ntimers == loop->timers_cap) {
		loop->timers_cap = loop->timers_cap ? loop->timers_cap * 2 : 16;
		loop->timers = vr_realloc(loop->timers, loop->timers_cap * sizeof *loop->timers);
	}
	struct timer *t = &loop->timers[loop->ntimers++];
	t->when = vr_loop_now_ms() + ms;
	t->id = loop->next_timer_id++;
	t->fn = fn;
	t->arg = arg;
	uint64_t id = t->id;
	sift_up(loop, loop->ntimers - 1);
	return id;
}

void vr_loop_timer_cancel(struct vr_loop *loop, uint64_t id)
{
	if (!id)
		return;
	for (size_t i = 0; i < loop->ntimers; i++) {
		if (loop->timers[i].id == id) {
			remove_timer_at(loop, i);
			return;
		}
	}
}

/* Run the timers that are due; each runs once even if it schedules more. */
static void run_timers(struct vr_loop *loop)
{
	uint64_t now = vr_loop_now_ms();
	uint64_t last_id = loop->next_timer_id;
	while (loop->ntimers && loop->timers[0].when <= now && loop->timers[0].id < last_id &&
	       !loop->stopping) {
		struct timer t = loop->timers[0];
		remove_timer_at(loop, 0);
		t.fn(loop, t.arg);
	}
}

static int next_timeout(const struct vr_loop *loop)
{
	if (!loop->ntimers)
		return -1;
	uint64_t now = vr_loop_now_ms();
	if (loop->timers[0].when <= now)
		return 0;
	uint64_t wait = loop->timers[0].when - now;
	return wait > 60000 ? 60000 : (int)wait;
}

void vr_loop_stop(struct vr_loop *loop)
{
	loop->stopping = true;
}

int vr_loop_run(struct vr_loop *loop)
{
	struct epoll_event events[MAX_EVENTS];
	loop->stopping = false;
	while (!loop->stopping) {
		int n = epoll_wait(loop->epfd, events, MAX_EVENTS, next_timeout(loop));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			vr_log_error("epoll_failed", "error", strerror(errno));
			return VR_EIO;
		}
		for (int i = 0; i < n && !loop->stopping; i++) {
			int fd = (int)(uint32_t)events[i].data.u64;
			uint32_t gen = (uint32_t)(events[i].data.u64 >> 32);
			if ((size_t)fd >= loop->nwatches)
				continue;
			struct watch *w = &loop->watches[fd];
			if (!w->active || w->gen != gen || !w->fn)
				continue;
			unsigned ready = 0;
			uint32_t e = events[i].events;
			if (e & (EPOLLIN | EPOLLRDHUP))
				ready |= VR_LOOP_READ;
			if (e & EPOLLOUT)
				ready |= VR_LOOP_WRITE;
			if (e & (EPOLLERR | EPOLLHUP))
				ready |= VR_LOOP_ERROR;
			w->fn(loop, fd, ready, w->arg);
		}
		run_timers(loop);
	}
	return 0;
}

/* --- hiredis on the loop ------------------------------------------------- */

struct redis_glue {
	struct vr_loop *loop;
	redisAsyncContext *ac;
	int fd;
	unsigned events;
};

static void redis_event(struct vr_loop *loop, int fd, unsigned events, void *arg)
{
	struct redis_glue *g = arg;
	/* One call per event: either may free the context (and the glue). */
	if (events & (VR_LOOP_READ | VR_LOOP_ERROR))
		redisAsyncHandleRead(g->ac);
	else if (events & VR_LOOP_WRITE)
		redisAsyncHandleWrite(g->ac);
}

static void redis_update(struct redis_glue *g, unsigned add, unsigned del)
{
	unsigned events = (g->events | add) & ~del;
	if (events == g->events)
		return;
	g->events = events;
	if (vr_loop_events(g->loop, g->fd, events))
		vr_log_warn("redis_watch_failed");
}

static void redis_add_read(void *p)
{
	redis_update(p, VR_LOOP_READ, 0);
}

static void redis_del_read(void *p)
{
	redis_update(p, 0, VR_LOOP_READ);
}

static void redis_add_write(void *p)
{
	redis_update(p, VR_LOOP_WRITE, 0);
}

static void redis_del_write(void *p)
{
	redis_update(p, 0, VR_LOOP_WRITE);
}

static void redis_cleanup(void *p)
{
	struct redis_glue *g = p;
	vr_loop_unwatch(g->loop, g->fd);
	free(g);
}

int vr_loop_redis_attach(struct vr_loop *loop, redisAsyncContext *ac)
{
	if (ac->ev.data)
		return VR_EINVAL;
	struct redis_glue *g = vr_calloc(1, sizeof *g);
	g->loop = loop;
	g->ac = ac;
	g->fd = ac->c.fd;
	if (vr_loop_watch(loop, g->fd, 0, redis_event, g)) {
		free(g);
		return VR_EIO;
	}
	ac->ev.data = g;
	ac->ev.addRead = redis_add_read;
	ac->ev.delRead = redis_del_read;
	ac->ev.addWrite = redis_add_write;
	ac->ev.delWrite = redis_del_write;
	ac->ev.cleanup = redis_cleanup;
	return 0;
}

/* A small single-threaded event loop over epoll (level-triggered) with
 * one-shot timers, for vrcloud-proxy: every connection is a file
 * descriptor watched here, no thread per connection. Also the glue that
 * runs a hiredis asynchronous context on the loop. */
#ifndef VRCLOUD_LOOP_H
#define VRCLOUD_LOOP_H

#include <stdint.h>

#include <hiredis/async.h>

enum {
	VR_LOOP_READ = 1 << 0,
	VR_LOOP_WRITE = 1 << 1,
	VR_LOOP_ERROR = 1 << 2, /* reported only: hang-up or error on the fd */
};

struct vr_loop;

/* events: the VR_LOOP_* bits that are ready. */
typedef void (*vr_loop_fd_fn)(struct vr_loop *loop, int fd, unsigned events, void *arg);
typedef void (*vr_loop_timer_fn)(struct vr_loop *loop, void *arg);

/* Returns 0, VR_EIO (epoll could not be made) or VR_ENOMEM. */
int vr_loop_new(struct vr_loop **out);
/* Frees the loop and its timers; watched fds are not closed. */
void vr_loop_free(struct vr_loop *loop);

/* Watch fd for events (VR_LOOP_READ | VR_LOOP_WRITE, or 0 to keep it
 * registered but quiet); calling it again changes events, fn and arg.
 * Returns 0 or VR_EIO. */
int vr_loop_watch(struct vr_loop *loop, int fd, unsigned events, vr_loop_fd_fn fn, void *arg);
/* Change only the events of a watched fd. Returns 0 or VR_EIO. */
int vr_loop_events(struct vr_loop *loop, int fd, unsigned events);
/* Stop watching fd (call before closing it). Events already fetched for it
 * are dropped. */
void vr_loop_unwatch(struct vr_loop *loop, int fd);

/* Run fn(arg) once, ms milliseconds from now. Returns the timer's id
 * (never 0). */
uint64_t vr_loop_timer(struct vr_loop *loop, uint64_t ms, vr_loop_timer_fn fn, void *arg);
/* Cancel a timer that has not run; 0 and unknown ids are ignored. */
void vr_loop_timer_cancel(struct vr_loop *loop, uint64_t id);

/* Monotonic milliseconds, as the loop's timers count them. */
uint64_t vr_loop_now_ms(void);

/* Dispatch events and timers until vr_loop_stop. Returns 0 or VR_EIO. */
int vr_loop_run(struct vr_loop *loop);
void vr_loop_stop(struct vr_loop *loop);

/* Drive ac's I/O from loop. Returns 0 or VR_EINVAL (already attached).
 * The glue frees itself when hiredis frees the context. */
int vr_loop_redis_attach(struct vr_loop *loop, redisAsyncContext *ac);

#endif

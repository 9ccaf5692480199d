/*
 * km_time — the two clocks of kubemedic, and their conversions.
 *
 * CLOCK_MONOTONIC (km_mono_ns) for scheduling and timeouts; Unix epoch
 * microseconds (km_now_us) for what is stored and sent. The one place
 * where nanoseconds become a struct timespec (km_timespec_ns) or a
 * CLOCK_REALTIME deadline for the pthread and semaphore waits
 * (km_realtime_after), and where times and durations become text and back
 * (km_fmt_time_us, km_duration_parse). Deadlines for gRPC's core are in
 * km_grpc_msg.h. Stateless; any thread.
 */
#ifndef KM_TIME_H
#define KM_TIME_H

#include <stdint.h>
#include <time.h>

static inline int64_t km_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static inline int64_t km_mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* A duration in nanoseconds as a struct timespec (negative = zero). */
static inline struct timespec km_timespec_ns(int64_t ns)
{
	struct timespec ts = {0, 0};

	if (ns > 0) {
		ts.tv_sec = (time_t)(ns / 1000000000);
		ts.tv_nsec = (long)(ns % 1000000000);
	}
	return ts;
}

/* The CLOCK_REALTIME time ns nanoseconds from now, for the absolute
 * deadlines of pthread_cond_timedwait and sem_timedwait. */
static inline struct timespec km_realtime_after(int64_t ns)
{
	struct timespec ts, d = km_timespec_ns(ns);

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += d.tv_sec;
	ts.tv_nsec += d.tv_nsec;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	return ts;
}

/* "2026-11-26T14:12:32.123456Z"; buf must hold 40 bytes. */
const char *km_fmt_time_us(char buf[40], int64_t us);

/* "250ms", "10s", "5m", "12h", "30d", or a combination ("1h30m"); "0" is
 * zero. Negative or malformed: KM_EINVAL. */
int km_duration_parse(const char *s, int64_t *ms);

#endif

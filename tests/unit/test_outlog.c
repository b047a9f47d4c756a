/* test_outlog.c — agent/outlog.c: an exec's output kept until acknowledged.
 * Sequences of append / next / sent / ack; restarts with `have` offsets in
 * the middle of chunks and across both fds replay exactly the missing bytes
 * in production order; and a randomized simulation of a flow-controlled
 * connection that drops (losing bytes in flight) and reconnects, where the
 * host must end up with every byte exactly once. */
#include "outlog.h"
#include "test.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static uint64_t rng = 0x2545f4914f6cdd1dull;
static uint32_t rnd32(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (uint32_t)(rng >> 16);
}

/* Retained bytes recounted from the chunk list; -1 if tail/cursor are off. */
static long long recount(const outlog *l)
{
	long long n = 0;
	const outlog_chunk *last = NULL;
	int cursor_seen = l->cursor == NULL;
	for (const outlog_chunk *c = l->head; c; c = c->next) {
		n += (long long)c->len;
		last = c;
		if (c == l->cursor)
			cursor_seen = 1;
	}
	if (last != l->tail || !cursor_seen)
		return -1;
	return n;
}

/* Sends everything unsent, concatenating it into out (fds in fds). */
static size_t drain(outlog *l, uint8_t *out, int *fds, size_t cap)
{
	size_t n = 0, k;
	int fd;
	const uint8_t *p;
	while ((k = outlog_next(l, &fd, &p)) > 0) {
		if (n + k > cap)
			return (size_t)-1;
		memcpy(out + n, p, k);
		for (size_t i = 0; i < k; i++)
			fds[n + i] = fd;
		n += k;
		outlog_sent(l, k);
	}
	return n;
}

static void test_append_next_sent(void)
{
	outlog l = {0};
	int fd = -1;
	const uint8_t *p = NULL;
	CHECK_EQ_INT(outlog_next(&l, &fd, &p), 0);
	CHECK_EQ_INT(outlog_unsent(&l), 0);
	outlog_sent(&l, 0); /* nothing to mark: harmless */

	CHECK_EQ_INT(outlog_append(&l, 1, (const uint8_t *)"hello", 5), 0);
	CHECK_EQ_INT(outlog_append(&l, 2, (const uint8_t *)"ERR", 3), 0);
	CHECK_EQ_INT(outlog_append(&l, 1, (const uint8_t *)"world!", 6), 0);
	CHECK_EQ_INT(outlog_append(&l, 1, (const uint8_t *)"", 0), 0);
	CHECK_EQ_INT(l.bytes, 14);
	CHECK_EQ_INT(recount(&l), 14);
	CHECK_EQ_INT(l.fd_total[1], 11);
	CHECK_EQ_INT(l.fd_total[2], 3);
	CHECK_EQ_INT(outlog_unsent(&l), 14);

	CHECK_EQ_INT(outlog_next(&l, &fd, &p), 5);
	CHECK_EQ_INT(fd, 1);
	CHECK(memcmp(p, "hello", 5) == 0);
	/* next does not advance by itself */
	CHECK_EQ_INT(outlog_next(&l, &fd, &p), 5);
	outlog_sent(&l, 2);
	CHECK_EQ_INT(outlog_next(&l, &fd, &p), 3);
	CHECK(memcmp(p, "llo", 3) == 0);
	CHECK_EQ_INT(outlog_unsent(&l), 12);
	CHECK_EQ_INT(l.stream_sent, 2);
	outlog_sent(&l, 3);
	CHECK_EQ_INT(outlog_next(&l, &fd, &p), 3);
	CHECK_EQ_INT(fd, 2);
	CHECK(memcmp(p, "ERR", 3) == 0);
	outlog_sent(&l, 3);
	CHECK_EQ_INT(outlog_next(&l, &fd, &p), 6);
	CHECK_EQ_INT(fd, 1);
	outlog_sent(&l, 1);
	outlog_sent(&l, 5);
	CHECK_EQ_INT(outlog_next(&l, &fd, &p), 0);
	CHECK_EQ_INT(outlog_unsent(&l), 0);
	CHECK_EQ_INT(l.stream_sent, 14);
	/* Sent but not acknowledged: still retained */
	CHECK_EQ_INT(l.bytes, 14);

	/* Output produced after everything was sent becomes next. */
	CHECK_EQ_INT(outlog_append(&l, 2, (const uint8_t *)"late", 4), 0);
	CHECK_EQ_INT(outlog_next(&l, &fd, &p), 4);
	CHECK_EQ_INT(fd, 2);
	CHECK(memcmp(p, "late", 4) == 0);
	CHECK_EQ_INT(l.head->fd_off, 0);
	CHECK_EQ_INT(l.tail->fd_off, 3); /* fd 2's offset continues */
	outlog_free(&l);
	CHECK(l.head == NULL && l.tail == NULL && l.cursor == NULL);
	CHECK_EQ_INT(l.bytes, 0);
}

static void test_ack(void)
{
	outlog l = {0};
	int fd;
	const uint8_t *p;
	outlog_append(&l, 1, (const uint8_t *)"hello", 5);
	outlog_append(&l, 2, (const uint8_t *)"ERR", 3);
	outlog_append(&l, 1, (const uint8_t *)"world!", 6);
	uint8_t all[32];
	int fds[32];
	CHECK_EQ_INT(drain(&l, all, fds, sizeof all), 14);
	CHECK(memcmp(all, "helloERRworld!", 14) == 0);

	outlog_ack(&l, 0);
	CHECK_EQ_INT(l.bytes, 14);
	outlog_ack(&l, 4); /* part of a chunk: kept */
	CHECK_EQ_INT(l.bytes, 14);
	outlog_ack(&l, 5);
	CHECK_EQ_INT(l.bytes, 9);
	CHECK_EQ_INT(l.head->fd, 2);
	outlog_ack(&l, 7);
	CHECK_EQ_INT(l.bytes, 9);
	outlog_ack(&l, 8);
	CHECK_EQ_INT(l.bytes, 6);
	outlog_ack(&l, 8); /* repeated: nothing more */
	CHECK_EQ_INT(l.bytes, 6);
	outlog_ack(&l, 1000);
	CHECK_EQ_INT(l.bytes, 0);
	CHECK(l.head == NULL && l.tail == NULL && l.cursor == NULL);
	/* Appending to the emptied log works */
	outlog_append(&l, 1, (const uint8_t *)"again", 5);
	CHECK_EQ_INT(outlog_next(&l, &fd, &p), 5);
	CHECK_EQ_INT(l.head->fd_off, 11);
	CHECK_EQ_INT(recount(&l), 5);

	/* An ack never drops what was not (fully) sent. */
	outlog_free(&l);
	outlog_append(&l, 1, (const uint8_t *)"AAAAAAAAAA", 10);
	outlog_append(&l, 1, (const uint8_t *)"BBBBBBBBBB", 10);
	outlog_append(&l, 2, (const uint8_t *)"CCCCCCCCCC", 10);
	outlog_sent(&l, 10);
	outlog_sent(&l, 4);
	outlog_ack(&l, UINT64_MAX);
	CHECK_EQ_INT(l.bytes, 20);
	CHECK_EQ_INT(outlog_next(&l, &fd, &p), 6);
	CHECK(memcmp(p, "BBBBBB", 6) == 0);
	CHECK_EQ_INT(recount(&l), 20);
	outlog_free(&l);
}

/* Original output in production order: what each restart must replay. */
struct piece {
	int fd;
	const char *s;
};
static const struct piece produced[] = {
	{1, "0123456789"}, {2, "ABCDE"}, {1, "abcdefghij"}, {2, "FGHIJ"},
	{2, "K"},          {1, "klm"},   {1, "nopqrstuvw"}, {2, "LMNOPQ"},
};
#define NPIECES (sizeof produced / sizeof produced[0])

static void fill(outlog *l)
{
	for (size_t i = 0; i < NPIECES; i++)
		outlog_append(l, produced[i].fd, (const uint8_t *)produced[i].s, strlen(produced[i].s));
}

/* Expected replay for `have`: every produced byte at or past have[fd]. */
static size_t expected(const uint64_t have[3], uint8_t *out, int *fds)
{
	uint64_t off[3] = {0, 0, 0};
	size_t n = 0;
	for (size_t i = 0; i < NPIECES; i++) {
		int fd = produced[i].fd;
		for (const char *c = produced[i].s; *c; c++, off[fd]++) {
			if (off[fd] >= have[fd]) {
				out[n] = (uint8_t)*c;
				fds[n++] = fd;
			}
		}
	}
	return n;
}

static void test_restart_exact_replay(void)
{
	uint64_t total[3] = {0, 0, 0};
	for (size_t i = 0; i < NPIECES; i++)
		total[produced[i].fd] += strlen(produced[i].s);
	/* sent: how much was sent before the connection dropped;
	 * every have[1] x have[2] combination up to what was sent per fd. */
	for (int sent_all = 0; sent_all <= 1; sent_all++) {
		for (uint64_t h1 = 0; h1 <= total[1]; h1++) {
			for (uint64_t h2 = 0; h2 <= total[2]; h2++) {
				outlog l = {0};
				fill(&l);
				uint8_t got[128], want[128];
				int gfd[128], wfd[128];
				if (sent_all) {
					CHECK_EQ_INT(drain(&l, got, gfd, sizeof got),
						     total[1] + total[2]);
				} else { /* dropped in the middle of a chunk */
					int fd;
					const uint8_t *p;
					outlog_next(&l, &fd, &p);
					outlog_sent(&l, 10);
					outlog_next(&l, &fd, &p);
					outlog_sent(&l, 2);
				}
				uint64_t have[3] = {0, h1, h2};
				outlog_restart(&l, have);
				CHECK_EQ_INT(l.stream_sent, 0);
				CHECK_EQ_INT(l.bytes, total[1] - h1 + total[2] - h2);
				CHECK_EQ_INT(recount(&l), (long long)l.bytes);
				CHECK_EQ_INT(outlog_unsent(&l), l.bytes);
				size_t n = drain(&l, got, gfd, sizeof got);
				size_t m = expected(have, want, wfd);
				if (n != m || memcmp(got, want, n) != 0 ||
				    memcmp(gfd, wfd, n * sizeof *gfd) != 0) {
					char msg[200];
					snprintf(msg, sizeof msg,
						 "have {%llu, %llu} sent_all %d: replay %.*s, want %.*s",
						 (unsigned long long)h1, (unsigned long long)h2,
						 sent_all, (int)(n < 60 ? n : 60), (char *)got,
						 (int)(m < 60 ? m : 60), (char *)want);
					test_fail(__FILE__, __LINE__, msg);
					outlog_free(&l);
					return;
				}
				/* After the replay everything can be acknowledged. */
				outlog_ack(&l, l.stream_sent);
				CHECK_EQ_INT(l.bytes, 0);
				CHECK(l.head == NULL && l.tail == NULL);
				outlog_free(&l);
			}
		}
	}
}

/* Restart after acks dropped a prefix, then a second restart. */
static void test_restart_after_ack_and_twice(void)
{
	outlog l = {0};
	uint8_t got[128];
	int gfd[128];
	fill(&l);
	/* Send all, host acks the first 15 stream bytes ("0123456789ABCDE"). */
	drain(&l, got, gfd, sizeof got);
	outlog_ack(&l, 15);
	CHECK_EQ_INT(l.head->fd, 1);
	CHECK_EQ_INT(l.head->fd_off, 10);
	/* The host had received a bit more than it acked: fd1 13, fd2 5 */
	uint64_t have[3] = {0, 13, 5};
	outlog_restart(&l, have);
	/* Send part of it, then the connection drops again. */
	int fd;
	const uint8_t *p;
	size_t k = outlog_next(&l, &fd, &p);
	CHECK_EQ_INT(fd, 1);
	CHECK_EQ_INT(k, 7);
	CHECK(memcmp(p, "defghij", 7) == 0);
	outlog_sent(&l, 7);
	k = outlog_next(&l, &fd, &p);
	CHECK_EQ_INT(fd, 2);
	CHECK(memcmp(p, "FGHIJ", 5) == 0);
	outlog_sent(&l, 3); /* "FGH" sent */
	outlog_ack(&l, 7);   /* first chunk acked on the new stream */
	/* The host got "defghij" and "FG" (the "H" was lost in flight) */
	uint64_t have2[3] = {0, 20, 7};
	outlog_restart(&l, have2);
	uint8_t want[128];
	int wfd[128];
	size_t n = drain(&l, got, gfd, sizeof got);
	size_t m = expected(have2, want, wfd);
	CHECK_EQ_INT(n, m);
	CHECK(memcmp(got, want, n) == 0);
	CHECK(memcmp(gfd, wfd, n * sizeof *gfd) == 0);
	CHECK(memcmp(got, "HIJKklmnopqrstuvwLMNOPQ", n) == 0);

	/* have beyond everything: all dropped */
	uint64_t all[3] = {0, 1000, 1000};
	outlog_restart(&l, all);
	CHECK_EQ_INT(l.bytes, 0);
	CHECK(l.head == NULL && l.tail == NULL && l.cursor == NULL);
	CHECK_EQ_INT(outlog_next(&l, &fd, &p), 0);
	/* and the log keeps working, with fd offsets continuing */
	outlog_append(&l, 2, (const uint8_t *)"z", 1);
	CHECK_EQ_INT(l.head->fd_off, 17);
	CHECK_EQ_INT(outlog_next(&l, &fd, &p), 1);
	outlog_free(&l);
}

/* A flow-controlled stream that drops and reconnects at random. The agent
 * sends within credit; pieces in flight are delivered in order, or lost
 * when the connection drops; the host grants credit back for what it
 * received (sometimes late); on reconnect it reports what it has per fd.
 * The host must hold each fd's exact output at all times as a prefix and
 * the whole of it at the end; the log must never retain more than what is
 * not yet acknowledged. */
static void test_random_drops_simulation(void)
{
	enum { W = 4096, MAXQ = 4096, TOTAL = 400000 };
	static uint8_t orig[3][TOTAL + 1000], recv[3][TOTAL + 1000];
	struct fl {
		int fd;
		size_t len;
		size_t off; /* offset within fd */
	};
	static struct fl q[MAXQ];
	for (int round = 0; round < 20; round++) {
		outlog l = {0};
		size_t olen[3] = {0, 0, 0}, rlen[3] = {0, 0, 0};
		size_t qh = 0, qt = 0;
		uint64_t credit = W, pending_grant = 0;
		size_t produced_total = 0;
		int drops = 0;
		for (int step = 0; step < 200000; step++) {
			uint32_t r = rnd32() % 100;
			if (r < 25 && produced_total < TOTAL) {
				int fd = 1 + (int)(rnd32() % 2);
				size_t n = 1 + rnd32() % 700;
				for (size_t i = 0; i < n; i++)
					orig[fd][olen[fd] + i] = (uint8_t)rnd32();
				CHECK_EQ_INT(outlog_append(&l, fd, orig[fd] + olen[fd], n), 0);
				olen[fd] += n;
				produced_total += n;
			} else if (r < 55) { /* send */
				int fd;
				const uint8_t *p;
				size_t n = outlog_next(&l, &fd, &p);
				if (n > credit)
					n = (size_t)credit;
				if (n > 0 && qt - qh < MAXQ) {
					n = 1 + rnd32() % n;
					/* p must be this fd's bytes at its next offset */
					size_t off = (size_t)(p - l.cursor->data) + (size_t)l.cursor->fd_off;
					CHECK(memcmp(p, orig[fd] + off, n) == 0);
					q[qt % MAXQ] = (struct fl){fd, n, off};
					qt++;
					outlog_sent(&l, n);
					credit -= n;
				}
			} else if (r < 80) { /* deliver one piece */
				if (qh < qt) {
					struct fl f = q[qh % MAXQ];
					qh++;
					/* in order, no gap, no duplicate */
					CHECK_EQ_INT(f.off, rlen[f.fd]);
					memcpy(recv[f.fd] + rlen[f.fd], orig[f.fd] + f.off, f.len);
					rlen[f.fd] += f.len;
					pending_grant += f.len;
				}
			} else if (r < 92) { /* the host's grant arrives */
				if (pending_grant) {
					credit += pending_grant;
					pending_grant = 0;
					/* exec.c: acked = credit + stream_sent - window */
					CHECK(credit + l.stream_sent >= W);
					outlog_ack(&l, credit + l.stream_sent - W);
				}
			} else if (r < 94) { /* the connection drops */
				/* a random prefix of what is in flight arrives */
				size_t arrive = qt - qh ? rnd32() % (qt - qh + 1) : 0;
				for (size_t i = 0; i < arrive; i++) {
					struct fl f = q[qh % MAXQ];
					qh++;
					CHECK_EQ_INT(f.off, rlen[f.fd]);
					memcpy(recv[f.fd] + rlen[f.fd], orig[f.fd] + f.off, f.len);
					rlen[f.fd] += f.len;
				}
				qh = qt = 0;
				pending_grant = 0;
				uint64_t have[3] = {0, rlen[1], rlen[2]};
				outlog_restart(&l, have);
				credit = W;
				drops++;
				/* everything retained is exactly what the host lacks */
				CHECK_EQ_INT(l.bytes, olen[1] - rlen[1] + olen[2] - rlen[2]);
				CHECK_EQ_INT(outlog_unsent(&l), l.bytes);
			}
			/* retained = not yet acked: at most what the host lacks, plus
			 * what is in flight or ungranted (<= W), plus the acked front
			 * of a chunk kept whole (< 700) */
			CHECK(l.bytes <= olen[1] + olen[2] - (rlen[1] + rlen[2]) + W + 700);
			if (step % 1000 == 0)
				CHECK_EQ_INT(recount(&l), (long long)l.bytes);
		}
		/* Finish without drops: deliver everything. */
		for (int guard = 0; guard < 10000000; guard++) {
			int fd;
			const uint8_t *p;
			while (qh < qt) {
				struct fl f = q[qh % MAXQ];
				qh++;
				CHECK_EQ_INT(f.off, rlen[f.fd]);
				memcpy(recv[f.fd] + rlen[f.fd], orig[f.fd] + f.off, f.len);
				rlen[f.fd] += f.len;
				pending_grant += f.len;
			}
			credit += pending_grant;
			pending_grant = 0;
			outlog_ack(&l, credit + l.stream_sent - W);
			size_t n = outlog_next(&l, &fd, &p);
			if (n == 0)
				break;
			if (n > credit)
				n = (size_t)credit;
			size_t off = (size_t)(p - l.cursor->data) + (size_t)l.cursor->fd_off;
			q[qt % MAXQ] = (struct fl){fd, n, off};
			qt++;
			outlog_sent(&l, n);
			credit -= n;
		}
		for (int fd = 1; fd <= 2; fd++) {
			CHECK_EQ_INT(rlen[fd], olen[fd]);
			CHECK(memcmp(recv[fd], orig[fd], olen[fd]) == 0);
		}
		CHECK_EQ_INT(l.bytes, 0);
		CHECK(drops > 10);
		outlog_free(&l);
	}
}

int main(void)
{
	RUN(test_append_next_sent);
	RUN(test_ack);
	RUN(test_restart_exact_replay);
	RUN(test_restart_after_ack_and_twice);
	RUN(test_random_drops_simulation);
	return test_summary();
}

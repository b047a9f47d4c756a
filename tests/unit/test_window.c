/* test_window.c — receive window auto-tuning in the sans-I/O core
 * (common/window.c driven by common/conn.c).
 *
 * A host conn and an agent conn talk in memory under a fake clock: each
 * simulated round trip the sender sends what its credit (and, for a slow
 * link, a byte budget) allows, the bytes reach the receiver half a round
 * trip later, and the receiver's grants and PINGs come back after the
 * other half. Covered: a window grows to its cap while the consumer keeps
 * pace, does not grow when the link rather than the window limits the
 * sender, shrinks back to the HELLO window when the consumer stops reading
 * (and the next grants withhold the difference), the per-connection
 * budget caps growth across streams, SBX_FIXED_WINDOW / no clock keep it
 * fixed, and exec output on the host is never tuned. */
#include <stdlib.h>
#include <string.h>

#include "conn.h"
#include "test.h"

#define MiB (1024u * 1024)
#define RTT_NS (10u * 1000 * 1000) /* 10 ms */

static uint64_t g_now = 1000000000; /* the fake clock */
static uint64_t fake_clock(void) { return g_now; }

typedef struct peer {
	sbx_conn *c;
	int consume;   /* consume DATA as it arrives */
	uint64_t got;  /* DATA bytes received */
	uint64_t held; /* received, not consumed */
} peer;

static void on_msg(sbx_conn *c, const sbx_msg *m, void *ud)
{
	peer *p = ud;
	if (m->type != SBX_MSG_DATA)
		return;
	p->got += m->len;
	if (p->consume)
		sbx_conn_consumed(c, m->stream, m->len);
	else
		p->held += m->len;
}

typedef struct opts {
	int fixed;
	int no_clock;
	uint64_t max, budget;
} opts;

static sbx_conn *new_conn(sbx_role role, peer *p, const opts *o)
{
	sbx_conn_config cfg = {
		.role = role,
		.hello = {.uid = 0},
		.compress = SBX_COMPRESS_NEVER,
		.clock_ns = o->no_clock ? NULL : fake_clock,
		.fixed_window = o->fixed,
		.window_max = o->max,
		.window_budget = o->budget,
		.cb = {.on_msg = on_msg},
		.ud = p,
	};
	snprintf(cfg.hello.version, sizeof cfg.hello.version, "test");
	snprintf(cfg.hello.boot_id, sizeof cfg.hello.boot_id, "boot");
	p->c = sbx_conn_new(&cfg);
	p->consume = 1;
	return p->c;
}

/* Everything one side queued, fed to the other. */
static void deliver(sbx_conn *from, sbx_conn *to)
{
	size_t len;
	const uint8_t *p = sbx_conn_out(from, &len);
	if (len == 0)
		return;
	uint8_t *copy = malloc(len);
	memcpy(copy, p, len);
	sbx_conn_out_consume(from, len);
	sbx_conn_feed(to, copy, len);
	free(copy);
}

typedef struct pair {
	peer host, agent;
	uint32_t streams[8];
	int nstreams;
} pair;

/* A connected pair with n streams opened by `type` requests. */
static void pair_open(pair *p, const opts *ho, const opts *ao, int type, int n)
{
	memset(p, 0, sizeof *p);
	new_conn(SBX_ROLE_AGENT, &p->agent, ao);
	new_conn(SBX_ROLE_HOST, &p->host, ho);
	deliver(p->agent.c, p->host.c);
	deliver(p->host.c, p->agent.c);
	for (int i = 0; i < n; i++) {
		uint32_t id = sbx_conn_new_stream_id(p->host.c);
		sbx_conn_begin_map(p->host.c, type, id, 0);
		sbx_conn_finish(p->host.c);
		p->streams[p->nstreams++] = id;
	}
	deliver(p->host.c, p->agent.c);
}

static void pair_free(pair *p)
{
	sbx_conn_free(p->host.c);
	sbx_conn_free(p->agent.c);
}

/* One round trip: the sender sends up to its credit (and at most `cap`
 * bytes per stream when cap > 0: a slower link), the receiver gets it
 * after half the round trip, the answers come back after the other half. */
static void round_trip(sbx_conn *snd, sbx_conn *rcv, const pair *p, int fd, uint64_t cap)
{
	static uint8_t chunk[SBX_CHUNK_MAX];
	for (int i = 0; i < p->nstreams; i++) {
		uint64_t sent = 0;
		uint64_t credit;
		while ((credit = sbx_conn_credit(snd, p->streams[i])) > 0 && (!cap || sent < cap)) {
			size_t k = credit < sizeof chunk ? (size_t)credit : sizeof chunk;
			if (cap && sent + k > cap)
				k = (size_t)(cap - sent);
			sbx_conn_send_data(snd, p->streams[i], fd, chunk, k);
			sent += k;
		}
	}
	g_now += RTT_NS / 2;
	deliver(snd, rcv);
	g_now += RTT_NS / 2;
	deliver(rcv, snd);
}

/* Uploads (the agent receives) for n round trips. */
static void upload(pair *p, int n, uint64_t cap)
{
	for (int i = 0; i < n; i++)
		round_trip(p->host.c, p->agent.c, p, SBX_FD_IN, cap);
}

/* ---------------------------------------------------------------- growing */

static void test_grows_to_cap_while_consumer_keeps_pace(void)
{
	pair p;
	pair_open(&p, &(opts){0}, &(opts){0}, SBX_MSG_WRITE, 1);
	uint32_t s = p.streams[0];
	CHECK_EQ_INT(sbx_conn_recv_window(p.agent.c, s), SBX_DEFAULT_WINDOW);
	upload(&p, 3, 0);
	CHECK(sbx_conn_rtt_ns(p.agent.c) >= RTT_NS / 2);
	CHECK(sbx_conn_rtt_ns(p.agent.c) <= 2 * RTT_NS);
	CHECK(sbx_conn_recv_window(p.agent.c, s) > SBX_DEFAULT_WINDOW);
	upload(&p, 20, 0);
	CHECK_EQ_INT(sbx_conn_recv_window(p.agent.c, s), SBX_WINDOW_MAX);
	CHECK_EQ_INT(sbx_conn_recv_window_total(p.agent.c), SBX_WINDOW_MAX);
	/* and the sender got to use it: a whole SBX_WINDOW_MAX window per round trip */
	uint64_t before = p.agent.got;
	upload(&p, 1, 0);
	CHECK(p.agent.got - before >= SBX_WINDOW_MAX * 3 / 4);
	pair_free(&p);
}

/* A link that carries only 256 KiB per round trip: the consumer takes a
 * 1 MiB window in four round trips, so a bigger one would not help. */
static void test_no_growth_when_link_limits(void)
{
	pair p;
	pair_open(&p, &(opts){0}, &(opts){0}, SBX_MSG_WRITE, 1);
	upload(&p, 30, 256 * 1024);
	CHECK(sbx_conn_rtt_ns(p.agent.c) > 0);
	CHECK_EQ_INT(sbx_conn_recv_window(p.agent.c, p.streams[0]), SBX_DEFAULT_WINDOW);
	pair_free(&p);
}

static void test_stream_cap(void)
{
	pair p;
	pair_open(&p, &(opts){0}, &(opts){.max = 4 * MiB}, SBX_MSG_WRITE, 1);
	upload(&p, 20, 0);
	CHECK_EQ_INT(sbx_conn_recv_window(p.agent.c, p.streams[0]), 4 * MiB);
	pair_free(&p);
}

/* ---------------------------------------------------------------- shrinking */

static void test_shrinks_when_consumer_stops(void)
{
	pair p;
	pair_open(&p, &(opts){0}, &(opts){0}, SBX_MSG_WRITE, 1);
	uint32_t s = p.streams[0];
	upload(&p, 20, 0);
	CHECK_EQ_INT(sbx_conn_recv_window(p.agent.c, s), SBX_WINDOW_MAX);
	p.agent.consume = 0; /* the application stops reading */
	upload(&p, 5, 0);
	CHECK_EQ_INT(sbx_conn_recv_window(p.agent.c, s), SBX_DEFAULT_WINDOW);
	CHECK_EQ_INT(sbx_conn_recv_window_total(p.agent.c), SBX_DEFAULT_WINDOW);
	CHECK_EQ_INT(sbx_conn_credit(p.host.c, s), 0); /* the sender is stopped */
	CHECK(p.agent.held <= 2 * SBX_WINDOW_MAX);      /* by what it held */
	/* Reading again: all it held is consumed, but the grants withhold the
	 * shrink, so the sender's credit is one base window, not SBX_WINDOW_MAX. */
	sbx_conn_consumed(p.agent.c, s, (size_t)p.agent.held);
	p.agent.held = 0;
	deliver(p.agent.c, p.host.c);
	CHECK(sbx_conn_credit(p.host.c, s) > 0);
	CHECK(sbx_conn_credit(p.host.c, s) <= SBX_DEFAULT_WINDOW);
	/* and it grows again once the consumer keeps pace */
	p.agent.consume = 1;
	upload(&p, 10, 0);
	CHECK(sbx_conn_recv_window(p.agent.c, s) > SBX_DEFAULT_WINDOW);
	pair_free(&p);
}

/* ---------------------------------------------------------------- the budget */

static void test_budget_caps_growth(void)
{
	pair p;
	uint64_t budget = 6 * MiB;
	pair_open(&p, &(opts){0}, &(opts){.budget = budget}, SBX_MSG_WRITE, 3);
	upload(&p, 20, 0);
	uint64_t sum = 0, largest = 0;
	for (int i = 0; i < p.nstreams; i++) {
		uint64_t w = sbx_conn_recv_window(p.agent.c, p.streams[i]);
		CHECK(w >= SBX_DEFAULT_WINDOW);
		sum += w;
		if (w > largest)
			largest = w;
	}
	CHECK_EQ_INT(sum, sbx_conn_recv_window_total(p.agent.c));
	CHECK_EQ_INT(sum, budget); /* grew up to the budget, not past it */
	CHECK(largest > SBX_DEFAULT_WINDOW);
	CHECK(largest < SBX_WINDOW_MAX);
	pair_free(&p);
}

/* A closed stream gives its window back to the budget. */
static void test_closed_stream_returns_budget(void)
{
	pair p;
	pair_open(&p, &(opts){0}, &(opts){0}, SBX_MSG_WRITE, 2);
	upload(&p, 20, 0);
	CHECK_EQ_INT(sbx_conn_recv_window_total(p.agent.c), 2 * SBX_WINDOW_MAX);
	msgpack_packer *pk = sbx_conn_begin_map(p.agent.c, SBX_MSG_RESULT, p.streams[0], 0);
	CHECK(pk);
	CHECK(sbx_conn_finish(p.agent.c) == 0);
	CHECK_EQ_INT(sbx_conn_recv_window_total(p.agent.c), SBX_WINDOW_MAX);
	pair_free(&p);
}

/* ---------------------------------------------------------------- fixed windows */

static void test_fixed_window_env_and_no_clock(void)
{
	pair p;
	pair_open(&p, &(opts){0}, &(opts){.fixed = 1}, SBX_MSG_WRITE, 1);
	upload(&p, 20, 0);
	CHECK_EQ_INT(sbx_conn_recv_window(p.agent.c, p.streams[0]), SBX_DEFAULT_WINDOW);
	CHECK_EQ_INT(sbx_conn_credit(p.host.c, p.streams[0]), SBX_DEFAULT_WINDOW);
	pair_free(&p);

	pair_open(&p, &(opts){0}, &(opts){.no_clock = 1}, SBX_MSG_WRITE, 1);
	upload(&p, 20, 0);
	CHECK_EQ_INT(sbx_conn_recv_window(p.agent.c, p.streams[0]), SBX_DEFAULT_WINDOW);
	pair_free(&p);

	setenv("SBX_FIXED_WINDOW", "1", 1);
	CHECK(sbx_fixed_window_env());
	setenv("SBX_FIXED_WINDOW", "0", 1);
	CHECK(!sbx_fixed_window_env());
	unsetenv("SBX_FIXED_WINDOW");
	CHECK(!sbx_fixed_window_env());
}

/* Downloads tune on the host; exec output never does (its credit is the
 * acknowledgement the agent drops retained output by). */
static void test_host_tunes_reads_not_exec_output(void)
{
	pair p;
	pair_open(&p, &(opts){0}, &(opts){0}, SBX_MSG_READ, 1);
	for (int i = 0; i < 20; i++)
		round_trip(p.agent.c, p.host.c, &p, SBX_FD_OUT, 0);
	CHECK_EQ_INT(sbx_conn_recv_window(p.host.c, p.streams[0]), SBX_WINDOW_MAX);
	pair_free(&p);

	pair_open(&p, &(opts){0}, &(opts){0}, SBX_MSG_EXEC, 1);
	for (int i = 0; i < 20; i++)
		round_trip(p.agent.c, p.host.c, &p, SBX_FD_OUT, 0);
	CHECK(p.host.got >= 10 * SBX_DEFAULT_WINDOW);
	CHECK_EQ_INT(sbx_conn_recv_window(p.host.c, p.streams[0]), SBX_DEFAULT_WINDOW);
	CHECK(sbx_conn_credit(p.agent.c, p.streams[0]) <= SBX_DEFAULT_WINDOW);
	pair_free(&p);
}

int main(void)
{
	RUN(test_grows_to_cap_while_consumer_keeps_pace);
	RUN(test_no_growth_when_link_limits);
	RUN(test_stream_cap);
	RUN(test_shrinks_when_consumer_stops);
	RUN(test_budget_caps_growth);
	RUN(test_closed_stream_returns_budget);
	RUN(test_fixed_window_env_and_no_clock);
	RUN(test_host_tunes_reads_not_exec_output);
	return test_summary();
}

/* window.c — per-stream receive window auto-tuning (see window.h). */
#include "window.h"

void sbx_wintune_init(sbx_wintune *t, int on, uint64_t base, uint64_t max, uint64_t budget)
{
	t->on = on;
	t->base = base;
	t->max = max ? max : SBX_WINDOW_MAX;
	t->budget = budget ? budget : SBX_WINDOW_BUDGET;
	if (t->max < base)
		t->max = base;
	t->total = 0;
	t->rtt_ns = 0;
}

void sbx_wintune_open(sbx_wintune *t, sbx_rwin *w, int tuned)
{
	*w = (sbx_rwin){.size = t->base, .tuned = tuned && t->on};
	t->total += w->size;
}

void sbx_wintune_close(sbx_wintune *t, sbx_rwin *w)
{
	t->total -= w->size < t->total ? w->size : t->total;
	w->size = 0;
}

/* An exponentially weighted mean (1/4 per sample): queues come and go. */
void sbx_wintune_rtt(sbx_wintune *t, uint64_t sample_ns)
{
	if (sample_ns == 0)
		sample_ns = 1;
	t->rtt_ns = t->rtt_ns ? (3 * t->rtt_ns + sample_ns) / 4 : sample_ns;
}

/* Doubling, within the stream's cap and the connection's budget; the
 * growth (0: none). */
static uint64_t grow(sbx_wintune *t, sbx_rwin *w)
{
	uint64_t by = w->size;
	if (w->size + by > t->max)
		by = t->max - w->size;
	if (t->total >= t->budget)
		return 0;
	if (t->total + by > t->budget)
		by = t->budget - t->total;
	w->size += by;
	t->total += by;
	return by;
}

/* A whole window arrived within two round trips while the consumer kept
 * up (at most half of it waiting): the sender waited for credit, not the
 * consumer for data. */
static uint64_t measure(sbx_wintune *t, sbx_rwin *w, uint64_t n, uint64_t held, uint64_t now_ns)
{
	if (w->epoch_ns == 0)
		w->epoch_ns = now_ns;
	w->epoch_bytes += n;
	if (w->epoch_bytes < w->size)
		return 0;
	int fast = t->rtt_ns && now_ns - w->epoch_ns <= 2 * t->rtt_ns && held <= w->size / 2;
	w->epoch_ns = now_ns;
	w->epoch_bytes = 0;
	return fast ? grow(t, w) : 0;
}

/* Halving toward base; the sender's credit is withheld from the next grants. */
static void shrink(sbx_wintune *t, sbx_rwin *w)
{
	uint64_t cut = w->size / 2;
	if (w->size - cut < t->base)
		cut = w->size - t->base;
	w->size -= cut;
	w->debt += cut;
	t->total -= cut < t->total ? cut : t->total;
	w->epoch_ns = 0; /* growth is measured afresh */
	w->epoch_bytes = 0;
}

uint64_t sbx_wintune_received(sbx_wintune *t, sbx_rwin *w, uint64_t n, uint64_t held, uint64_t now_ns)
{
	if (!w->tuned)
		return 0;
	if (held > w->size / 2 && w->size > t->base) {
		shrink(t, w);
		return 0;
	}
	return measure(t, w, n, held, now_ns);
}

uint64_t sbx_wintune_consumed(sbx_rwin *w, uint64_t n)
{
	uint64_t paid = n < w->debt ? n : w->debt;
	w->debt -= paid;
	return n - paid;
}

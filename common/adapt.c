/* adapt.c — the AUTO compression policy (see adapt.h). */
#include "adapt.h"

#define LINK_WINDOW (1024 * 1024)           /* bytes per link-rate sample */
#define PROBE (32ull * 1024 * 1024)         /* deflated bytes between link re-measurements */
#define TRIAL_EVERY (64ull * 1024 * 1024)   /* raw bytes between compressor re-measurements */
#define MARGIN 1.25                         /* deflate only when it is clearly faster */

void sbx_adapt_init(sbx_adapt *a, int mode)
{
	*a = (sbx_adapt){.mode = mode};
}

static double smooth(double old, double sample)
{
	return old > 0 ? (old + sample) / 2 : sample;
}

/* Would deflating beat sending raw, by what we know now? */
static int deflate_pays(const sbx_adapt *a)
{
	if (a->link_bps <= 0 || a->deflate_bps <= 0)
		return 0;
	double deflated = a->link_bps * a->ratio;
	if (deflated > a->deflate_bps)
		deflated = a->deflate_bps;
	return deflated > MARGIN * a->link_bps;
}

static void start_raw(sbx_adapt *a)
{
	a->deflating = 0;
	a->win_bytes = a->win_ns = 0;
}

/* A fresh measurement of the raw link: decide again. */
static void link_measured(sbx_adapt *a)
{
	if (a->deflate_bps <= 0 || a->raw_since_trial >= TRIAL_EVERY) {
		a->want_trial = 1;
		return;
	}
	if (deflate_pays(a)) {
		a->deflating = 1;
		a->deflated_since_probe = 0;
	}
}

int sbx_adapt_try_deflate(const sbx_adapt *a)
{
	if (a->mode == SBX_COMPRESS_ALWAYS)
		return 1;
	if (a->mode == SBX_COMPRESS_NEVER)
		return 0;
	return a->deflating || a->want_trial;
}

void sbx_adapt_chunk(sbx_adapt *a, size_t n, size_t z, uint64_t ns)
{
	if (a->mode != SBX_COMPRESS_AUTO || n == 0)
		return;
	if (ns > 0) { /* a deflate attempt: measure the compressor */
		a->deflate_bps = smooth(a->deflate_bps, (double)n * 1e9 / (double)ns);
		a->ratio = smooth(a->ratio, z > 0 ? (double)n / (double)z : 1.0);
		if (a->want_trial) {
			a->want_trial = 0;
			a->raw_since_trial = 0;
			if (!a->deflating && deflate_pays(a)) {
				a->deflating = 1;
				a->deflated_since_probe = 0;
			}
		}
	}
	if (a->deflating) {
		a->deflated_since_probe += n;
		/* the data stopped compressing, or it is time to look at the link again */
		if (!deflate_pays(a) || a->deflated_since_probe >= PROBE)
			start_raw(a);
	} else {
		a->raw_since_trial += n;
	}
}

void sbx_adapt_wrote(sbx_adapt *a, uint64_t now_ns, size_t wrote, size_t left)
{
	if (a->mode != SBX_COMPRESS_AUTO)
		return;
	/* Bytes queued at the last write and drained since: the link was busy
	 * all along, so this interval measures it. Only raw: while deflating
	 * the gaps include our own compression time. */
	if (a->backed_up && !a->deflating && a->last_write_ns && now_ns > a->last_write_ns) {
		a->win_bytes += wrote;
		a->win_ns += now_ns - a->last_write_ns;
		if (a->win_bytes >= LINK_WINDOW) {
			a->link_bps = smooth(a->link_bps, (double)a->win_bytes * 1e9 / (double)a->win_ns);
			a->win_bytes = a->win_ns = 0;
			link_measured(a);
		}
	}
	a->backed_up = left > 0;
	a->last_write_ns = now_ns;
}

/* chunk.c — adaptive per-chunk raw deflate (see chunk.h). */
#include "chunk.h"

#include <string.h>

#define BACKOFF_FIRST 4
#define BACKOFF_MAX 64

size_t sbx_deflate_chunk(sbx_deflater *d, const uint8_t *in, size_t n, uint8_t *out, size_t out_cap)
{
	if (n < 128)
		return 0;
	if (d->skip > 0) {
		d->skip--;
		return 0;
	}
	if (!d->ready) {
		memset(&d->z, 0, sizeof d->z);
		if (deflateInit2(&d->z, 1, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) != Z_OK)
			return 0;
		d->ready = 1;
		d->backoff = BACKOFF_FIRST;
	} else {
		deflateReset(&d->z);
	}
	size_t want = n - n / 8; /* must save at least 1/8 */
	if (out_cap > want)
		out_cap = want;
	d->z.next_in = (Bytef *)in;
	d->z.avail_in = (uInt)n;
	d->z.next_out = out;
	d->z.avail_out = (uInt)out_cap;
	int rc = deflate(&d->z, Z_FINISH);
	if (rc == Z_STREAM_END) {
		d->backoff = BACKOFF_FIRST;
		return out_cap - d->z.avail_out;
	}
	/* Did not shrink enough: pause, longer each time. */
	d->skip = d->backoff;
	if (d->backoff < BACKOFF_MAX)
		d->backoff *= 2;
	return 0;
}

void sbx_deflater_free(sbx_deflater *d)
{
	if (d->ready)
		deflateEnd(&d->z);
	d->ready = 0;
}

int sbx_inflate_chunk(sbx_inflater *f, const uint8_t *in, size_t n, uint8_t *out, size_t expect)
{
	if (!f->ready) {
		memset(&f->z, 0, sizeof f->z);
		if (inflateInit2(&f->z, -15) != Z_OK)
			return -1;
		f->ready = 1;
	} else {
		inflateReset(&f->z);
	}
	f->z.next_in = (Bytef *)in;
	f->z.avail_in = (uInt)n;
	f->z.next_out = out;
	f->z.avail_out = (uInt)expect;
	int rc = inflate(&f->z, Z_FINISH);
	/* Z_STREAM_END with every input byte used and exactly `expect` out. */
	if (rc != Z_STREAM_END || f->z.avail_in != 0 || f->z.avail_out != 0)
		return -1;
	return 0;
}

void sbx_inflater_free(sbx_inflater *f)
{
	if (f->ready)
		inflateEnd(&f->z);
	f->ready = 0;
}

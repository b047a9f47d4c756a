/* job.c — what exec.c (which runs jobs) and detached.c (which lists, kills
 * and reads detached ones) both need from a job (job.h): its id, whether it
 * finished, its EXIT fields. Here so neither kind calls into the other. */
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/wait.h>

#include "job.h"

void detached_new_id(char out[16])
{
	unsigned char b[6] = {0};
	if (getrandom(b, sizeof b, 0) != sizeof b) { /* never on Linux >= 3.17; still distinct */
		static unsigned n;
		n++;
		memcpy(b, &n, sizeof n);
	}
	for (int i = 0; i < 6; i++)
		snprintf(out + 2 * i, 3, "%02x", b[i]);
}

void job_pack_exit(msgpack_packer *pk, const job *j)
{
	int st = j->wait_status;
	sbx_pack_kv_int(pk, "code", WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
	sbx_pack_kv_int(pk, "signal", WIFSIGNALED(st) ? WTERMSIG(st) : 0);
	sbx_pack_kv_bool(pk, "timed_out", j->timed_out);
	sbx_pack_kv_uint(pk, "duration_ms", j->ended_ms - j->started_ms);
}

int job_finished(const job *j)
{
	return j->reaped && j->out_fd < 0 && j->err_fd < 0;
}

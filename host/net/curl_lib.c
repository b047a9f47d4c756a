/* curl_lib.c — libcurl's table (curl_lib.h), filled on first use through
 * dynlib.h. */
#include "curl_lib.h"

#include <pthread.h>
#include <stdio.h>

#include "dynlib.h"

static sbx_curl_api api;
static int loaded;
static char load_error[512];
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void load(void)
{
	const sbx_dynlib_fn fns[] = {
		{(void **)&api.global_init, "curl_global_init"},
		{(void **)&api.easy_init, "curl_easy_init"},
		{(void **)&api.easy_setopt, "curl_easy_setopt"},
		{(void **)&api.easy_getinfo, "curl_easy_getinfo"},
		{(void **)&api.easy_cleanup, "curl_easy_cleanup"},
		{(void **)&api.easy_strerror, "curl_easy_strerror"},
		{(void **)&api.easy_escape, "curl_easy_escape"},
		{(void **)&api.easy_send, "curl_easy_send"},
		{(void **)&api.easy_recv, "curl_easy_recv"},
		{(void **)&api.free, "curl_free"},
		{(void **)&api.multi_init, "curl_multi_init"},
		{(void **)&api.multi_setopt, "curl_multi_setopt"},
		{(void **)&api.multi_add_handle, "curl_multi_add_handle"},
		{(void **)&api.multi_remove_handle, "curl_multi_remove_handle"},
		{(void **)&api.multi_socket_action, "curl_multi_socket_action"},
		{(void **)&api.multi_info_read, "curl_multi_info_read"},
		{(void **)&api.multi_cleanup, "curl_multi_cleanup"},
		{(void **)&api.slist_append, "curl_slist_append"},
		{(void **)&api.slist_free_all, "curl_slist_free_all"},
		{(void **)&api.url, "curl_url"},
		{(void **)&api.url_set, "curl_url_set"},
		{(void **)&api.url_get, "curl_url_get"},
		{(void **)&api.url_cleanup, "curl_url_cleanup"},
	};
	loaded = sbx_dynlib_load("libcurl.so.4", fns, sizeof fns / sizeof fns[0], "libcurl4 7.62 or later on Debian/Ubuntu",
				 load_error, sizeof load_error) == 0;
}

int sbx_curl_load(char *why, size_t why_len)
{
	pthread_once(&once, load);
	if (!loaded && why)
		snprintf(why, why_len, "%s", load_error);
	return loaded ? 0 : -1;
}

const sbx_curl_api *sbx_curl(void)
{
	if (sbx_curl_load(NULL, 0) < 0)
		sbx_dynlib_die(load_error);
	return &api;
}

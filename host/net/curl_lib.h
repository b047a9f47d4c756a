/* curl_lib.h — libcurl, loaded on first use (dynlib.h says why).
 *
 * libsbx calls libcurl only through the table sbx_curl() returns; it is
 * dlopen'ed the first time a remote backend (k8s, ec2, docker) needs it.
 * Headers and types still come from <curl/curl.h>; only the calls go
 * through the table. */
#ifndef SBX_CURL_LIB_H
#define SBX_CURL_LIB_H

#include <curl/curl.h>

typedef struct sbx_curl_api {
	CURLcode (*global_init)(long flags);
	CURL *(*easy_init)(void);
	CURLcode (*easy_setopt)(CURL *curl, CURLoption option, ...);
	CURLcode (*easy_getinfo)(CURL *curl, CURLINFO info, ...);
	void (*easy_cleanup)(CURL *curl);
	const char *(*easy_strerror)(CURLcode code);
	char *(*easy_escape)(CURL *curl, const char *s, int len);
	CURLcode (*easy_send)(CURL *curl, const void *buf, size_t len, size_t *n);
	CURLcode (*easy_recv)(CURL *curl, void *buf, size_t len, size_t *n);
	void (*free)(void *p);
	CURLM *(*multi_init)(void);
	CURLMcode (*multi_setopt)(CURLM *m, CURLMoption option, ...);
	CURLMcode (*multi_add_handle)(CURLM *m, CURL *curl);
	CURLMcode (*multi_remove_handle)(CURLM *m, CURL *curl);
	CURLMcode (*multi_socket_action)(CURLM *m, curl_socket_t s, int ev_bitmask, int *running);
	CURLMsg *(*multi_info_read)(CURLM *m, int *msgs_in_queue);
	CURLMcode (*multi_cleanup)(CURLM *m);
	struct curl_slist *(*slist_append)(struct curl_slist *list, const char *s);
	void (*slist_free_all)(struct curl_slist *list);
	CURLU *(*url)(void);
	CURLUcode (*url_set)(CURLU *u, CURLUPart part, const char *content, unsigned int flags);
	CURLUcode (*url_get)(const CURLU *u, CURLUPart part, char **content, unsigned int flags);
	void (*url_cleanup)(CURLU *u);
} sbx_curl_api;

/* Loads libcurl (once; later calls return at once). 0, or -1 with why
 * ("cannot load libcurl.so.4: ...") in why. Entry points that can fail
 * softly (sbx_http_new) call this first. */
int sbx_curl_load(char *why, size_t why_len);

/* The table, loading libcurl if needed. A process that reaches a libcurl
 * call without libcurl installed has no way on: this says so on stderr
 * and aborts. */
const sbx_curl_api *sbx_curl(void);

#endif

/* meta_probe.c — test tool: what a command could try to reach the instance
 * metadata service (or any address) on port 80.
 *
 *   meta_probe tcp ADDR        connect() over TCP, read the answer
 *   meta_probe fastopen ADDR   TCP sendto(MSG_FASTOPEN): connect and send in one call
 *   meta_probe udp ADDR        an unconnected UDP sendto()
 *   meta_probe udpconnect ADDR a UDP connect()
 *   meta_probe escape PROCS KIND ADDR
 *                              first write "0" to the cgroup.procs file PROCS
 *                              (move itself to that cgroup), then KIND ADDR
 *
 * ADDR is IPv4 or IPv6 text (v4-mapped too). Prints one line: "reached"
 * (TCP: and the server's answer arrived), "refused" (EPERM: a socket BPF
 * program said no), or "error: WHY". Exit 0 for reached, 1 otherwise. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static socklen_t make_addr(const char *text, struct sockaddr_storage *ss, int *family)
{
	memset(ss, 0, sizeof *ss);
	struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
	if (inet_pton(AF_INET, text, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons(80);
		*family = AF_INET;
		return sizeof *s4;
	}
	if (inet_pton(AF_INET6, text, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(80);
		*family = AF_INET6;
		return sizeof *s6;
	}
	return 0;
}

static int report(int rc, int err)
{
	if (rc == 0) {
		printf("reached\n");
		return 0;
	}
	if (err == EPERM)
		printf("refused\n");
	else
		printf("error: %s\n", strerror(err));
	return 1;
}

/* After a TCP connection: the stand-in server answers at once. */
static int read_answer(int fd)
{
	char buf[256];
	ssize_t n = read(fd, buf, sizeof buf - 1);
	if (n <= 0)
		return -1;
	buf[n] = 0;
	return strstr(buf, "sbx-metadata") ? 0 : -1;
}

static int probe(const char *kind, const char *text)
{
	struct sockaddr_storage ss;
	int family;
	socklen_t sl = make_addr(text, &ss, &family);
	if (!sl) {
		printf("error: bad address %s\n", text);
		return 2;
	}
	int udp = strncmp(kind, "udp", 3) == 0;
	int fd = socket(family, udp ? SOCK_DGRAM : SOCK_STREAM, 0);
	if (fd < 0)
		return report(-1, errno);
	int rc;
	if (strcmp(kind, "udp") == 0)
		rc = sendto(fd, "x", 1, 0, (struct sockaddr *)&ss, sl) == 1 ? 0 : -1;
	else if (strcmp(kind, "fastopen") == 0)
		rc = sendto(fd, "GET / HTTP/1.0\r\n\r\n", 18, MSG_FASTOPEN, (struct sockaddr *)&ss, sl) >= 0 ? 0 : -1;
	else
		rc = connect(fd, (struct sockaddr *)&ss, sl);
	int err = errno;
	if (rc == 0 && !udp && read_answer(fd) < 0) {
		rc = -1;
		err = EIO;
	}
	close(fd);
	return report(rc, err);
}

int main(int argc, char **argv)
{
	if (argc == 5 && strcmp(argv[1], "escape") == 0) {
		int fd = open(argv[2], O_WRONLY | O_CLOEXEC);
		if (fd < 0 || write(fd, "0", 1) != 1)
			fprintf(stderr, "meta_probe: cannot move to %s: %s\n", argv[2], strerror(errno));
		if (fd >= 0)
			close(fd);
		return probe(argv[3], argv[4]);
	}
	if (argc != 3) {
		fprintf(stderr, "usage: meta_probe tcp|fastopen|udp|udpconnect ADDR | escape PROCS KIND ADDR\n");
		return 2;
	}
	return probe(argv[1], argv[2]);
}

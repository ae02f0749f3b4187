/*
 * udp.c - the Linux UDP node's transport: one UDP socket; an address is the
 * IPv4 address and port (6 octets, network order). Broadcast (SEARCHGW)
 * goes to the address of -B HOST:PORT, by default 255.255.255.255 at the
 * gateway's port (1885 without -g). -L PORT binds the socket to that local
 * port, where a gateway configured to ADVERTISE to it is heard.
 */
#include "node.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

const char node_transport_usage[] = "(-g HOST:PORT | -D | -A) [-B HOST:PORT] [-L PORT]";

static int sock;
static uint16_t gw_port = 1885; /* the MQTT-SN port of the gateway */
static int have_bcast;
static struct sockaddr_in bcast; /* -B */
static int local_port;           /* -L */

/* resolve reads HOST:PORT into sa; -1 with a message on failure. */
static int resolve(const char *spec, struct sockaddr_in *sa)
{
	char host[256];
	const char *colon = strrchr(spec, ':');
	struct addrinfo hints, *res;
	if (colon == NULL || (size_t)(colon - spec) >= sizeof host) {
		fprintf(stderr, "%s: want HOST:PORT\n", spec);
		return -1;
	}
	memcpy(host, spec, (size_t)(colon - spec));
	host[colon - spec] = '\0';
	memset(&hints, 0, sizeof hints);
	hints.ai_family = AF_INET;
	hints.ai_socktype = SOCK_DGRAM;
	if (getaddrinfo(host, colon + 1, &hints, &res) != 0) {
		fprintf(stderr, "%s: cannot resolve\n", spec);
		return -1;
	}
	memcpy(sa, res->ai_addr, sizeof *sa);
	freeaddrinfo(res);
	return 0;
}

int node_transport_option(int opt, const char *arg)
{
	if (opt == 'B') {
		have_bcast = 1;
		return resolve(arg, &bcast);
	}
	if (opt == 'L') {
		char *end;
		long p = strtol(arg, &end, 10);
		if (*end != '\0' || p < 1 || p > 65535)
			return -1;
		local_port = (int)p;
		return 0;
	}
	return -1;
}

static void to_sa(const mqttsn_addr_t *a, struct sockaddr_in *sa)
{
	memset(sa, 0, sizeof *sa);
	sa->sin_family = AF_INET;
	memcpy(&sa->sin_addr, a->b, 4);
	memcpy(&sa->sin_port, a->b + 4, 2);
}

static int udp_send(void *ctx, const mqttsn_addr_t *to, const uint8_t *buf, size_t len)
{
	struct sockaddr_in sa;
	(void)ctx;
	if (to == NULL && have_bcast) {
		sa = bcast;
	} else if (to == NULL) {
		memset(&sa, 0, sizeof sa);
		sa.sin_family = AF_INET;
		sa.sin_addr.s_addr = htonl(INADDR_BROADCAST);
		sa.sin_port = htons(gw_port);
	} else {
		to_sa(to, &sa);
	}
	return sendto(sock, buf, len, 0, (struct sockaddr *)&sa, sizeof sa) == (ssize_t)len ? 0 : -1;
}

static int udp_recv(void *ctx, mqttsn_addr_t *from, uint8_t *buf, size_t cap)
{
	struct sockaddr_in sa;
	socklen_t sl = sizeof sa;
	ssize_t n;
	(void)ctx;
	n = recvfrom(sock, buf, cap, MSG_DONTWAIT | MSG_TRUNC, (struct sockaddr *)&sa, &sl);
	if (n < 0)
		return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR || errno == ECONNREFUSED ? 0 : -1;
	if ((size_t)n > cap)
		return 0; /* longer than the buffer: dropped */
	from->len = 6;
	memcpy(from->b, &sa.sin_addr, 4);
	memcpy(from->b + 4, &sa.sin_port, 2);
	return n == 0 ? 0 : (int)n;
}

int node_transport_open(const char *spec, int baud, mqttsn_transport_t *tr, mqttsn_addr_t *gw)
{
	int on = 1;
	(void)baud;
	gw->len = 0;
	if (spec != NULL) {
		struct sockaddr_in sa;
		if (resolve(spec, &sa) != 0)
			return -1;
		gw->len = 6;
		memcpy(gw->b, &sa.sin_addr, 4);
		memcpy(gw->b + 4, &sa.sin_port, 2);
		gw_port = ntohs(sa.sin_port);
	}
	sock = socket(AF_INET, SOCK_DGRAM, 0);
	if (sock < 0) {
		perror("socket");
		return -1;
	}
	setsockopt(sock, SOL_SOCKET, SO_BROADCAST, &on, sizeof on);
	if (local_port != 0) {
		struct sockaddr_in me;
		memset(&me, 0, sizeof me);
		me.sin_family = AF_INET;
		me.sin_addr.s_addr = htonl(INADDR_ANY);
		me.sin_port = htons((uint16_t)local_port);
		setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
		if (bind(sock, (struct sockaddr *)&me, sizeof me) != 0) {
			fprintf(stderr, "bind port %d: %s\n", local_port, strerror(errno));
			return -1;
		}
	}
	tr->send = udp_send;
	tr->recv = udp_recv;
	tr->ctx = NULL;
	return sock;
}

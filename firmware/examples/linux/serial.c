/*
 * serial.c - the Linux serial node's transport: bare MQTT-SN datagrams on a
 * tty in the `raw` framing of the gateway's serialbus. The framing is the
 * datagrams themselves, back to back; each is split from the byte stream by
 * its own Length field (MQTT-SN 1.2 §5.2.1: one octet 2..255, or 0x01 and
 * two octets). A line with one device goes quiet between datagrams, so a
 * silence longer than IDLE_GAP_MS drops a partial datagram and the next
 * octet is a Length again (serialbus does the same on its side).
 */
#include "node.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#define IDLE_GAP_MS 50

const char node_transport_usage[] = "-d TTY [-b BAUD]";

static struct {
	int fd;
	uint8_t buf[1024]; /* the datagram being assembled */
	size_t have, want;
	uint32_t last_ms;
} line;

static uint32_t ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint32_t)(ts.tv_sec * 1000u + ts.tv_nsec / 1000000);
}

static int ser_send(void *ctx, const mqttsn_addr_t *to, const uint8_t *buf, size_t len)
{
	size_t off = 0;
	(void)ctx;
	(void)to; /* one device on the line: every address is the gateway */
	while (off < len) {
		ssize_t n = write(line.fd, buf + off, len - off);
		if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
			/* the line's buffer is full for a moment: wait for room,
			 * rather than spin */
			struct pollfd p = {line.fd, POLLOUT, 0};
			(void)poll(&p, 1, 100);
			continue;
		}
		if (n < 0)
			return -1;
		off += (size_t)n;
	}
	return 0;
}

/* want returns the datagram length that the first octets announce, 0 when
 * more octets are needed, or SIZE_MAX when they cannot start a datagram. */
static size_t want(void)
{
	if (line.have < 1)
		return 0;
	if (line.buf[0] == 0)
		return (size_t)-1;
	if (line.buf[0] != 0x01)
		return line.buf[0] < 2 ? (size_t)-1 : line.buf[0];
	if (line.have < 3)
		return 0;
	{
		size_t n = (size_t)line.buf[1] << 8 | line.buf[2];
		return n < 4 || n > sizeof line.buf ? (size_t)-1 : n;
	}
}

static int ser_recv(void *ctx, mqttsn_addr_t *from, uint8_t *out, size_t cap)
{
	uint8_t b;
	(void)ctx;
	from->len = 0;
	for (;;) {
		ssize_t n = read(line.fd, &b, 1);
		uint32_t now = ms();
		if (n <= 0)
			return n < 0 && errno != EAGAIN && errno != EINTR ? -1 : 0;
		if (line.have > 0 && now - line.last_ms > IDLE_GAP_MS)
			line.have = line.want = 0; /* resynchronise after a silence */
		line.last_ms = now;
		line.buf[line.have++] = b;
		if (line.want == 0) {
			size_t w = want();
			if (w == (size_t)-1) {
				/* not a Length: drop the first octet and look again */
				memmove(line.buf, line.buf + 1, --line.have);
				continue;
			}
			line.want = w;
		}
		if (line.want != 0 && line.have == line.want) {
			size_t len = line.have;
			line.have = line.want = 0;
			if (len > cap)
				continue;
			memcpy(out, line.buf, len);
			return (int)len;
		}
	}
}

static speed_t speed(int baud)
{
	switch (baud) {
	case 9600: return B9600;
	case 19200: return B19200;
	case 38400: return B38400;
	case 57600: return B57600;
	case 230400: return B230400;
	default: return B115200;
	}
}

int node_transport_option(int opt, const char *arg)
{
	(void)opt;
	(void)arg;
	return -1; /* one device on the line: every broadcast reaches the gateway */
}

int node_transport_open(const char *spec, int baud, mqttsn_transport_t *tr, mqttsn_addr_t *gw)
{
	struct termios tio;
	if (spec == NULL) {
		fprintf(stderr, "want -d TTY\n");
		return -1;
	}
	line.fd = open(spec, O_RDWR | O_NOCTTY | O_NONBLOCK);
	if (line.fd < 0) {
		fprintf(stderr, "open %s: %s\n", spec, strerror(errno));
		return -1;
	}
	if (tcgetattr(line.fd, &tio) == 0) {
		cfmakeraw(&tio);
		cfsetispeed(&tio, speed(baud));
		cfsetospeed(&tio, speed(baud));
		tio.c_cflag |= CLOCAL | CREAD;
		tcsetattr(line.fd, TCSANOW, &tio);
		/* a device that just started has heard nothing yet: what the
		 * line kept for a previous user of the port is not for it */
		tcflush(line.fd, TCIFLUSH);
	}
	tr->send = ser_send;
	tr->recv = ser_recv;
	tr->ctx = NULL;
	gw->len = 0;
	return line.fd;
}

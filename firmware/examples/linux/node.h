/*
 * node.h - the transports of the Linux example nodes. node.c holds the
 * application (flags, the MQTT-SN session); udp.c and serial.c each give it
 * a transport and are linked into their own program.
 */
#ifndef NODE_H
#define NODE_H

#include "mqttsn_client.h"

/* node_transport_open opens the transport named by spec (host:port for UDP,
 * a tty path for serial), fills tr and gw, and returns the file descriptor
 * to wait on, or -1 with a message on stderr. spec may be NULL for UDP when
 * the node discovers its gateway: gw is then unset (len 0). */
int node_transport_open(const char *spec, int baud, mqttsn_transport_t *tr, mqttsn_addr_t *gw);

/* the transport's name in the usage text */
extern const char node_transport_usage[];

/* node_transport_option takes a transport's own flag before
 * node_transport_open: for UDP -B HOST:PORT (where broadcasts, SEARCHGW, go)
 * and -L PORT (the local port, where a gateway's ADVERTISE arrives). It
 * returns 0, or -1 when the transport has no such flag or arg is bad. */
int node_transport_option(int opt, const char *arg);

#endif

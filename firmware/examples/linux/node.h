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
 * to wait on, or -1 with a message on stderr. */
int node_transport_open(const char *spec, int baud, mqttsn_transport_t *tr, mqttsn_addr_t *gw);

/* the transport's name in the usage text */
extern const char node_transport_usage[];

#endif

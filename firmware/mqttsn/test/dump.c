/* dump.c - see dump.h. */
#include "dump.h"

#include <stdio.h>
#include <string.h>

void hexs(char *out, const uint8_t *p, size_t n)
{
	if (n == 0) {
		strcpy(out, "-");
		return;
	}
	for (size_t i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", p[i]);
}

void dump(char *out, size_t cap, const mqttsn_msg_t *m)
{
	static char pay[2 * 65536 + 2], node[2 * 256 + 2];
	hexs(pay, m->payload, m->payload_len);
	hexs(node, m->node_id, m->node_id_len);
	snprintf(out, cap,
		 "type=%02x dup=%u qos=%d retain=%u will=%u clean=%u tidt=%u rc=%u gw=%u radius=%u hasdur=%u dur=%u "
		 "tid=%u mid=%u payload=%s encap=%u ctrl=%u node=%s",
		 m->type, m->dup, m->qos, m->retain, m->will, m->clean_session, m->topic_id_type, m->return_code,
		 m->gw_id, m->radius, m->has_duration, m->duration, m->topic_id, m->msg_id, pay, m->encapsulated,
		 m->ctrl, node);
}

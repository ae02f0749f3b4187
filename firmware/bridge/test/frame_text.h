/* Frames as text, in the notation of serialbus/testdata/bridge/README.md. */
#ifndef OUTPOST_BRIDGE_FRAME_TEXT_H
#define OUTPOST_BRIDGE_FRAME_TEXT_H

#include <stddef.h>

#include "bridge_frame.h"

/* Writes n bytes as 2n lower-case hex digits and a NUL. */
void hex(char *dst, const unsigned char *p, size_t n);

/* Formats a decoded frame, e.g. "TX_STATUS id=1 result=sent reason=0". */
void format_frame(char *out, size_t cap, const bridge_frame *f);

#endif

/* The board's whole state, as an application declares it: its .bss is the
 * RAM the core needs at the default sizes (bridge.h). */
#include "bridge.h"

bridge board_state;

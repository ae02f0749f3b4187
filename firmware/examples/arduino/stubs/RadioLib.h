/* RadioLib.h - the few RadioLib 6.x declarations the example sketches use,
 * for the host syntax check. Nothing here runs. */
#ifndef STUB_RADIOLIB_H
#define STUB_RADIOLIB_H
#include <stddef.h>
#include <stdint.h>

#define RADIOLIB_ERR_NONE 0
#define RADIOLIB_ERR_PACKET_TOO_LONG (-4)
#define RADIOLIB_SX127X_SYNC_WORD 0x12

class Module {
public:
	Module(uint32_t cs, uint32_t irq, uint32_t rst, uint32_t gpio);
};

class SX1276 {
public:
	SX1276(Module *mod);
	int16_t begin(float freq, float bw, uint8_t sf, uint8_t cr, uint8_t syncWord, int8_t power);
	void setDio0Action(void (*func)(void), uint32_t dir);
	int16_t startReceive();
	int16_t transmit(uint8_t *data, size_t len);
	int16_t startTransmit(uint8_t *data, size_t len);
	size_t getPacketLength(bool update = true);
	int16_t readData(uint8_t *data, size_t len);
	float getRSSI();
	float getSNR();
};
#endif

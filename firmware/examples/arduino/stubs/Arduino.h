/* Arduino.h - just enough of the Arduino core's declarations for
 * `make -C firmware sketches` to syntax-check the example sketches on the
 * host (g++ -fsyntax-only). Nothing here runs. */
#ifndef STUB_ARDUINO_H
#define STUB_ARDUINO_H
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LED_BUILTIN 13
#define A0 14
#define OUTPUT 1
#define RISING 3

class HardwareSerial {
public:
	void begin(unsigned long baud);
	int available();
	int availableForWrite();
	int read();
	size_t write(uint8_t b);
	size_t write(const uint8_t *p, size_t n);
	size_t readBytes(uint8_t *p, size_t n);
};
extern HardwareSerial Serial, Serial1;

unsigned long millis();
void delay(unsigned long ms);
void pinMode(uint8_t pin, uint8_t mode);
void digitalWrite(uint8_t pin, uint8_t value);
int analogRead(uint8_t pin);
void setup();
void loop();
#endif

# Outpost build, test and release tasks. `make help` lists them.
#
# Environment variables pass through to the commands, CI among them: tests read
# CI, and under CI=true a missing test peer (mosquitto, socat, ...) is a failure
# instead of a skip.

GO       ?= go
BIN      := bin
MAIN     := ./cmd/outpost
FUZZTIME ?= 30s

VERSION := $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT  := $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
LDFLAGS := -X main.version=$(VERSION) -X main.commit=$(COMMIT)

# Release binaries for the boards drop the symbol table and DWARF (stack traces
# still work); CGO_ENABLED=0 makes them static.
CROSS         := CGO_ENABLED=0 GOOS=linux
CROSS_LDFLAGS := -s -w $(LDFLAGS)

# Debian packages of `make deb`: architectures, and where the .debs go.
DEB_ARCHES ?= arm64 armhf amd64
DEB_DIR    ?= dist

.PHONY: help build run test peers fmt-check vet bench bench-broker bench-spool bench-uplink bench-mqttsn soak-uplink fuzz cross deb lint clean firmware-test firmware-size

help:
	@echo "make build      build $(BIN)/outpost ($(VERSION))"
	@echo "make run        build, then run the gateway on embedded defaults (broker on :1883, data in ./outpost-data)"
	@echo "make test       install missing test peers (as root), gofmt check, go vet, go test -race"
	@echo "make bench      run the Go benchmarks"
	@echo "make bench-broker  outpost against Debian's mosquitto side by side (scripts/bench-broker.sh)"
	@echo "make bench-spool   durable appends, RSS, disk and restart with 1M spooled, beside mosquitto's bridge"
	@echo "make bench-uplink  drain of a 100k backlog and kill -9 of the edge, beside mosquitto's bridge"
	@echo "make bench-mqttsn  100 and 1000 MQTT-SN UDP clients at QoS 0 (paced) and 1 through outpost: msgs/s, p50/p99, drops, RSS, CPU s/100k; RSS with 10000 idle clients"
	@echo "make soak-uplink   the store-and-forward tests of tests/blackbox with 100000 messages"
	@echo "make fuzz       run every Fuzz target for FUZZTIME (now $(FUZZTIME)), and the firmware's C fuzzers (decoder, client)"
	@echo "make firmware-test  the firmware's C tests (make -C firmware test: gcc and clang, ASan+UBSan); part of make test"
	@echo "make firmware-size  the MQTT-SN client's Cortex-M0+ flash and RAM (make -C firmware size)"
	@echo "make cross      static builds for linux/arm64, arm v7 and arm v6 into $(BIN)/"
	@echo "make deb        .deb packages for $(DEB_ARCHES) into $(DEB_DIR)/ (armhf is ARMv6: every Pi)"
	@echo "make lint       gofmt check, go vet, and staticcheck when it is installed"
	@echo "make clean      remove build output"

build:
	$(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(BIN)/outpost $(MAIN)

run: build
	./$(BIN)/outpost run

# Debian installs the mosquitto broker in /usr/sbin, which is not on every
# user's PATH; the tests look their peers up on PATH.
test: peers fmt-check vet firmware-test
	PATH="$$PATH:/usr/sbin:/sbin" $(GO) test -race -count=1 -timeout 9m ./...

peers:
	@scripts/test-peers.sh

fmt-check:
	@scripts/check-gofmt.sh

vet:
	$(GO) vet ./...

bench:
	$(GO) test -run='^$$' -bench=. -benchmem ./...

bench-broker:
	GO=$(GO) scripts/bench-broker.sh

# Store and forward: scripts/bench-storefwd.sh runs bench/storefwd against
# the real binary and mosquitto and prints ratios (about 6 and 3 minutes).
bench-spool:
	GO=$(GO) scripts/bench-storefwd.sh spool

bench-uplink:
	GO=$(GO) scripts/bench-storefwd.sh uplink

# MQTT-SN load: bench/mqttsnload starts the built outpost on free loopback ports.
bench-mqttsn: build
	$(GO) run ./bench/mqttsnload -outpost $(BIN)/outpost

# The store-and-forward tests with 100000 messages instead of 5000.
soak-uplink:
	PATH="$$PATH:/usr/sbin:/sbin" $(GO) test -count=1 -timeout 30m -v -run 'TestStoreForward' ./tests/blackbox -args -long

fuzz:
	FUZZTIME=$(FUZZTIME) scripts/fuzz.sh
	$(MAKE) -C firmware fuzz FUZZTIME=$(FUZZTIME)

# The C side (firmware/): host tests of the MQTT-SN client library and the
# bridge board core against the shared fixtures, and the Cortex-M0+ footprint.
firmware-test:
	$(MAKE) -C firmware test

firmware-size:
	$(MAKE) -C firmware size

# `go build ./...` first compiles every package for the target, so 32-bit
# trouble in a package that the binary does not use yet shows up too.
cross:
	$(CROSS) GOARCH=arm64 $(GO) build ./...
	$(CROSS) GOARCH=arm64 $(GO) build -trimpath -ldflags "$(CROSS_LDFLAGS)" -o $(BIN)/outpost-linux-arm64 $(MAIN)
	$(CROSS) GOARCH=arm GOARM=7 $(GO) build ./...
	$(CROSS) GOARCH=arm GOARM=7 $(GO) build -trimpath -ldflags "$(CROSS_LDFLAGS)" -o $(BIN)/outpost-linux-armv7 $(MAIN)
	$(CROSS) GOARCH=arm GOARM=6 $(GO) build ./...
	$(CROSS) GOARCH=arm GOARM=6 $(GO) build -trimpath -ldflags "$(CROSS_LDFLAGS)" -o $(BIN)/outpost-linux-armv6 $(MAIN)

# nfpm is a tool of go.mod (`go tool nfpm`); packaging/nfpm.yaml is the recipe.
deb:
	GO="$(GO)" DEB_DIR="$(DEB_DIR)" LDFLAGS="$(LDFLAGS)" packaging/build-deb.sh $(DEB_ARCHES)

lint: fmt-check vet
	@if command -v staticcheck >/dev/null 2>&1; then \
		echo "staticcheck ./..."; staticcheck ./...; \
	else \
		echo "lint: staticcheck is not installed; skipped"; \
	fi

clean:
	rm -rf $(BIN) $(DEB_DIR) coverage.out coverage.html cover.out

# Townlink — make targets. Everything a target needs is installed or built by it.
GO      ?= go
BIN     := bin
PKGS    := ./...
# Every test runs under the race detector: `go test -race -count=1 ./...`
# took 2.5 to 4 min on the 2-core CI machine while other work loaded it
# (load average 5 to 18), far inside the timeout. Slow tests run by default;
# `make test SHORT=1` skips the long ones (township, soak, kill -9, long
# waits): the everyday loop.
TESTFLAGS ?= -race -count=1 -timeout 25m $(if $(SHORT),-short,)

.PHONY: all build test demo bench fuzz soak scale vet fmt deps clean dist deb cross-test

all: build

build:
	$(GO) build -o $(BIN)/ ./gateway/cmd/townlink ./firmware-sim/cmd/townsim ./firmware-sim/cmd/fieldsim

## deps: install the system packages tests need (mosquitto, pymodbus, mbpoll, socat, cbor2)
deps:
	@scripts/deps.sh

## test: every test, with real PTYs, a real mosquitto and Badger on disk
test: deps vet
	$(GO) test $(TESTFLAGS) $(PKGS)

vet:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)

## demo: a whole simulated township: devices on PTYs, the gateway, a county broker, a platform tail
demo: build
	@scripts/demo.sh

## bench: speed and memory, each next to the limit measured in the same run
bench: deps build
	@scripts/bench.sh

## fuzz: run every fuzz target for a short while (FUZZTIME=30s to go longer)
fuzz:
	@FUZZTIME=$${FUZZTIME:-10s} scripts/fuzz.sh

## soak: the long kill -9 / broker outage test
soak: deps
	TOWNLINK_SOAK=1 $(GO) test -count=1 -timeout 60m -run Soak ./gateway/...

## dist: static binaries (CGO_ENABLED=0) for linux amd64, arm64 and armv7, and dist/SHA256SUMS
dist:
	@scripts/dist.sh

## deb: Debian packages (nfpm) of the dist binaries: binary, hardened systemd unit, conffile
deb: dist
	@scripts/deb.sh

## cross-test: the arm64 and armv7 builds under qemu-user (queue crash recovery, a gateway on a PTY)
cross-test: deps
	$(GO) test -count=1 -timeout 30m -v -run Cross ./packaging

## scale: 300 gateways through a 3-node NATS JetStream cluster into PostgreSQL, a broker node
## and an ingest worker killed mid-run, a county-wide outage; fails if a committed record is lost
scale: deps
	$(GO) build -o $(BIN)/ ./uplink/cmd/townlink-county ./uplink/cmd/townlink-scale
	$(BIN)/townlink-scale -county-bin $(BIN)/townlink-county $(SCALEFLAGS)

fmt:
	gofmt -w $$(git ls-files '*.go')

clean:
	rm -rf $(BIN) .demo dist

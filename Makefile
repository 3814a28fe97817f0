# FedSwift: `make demo` runs a short federated experiment on real Fashion-MNIST and writes its
# report; `make test` runs the tests.
SWIFT ?= swift
JOBS  ?= 2
BIN    = .build/release/fedswift
RUNS  ?= runs

.PHONY: demo demo-central test test-debug test-flower lint deps build build-no-onednn bench clean

deps:
	@bash scripts/install-deps.sh

build: deps
	$(SWIFT) build -c release -j $(JOBS) --product fedswift

# 25 rounds of FedAvg with tuned local training: 100 non-IID clients, 10 per round (a few minutes).
demo: build
	$(BIN) simulate experiments/fmnist-fedavg-tuned.yaml --set rounds=25 --out $(RUNS)/demo-fedavg-tuned
	$(BIN) report $(RUNS)/demo-fedavg-tuned --target 0.8

# Centralized training of the FedAvg CNN: 3 epochs to about 91 % test accuracy.
demo-central: build
	@mkdir -p $(RUNS)
	$(BIN) train --model cnn --dataset fmnist --epochs 3 --batch-size 32 --lr 0.05 --momentum 0.9 --schedule cosine \
	    --threads 2 --seed 0 --save $(RUNS)/cnn-fmnist.safetensors
	$(BIN) eval --model cnn --weights $(RUNS)/cnn-fmnist.safetensors --threads 2

# Tests run in an optimized build: the numeric tests and the real-data training test are slow in debug.
# The suite runs twice: on the default backend (oneDNN where it is built in), then forced to
# OpenBLAS, the fallback for machines without oneDNN. Tests that compare backends run in both.
test: deps
	$(SWIFT) build -c release -j $(JOBS) --build-tests -Xswiftc -enable-testing
	$(SWIFT) test -c release -j $(JOBS) --skip-build -Xswiftc -enable-testing
	FEDSWIFT_BACKEND=openblas $(SWIFT) test -c release -j $(JOBS) --skip-build -Xswiftc -enable-testing
	bash scripts/test_flower.sh

# FedSwift nodes in a real Flower federation (flwr 1.41.0 from PyPI in .venv-flower; a few minutes):
# `fedswift flower-node` against flower-superlink, with the Flower app in flower/ (`make test` runs it).
test-flower: deps
	$(SWIFT) build -c release -j $(JOBS) --product fedswift -Xswiftc -enable-testing
	bash scripts/test_flower.sh

# The suite once more in a debug build (assertions and exclusivity checks on; CI runs it).
test-debug: deps
	$(SWIFT) build -j $(JOBS) --build-tests
	$(SWIFT) test -j $(JOBS) --skip-build

# Formatting, by the toolchain's `swift format` with the repository's .swift-format
# (`swift format format -i --recursive Sources Tests Package.swift` applies it).
lint:
	$(SWIFT) format lint --strict --recursive Sources Tests Package.swift

# The engine and the simulator without oneDNN (what a machine without libdnnl-dev builds), in a
# build folder of its own; `make test` runs every suite on the OpenBLAS backend too.
build-no-onednn: deps
	FEDSWIFT_NO_ONEDNN=1 $(SWIFT) build -c release -j $(JOBS) --target FedSim --scratch-path .build-no-onednn

bench: build
	$(BIN) bench train --model cnn --batch-size 32 --threads 1
	$(BIN) bench train --model mlp --batch-size 32 --threads 1
	$(BIN) bench infer --model cnn --batch-size 100 --threads 1

clean:
	rm -rf .build .build-no-onednn $(RUNS)

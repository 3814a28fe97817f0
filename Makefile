# FedSwift: `make demo` trains the FedAvg CNN on real Fashion-MNIST; `make test` runs the tests.
SWIFT ?= swift
JOBS  ?= 2
BIN    = .build/release/fedswift
RUNS  ?= runs

.PHONY: demo test deps build bench clean

deps:
	@bash scripts/install-deps.sh

build: deps
	$(SWIFT) build -c release -j $(JOBS) --product fedswift

demo: build
	@mkdir -p $(RUNS)
	$(BIN) train --model cnn --dataset fmnist --epochs 3 --batch-size 32 --lr 0.05 --momentum 0.9 --schedule cosine \
	    --threads 2 --seed 0 --save $(RUNS)/cnn-fmnist.safetensors
	$(BIN) eval --model cnn --weights $(RUNS)/cnn-fmnist.safetensors --threads 2

# Tests run in an optimized build: the numeric tests and the real-data training test are slow in debug.
test: deps
	$(SWIFT) build -c release -j $(JOBS) --build-tests -Xswiftc -enable-testing
	$(SWIFT) test -c release -j $(JOBS) --skip-build -Xswiftc -enable-testing

bench: build
	$(BIN) bench train --model cnn --batch-size 32 --threads 1
	$(BIN) bench train --model mlp --batch-size 32 --threads 1
	$(BIN) bench infer --model cnn --batch-size 100 --threads 1

clean:
	rm -rf .build $(RUNS)

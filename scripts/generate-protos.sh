#!/usr/bin/env bash
# Regenerates the Swift code of the wire contract (Protos/fedswift/v1/*.proto) into
# Sources/FedNet/Generated, and of Flower's Fleet API messages (Protos/flwr/proto/*.proto, messages
# only: they travel over plain HTTP) into Sources/FedFlower/Generated. The generated files are committed, so builds and CI never run this;
# run it after changing a .proto. It installs protoc from Debian's protobuf-compiler and builds
# the two protoc plugins (swift-protobuf's protoc-gen-swift, grpc-swift-protobuf's
# protoc-gen-grpc-swift-2) at the versions Package.swift uses, in .build-protoc/.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v protoc > /dev/null; then
  sudo_cmd=""; [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get install -y --no-install-recommends protobuf-compiler
fi
tools=.build-protoc
mkdir -p "$tools"
cat > "$tools/Package.swift" <<'SWIFT'
// swift-tools-version: 6.0
import PackageDescription
let package = Package(
    name: "protoc-plugins",
    dependencies: [
        .package(url: "https://github.com/apple/swift-protobuf", exact: "1.39.0"),
        .package(url: "https://github.com/grpc/grpc-swift-protobuf", exact: "2.4.1"),
    ],
    targets: [.target(name: "Empty", path: "Empty")]
)
SWIFT
mkdir -p "$tools/Empty" && echo "" > "$tools/Empty/Empty.swift"
(cd "$tools" && swift build -c release --product protoc-gen-swift && swift build -c release --product protoc-gen-grpc-swift-2)
bin="$(cd "$tools" && swift build -c release --show-bin-path)"
out=Sources/FedNet/Generated
mkdir -p "$out"
rm -f "$out"/*.pb.swift "$out"/*.grpc.swift
protos=$(cd Protos && find fedswift -name '*.proto' | sort)
(cd Protos && protoc --plugin=protoc-gen-swift="$bin/protoc-gen-swift" \
  --swift_out=Visibility=Public:"../$out" --swift_opt=FileNaming=PathToUnderscores $protos)
(cd Protos && protoc --plugin=protoc-gen-grpc-swift-2="$bin/protoc-gen-grpc-swift-2" \
  --grpc-swift-2_out=Visibility=Public,Client=true,Server=true:"../$out" \
  --grpc-swift-2_opt=FileNaming=PathToUnderscores $protos)
flower=Sources/FedFlower/Generated
mkdir -p "$flower"
rm -f "$flower"/*.pb.swift
flower_protos=$(cd Protos && find flwr -name '*.proto' | sort)
(cd Protos && protoc --plugin=protoc-gen-swift="$bin/protoc-gen-swift" \
  --swift_out=Visibility=Public:"../$flower" --swift_opt=FileNaming=PathToUnderscores $flower_protos)
# In the repository's format, so that `make lint` passes on regenerated code too.
swift format format -i "$out"/*.swift "$flower"/*.swift
echo "generated: $(ls "$out" "$flower")"

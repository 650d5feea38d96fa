#!/usr/bin/env bash
# Builds StandbyCore, AzureMonitor and a small driver with the address sanitizer (swiftc directly,
# so no dependency is rebuilt) and runs every fixture, truncated and mutated, through the decoders.
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
flags=(-sanitize=address -g -Onone -swift-version 6 -enable-upcoming-feature ExistentialAny)
swiftc "${flags[@]}" -parse-as-library -emit-library -emit-module -module-name StandbyCore \
    -emit-module-path "$out/StandbyCore.swiftmodule" -o "$out/libStandbyCore.so" Sources/StandbyCore/*.swift
swiftc "${flags[@]}" -parse-as-library -emit-library -emit-module -module-name AzureMonitor -I "$out" -L "$out" -lStandbyCore \
    -emit-module-path "$out/AzureMonitor.swiftmodule" -o "$out/libAzureMonitor.so" Sources/AzureMonitor/*.swift
swiftc "${flags[@]}" -I "$out" -L "$out" -lStandbyCore -lAzureMonitor -o "$out/asan-decoders" scripts/asan/main.swift
LD_LIBRARY_PATH="$out" "$out/asan-decoders" Tests/Fixtures/azure-monitor

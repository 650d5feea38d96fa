#!/usr/bin/env bash
# The test command: the Swift test suites, then the REST contract checked by schemathesis against
# a live server (installed from PyPI on first use).
set -euo pipefail
cd "$(dirname "$0")/.."

swift test

if ! command -v schemathesis >/dev/null 2>&1; then
    echo "installing schemathesis for the contract test"
    python3 -m pip install --quiet --disable-pip-version-check schemathesis==4.32.5
fi
swift build --product standby
./scripts/contract-test.sh

#!/usr/bin/env bash
# The test command: swift format's strict lint, the Swift test suites (SQLite and a private PostgreSQL
# server), then the REST contract checked by schemathesis against a live server, and the console in a
# real headless Chromium (schemathesis and Selenium are installed from PyPI on first use; Chromium, its
# driver and PostgreSQL are Debian's packages).
set -euo pipefail
cd "$(dirname "$0")/.."

# Formatting first, since it is the cheapest to fail: the committed .swift-format, strict, over every
# hand-written Swift file (generated and embedded files are what their tools write).
git ls-files -z 'Sources/*.swift' 'Tests/*.swift' 'Package.swift' | grep -zv -e '/Generated/' -e '/Embedded' \
    | xargs -0 swift format lint --strict

# The Swift suites, with a private PostgreSQL server (initdb in a temporary folder on a free loopback
# port, stopped and removed afterwards) for the PostgreSQL store and the multi-instance tests.
./scripts/postgres.sh run swift test

if ! command -v schemathesis >/dev/null 2>&1; then
    echo "installing schemathesis for the contract test"
    python3 -m pip install --quiet --disable-pip-version-check schemathesis==4.32.5
fi
swift build --product standby
./scripts/contract-test.sh

if ! python3 -c "import selenium" >/dev/null 2>&1; then
    echo "installing selenium for the console's browser test"
    python3 -m pip install --quiet --disable-pip-version-check selenium==4.51.0
fi
./scripts/browser-test.sh

# Standby container image: build with the Swift toolchain, run on a slim Debian with the system
# SQLite. Build from the repository root:  docker build -t standby .
ARG SWIFT_IMAGE=swift:6.3-bookworm

FROM ${SWIFT_IMAGE} AS build
RUN apt-get update && apt-get install -y --no-install-recommends libsqlite3-dev && rm -rf /var/lib/apt/lists/*
WORKDIR /build
# Resolve first, so that dependency downloads are cached apart from source changes.
COPY Package.swift ./
RUN swift package resolve
COPY . .
RUN install -D "$(scripts/build-release.sh)" /out/standby

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends libsqlite3-0 ca-certificates tzdata \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /var/lib/standby --shell /usr/sbin/nologin standby \
    && install -d -o standby -g standby /var/lib/standby
COPY --from=build /out/standby /usr/local/bin/standby
# The binary embeds its migrations; the folder ships too, as the schema's readable source.
COPY migrations /usr/share/standby/migrations
COPY deploy/standby.example.yaml /etc/standby/standby.yaml
# The same image runs a probe: docker run ... standby probe --config /etc/standby/probe.yaml
COPY deploy/probe.example.yaml /etc/standby/probe.yaml
USER standby
WORKDIR /var/lib/standby
ENV STANDBY_CONFIG=/etc/standby/standby.yaml \
    STANDBY_HOST=0.0.0.0
EXPOSE 8080
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/standby"]
CMD ["serve"]

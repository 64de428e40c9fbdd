# OMS on debian:12-slim (docs/operations.md "Container image").
#   docker build -t oms .
#   docker run -d -p 8080:8080 -v oms-data:/var/lib/oms \
#     -e JWT_SECRET_FILE=/run/secrets/jwt_secret -v /path/jwt_secret:/run/secrets/jwt_secret:ro oms
# Build stage: the same packages as scripts/install-deps.sh needs to build.
FROM debian:12-slim AS build
RUN apt-get update -qq \
 && apt-get install -y -qq --no-install-recommends build-essential pkg-config libmicrohttpd-dev libjansson-dev \
      libsqlite3-dev libpq-dev libssl-dev libcurl4-openssl-dev libzstd-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Makefile ./
COPY scripts ./scripts
COPY src ./src
# -o deps: the packages are installed above (install-deps.sh would add the test tools).
RUN make -j"$(nproc)" -o deps build/rel/oms && strip build/rel/oms

# Runtime stage: the shared libraries only, an unprivileged user, one volume.
FROM debian:12-slim
RUN apt-get update -qq \
 && apt-get install -y -qq --no-install-recommends libmicrohttpd12 libjansson4 libsqlite3-0 libpq5 libssl3 \
      libcurl4 libzstd1 ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /var/lib/oms --shell /usr/sbin/nologin oms \
 && install -d -o oms -g oms -m 0700 /var/lib/oms
COPY --from=build /src/build/rel/oms /usr/bin/oms
COPY packaging/oms.conf /etc/oms/oms.conf
USER oms
WORKDIR /var/lib/oms
VOLUME ["/var/lib/oms"]
ENV DATABASE_URL=sqlite:/var/lib/oms/oms.db \
    OMS_LISTEN=0.0.0.0:8080
# Liveness: GET /health (readiness: /ready) from the orchestrator; the image has no HTTP client.
EXPOSE 8080
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/bin/oms"]
CMD ["serve"]

# Multi-stage build: compile in the Rust image, run from a small Debian base.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY migrations ./migrations
COPY benches ./benches
COPY templates ./templates
COPY assets ./assets
RUN cargo build --release --locked --bin cch && strip target/release/cch

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home /app --create-home cch \
    && mkdir -p /app/data && chown cch:cch /app/data
WORKDIR /app
COPY --from=build /src/target/release/cch /usr/local/bin/cch
# Numeric, so Kubernetes' runAsNonRoot can check it; /app/data exists and belongs to cch, so a
# named volume mounted there starts out writable (Docker copies the ownership).
USER 10001
ENV APP_PORT=23000 DATA_DIR=/app/data
EXPOSE 23000
HEALTHCHECK --interval=10s --timeout=3s --retries=3 CMD curl -fsS http://127.0.0.1:23000/health || exit 1
ENTRYPOINT ["cch"]
CMD ["serve"]

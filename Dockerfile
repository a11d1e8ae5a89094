# syntax=docker/dockerfile:1
# Multi-stage build of the paystatus server. Not built in this repository's
# CI (no Docker engine there); see the README's "Operating" section.

# Stage 1: the official socket.io browser client, which the server serves at
# /socket.io/socket.io.js. Plain JavaScript, so any Node image will do.
FROM node:20-bookworm-slim AS client
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund

# Stage 2: the Go binary. The SQLite driver needs cgo, so the runtime image
# below must share this stage's glibc (both Debian bookworm).
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY main.go ./
COPY payment ./payment
COPY realtime ./realtime
COPY server ./server
RUN CGO_ENABLED=1 go build -trimpath -ldflags="-s -w" -o /out/paystatus .

# Stage 3: runtime. curl is only for the HEALTHCHECK.
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 paystatus \
 && useradd --system --uid 10001 --gid paystatus --home-dir /app --shell /usr/sbin/nologin paystatus \
 && mkdir -p /data \
 && chown paystatus:paystatus /data
WORKDIR /app
COPY --from=build /out/paystatus /app/paystatus
COPY static /app/static
COPY --from=client /src/node_modules/socket.io-client/dist /app/node_modules/socket.io-client/dist
ENV APP_ENV=production \
    PORT=3000 \
    DATABASE_URL=/data/paystatus.db \
    STATIC_DIR=/app/static \
    SOCKET_IO_CLIENT_DIR=/app/node_modules/socket.io-client/dist
# SQLite lives here; with DATABASE_URL=postgres://... the volume stays empty.
VOLUME ["/data"]
EXPOSE 3000
USER paystatus:paystatus
# Liveness only (/readyz also checks the database). With TLS_CERT_FILE set
# the server speaks HTTPS only; -k is fine for a loopback liveness probe.
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
  CMD scheme=http; [ -z "$TLS_CERT_FILE" ] || scheme=https; curl -fsSk "$scheme://127.0.0.1:${PORT}/healthz" || exit 1
ENTRYPOINT ["/app/paystatus"]

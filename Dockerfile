# syntax=docker/dockerfile:1
# Playground in a container: one static binary, SQLite in /data by default.
#   docker build -t playground .
#   docker run -p 8080:8080 -v playground-data:/data playground
# compose.yaml runs the scaled-out shape (PostgreSQL, Redis, two instances, nginx).

# Build with `make static`, the target the release test in cmd/playground
# also builds and runs, so the flags live in one place (the Makefile).
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN make static STATIC=/out/playground && mkdir -p /out/data

# distroless/static: CA certificates and tzdata, no shell, runs as nonroot (65532).
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/playground /playground
COPY --from=build --chown=65532:65532 /out/data /data
USER 65532:65532
# The working directory holds the default SQLite file, playground.db.
WORKDIR /data
VOLUME /data
ENV PORT=8080
EXPOSE 8080
# No curl in the image: the binary asks its own /healthz on 127.0.0.1:$PORT.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 CMD ["/playground", "healthcheck"]
ENTRYPOINT ["/playground"]
CMD ["serve"]

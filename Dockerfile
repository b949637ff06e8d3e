# syntax=docker/dockerfile:1
#
# accessbot: a static binary on a distroless base, run as a non-root user.
#   docker build -t accessbot .
#   docker run -v accessbot-data:/data -v ./config.yaml:/etc/accessbot/config.yaml:ro \
#     -e SLACK_APP_TOKEN -e SLACK_BOT_TOKEN accessbot

FROM golang:1.26 AS build
WORKDIR /src
# Dependencies first, so that they are cached across source changes.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
ARG COMMIT=unknown
# CGO_ENABLED=0: a static binary that needs no libc. The zone database is
# embedded (time/tzdata in main) and the CA bundle comes with the base image.
RUN CGO_ENABLED=0 go build -trimpath \
      -ldflags "-s -w -X main.version=${VERSION} -X main.commit=${COMMIT}" \
      -o /out/accessbot ./cmd/accessbot \
 && mkdir -p /out/data

# distroless/static: CA certificates, /etc/passwd with "nonroot" (65532),
# no shell, no package manager.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/accessbot /usr/local/bin/accessbot
# The example runbook: `docker run … accessbot demo` plays it.
COPY config.example.yaml /usr/share/accessbot/config.example.yaml
# The store (one bbolt file, one process) lives on a volume owned by the
# non-root user.
COPY --from=build --chown=65532:65532 /out/data /data
VOLUME ["/data"]
ENV ACCESSBOT_STORE_PATH=/data/accessbot.db
# The audit mirror beside the store (a relative audit.file would resolve
# against / and fail for the non-root user), and the operations endpoints
# on every interface of the container. Both override the config file.
ENV ACCESSBOT_AUDIT_FILE=/data/audit.jsonl
ENV ACCESSBOT_HTTP_LISTEN=:9090
USER 65532:65532
# /healthz, /readyz, /metrics.
EXPOSE 9090
ENTRYPOINT ["/usr/local/bin/accessbot"]
CMD ["run", "--config", "/etc/accessbot/config.yaml"]

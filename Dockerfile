# Builds one command of this module into a small image.
#
#   CMD: coordinator or worker, built from ./cmd/$CMD (what compose.yaml
#        builds):
#          docker build --build-arg CMD=worker -t flowstone-worker .
#   PKG: any main package of the module, built instead of ./cmd/$CMD: your
#        own worker (workercmd.Main with your pipelines), e.g. the example's:
#          docker build --build-arg PKG=./examples/ownpipeline/cmd/shop-worker -t shop-worker .
#
# In a module of your own, copy this file to its root and build your
# worker's package the same way (PKG=./cmd/my-worker); the image runs it with
# the flags and environment of cmd/worker (NATS_URL, FLOWSTONE_STORAGE, ...,
# see -help).
FROM golang:1.26 AS build
ARG CMD
ARG PKG=./cmd/${CMD}
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN test "${PKG}" != "./cmd/" || { echo "set --build-arg CMD=coordinator|worker, or PKG=./path/to/your/worker" >&2; exit 1; }
RUN CGO_ENABLED=0 go build -trimpath -o /out/app "${PKG}"

FROM gcr.io/distroless/static-debian12
COPY --from=build /out/app /app
USER nonroot
ENTRYPOINT ["/app"]

# The retalk relay in a container. See docs/server.md ("Container").
#
#   docker build -t retalk-server .
#   docker run -d -p 127.0.0.1:8766:8766 -v retalk-data:/data \
#       -e RETALK_SERVER_AUDIENCE=https://relay.example.com retalk-server
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p retalk-server

FROM debian:bookworm-slim
RUN useradd --system --uid 10001 --home-dir /data retalk \
    && mkdir /data && chown retalk /data
COPY --from=build /src/target/release/retalk-server /usr/local/bin/retalk-server
USER retalk
# Inside the container the relay must listen on every interface; publish the
# port on the host's loopback and put TLS in front (docs/server.md).
ENV RETALK_SERVER_HOST=0.0.0.0 \
    RETALK_SERVER_PORT=8766 \
    RETALK_SERVER_DB=/data/server.db
VOLUME /data
EXPOSE 8766
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/retalk-server"]

# nats.Dockerfile - Debian 12's nats-server (2.9), for docker/compose.cluster.yaml
# (built here like theater's image, never pulled).
ARG DEBIAN_IMAGE=debian:bookworm-slim
FROM ${DEBIAN_IMAGE}
RUN apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nats-server \
 && apt-get clean && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /data && chown nobody:nogroup /data
USER nobody
VOLUME ["/data"]
EXPOSE 4222 6222 8222
ENTRYPOINT ["nats-server"]

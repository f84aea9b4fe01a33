# syntax=docker/dockerfile:1
#
# Framecast's container image: one image, two programs.
#   worker (default command)        node worker.mjs  - the GPU worker: frame queue -> model -> S3 + DynamoDB
#   reference model (command below) node model.mjs   - the built-in CPU model server, Cog HTTP contract, port 5000
# The RenderFleet construct runs both in one ECS task for the `reference` model, and the worker alone beside
# a production's own Cog image for every other model. CDK builds it at deploy time (cdk synth only stages it).

# Bundling is plain JavaScript work, so it runs on the build machine's own architecture even when the
# image is for another one (an arm64 laptop building for x86_64 GPU hosts).
FROM --platform=$BUILDPLATFORM node:24-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
# Scripts stay off: the only one (patch-package) patches a local-mode emulator the image never runs.
RUN --mount=type=cache,target=/root/.npm npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json ./
COPY functions functions
RUN npx esbuild worker=functions/worker/main.ts model=functions/model/reference/main.ts \
      --bundle --platform=node --format=esm --target=node22 --main-fields=module,main \
      --minify --sourcemap --sources-content=false \
      --external:sharp --external:@ffmpeg-installer/ffmpeg \
      --outdir=dist --out-extension:.js=.mjs \
      "--banner:js=import { createRequire as __framecastCreateRequire } from 'node:module'; const require = __framecastCreateRequire(import.meta.url);"

# Two bundles and the native pieces they load when a job needs them: sharp (plates, masks), with its
# prebuilt libvips from npm, Debian's ffmpeg (window videos), named by FRAMECAST_FFMPEG, and Debian's
# OpenImageIO and OpenColorIO (EXR plates and EXR frames, docs/colour.md) with the project's OCIO configs.
FROM node:24-bookworm-slim AS runtime
RUN apt-get update \
 && apt-get install -y --no-install-recommends ffmpeg openimageio-tools opencolorio-tools \
 && rm -rf /var/lib/apt/lists/*
ENV NODE_ENV=production \
    NODE_OPTIONS=--enable-source-maps \
    FRAMECAST_FFMPEG=/usr/bin/ffmpeg \
    FRAMECAST_OIIOTOOL=/usr/bin/oiiotool
WORKDIR /app
# sharp alone, at the version the lock file pins (the lock is read, not installed: the bundles need nothing else).
COPY package-lock.json /tmp/framecast-lock.json
RUN --mount=type=cache,target=/root/.npm \
    npm install --no-save --no-package-lock --no-audit --no-fund --omit=dev \
      "sharp@$(node -p "require('/tmp/framecast-lock.json').packages['node_modules/sharp'].version")" \
 && rm /tmp/framecast-lock.json
# Owned by root and read-only to the process: the program cannot rewrite itself.
COPY --from=build /src/dist/ ./
# FRAMECAST_OCIO_CONFIG names a file in here (relative to /app), set by the stack from the production config.
COPY colour/ ./colour/
USER node
EXPOSE 5000
CMD ["node", "worker.mjs"]

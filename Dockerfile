# syntax=docker/dockerfile:1
# The gate sidecar image: `make image` (docker build --build-arg VERSION=... --build-arg REVISION=...)
#
# Stage 1 fetches the pinned dependency wheels (every one checked against the sha256 in
# packaging/requirements-image.txt) and builds our wheel with a pinned setuptools; stage 2 installs
# them into a slim Python with no build tools, no pip and no source tree, running as UID 65532 on
# a read-only root filesystem (only /tmp is written, an emptyDir in deploy/sidecar).

# The base, pinned by digest: the multi-arch index of python:3.11.13-slim-bookworm (Debian 12).
# It was not pulled on the machine this was written on; the digest is the one public Dockerfiles
# pin for that tag. Check or refresh it with
#   docker buildx imagetools inspect python:3.11.13-slim-bookworm
# and pass another with --build-arg PYTHON_IMAGE=python:<tag>@sha256:<digest>.
ARG PYTHON_IMAGE=python:3.11.13-slim-bookworm@sha256:86adf8dbadc3d6e82ee5dd2c74bec2e1c2467cdad47886280501df722372d2e1

FROM ${PYTHON_IMAGE} AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
COPY packaging/requirements-image.txt packaging/requirements-image-build.txt ./
# Wheels only (no sdist is built here), each verified against its pinned hash.
RUN python -m pip download --require-hashes --only-binary=:all: --no-deps \
        --dest /wheels -r requirements-image.txt \
    && cp requirements-image.txt /wheels/ \
    && python -m pip install --require-hashes --only-binary=:all: --no-deps -r requirements-image-build.txt
COPY pyproject.toml README.md LICENSE ./
COPY canarygate ./canarygate
COPY kubectl_gate ./kubectl_gate
# kubectl_gate/data/deploy links to these (the manifests `kubectl gate install` prints).
COPY deploy/crd ./deploy/crd
COPY deploy/sidecar ./deploy/sidecar
COPY gate_sidecar ./gate_sidecar
# Our wheel, built with the pinned setuptools just installed (no build isolation: nothing unpinned).
RUN python -m pip wheel --no-deps --no-build-isolation --wheel-dir /wheels/project .

FROM ${PYTHON_IMAGE} AS runtime
ARG VERSION=unknown
ARG REVISION=unknown
ARG SOURCE=https://github.com/canary-gate/canary-gate
LABEL org.opencontainers.image.title="gate-sidecar" \
      org.opencontainers.image.description="Canary Gate sidecar: answers Flagger webhooks from CanaryGate state" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.url="${SOURCE}" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HOME=/tmp \
    TMPDIR=/tmp
# pip compiles the .pyc files here, at build time, so nothing is written at run time.
# The wheels are bind-mounted from the builder, so they never land in a layer; the dependencies
# are installed by hash, our wheel without dependencies; pip, setuptools and wheel are removed
# afterwards: the runtime has no build or install tools.
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    python -m pip install --no-index --find-links=/wheels --require-hashes -r /wheels/requirements-image.txt \
    && python -m pip install --no-index --no-deps /wheels/project/canary_gate-*.whl \
    && python -m pip uninstall --yes pip setuptools wheel \
    && groupadd --system --gid 65532 gate \
    && useradd --system --uid 65532 --gid 65532 --no-create-home \
       --home-dir /nonexistent --shell /usr/sbin/nologin gate
WORKDIR /tmp
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["gate-sidecar"]

# syntax=docker/dockerfile:1
# One image for every Sanitrack process; docker-compose.yml picks the subcommand.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore

# A fixed uid, so files the services write to volumes keep one owner across rebuilds.
# /mosquitto/auth is where `sanitrack broker-export` writes Mosquitto's password file
# and ACL (a volume the broker mounts too). It belongs to uid 1883, the `mosquitto`
# user of the eclipse-mosquitto image: the export runs as that uid so the broker, which
# has dropped root by the time it reloads on SIGHUP, can read the 0600 password file.
RUN groupadd --system --gid 10001 sanitrack \
    && useradd --system --uid 10001 --gid sanitrack \
        --create-home --home-dir /home/sanitrack sanitrack \
    && install -d -o 1883 -g 1883 -m 0750 /mosquitto/auth

# The source is bind-mounted for the install only, so it adds no layer; rw lets
# setuptools write its build files there (they are discarded). No dev extras.
RUN --mount=type=bind,target=/src,rw pip install /src

USER sanitrack
WORKDIR /home/sanitrack
# /health and /metrics (SANITRACK_HTTP_PORT).
EXPOSE 8080
ENTRYPOINT ["sanitrack"]
CMD ["ingest"]

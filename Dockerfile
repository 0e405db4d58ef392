FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    HUB_DATA_DIR=/data HUB_LOG_JSON=true
WORKDIR /app
COPY pyproject.toml README.md ./
COPY hub ./hub
COPY connectors ./connectors
COPY mappings ./mappings
# The embedded default keeps its SQLite database and generated secret key in HUB_DATA_DIR: a directory the
# unprivileged user owns (a named volume copies this ownership; chown a bind-mounted one to uid 10001).
RUN pip install --no-cache-dir . \
 && useradd --system --uid 10001 --user-group --home-dir /data --no-create-home hub \
 && mkdir -p /data && chown hub:hub /data
VOLUME ["/data"]
USER hub
EXPOSE 8000
ENTRYPOINT ["hub"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]

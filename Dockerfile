FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY hub ./hub
COPY connectors ./connectors
COPY mappings ./mappings
RUN pip install --no-cache-dir . && useradd --system --uid 10001 hub
USER hub
ENV HUB_LOG_JSON=true
ENTRYPOINT ["hub"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]

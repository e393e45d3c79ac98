# One image for the worker, the receiver (python -m api) and the sandbox (python -m sandbox).
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY . .
RUN pip install --no-cache-dir .
ENV PITWALL_LOG_FORMAT=json
CMD ["python", "worker.py"]

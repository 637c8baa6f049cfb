"""Adapters behind ``consistency.ports``: Redis, Kafka admin, S3 manifest, webhook."""

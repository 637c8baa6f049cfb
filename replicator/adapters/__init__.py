"""Adapters: thin, lazily connected wrappers around Kafka, Redis, S3 and Feast."""

"""The pure core: records, wire format, ordering rules. No Kafka, Redis, S3 or Feast here."""

# One region of the Feast region replicator: its Redis (ElastiCache, ACL users writer /
# reader / admin / checker), its S3 bucket, IAM roles for its workers and readers, a Secrets
# Manager secret with the keys the Helm chart's region Secret needs, and optionally a Route 53
# latency record with a health check on the read health endpoint. Kafka is an input.
# Resources: redis.tf, s3.tf, iam.tf, dns.tf. docs/deploy.md explains the whole.

locals {
  name   = "feast-${replace(var.project, "_", "-")}-${var.region}"
  bucket = coalesce(var.bucket_name, "feast-${replace(var.project, "_", "-")}-${var.region}")
  tags = merge(var.tags, {
    "feast-replicator/project" = var.project
    "feast-replicator/region"  = var.region
  })
}

# The keys of the chart's per-region Kubernetes Secret (values: topology.regions[].secret).
# Sync it into the cluster with External Secrets or the Secrets Store CSI driver.
resource "aws_secretsmanager_secret" "credentials" {
  # checkov:skip=CKV2_AWS_57:Redis ACL passwords are rotated by a new apply (random_password keepers), not by a Lambda.
  name                    = "${local.name}/credentials"
  description             = "Redis ACL passwords of the Feast replicator in ${var.region} (keys of the Helm chart's region Secret)"
  kms_key_id              = var.kms_key_arn
  recovery_window_in_days = 7
  tags                    = local.tags
}

resource "aws_secretsmanager_secret_version" "credentials" {
  secret_id = aws_secretsmanager_secret.credentials.id
  secret_string = jsonencode({
    "redis-writer-password"  = random_password.redis["writer"].result
    "redis-reader-password"  = random_password.redis["reader"].result
    "redis-admin-password"   = random_password.redis["admin"].result
    "redis-checker-password" = random_password.redis["checker"].result
  })
}

output "redis_endpoint" {
  description = "Host and port of the region's Redis primary endpoint (topology regions.<name>.redis.host/port)."
  value = {
    host = aws_elasticache_replication_group.this.primary_endpoint_address
    port = var.redis.port
  }
}

output "redis_reader_endpoint" {
  description = "Host of the replicas' reader endpoint, for read-heavy inference services."
  value       = aws_elasticache_replication_group.this.reader_endpoint_address
}

output "bucket" {
  description = "Name and ARN of the region's bucket (topology regions.<name>.s3.bucket)."
  value = {
    name = aws_s3_bucket.this.id
    arn  = aws_s3_bucket.this.arn
  }
}

output "role_arns" {
  description = "IRSA role ARNs by kind (worker, reader): annotate the service accounts with eks.amazonaws.com/role-arn."
  value       = { for kind, role in aws_iam_role.this : kind => role.arn }
}

output "credentials_secret_arn" {
  description = "Secrets Manager secret with the Redis ACL passwords (keys of the chart's region Secret)."
  value       = aws_secretsmanager_secret.credentials.arn
}

output "topology_region" {
  description = "This region's entry for infra/topology.yaml (regions.<name>), passwords left to the Secret."
  value = {
    redis = {
      host    = aws_elasticache_replication_group.this.primary_endpoint_address
      port    = var.redis.port
      writer  = { username = var.redis_usernames.writer, password = "from-secret" }
      reader  = { username = var.redis_usernames.reader, password = "from-secret" }
      admin   = { username = var.redis_usernames.admin, password = "from-secret" }
      checker = { username = var.redis_usernames.checker, password = "from-secret" }
    }
    s3 = {
      endpoint_url      = "https://s3.${var.region}.amazonaws.com"
      bucket            = aws_s3_bucket.this.id
      region_name       = var.region
      access_key_id     = "from-secret"
      secret_access_key = "from-secret"
    }
    kafka_bootstrap_servers = var.kafka_bootstrap_servers
  }
}

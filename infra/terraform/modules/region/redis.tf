# ACL rules: the same as the local stack's (replicator/stack/redis_server.py; the test
# tests/unit/test_deploy_terraform.py keeps them equal). The writer may run the apply script
# but not dangerous commands; the reader only reads; the checker reads and runs its digest
# script read-only (EVALSHA_RO); the default user is disabled.
locals {
  acl = {
    writer  = "on ~* +@read +@write +@transaction +@connection -@dangerous +ping +info +evalsha +evalsha_ro +script|load +script|exists"
    reader  = "on ~* -@all +@read +@connection -@dangerous"
    admin   = "on ~* &* +@all"
    checker = "on ~* -@all +@read +@connection -@dangerous +evalsha_ro +script|load"
  }
}

resource "random_password" "redis" {
  for_each = toset(["writer", "reader", "admin", "checker", "default"])
  length   = 40
  special  = false
}

resource "aws_elasticache_user" "users" {
  for_each      = local.acl
  user_id       = "${local.name}-${each.key}"
  user_name     = var.redis_usernames[each.key]
  engine        = "REDIS"
  access_string = each.value

  authentication_mode {
    type      = "password"
    passwords = [random_password.redis[each.key].result]
  }
  tags = local.tags
}

# ElastiCache requires a user named "default" in every group: this one can do nothing.
resource "aws_elasticache_user" "default_disabled" {
  user_id       = "${local.name}-default-off"
  user_name     = "default"
  engine        = "REDIS"
  access_string = "off ~* -@all"

  authentication_mode {
    type      = "password"
    passwords = [random_password.redis["default"].result]
  }
  tags = local.tags
}

resource "aws_elasticache_user_group" "this" {
  user_group_id = local.name
  engine        = "REDIS"
  user_ids = concat(
    [aws_elasticache_user.default_disabled.user_id],
    [for user in aws_elasticache_user.users : user.user_id],
  )
  tags = local.tags
}

resource "aws_elasticache_subnet_group" "this" {
  name       = local.name
  subnet_ids = var.subnet_ids
  tags       = local.tags
}

resource "aws_security_group" "redis" {
  name        = "${local.name}-redis"
  description = "Redis of the Feast replicator in ${var.region}: reachable from the region's pods only"
  vpc_id      = var.vpc_id
  tags        = local.tags
}

resource "aws_vpc_security_group_ingress_rule" "redis_from_clients" {
  for_each                     = toset(var.client_security_group_ids)
  security_group_id            = aws_security_group.redis.id
  description                  = "Redis (TLS) from the region's pods"
  referenced_security_group_id = each.value
  ip_protocol                  = "tcp"
  from_port                    = var.redis.port
  to_port                      = var.redis.port
}

resource "aws_elasticache_parameter_group" "this" {
  name   = local.name
  family = var.redis.parameter_group_family
  # Feast keys never expire unless key_ttl_seconds says so: never evict them for memory.
  parameter {
    name  = "maxmemory-policy"
    value = "noeviction"
  }
  tags = local.tags
}

resource "aws_elasticache_replication_group" "this" {
  replication_group_id       = local.name
  description                = "Feast online store replica for ${var.region} (written by the replicator only)"
  engine                     = "redis"
  engine_version             = var.redis.engine_version
  node_type                  = var.redis.node_type
  port                       = var.redis.port
  num_cache_clusters         = var.redis.replicas + 1
  automatic_failover_enabled = true
  multi_az_enabled           = true
  parameter_group_name       = aws_elasticache_parameter_group.this.name
  subnet_group_name          = aws_elasticache_subnet_group.this.name
  security_group_ids         = [aws_security_group.redis.id]
  user_group_ids             = [aws_elasticache_user_group.this.user_group_id]
  at_rest_encryption_enabled = true
  kms_key_id                 = var.kms_key_arn
  transit_encryption_enabled = true
  transit_encryption_mode    = "required"
  auto_minor_version_upgrade = true
  snapshot_retention_limit   = var.redis.snapshot_retention_days
  maintenance_window         = var.redis.maintenance_window
  apply_immediately          = var.redis.apply_immediately
  tags                       = local.tags
}

variable "region" {
  description = "The region's name in the replicator's topology (regions.<name> in infra/topology.yaml), e.g. eu-west-1. Names every resource."
  type        = string
}

variable "project" {
  description = "The Feast project (topology `project`); part of resource names and the S3 key prefixes."
  type        = string
  default     = "global_fraud"
}

variable "is_primary" {
  description = "True for the topology's primary_region: its bucket also keeps the primary registry and the rollout records."
  type        = bool
  default     = false
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}

variable "kms_key_arn" {
  description = "Customer-managed KMS key for Redis at rest, the bucket and the credentials secret. null: AWS-managed keys."
  type        = string
  default     = null
}

# Network ---------------------------------------------------------------------------------
variable "vpc_id" {
  description = "VPC of the region's Kubernetes cluster; Redis is reachable only inside it."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets (two or more availability zones) for the Redis nodes."
  type        = list(string)
}

variable "client_security_group_ids" {
  description = "Security groups of the pods allowed to reach Redis (the cluster's node or pod security groups)."
  type        = list(string)
}

# Redis -----------------------------------------------------------------------------------
variable "redis" {
  description = "The region's ElastiCache for Redis OSS replication group. Redis Cluster mode is not supported by the replicator (docs/replication.md, Known limits)."
  type = object({
    node_type               = optional(string, "cache.r7g.large")
    engine_version          = optional(string, "7.1")
    parameter_group_family  = optional(string, "redis7")
    replicas                = optional(number, 1)
    port                    = optional(number, 6379)
    snapshot_retention_days = optional(number, 7)
    maintenance_window      = optional(string, "sun:05:00-sun:06:00")
    apply_immediately       = optional(bool, false)
  })
  default = {}

  validation {
    condition     = var.redis.replicas >= 1
    error_message = "redis.replicas must be at least 1: automatic failover needs a replica."
  }
}

variable "redis_usernames" {
  description = "User names of the region's Redis ACL users (topology regions.<name>.redis.{writer,reader,admin,checker}.username). Passwords are generated and stored in Secrets Manager."
  type = object({
    writer  = optional(string, "replicator")
    reader  = optional(string, "reader")
    admin   = optional(string, "admin")
    checker = optional(string, "checker")
  })
  default = {}
}

# S3 --------------------------------------------------------------------------------------
variable "bucket_name" {
  description = "The region's bucket (topology regions.<name>.s3.bucket). null: feast-<project>-<region>."
  type        = string
  default     = null
}

variable "snapshot_ia_days" {
  description = "Days after which registry and model snapshots move to STANDARD_IA (they stay readable for rollbacks)."
  type        = number
  default     = 30
}

variable "noncurrent_version_days" {
  description = "Days a replaced or deleted object version is kept (bucket versioning) before it expires."
  type        = number
  default     = 90
}

variable "access_log_bucket" {
  description = "Existing bucket that receives the region bucket's S3 server access logs. null: no access logs."
  type        = string
  default     = null
}

variable "publisher_role_arns" {
  description = "Roles allowed to write the bucket: whoever runs `replicator registry sync`, `models publish` and `rollout` (at the primary)."
  type        = list(string)
  default     = []
}

# Kubernetes service accounts (IRSA) ------------------------------------------------------
variable "oidc_provider_arn" {
  description = "IAM OIDC provider of the region's EKS cluster, for the workers' and readers' service-account roles (IRSA)."
  type        = string
}

variable "namespace" {
  description = "Kubernetes namespace of the region's Helm release."
  type        = string
  default     = "feast"
}

variable "worker_service_account" {
  description = "Service account of the workers, heartbeats and checker (the chart's serviceAccount.name)."
  type        = string
  default     = "feast-replicator"
}

variable "reader_service_accounts" {
  description = "Service accounts of inference services and the feature server that read the regional registry."
  type        = list(string)
  default     = ["feast-feature-server"]
}

# Kafka -----------------------------------------------------------------------------------
variable "kafka_bootstrap_servers" {
  description = "Kafka brokers as seen from this region (MSK or an existing cluster; topology regions.<name>.kafka_bootstrap_servers). Not created here."
  type        = string
}

# DNS -------------------------------------------------------------------------------------
variable "dns" {
  description = "Route 53 latency record for the region's read endpoint, with a health check on its readiness path. null: no DNS."
  type = object({
    zone_id           = string
    record_name       = string
    target            = string
    health_check_fqdn = optional(string)
    health_check_port = optional(number, 443)
    health_check_path = optional(string, "/health/ready")
    ttl               = optional(number, 60)
  })
  default = null
}

variable "region" {
  description = "The AWS region, also the region's name in the topology."
  type        = string
  default     = "eu-west-1"
}

variable "vpc_id" {
  description = "VPC of the region's EKS cluster."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets for the Redis nodes."
  type        = list(string)
}

variable "client_security_group_ids" {
  description = "Security groups of the pods that reach Redis."
  type        = list(string)
}

variable "oidc_provider_arn" {
  description = "The EKS cluster's IAM OIDC provider."
  type        = string
}

variable "kafka_bootstrap_servers" {
  description = "An existing Kafka cluster's brokers as this region reaches them."
  type        = string
}

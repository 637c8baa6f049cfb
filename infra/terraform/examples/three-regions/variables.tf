variable "project" {
  description = "The Feast project (topology `project`)."
  type        = string
  default     = "global_fraud"
}

variable "kafka_bootstrap_servers" {
  description = "The MSK (or existing) cluster's brokers as each region reaches them, by region."
  type        = map(string)
}

variable "clusters" {
  description = "Per region: the EKS cluster's VPC, private subnets, pod security groups and IAM OIDC provider."
  type = map(object({
    vpc_id                    = string
    subnet_ids                = list(string)
    client_security_group_ids = list(string)
    oidc_provider_arn         = string
  }))
}

variable "dns" {
  description = "The hosted zone and record name of the global read endpoint, and each region's load balancer host name."
  type = object({
    zone_id     = string
    record_name = string
    targets     = map(string)
  })
}

variable "publisher_role_arns" {
  description = "Roles that run registry sync, model publishing and rollouts (write every region's bucket)."
  type        = list(string)
  default     = []
}

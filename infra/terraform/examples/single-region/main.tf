# One replica region added to an existing deployment, without DNS: its Redis, bucket, roles
# and credentials secret. Kafka is an existing cluster.

provider "aws" {
  region = var.region
}

module "region" {
  source = "../../modules/region"

  region                    = var.region
  vpc_id                    = var.vpc_id
  subnet_ids                = var.subnet_ids
  client_security_group_ids = var.client_security_group_ids
  oidc_provider_arn         = var.oidc_provider_arn
  kafka_bootstrap_servers   = var.kafka_bootstrap_servers
  redis = {
    node_type = "cache.r7g.large"
    replicas  = 1
  }
}

# Three regions the same way, us-east-1 the primary: the topology of infra/topology.yaml in
# AWS. One provider per region; each module call is one region. Apply, then write the
# outputs' topology entries into infra/topology.yaml and run
# `replicator region k8s-values <region>` for each region's Helm release (docs/deploy.md).
# One block per region, not a for_each: Terraform fixes a module's provider statically, so one
# module call cannot place its instances in different AWS regions.

provider "aws" {
  alias  = "us_east_1"
  region = "us-east-1"
}

provider "aws" {
  alias  = "eu_west_1"
  region = "eu-west-1"
}

provider "aws" {
  alias  = "ap_southeast_1"
  region = "ap-southeast-1"
}

module "us_east_1" {
  source    = "../../modules/region"
  providers = { aws = aws.us_east_1 }

  region                    = "us-east-1"
  project                   = var.project
  is_primary                = true
  vpc_id                    = var.clusters["us-east-1"].vpc_id
  subnet_ids                = var.clusters["us-east-1"].subnet_ids
  client_security_group_ids = var.clusters["us-east-1"].client_security_group_ids
  oidc_provider_arn         = var.clusters["us-east-1"].oidc_provider_arn
  kafka_bootstrap_servers   = var.kafka_bootstrap_servers["us-east-1"]
  publisher_role_arns       = var.publisher_role_arns
  dns = {
    zone_id     = var.dns.zone_id
    record_name = var.dns.record_name
    target      = var.dns.targets["us-east-1"]
  }
}

module "eu_west_1" {
  source    = "../../modules/region"
  providers = { aws = aws.eu_west_1 }

  region                    = "eu-west-1"
  project                   = var.project
  vpc_id                    = var.clusters["eu-west-1"].vpc_id
  subnet_ids                = var.clusters["eu-west-1"].subnet_ids
  client_security_group_ids = var.clusters["eu-west-1"].client_security_group_ids
  oidc_provider_arn         = var.clusters["eu-west-1"].oidc_provider_arn
  kafka_bootstrap_servers   = var.kafka_bootstrap_servers["eu-west-1"]
  publisher_role_arns       = var.publisher_role_arns
  dns = {
    zone_id     = var.dns.zone_id
    record_name = var.dns.record_name
    target      = var.dns.targets["eu-west-1"]
  }
}

module "ap_southeast_1" {
  source    = "../../modules/region"
  providers = { aws = aws.ap_southeast_1 }

  region                    = "ap-southeast-1"
  project                   = var.project
  vpc_id                    = var.clusters["ap-southeast-1"].vpc_id
  subnet_ids                = var.clusters["ap-southeast-1"].subnet_ids
  client_security_group_ids = var.clusters["ap-southeast-1"].client_security_group_ids
  oidc_provider_arn         = var.clusters["ap-southeast-1"].oidc_provider_arn
  kafka_bootstrap_servers   = var.kafka_bootstrap_servers["ap-southeast-1"]
  publisher_role_arns       = var.publisher_role_arns
  dns = {
    zone_id     = var.dns.zone_id
    record_name = var.dns.record_name
    target      = var.dns.targets["ap-southeast-1"]
  }
}

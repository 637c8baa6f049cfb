output "topology_regions" {
  description = "The regions section of infra/topology.yaml (passwords come from each region's Secret)."
  value = {
    "us-east-1"      = module.us_east_1.topology_region
    "eu-west-1"      = module.eu_west_1.topology_region
    "ap-southeast-1" = module.ap_southeast_1.topology_region
  }
}

output "credentials_secret_arns" {
  description = "Secrets Manager secrets holding each region's Redis passwords, by region."
  value = {
    "us-east-1"      = module.us_east_1.credentials_secret_arn
    "eu-west-1"      = module.eu_west_1.credentials_secret_arn
    "ap-southeast-1" = module.ap_southeast_1.credentials_secret_arn
  }
}

output "role_arns" {
  description = "IRSA roles (worker, reader) by region."
  value = {
    "us-east-1"      = module.us_east_1.role_arns
    "eu-west-1"      = module.eu_west_1.role_arns
    "ap-southeast-1" = module.ap_southeast_1.role_arns
  }
}

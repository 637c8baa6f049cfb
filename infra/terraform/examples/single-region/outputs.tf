output "topology_region" {
  description = "The region's entry for infra/topology.yaml."
  value       = module.region.topology_region
}

output "credentials_secret_arn" {
  description = "Secrets Manager secret with the region's Redis passwords."
  value       = module.region.credentials_secret_arn
}

# Latency-based routing for the region's read endpoint (the feature server's load balancer):
# Route 53 answers with the nearest region whose health check passes, and the health check
# asks the read health endpoint's readiness path (/health/ready: the region's Redis answers,
# its staleness is within bound and it serves the reference registry).
resource "aws_route53_health_check" "ready" {
  count             = var.dns == null ? 0 : 1
  type              = "HTTPS"
  fqdn              = coalesce(var.dns.health_check_fqdn, var.dns.target)
  port              = var.dns.health_check_port
  resource_path     = var.dns.health_check_path
  request_interval  = 10
  failure_threshold = 3
  measure_latency   = true
  tags              = merge(local.tags, { Name = "${local.name}-ready" })
}

resource "aws_route53_record" "latency" {
  count           = var.dns == null ? 0 : 1
  zone_id         = var.dns.zone_id
  name            = var.dns.record_name
  type            = "CNAME"
  ttl             = var.dns.ttl
  records         = [var.dns.target]
  set_identifier  = var.region
  health_check_id = aws_route53_health_check.ready[0].id

  latency_routing_policy {
    region = var.region
  }
}

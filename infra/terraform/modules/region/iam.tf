# Roles for the region's pods through IRSA: the workers (and heartbeats, checker) read the
# region's bucket; readers (feature server, inference services) read it too. Writes to the
# bucket belong to the publishers (var.publisher_role_arns, bucket policy).
locals {
  oidc_issuer = replace(var.oidc_provider_arn, "/^arn:[^:]+:iam::[0-9]+:oidc-provider\\//", "")
  service_accounts = {
    worker = [var.worker_service_account]
    reader = var.reader_service_accounts
  }
}

data "aws_iam_policy_document" "assume" {
  for_each = local.service_accounts
  statement {
    actions = ["sts:AssumeRoleWithWebIdentity"]
    principals {
      type        = "Federated"
      identifiers = [var.oidc_provider_arn]
    }
    condition {
      test     = "StringEquals"
      variable = "${local.oidc_issuer}:aud"
      values   = ["sts.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "${local.oidc_issuer}:sub"
      values   = [for sa in each.value : "system:serviceaccount:${var.namespace}:${sa}"]
    }
  }
}

data "aws_iam_policy_document" "read_bucket" {
  statement {
    sid       = "ListRegionBucket"
    actions   = ["s3:ListBucket"]
    resources = [aws_s3_bucket.this.arn]
  }
  statement {
    sid       = "ReadRegionObjects"
    actions   = ["s3:GetObject", "s3:GetObjectVersion"]
    resources = ["${aws_s3_bucket.this.arn}/*"]
  }
  dynamic "statement" {
    for_each = var.kms_key_arn == null ? [] : [var.kms_key_arn]
    content {
      sid       = "DecryptWithRegionKey"
      actions   = ["kms:Decrypt"]
      resources = [statement.value]
    }
  }
}

resource "aws_iam_role" "this" {
  for_each             = local.service_accounts
  name                 = "${local.name}-${each.key}"
  description          = "Feast replicator ${each.key}s in ${var.region} (IRSA)"
  assume_role_policy   = data.aws_iam_policy_document.assume[each.key].json
  max_session_duration = 3600
  tags                 = local.tags
}

resource "aws_iam_role_policy" "read_bucket" {
  for_each = aws_iam_role.this
  name     = "read-region-bucket"
  role     = each.value.id
  policy   = data.aws_iam_policy_document.read_bucket.json
}

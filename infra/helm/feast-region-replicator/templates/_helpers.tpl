{{/* Names and labels. "frr" = feast-region-replicator. */}}
{{- define "frr.fullname" -}}
{{- printf "%s-%s" .Release.Name .Values.region | trunc 52 | trimSuffix "-" -}}
{{- end -}}

{{- define "frr.labels" -}}
app.kubernetes.io/name: feast-region-replicator
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
feast-replicator/region: {{ .Values.region }}
{{- end -}}

{{/* Selector labels of one component: (list $ "worker") */}}
{{- define "frr.selector" -}}
{{- $root := index . 0 -}}
app.kubernetes.io/name: feast-region-replicator
app.kubernetes.io/instance: {{ $root.Release.Name }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end -}}

{{- define "frr.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{- define "frr.serviceAccountName" -}}
{{- .Values.serviceAccount.name | default (include "frr.fullname" .) -}}
{{- end -}}

{{- define "frr.isPrimary" -}}
{{- if eq .Values.region .Values.topology.primary_region }}true{{ end -}}
{{- end -}}

{{/* The topology file's content: the regions list turned back into a map by name. */}}
{{- define "frr.topology" -}}
{{- $regions := dict -}}
{{- range .Values.topology.regions -}}
{{- $_ := set $regions .name (omit . "name" "secret" "redisTlsSecret") -}}
{{- end -}}
{{- toYaml (set (omit .Values.topology "regions") "regions" $regions) -}}
{{- end -}}

{{- define "frr.regionNames" -}}
{{- range .Values.topology.regions }}{{ .name }} {{ end -}}
{{- end -}}

{{/* The Secret holding one region's credentials: (list $ "eu-west-1") */}}
{{- define "frr.secretName" -}}
{{- $name := index . 1 -}}
{{- range (index . 0).Values.topology.regions }}{{ if eq .name $name }}{{ .secret }}{{ end }}{{ end -}}
{{- end -}}

{{/* Fails the render on values that cannot work together. */}}
{{- define "frr.check" -}}
{{- $names := include "frr.regionNames" . | trim | splitList " " -}}
{{- if ne (len $names) (len (uniq $names)) -}}
{{- fail (printf "topology.regions names a region twice (%s)" (join ", " $names)) -}}
{{- end -}}
{{- if not (has .Values.region $names) -}}
{{- fail (printf "region %q is not one of topology.regions (%s)" .Values.region (join ", " $names)) -}}
{{- end -}}
{{- if not (has .Values.topology.primary_region $names) -}}
{{- fail (printf "topology.primary_region %q is not one of topology.regions (%s)" .Values.topology.primary_region (join ", " $names)) -}}
{{- end -}}
{{- if gt (int .Values.worker.replicas) (int .Values.topology.kafka.partitions) -}}
{{- fail (printf "worker.replicas (%d) exceeds topology.kafka.partitions (%d): the extra workers would hold no partition" (int .Values.worker.replicas) (int .Values.topology.kafka.partitions)) -}}
{{- end -}}
{{- end -}}

{{/*
Environment variables that carry one region's secrets into the topology:
(list $ "eu-west-1" (list "redis-writer-password" "s3-access-key-id" ...)).
*/}}
{{- define "frr.regionSecretEnv" -}}
{{- $root := index . 0 -}}
{{- $region := index . 1 -}}
{{- $secret := include "frr.secretName" (list $root $region) -}}
{{- $prefix := printf "REPLICATOR_REGIONS__%s__" ($region | upper | replace "-" "_") -}}
{{- $fields := dict "redis-writer-password" "REDIS__WRITER__PASSWORD" "redis-reader-password" "REDIS__READER__PASSWORD" "redis-admin-password" "REDIS__ADMIN__PASSWORD" "redis-checker-password" "REDIS__CHECKER__PASSWORD" "s3-access-key-id" "S3__ACCESS_KEY_ID" "s3-secret-access-key" "S3__SECRET_ACCESS_KEY" -}}
{{- range index . 2 }}
- name: {{ $prefix }}{{ get $fields . }}
  valueFrom:
    secretKeyRef: {name: {{ $secret }}, key: {{ . }}}
{{- end }}
{{- end -}}

{{/* Environment every replicator process gets. */}}
{{- define "frr.commonEnv" -}}
- name: REPLICATOR_CONFIG
  value: /etc/replicator/topology.yaml
- name: PYTHONDONTWRITEBYTECODE
  value: "1"
{{- if .Values.secrets.kafka }}
- name: REPLICATOR_KAFKA__BOOTSTRAP_SERVERS
  valueFrom:
    secretKeyRef: {name: {{ .Values.secrets.kafka }}, key: bootstrap-servers}
{{- end }}
{{- end -}}

{{- define "frr.configVolume" -}}
- name: config
  configMap:
    name: {{ include "frr.fullname" . }}
- name: tmp
  emptyDir: {medium: Memory, sizeLimit: 64Mi}
{{- end -}}

{{- define "frr.configMounts" -}}
- name: config
  mountPath: /etc/replicator
  readOnly: true
- name: tmp
  mountPath: /tmp
{{- end -}}

{{- define "frr.podSpecCommon" -}}
serviceAccountName: {{ include "frr.serviceAccountName" . }}
automountServiceAccountToken: false
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* The config checksum: pods restart when the topology or settings change. */}}
{{- define "frr.configChecksum" -}}
checksum/config: {{ include (print .Template.BasePath "/configmap.yaml") . | sha256sum }}
{{- end -}}

{{/*
HTTPS of an endpoint we serve (checker.tls, health.tls): a kubernetes.io/tls Secret mounted at
/etc/tls/<name> (tls.crt, tls.key; ca.crt when clientAuth). (list "checker" .Values.checker.tls)
*/}}
{{- define "frr.tlsVolume" -}}
{{- $tls := index . 1 -}}
{{- if $tls.secret }}
- name: {{ index . 0 }}-tls
  secret: {secretName: {{ $tls.secret }}, defaultMode: 0440}
{{- end }}
{{- end -}}

{{- define "frr.tlsMount" -}}
{{- $tls := index . 1 -}}
{{- if $tls.secret }}
- {name: {{ index . 0 }}-tls, mountPath: /etc/tls/{{ index . 0 }}, readOnly: true}
{{- end }}
{{- end -}}

{{/*
TLS files of regions' Redis: a region's `redisTlsSecret` (keys ca.crt; tls.crt and tls.key for a
client certificate) mounted at /etc/tls/redis/<region>, the paths `replicator region
k8s-values` writes into that region's redis.tls. Only the regions named (the ones the pod
reads or writes), and only those with a redisTlsSecret. (list $ (list "eu-west-1"))
*/}}
{{- define "frr.redisTlsVolumes" -}}
{{- $names := index . 1 -}}
{{- range (index . 0).Values.topology.regions }}
{{- if and .redisTlsSecret (has .name $names) }}
- name: redis-tls-{{ .name }}
  secret: {secretName: {{ .redisTlsSecret }}, defaultMode: 0440}
{{- end }}
{{- end }}
{{- end -}}

{{- define "frr.redisTlsMounts" -}}
{{- $names := index . 1 -}}
{{- range (index . 0).Values.topology.regions }}
{{- if and .redisTlsSecret (has .name $names) }}
- {name: redis-tls-{{ .name }}, mountPath: /etc/tls/redis/{{ .name }}, readOnly: true}
{{- end }}
{{- end }}
{{- end -}}

{{/*
The regions whose Redis the feature server's pod may read, as its read plan names them
(replicator/read_plan.py): its own, its read_fallbacks and the primary. A JSON list.
*/}}
{{- define "frr.readRegions" -}}
{{- $names := list .Values.region -}}
{{- range .Values.topology.regions -}}
{{- if eq .name $.Values.region -}}
{{- $names = concat $names (.read_fallbacks | default list) -}}
{{- end -}}
{{- end -}}
{{- toJson (append $names .Values.topology.primary_region | uniq) -}}
{{- end -}}

{{/*
A probe of such an endpoint: httpGet (scheme HTTPS with TLS; the kubelet does not check the
certificate), or tcpSocket with clientAuth (the kubelet has no client certificate).
(list .Values.checker.tls "/metrics" "http")
*/}}
{{- define "frr.probe" -}}
{{- $tls := index . 0 -}}
{{- if and $tls.secret $tls.clientAuth -}}
tcpSocket: {port: {{ index . 2 }}}
{{- else -}}
httpGet: {path: {{ index . 1 }}, port: {{ index . 2 }}{{ if $tls.secret }}, scheme: HTTPS{{ end }}}
{{- end -}}
{{- end -}}

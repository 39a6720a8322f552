{{/*
Names, labels, the role list and the pieces every pod shares.
*/}}

{{- define "atelier.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "atelier.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "atelier.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "atelier.selectorLabels" -}}
app.kubernetes.io/name: {{ include "atelier.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "atelier.labels" -}}
helm.sh/chart: {{ include "atelier.chart" . }}
{{ include "atelier.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: atelier
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Labels of one role; call with (dict "root" $ "role" $role). */}}
{{- define "atelier.roleSelectorLabels" -}}
{{ include "atelier.selectorLabels" .root }}
app.kubernetes.io/component: {{ .role.component }}
{{- end }}

{{- define "atelier.roleLabels" -}}
{{ include "atelier.labels" .root }}
app.kubernetes.io/component: {{ .role.component }}
{{- end }}

{{/* Resource name of one role, e.g. `<fullname>-upscale-worker`. */}}
{{- define "atelier.roleName" -}}
{{- printf "%s-%s" (include "atelier.fullname" .root) .role.component | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "atelier.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag }}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository $tag }}
{{- end }}
{{- end }}

{{- define "atelier.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "atelier.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "atelier.configMapName" -}}
{{- printf "%s-config" (include "atelier.fullname" .) }}
{{- end }}

{{/* The Secret the roles read: the existing one, or the chart's. */}}
{{- define "atelier.secretName" -}}
{{- if .Values.secrets.existingSecret }}
{{- .Values.secrets.existingSecret }}
{{- else }}
{{- include "atelier.fullname" . }}
{{- end }}
{{- end }}

{{/* The NATS prefix every stream and durable carries (ATELIER_NATS_PREFIX, default `atelier`). */}}
{{- define "atelier.natsPrefix" -}}
{{- default "atelier" (index .Values.config "ATELIER_NATS_PREFIX") }}
{{- end }}

{{/*
The roles, in order: api, webhook, then each enabled worker (sorted by key). Call with a dict
holding "root"; the list is stored under "roles" (dicts are shared, so the caller sees it).
Each role: key, component, kind (api | webhook | worker), args, serviceName (OTEL_SERVICE_NAME),
values (the role's values), capability (workers), secretKeys (the Secret keys it needs).
*/}}
{{- define "atelier.collectRoles" -}}
{{- $root := .root }}
{{- $capabilities := dict "image" "image.generate" "inpaint" "image.inpaint" "upscale" "image.upscale" "video" "video.generate" "slides" "video.slides" }}
{{- $roles := list }}
{{- $roles = append $roles (dict "key" "api" "component" "api" "kind" "api" "args" (list "api") "serviceName" "api-service" "values" $root.Values.api "secretKeys" (list "ATELIER_DATABASE_URL" "ATELIER_API_KEYS" "AWS_ACCESS_KEY_ID" "AWS_SECRET_ACCESS_KEY") "dependencies" (list "nats" "postgresql" "s3" "otlp")) }}
{{- $roles = append $roles (dict "key" "webhook" "component" "webhook" "kind" "webhook" "args" (list "webhook") "serviceName" "webhook-service" "values" $root.Values.webhook "secretKeys" (list "ATELIER_DATABASE_URL" "ATELIER_WEBHOOK_SECRET") "dependencies" (list "nats" "postgresql" "otlp")) }}
{{- range $key, $worker := $root.Values.workers }}
{{- if $worker.enabled }}
{{- $component := printf "%s-worker" $key }}
{{- $roles = append $roles (dict "key" $key "component" $component "kind" "worker" "args" (list "worker" $key) "serviceName" $component "values" $worker "capability" (get $capabilities $key) "secretKeys" (list "AWS_ACCESS_KEY_ID" "AWS_SECRET_ACCESS_KEY" "ATELIER_OPENAI_API_KEY" "ATELIER_ARK_API_KEY" "ATELIER_GEMINI_API_KEY" "ATELIER_JIMENG_ACCESS_KEY" "ATELIER_JIMENG_SECRET_KEY") "dependencies" (list "nats" "s3" "otlp")) }}
{{- end }}
{{- end }}
{{- $_ := set . "roles" $roles }}
{{- end }}

{{/* JetStream work stream of a capability, as services/kit/src/nats.rs names it. */}}
{{- define "atelier.jobStream" -}}
{{- $prefix := include "atelier.natsPrefix" .root | upper | replace "-" "_" }}
{{- printf "%s_JOBS_%s" $prefix (.capability | replace "." "_" | upper) }}
{{- end }}

{{/* Durable consumer of a capability's workers: `<prefix>_worker_<capability token>`. */}}
{{- define "atelier.jobConsumer" -}}
{{- printf "%s_worker_%s" (include "atelier.natsPrefix" .root) (.capability | replace "." "_") }}
{{- end }}

{{/* Settings as EnvVar entries, empty values left out; call with a map. */}}
{{- define "atelier.settingsEnv" -}}
{{- range $name, $value := . }}
{{- if ne (toString $value) "" }}
- name: {{ $name }}
  value: {{ toString $value | quote }}
{{- end }}
{{- end }}
{{- end }}

{{/* OTEL_* variables of one role; call with (dict "root" $ "serviceName" "api-service"). */}}
{{- define "atelier.otelEnv" -}}
{{- $otel := .root.Values.otel }}
- name: OTEL_SERVICE_NAME
  value: {{ .serviceName | quote }}
{{- if $otel.enabled }}
- name: OTEL_EXPORTER_OTLP_ENDPOINT
  value: {{ $otel.endpoint | quote }}
- name: OTEL_EXPORTER_OTLP_PROTOCOL
  value: {{ $otel.protocol | quote }}
{{- $attributes := list (printf "service.namespace=%s" .root.Release.Namespace) (printf "service.version=%s" (default .root.Chart.AppVersion .root.Values.image.tag)) }}
{{- range $name, $value := $otel.resourceAttributes }}
{{- $attributes = append $attributes (printf "%s=%s" $name (toString $value)) }}
{{- end }}
- name: OTEL_RESOURCE_ATTRIBUTES
  value: {{ join "," $attributes | quote }}
{{- else }}
- name: OTEL_SDK_DISABLED
  value: "true"
{{- end }}
{{- end }}

{{/* Secret keys as secretKeyRef entries; call with (dict "root" $ "keys" (list …)). Only the
database URL is required: without the others the code's defaults apply (unsigned webhooks, no
bootstrap keys, the AWS credential chain). */}}
{{- define "atelier.secretEnv" -}}
{{- $name := include "atelier.secretName" .root }}
{{- range .keys }}
- name: {{ . }}
  valueFrom:
    secretKeyRef:
      name: {{ $name }}
      key: {{ . }}
      optional: {{ ne . "ATELIER_DATABASE_URL" }}
{{- end }}
{{- end }}

{{- define "atelier.tmpVolume" -}}
- name: tmp
  emptyDir:
    sizeLimit: {{ .Values.tmpSizeLimit }}
{{- end }}

{{- define "atelier.tmpMount" -}}
- name: tmp
  mountPath: /tmp
{{- end }}

{{/* The port in ATELIER_HTTP_ADDR, the container port and the probes: one value. */}}
{{- define "atelier.httpAddr" -}}
{{- printf "%s:%d" .Values.http.host (int .Values.http.port) }}
{{- end }}

{{/* Names and labels. */}}
{{- define "model-serving.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "model-serving.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "model-serving.selectorLabels" -}}
app.kubernetes.io/name: {{ include "model-serving.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "model-serving.labels" -}}
{{ include "model-serving.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "model-serving.apiKeysSecret" -}}
{{- .Values.apiKeys.existingSecret | default (printf "%s-api-keys" (include "model-serving.fullname" .)) -}}
{{- end -}}

{{/* The service's settings the chart itself depends on; the fallbacks are the service's defaults
     (service/settings.py; tests/deploy/test_kubernetes.py checks that they agree). */}}
{{- define "model-serving.shutdownGraceSeconds" -}}
{{- index (.Values.settings | default dict) "SERVICE_SHUTDOWN_GRACE_S" | default "30" | int -}}
{{- end -}}

{{- define "model-serving.maxBodyBytes" -}}
{{- index (.Values.settings | default dict) "SERVICE_MAX_BODY_BYTES" | default "10485760" | int64 -}}
{{- end -}}

{{/* TensorFlow sizes its thread pools by the node's cores, not by the pod's CPU limit: derive them
     from the limit (rounded up, at least 1) so that pods do not oversubscribe their node. */}}
{{- define "model-serving.tfThreads" -}}
{{- $cpu := toString (.Values.resources.limits.cpu | default "") -}}
{{- if not $cpu -}}
{{- fail "resources.limits.cpu is required: TensorFlow's thread counts are derived from it" -}}
{{- end -}}
{{- $millis := 0 -}}
{{- if hasSuffix "m" $cpu -}}
{{- $millis = trimSuffix "m" $cpu | atoi -}}
{{- else -}}
{{- $millis = mulf (float64 $cpu) 1000 | ceil | int -}}
{{- end -}}
{{- max (div (add $millis 999) 1000) 1 -}}
{{- end -}}

{{/* Refuse values that would break the service's guarantees, with a message saying how to fix them. */}}
{{- define "model-serving.checks" -}}
{{- $grace := include "model-serving.shutdownGraceSeconds" . | int -}}
{{- $needed := add $grace .Values.preStopSeconds -}}
{{- if le (int .Values.terminationGracePeriodSeconds) $needed -}}
{{- fail (printf "terminationGracePeriodSeconds (%d) must exceed preStopSeconds (%d) + SERVICE_SHUTDOWN_GRACE_S (%d), or Kubernetes kills pods before they finish draining; set it to at least %d" (int .Values.terminationGracePeriodSeconds) (int .Values.preStopSeconds) $grace (add $needed 1)) -}}
{{- end -}}
{{- if not (has .Values.autoscaling.mode (list "cpu" "queue-depth" "keda" "none")) -}}
{{- fail (printf "autoscaling.mode is %q: use one of cpu, queue-depth, keda or none (one autoscaler per Deployment)" .Values.autoscaling.mode) -}}
{{- end -}}
{{- if gt (int .Values.autoscaling.minReplicas) (int .Values.autoscaling.maxReplicas) -}}
{{- fail (printf "autoscaling.minReplicas (%d) must not exceed autoscaling.maxReplicas (%d)" (int .Values.autoscaling.minReplicas) (int .Values.autoscaling.maxReplicas)) -}}
{{- end -}}
{{- range $key, $value := (.Values.settings | default dict) -}}
{{- if not (hasPrefix "SERVICE_" $key) -}}
{{- fail (printf "settings.%s: only the service's SERVICE_* settings belong here" $key) -}}
{{- end -}}
{{- if has $key (list "SERVICE_HOST" "SERVICE_PORT" "SERVICE_ARTIFACTS_DIR" "SERVICE_ROLLOUT_DIR" "SERVICE_API_KEYS") -}}
{{- fail (printf "settings.%s is set by the chart (containerPort, models, rollouts, apiKeys): remove it" $key) -}}
{{- end -}}
{{- end -}}
{{- if .Values.rollouts.existingClaim -}}
{{- $modelsDir := ternary .Values.models.mountPath "/app/artifacts" (not (empty .Values.models.volume)) -}}
{{- if or (eq .Values.rollouts.mountPath $modelsDir) (eq .Values.rollouts.mountPath "/tmp") -}}
{{- fail (printf "rollouts.mountPath (%s) must be a folder of its own, not the models' (%s) or /tmp" .Values.rollouts.mountPath $modelsDir) -}}
{{- end -}}
{{- end -}}
{{- if .Values.apiKeys.enabled -}}
{{- if and (not .Values.apiKeys.existingSecret) (not .Values.apiKeys.keys) -}}
{{- fail "apiKeys.enabled needs apiKeys.existingSecret or apiKeys.keys" -}}
{{- end -}}
{{- range .Values.apiKeys.keys -}}
{{- if lt (len .) 16 -}}
{{- fail "each of apiKeys.keys must be at least 16 characters (use a random token)" -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}

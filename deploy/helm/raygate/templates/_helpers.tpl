{{/*
Names. With the default namePrefix "raygate" they are the kustomize names of deploy/.
*/}}
{{- define "raygate.webhookName" -}}{{ .Values.namePrefix }}-webhook{{- end -}}
{{- define "raygate.autoscalerName" -}}{{ .Values.namePrefix }}-autoscaler{{- end -}}
{{- define "raygate.tlsSecretName" -}}
{{- if eq .Values.certs.mode "secret" -}}{{ .Values.certs.secret.name }}{{- else -}}{{ .Values.namePrefix }}-webhook-tls{{- end -}}
{{- end -}}
{{- define "raygate.caSecretName" -}}{{ .Values.namePrefix }}-webhook-ca{{- end -}}

{{/*
Labels on every object's metadata: kustomize's commonLabels (part-of) plus Helm's own.
tests/helm_chart.rs strips exactly the Helm ones when comparing with kustomize.
*/}}
{{- define "raygate.labels" -}}
app.kubernetes.io/part-of: raygate
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/instance: {{ .Release.Name }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end -}}

{{- define "raygate.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{- define "raygate.webhookSelector" -}}
app.kubernetes.io/name: {{ include "raygate.webhookName" . }}
app.kubernetes.io/component: webhook
{{- end -}}

{{/*
The host of webhook.url ("" when unset), for the certificate's SANs.
*/}}
{{- define "raygate.urlHost" -}}
{{- if .Values.webhook.url -}}
{{- regexReplaceAll "^https://(\\[[^]]*\\]|[^:/]+).*$" .Values.webhook.url "${1}" | trimPrefix "[" | trimSuffix "]" -}}
{{- end -}}
{{- end -}}

{{/*
DNS names of the serving certificate: the Service's four names (as `raygate certs generate`).
*/}}
{{- define "raygate.serviceDNSNames" -}}
{{- $svc := include "raygate.webhookName" . -}}
{{- $ns := .Release.Namespace -}}
{{- list $svc (printf "%s.%s" $svc $ns) (printf "%s.%s.svc" $svc $ns) (printf "%s.%s.svc.cluster.local" $svc $ns) | toJson -}}
{{- end -}}

{{/*
clientConfig of one webhook: the Service (default) or webhook.url (development). Argument:
(dict "root" $ "path" "/validate-ray-io-v1-raycluster" "caBundle" "<base64 or empty>").
*/}}
{{- define "raygate.clientConfig" -}}
{{- $v := .root.Values -}}
{{- $cc := dict -}}
{{- if $v.webhook.url -}}
{{- $_ := set $cc "url" (printf "%s%s" (trimSuffix "/" $v.webhook.url) .path) -}}
{{- else -}}
{{- $_ := set $cc "service" (dict "name" (include "raygate.webhookName" .root) "namespace" .root.Release.Namespace "path" .path "port" 443) -}}
{{- end -}}
{{- if .caBundle -}}
{{- $_ := set $cc "caBundle" .caBundle -}}
{{- end -}}
{{- toYaml $cc -}}
{{- end -}}

{{/*
Cross-field checks that JSON Schema cannot express; they fail the install with the field names.
*/}}
{{- define "raygate.validate" -}}
{{- $w := .Values.webhook -}}
{{- if ge (int $w.requestTimeoutSeconds) (int $w.timeoutSeconds) -}}
{{- fail (printf "webhook.requestTimeoutSeconds (%v) must be below webhook.timeoutSeconds (%v): raygate must answer before the API server gives up" $w.requestTimeoutSeconds $w.timeoutSeconds) -}}
{{- end -}}
{{- if lt (int $w.terminationGracePeriodSeconds) (add $w.shutdownDelaySeconds $w.drainTimeoutSeconds | int) -}}
{{- fail (printf "webhook.terminationGracePeriodSeconds (%v) must be >= webhook.shutdownDelaySeconds + webhook.drainTimeoutSeconds (%v)" $w.terminationGracePeriodSeconds (add $w.shutdownDelaySeconds $w.drainTimeoutSeconds)) -}}
{{- end -}}
{{- end -}}

{{/*
NetworkPolicy peers: the CIDRs of .ipBlocks, else one namespaceSelector + podSelector peer.
*/}}
{{- define "raygate.npPeers" -}}
{{- $peers := list -}}
{{- if .ipBlocks -}}
{{- range .ipBlocks -}}
{{- $peers = append $peers (dict "ipBlock" (dict "cidr" .)) -}}
{{- end -}}
{{- else -}}
{{- $peers = append $peers (dict "namespaceSelector" .namespaceSelector "podSelector" .podSelector) -}}
{{- end -}}
{{- toYaml $peers -}}
{{- end -}}
